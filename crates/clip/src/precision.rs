//! Which float type the towers' weights are kept in. Checkpoints stored in F16 or BF16 keep
//! f16 matrices on the GPU (half the memory and bandwidth, as PyTorch users run them): the
//! kernels unpack them with core WGSL, so every adapter can, SwiftShader included, and
//! activations, accumulation, LayerNorm statistics and the attention softmax stay f32.
//! Elsewhere (f32 checkpoints, the CPU backend) the weights are widened to f32 at load.

use crate::error::ClipError;

/// The type the towers keep their matrices and embeddings in. Activations, accumulation,
/// LayerNorm statistics and the attention softmax are f32 whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    /// IEEE half, packed two to a 32-bit word on the GPU.
    F16,
}

impl Dtype {
    /// The name the command and the Python package report.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f16 when the checkpoint is stored in half precision and the GPU supports it.
    #[default]
    Auto,
    F32,
    /// f16 or an error saying why it is not available.
    F16,
}

impl Precision {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            other => Err(format!("unknown precision `{other}` (expected auto, f32 or f16)")),
        }
    }
}

/// What the load found, for [`Precision::resolve`].
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Every weight is stored as F16 or BF16.
    pub stored_half: bool,
    /// A BF16 weight outside f16's range, named.
    pub overflows_f16: Option<String>,
    /// The towers run where f16 weights are kept: prefscope's GPU kernels on any adapter
    /// (burn-wgpu, the benchmark's row, only with shader-f16).
    pub gpu_f16: bool,
}

impl Precision {
    /// The compute type for the matrices and embeddings (LayerNorm parameters stay f32).
    pub fn resolve(self, caps: &Capabilities) -> Result<Dtype, ClipError> {
        let refuse = |why: &str| Err(ClipError::Input(format!("f16 compute is not available: {why}")));
        match self {
            Precision::F32 => Ok(Dtype::F32),
            Precision::Auto if caps.stored_half && caps.gpu_f16 && caps.overflows_f16.is_none() => Ok(Dtype::F16),
            Precision::Auto => Ok(Dtype::F32),
            Precision::F16 if !caps.gpu_f16 => {
                refuse("it needs the GPU towers: the CPU backend computes in f32 (prefscope's kernels keep f16 weights on any adapter, with or without shader-f16)")
            }
            Precision::F16 => match &caps.overflows_f16 {
                Some(tensor) => refuse(&format!("BF16 tensor `{tensor}` holds values outside f16's range")),
                None => Ok(Dtype::F16),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF_GPU: Capabilities = Capabilities { stored_half: true, overflows_f16: None, gpu_f16: true };
    fn overflow() -> Capabilities {
        Capabilities { overflows_f16: Some("w".into()), ..HALF_GPU }
    }

    #[test]
    fn auto_computes_in_f16_only_for_half_checkpoints_on_f16_gpus() {
        assert_eq!(Precision::Auto.resolve(&HALF_GPU).unwrap(), Dtype::F16);
        for caps in
            [Capabilities { stored_half: false, ..HALF_GPU }, Capabilities { gpu_f16: false, ..HALF_GPU }, overflow()]
        {
            assert_eq!(Precision::Auto.resolve(&caps).unwrap(), Dtype::F32, "{caps:?}");
        }
        assert_eq!(Precision::F32.resolve(&HALF_GPU).unwrap(), Dtype::F32);
    }

    #[test]
    fn forced_f16_says_why_it_cannot_run() {
        let cpu = Capabilities { gpu_f16: false, ..HALF_GPU };
        assert!(Precision::F16.resolve(&cpu).unwrap_err().to_string().contains("shader-f16"));
        assert!(Precision::F16.resolve(&overflow()).unwrap_err().to_string().contains("`w`"));
        // An f32 checkpoint may still be computed in f16 when asked.
        let f32_ckpt = Capabilities { stored_half: false, ..HALF_GPU };
        assert_eq!(Precision::F16.resolve(&f32_ckpt).unwrap(), Dtype::F16);
    }
}
