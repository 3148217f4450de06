//! `prefscope quantize`: a checkpoint rewritten with its matrices in int8 or f16, in a file
//! every loader reads (docs/formats.md "Quantized checkpoints").
//!
//! - q8: each matrix as `<name>` in I8, symmetric per output channel, with `<name>_scale` in
//!   F32 shaped to broadcast against it (the tensor's rank, 1 on every axis but the output
//!   one): `[out, 1]` for torch's `[out, in]` weights, `[out, 1, 1, 1]` for the patch
//!   convolution, `[1, out]` for open_clip's `[in, out]` projections, `[vocab, 1]` for the token
//!   table (one scale per row).
//! - f16: each matrix as F16.
//!
//! Position and class embeddings, biases, LayerNorm parameters and the logit scale stay as
//! stored; so do non-float tensors. `__metadata__` records `{"prefscope.dtype": "q8"}` (or
//! `"f16"`), which `auto` then runs in.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::Dtype as Stored;

use crate::config::{ClipConfig, Layout};
use crate::dtype::Dtype;
use crate::error::ClipError;
use crate::qgemm;
use crate::weights::{Checkpoint, Source, DTYPE_KEY, SCALE_SUFFIX};

/// The output axis of a matrix the quantized files store in int8 or f16, or `None` for a
/// tensor kept as it is.
pub fn matrix_axis(layout: Layout, name: &str, shape: &[usize]) -> Option<usize> {
    if shape.len() < 2 || name.contains("position") || name.ends_with(SCALE_SUFFIX) {
        return None;
    }
    // open_clip stores its two projections `[in, out]`, already in `x · W` orientation.
    let transposed = layout == Layout::OpenClip && matches!(name, "text_projection" | "visual.proj");
    Some(if transposed { 1 } else { 0 })
}

/// What [`quantize`] did.
#[derive(Debug)]
pub struct Summary {
    pub bytes: Vec<u8>,
    /// Tensors written in the new dtype.
    pub converted: usize,
    /// Tensors kept as stored.
    pub kept: usize,
}

/// The checkpoint `ckpt` of a model with `config`, rewritten in `dtype` (q8 or f16).
pub async fn quantize<S: Source>(
    config: &ClipConfig,
    ckpt: &Checkpoint<S>,
    dtype: Dtype,
) -> Result<Summary, ClipError> {
    if dtype == Dtype::F32 {
        return Err(ClipError::Input("quantize writes q8 or f16 (f32 is what the checkpoint already holds)".into()));
    }
    let mut tensors: Vec<(String, Stored, Vec<usize>, Vec<u8>)> = Vec::new();
    let (mut converted, mut kept) = (0, 0);
    for name in ckpt.names() {
        let (stored, shape, raw) = ckpt.raw(name).await?;
        // Scales travel with their int8 tensor, re-derived below.
        if name.ends_with(SCALE_SUFFIX) && ckpt.names().contains(&name.trim_end_matches(SCALE_SUFFIX)) {
            continue;
        }
        let is_float = matches!(stored, Stored::F32 | Stored::F16 | Stored::BF16 | Stored::I8);
        match matrix_axis(config.layout, name, &shape).filter(|_| is_float) {
            Some(axis) => {
                let values = ckpt.read(name, &shape).await?;
                converted += 1;
                match dtype {
                    Dtype::Q8 => {
                        let (codes, scales, scale_shape) = per_channel(&values, &shape, axis);
                        tensors.push((name.to_string(), Stored::I8, shape, codes.iter().map(|&c| c as u8).collect()));
                        let scale_bytes = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                        tensors.push((format!("{name}{SCALE_SUFFIX}"), Stored::F32, scale_shape, scale_bytes));
                    }
                    _ => {
                        let bytes = values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
                        tensors.push((name.to_string(), Stored::F16, shape, bytes));
                    }
                }
            }
            None => {
                kept += 1;
                tensors.push((name.to_string(), stored, shape, raw.into_owned()));
            }
        }
    }
    let views = tensors
        .iter()
        .map(|(name, stored, shape, bytes)| {
            TensorView::new(*stored, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| ClipError::Input(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([(DTYPE_KEY.to_string(), dtype.name().to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| ClipError::Input(format!("writing safetensors: {e}")))?;
    Ok(Summary { bytes, converted, kept })
}

/// Symmetric int8 codes of `values` (of `shape`) per index along `axis`, the scales, and the
/// scales' broadcasting shape. The same rule as the CPU towers' quantization at load
/// (`max|w| / 127`, ties to even), so a file read back gives the same integers.
fn per_channel(values: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>, Vec<usize>) {
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let channel = |i: usize| (i / inner) % channels;
    let mut scales = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        let s = &mut scales[channel(i)];
        *s = s.max(v.abs());
    }
    scales.iter_mut().for_each(|s| *s /= 127.0);
    let codes = values.iter().enumerate().map(|(i, &v)| qgemm::code(v, scales[channel(i)])).collect();
    let scale_shape = (0..shape.len()).map(|a| if a == axis { channels } else { 1 }).collect();
    (codes, scales, scale_shape)
}
