//! Which type the towers keep their matrices in, and how the user's choice resolves on each
//! runner. Activations, accumulation, LayerNorm statistics and the attention softmax are f32
//! whatever it is.
//!
//! - `f32`: exact parity with the reference implementations, what prefscope promises.
//! - `f16`: half the memory. The GPU kernels unpack f16 with core WGSL (any adapter, no
//!   shader-f16 needed); the CPU kernels widen a panel of columns at a time.
//! - `q8`: int8 codes per output channel (`qgemm.rs`), a quarter of the memory; on the CPU
//!   the activations are quantized per row and the products run in integers. The GPU kernels
//!   have no int8 path: there q8 weights are widened to f16 on upload.
//!
//! `auto` runs a checkpoint `prefscope quantize` wrote in its stored dtype (q8 as f16 on the
//! GPU), keeps the matrices of other half-precision checkpoints in f16 on the GPU, and is f32
//! everywhere else.

use crate::error::ClipError;

/// The type the towers keep their matrices and embedding tables in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    /// IEEE half.
    F16,
    /// Symmetric int8 per output channel (per row for the token table).
    Q8,
}

impl Dtype {
    /// The name every surface uses (`--dtype`, `load({ dtype })`, the Python package).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Q8 => "q8",
        }
    }

    /// `f32`, `f16` or `q8`, with transformers.js's spellings `fp32` and `fp16`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "f32" | "fp32" => Some(Dtype::F32),
            "f16" | "fp16" => Some(Dtype::F16),
            "q8" => Some(Dtype::Q8),
            _ => None,
        }
    }
}

/// What the user asked for: a dtype, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtypeChoice {
    #[default]
    Auto,
    Exactly(Dtype),
}

impl DtypeChoice {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            other => Dtype::parse(other).map(Self::Exactly).ok_or_else(|| {
                format!("unknown dtype `{other}` (expected auto, f32, f16 or q8; fp32 and fp16 also work)")
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Exactly(d) => d.name(),
        }
    }
}

/// Where the towers run, as far as dtypes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// prefscope-gpu's kernels: f32 or f16 weights on any adapter.
    Gpu,
    /// The CPU kernels: f32, f16 or q8.
    Cpu,
    /// The burn modules (the benchmark's comparison rows): f32, and f16 only on burn-wgpu with
    /// shader-f16.
    Burn { f16: bool },
}

/// What the load found, for [`DtypeChoice::resolve`].
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub runner: Runner,
    /// The dtype `prefscope quantize` recorded in the checkpoint's metadata.
    pub stored: Option<Dtype>,
    /// Every weight is stored as F16 or BF16 (a half-precision checkpoint from elsewhere).
    pub stored_half: bool,
    /// A tensor whose values f16 cannot hold, named (only scanned when f16 could be chosen).
    pub overflows_f16: Option<String>,
}

impl DtypeChoice {
    /// Whether resolving could pick f16, so that the load scans the weights' range first.
    pub fn may_use_f16(self, runner: Runner, stored: Option<Dtype>, stored_half: bool) -> bool {
        match self {
            Self::Exactly(Dtype::F16) => true,
            Self::Exactly(Dtype::Q8) => runner == Runner::Gpu,
            Self::Exactly(Dtype::F32) => false,
            Self::Auto => match stored {
                Some(Dtype::F16) => true,
                Some(Dtype::Q8) => runner == Runner::Gpu,
                _ => stored_half && runner == Runner::Gpu,
            },
        }
    }

    /// The dtype the towers keep their matrices in on `caps.runner`, or why the choice cannot run.
    pub fn resolve(self, caps: &Capabilities) -> Result<Dtype, ClipError> {
        let refuse =
            |dtype: Dtype, why: &str| Err(ClipError::Input(format!("dtype {} is not available: {why}", dtype.name())));
        let f16_fits = |dtype: Dtype| match &caps.overflows_f16 {
            Some(tensor) => refuse(dtype, &format!("tensor `{tensor}` holds values outside f16's range")),
            None => Ok(Dtype::F16),
        };
        match (self, caps.runner) {
            (Self::Exactly(Dtype::F32), _) => Ok(Dtype::F32),
            (Self::Exactly(Dtype::F16), Runner::Burn { f16: false }) => {
                refuse(Dtype::F16, "the burn backend computes in f32 here (burn-wgpu needs shader-f16)")
            }
            (Self::Exactly(Dtype::F16), _) => f16_fits(Dtype::F16),
            (Self::Exactly(Dtype::Q8), Runner::Cpu) => Ok(Dtype::Q8),
            // No int8 kernels on the GPU: the codes are widened to f16 on upload.
            (Self::Exactly(Dtype::Q8), Runner::Gpu) => f16_fits(Dtype::Q8),
            (Self::Exactly(Dtype::Q8), Runner::Burn { .. }) => {
                refuse(Dtype::Q8, "the burn backends have no int8 weights")
            }
            (Self::Auto, runner) => {
                let auto = match (caps.stored, runner) {
                    (Some(Dtype::Q8), Runner::Cpu) => Dtype::Q8,
                    (Some(Dtype::Q8 | Dtype::F16), Runner::Gpu) | (Some(Dtype::F16), Runner::Cpu) => Dtype::F16,
                    (None, Runner::Gpu) if caps.stored_half => Dtype::F16,
                    (_, Runner::Burn { f16: true }) if caps.stored_half => Dtype::F16,
                    _ => Dtype::F32,
                };
                Ok(if auto == Dtype::F16 && caps.overflows_f16.is_some() { Dtype::F32 } else { auto })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(runner: Runner, stored: Option<Dtype>, stored_half: bool) -> Capabilities {
        Capabilities { runner, stored, stored_half, overflows_f16: None }
    }

    fn auto(c: &Capabilities) -> Dtype {
        DtypeChoice::Auto.resolve(c).unwrap()
    }

    #[test]
    fn names_parse_in_both_spellings() {
        for (name, want) in
            [("f32", Dtype::F32), ("fp32", Dtype::F32), ("f16", Dtype::F16), ("fp16", Dtype::F16), ("q8", Dtype::Q8)]
        {
            assert_eq!(DtypeChoice::parse(name).unwrap(), DtypeChoice::Exactly(want));
        }
        assert_eq!(DtypeChoice::parse("auto").unwrap(), DtypeChoice::Auto);
        let err = DtypeChoice::parse("int4").unwrap_err();
        assert!(err.contains("`int4`") && err.contains("q8"), "{err}");
    }

    #[test]
    fn auto_keeps_half_checkpoints_in_f16_on_the_gpu_only() {
        assert_eq!(auto(&caps(Runner::Gpu, None, true)), Dtype::F16);
        assert_eq!(auto(&caps(Runner::Cpu, None, true)), Dtype::F32);
        assert_eq!(auto(&caps(Runner::Gpu, None, false)), Dtype::F32);
        assert_eq!(auto(&caps(Runner::Burn { f16: false }, None, true)), Dtype::F32);
        let overflow = Capabilities { overflows_f16: Some("w".into()), ..caps(Runner::Gpu, None, true) };
        assert_eq!(auto(&overflow), Dtype::F32);
    }

    #[test]
    fn auto_runs_a_quantized_checkpoint_in_its_stored_dtype() {
        assert_eq!(auto(&caps(Runner::Cpu, Some(Dtype::Q8), false)), Dtype::Q8);
        assert_eq!(auto(&caps(Runner::Gpu, Some(Dtype::Q8), false)), Dtype::F16);
        assert_eq!(auto(&caps(Runner::Cpu, Some(Dtype::F16), false)), Dtype::F16);
        assert_eq!(auto(&caps(Runner::Burn { f16: false }, Some(Dtype::Q8), false)), Dtype::F32);
    }

    #[test]
    fn explicit_choices_run_or_say_why_not() {
        let q8 = DtypeChoice::Exactly(Dtype::Q8);
        let f16 = DtypeChoice::Exactly(Dtype::F16);
        assert_eq!(q8.resolve(&caps(Runner::Cpu, None, false)).unwrap(), Dtype::Q8);
        assert_eq!(q8.resolve(&caps(Runner::Gpu, None, false)).unwrap(), Dtype::F16);
        assert!(q8.resolve(&caps(Runner::Burn { f16: true }, None, false)).unwrap_err().to_string().contains("int8"));
        assert_eq!(f16.resolve(&caps(Runner::Cpu, None, false)).unwrap(), Dtype::F16);
        assert!(f16
            .resolve(&caps(Runner::Burn { f16: false }, None, true))
            .unwrap_err()
            .to_string()
            .contains("shader-f16"));
        let overflow = Capabilities { overflows_f16: Some("b.weight".into()), ..caps(Runner::Cpu, None, false) };
        assert!(f16.resolve(&overflow).unwrap_err().to_string().contains("`b.weight`"));
        assert_eq!(
            DtypeChoice::Exactly(Dtype::F32).resolve(&caps(Runner::Gpu, Some(Dtype::Q8), true)).unwrap(),
            Dtype::F32
        );
    }
}
