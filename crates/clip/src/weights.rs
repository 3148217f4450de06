//! Weights from safetensors bytes (the browser has no paths) into the towers, for both
//! layouts: transformers' names, and open_clip's with its stacked q/k/v and transposed
//! projections. Every tensor is checked against the shape the config implies and for finite
//! values, then put on the device in the compute type (`precision.rs`): matrices and
//! embeddings in f32 or f16, LayerNorm parameters always in f32.

use burn::module::Param;
use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::config::{ClipConfig, Layout, Tower};
use crate::error::ClipError;
use crate::model::{Attention, Clip, EncoderLayer, LayerNorm, Linear, TextTower, VisionTower};
use crate::precision::element_bytes;

/// A parsed safetensors file.
pub struct Checkpoint<'a> {
    file: String,
    tensors: SafeTensors<'a>,
}

impl<'a> Checkpoint<'a> {
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self, ClipError> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| ClipError::Checkpoint {
            file: file.to_string(),
            detail: match e {
                safetensors::SafeTensorError::HeaderTooSmall => "shorter than its 8-byte header length".into(),
                other => other.to_string(),
            },
        })?;
        Ok(Checkpoint { file: file.to_string(), tensors })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn names(&self) -> Vec<&str> {
        self.tensors.names()
    }

    /// Every tensor is stored as F16 or BF16 (a half-precision checkpoint).
    pub fn stored_half(&self) -> bool {
        self.tensors.tensors().iter().all(|(_, view)| matches!(view.dtype(), Dtype::F16 | Dtype::BF16))
    }

    /// The first tensor with a finite value past f16's largest (65504), which f16 compute
    /// would turn into infinity. F16 tensors fit by construction.
    pub fn f16_overflow(&self) -> Option<String> {
        let limit = half::f16::MAX.to_f32();
        let too_big = |v: f32| v.is_finite() && v.abs() > limit;
        let mut names = self.tensors.names();
        names.sort_unstable();
        names
            .into_iter()
            .find(|name| {
                let Ok(view) = self.tensors.tensor(name) else { return false };
                let bytes = view.data();
                match view.dtype() {
                    Dtype::F32 => bytes.chunks_exact(4).any(|b| too_big(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
                    Dtype::BF16 => {
                        bytes.chunks_exact(2).any(|b| too_big(half::bf16::from_le_bytes([b[0], b[1]]).to_f32()))
                    }
                    _ => false,
                }
            })
            .map(str::to_string)
    }

    /// The tensor `name` as f32, after checking it has exactly `shape` and finite values.
    pub fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ClipError> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| ClipError::MissingTensor { file: self.file.clone(), tensor: name.to_string() })?;
        if view.shape() != shape {
            return Err(ClipError::Shape {
                file: self.file.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let bytes = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(ClipError::DType {
                    file: self.file.clone(),
                    tensor: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ClipError::NonFinite { file: self.file.clone(), tensor: name.to_string(), index });
        }
        Ok(values)
    }
}

/// `[rows, cols]` row-major → `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Builds burn parameters from a checkpoint on one device.
struct Loader<'c, 'a> {
    ckpt: &'c Checkpoint<'a>,
    device: &'c Device,
    /// The device's largest binding in bytes: a tensor past it is refused with its name.
    max_bytes: u64,
    /// The compute type of matrices and embeddings.
    dtype: FloatDType,
}

impl Loader<'_, '_> {
    /// A parameter in the compute type.
    fn param<const D: usize>(
        &self,
        name: &str,
        values: Vec<f32>,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>, ClipError> {
        self.param_as(name, values, shape, self.dtype)
    }

    fn param_as<const D: usize>(
        &self,
        name: &str,
        values: Vec<f32>,
        shape: [usize; D],
        dtype: FloatDType,
    ) -> Result<Param<Tensor<D>>, ClipError> {
        let bytes = values.len() as u64 * element_bytes(dtype);
        if bytes > self.max_bytes {
            return Err(ClipError::Input(format!(
                "{}: tensor `{name}` needs {bytes} bytes on the device, past the adapter's largest buffer binding ({} bytes)",
                self.ckpt.file, self.max_bytes
            )));
        }
        let data = TensorData::new(values, shape);
        Ok(Param::from_tensor(Tensor::from_data(data, (self.device, DType::from(dtype)))))
    }

    fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<D>>, ClipError> {
        let values = self.ckpt.read(name, &shape)?;
        self.param(name, values, shape)
    }

    /// A `[out, in]` torch weight as burn's `[in, out]`.
    fn weight_t(&self, name: &str, out_dim: usize, in_dim: usize) -> Result<Param<Tensor<2>>, ClipError> {
        let w = self.ckpt.read(name, &[out_dim, in_dim])?;
        self.param(name, transpose(&w, out_dim, in_dim), [in_dim, out_dim])
    }

    fn linear(&self, prefix: &str, out_dim: usize, in_dim: usize) -> Result<Linear, ClipError> {
        Ok(Linear {
            weight: self.weight_t(&format!("{prefix}.weight"), out_dim, in_dim)?,
            bias: Some(self.tensor(&format!("{prefix}.bias"), [out_dim])?),
        })
    }

    /// LayerNorm parameters stay f32: the statistics are computed in f32 in any precision.
    fn layer_norm(&self, prefix: &str, width: usize, eps: f64) -> Result<LayerNorm, ClipError> {
        let f32_param = |name: String| {
            let values = self.ckpt.read(&name, &[width])?;
            self.param_as(&name, values, [width], FloatDType::F32)
        };
        Ok(LayerNorm {
            gamma: f32_param(format!("{prefix}.weight"))?,
            beta: f32_param(format!("{prefix}.bias"))?,
            epsilon: eps,
        })
    }

    /// transformers: separate q/k/v projections, fused here into one `[w, 3w]` matrix.
    fn hf_attention(&self, prefix: &str, tower: &Tower) -> Result<Attention, ClipError> {
        let w = tower.width;
        let mut weight = Vec::with_capacity(3 * w * w);
        let mut bias = Vec::with_capacity(3 * w);
        for part in ["q_proj", "k_proj", "v_proj"] {
            weight.extend(self.ckpt.read(&format!("{prefix}.{part}.weight"), &[w, w])?);
            bias.extend(self.ckpt.read(&format!("{prefix}.{part}.bias"), &[w])?);
        }
        let name = format!("{prefix}.qkv");
        Ok(Attention {
            qkv: Linear {
                weight: self.param(&name, transpose(&weight, 3 * w, w), [w, 3 * w])?,
                bias: Some(self.param(&name, bias, [3 * w])?),
            },
            out: self.linear(&format!("{prefix}.out_proj"), w, w)?,
            heads: tower.heads,
        })
    }

    /// open_clip (torch.nn.MultiheadAttention): q, k, v already stacked in `in_proj`.
    fn open_clip_attention(&self, prefix: &str, tower: &Tower) -> Result<Attention, ClipError> {
        let w = tower.width;
        Ok(Attention {
            qkv: Linear {
                weight: self.weight_t(&format!("{prefix}.in_proj_weight"), 3 * w, w)?,
                bias: Some(self.tensor(&format!("{prefix}.in_proj_bias"), [3 * w])?),
            },
            out: self.linear(&format!("{prefix}.out_proj"), w, w)?,
            heads: tower.heads,
        })
    }

    fn layers(&self, layout: Layout, prefix: &str, tower: &Tower) -> Result<Vec<EncoderLayer>, ClipError> {
        let (w, m, eps) = (tower.width, tower.mlp, tower.eps);
        (0..tower.layers)
            .map(|i| match layout {
                Layout::HuggingFace => {
                    let p = format!("{prefix}.encoder.layers.{i}");
                    Ok(EncoderLayer {
                        ln1: self.layer_norm(&format!("{p}.layer_norm1"), w, eps)?,
                        attn: self.hf_attention(&format!("{p}.self_attn"), tower)?,
                        ln2: self.layer_norm(&format!("{p}.layer_norm2"), w, eps)?,
                        fc1: self.linear(&format!("{p}.mlp.fc1"), m, w)?,
                        fc2: self.linear(&format!("{p}.mlp.fc2"), w, m)?,
                        activation: tower.activation,
                    })
                }
                Layout::OpenClip => {
                    let p = format!("{prefix}transformer.resblocks.{i}");
                    Ok(EncoderLayer {
                        ln1: self.layer_norm(&format!("{p}.ln_1"), w, eps)?,
                        attn: self.open_clip_attention(&format!("{p}.attn"), tower)?,
                        ln2: self.layer_norm(&format!("{p}.ln_2"), w, eps)?,
                        fc1: self.linear(&format!("{p}.mlp.c_fc"), m, w)?,
                        fc2: self.linear(&format!("{p}.mlp.c_proj"), w, m)?,
                        activation: tower.activation,
                    })
                }
            })
            .collect()
    }

    fn text(&self, config: &ClipConfig) -> Result<TextTower, ClipError> {
        let t = &config.text;
        let (w, p) = (t.tower.width, config.projection);
        Ok(match config.layout {
            Layout::HuggingFace => TextTower {
                token_embedding: self.tensor("text_model.embeddings.token_embedding.weight", [t.vocab, w])?,
                position_embedding: self.tensor("text_model.embeddings.position_embedding.weight", [t.context, w])?,
                layers: self.layers(Layout::HuggingFace, "text_model", &t.tower)?,
                final_layer_norm: self.layer_norm("text_model.final_layer_norm", w, t.tower.eps)?,
                projection: self.weight_t("text_projection.weight", p, w)?,
            },
            Layout::OpenClip => TextTower {
                token_embedding: self.tensor("token_embedding.weight", [t.vocab, w])?,
                position_embedding: self.tensor("positional_embedding", [t.context, w])?,
                layers: self.layers(Layout::OpenClip, "", &t.tower)?,
                final_layer_norm: self.layer_norm("ln_final", w, t.tower.eps)?,
                // Stored [width, embed]: already burn's orientation.
                projection: self.tensor("text_projection", [w, p])?,
            },
        })
    }

    fn vision(&self, config: &ClipConfig) -> Result<VisionTower, ClipError> {
        let v = &config.vision;
        let (w, p, ps) = (v.tower.width, config.projection, v.patch_size);
        let tokens = v.patches() + 1;
        let (conv, class, position, pre, post) = match config.layout {
            Layout::HuggingFace => (
                "vision_model.embeddings.patch_embedding.weight",
                "vision_model.embeddings.class_embedding",
                "vision_model.embeddings.position_embedding.weight",
                "vision_model.pre_layrnorm",
                "vision_model.post_layernorm",
            ),
            Layout::OpenClip => (
                "visual.conv1.weight",
                "visual.class_embedding",
                "visual.positional_embedding",
                "visual.ln_pre",
                "visual.ln_post",
            ),
        };
        // The convolution [width, 3, p, p] is a [width, 3·p²] matrix over channel-major patches.
        let conv_w = self.ckpt.read(conv, &[w, 3, ps, ps])?;
        let patch_embedding = self.param(conv, transpose(&conv_w, w, 3 * ps * ps), [3 * ps * ps, w])?;
        let (layers, projection) = match config.layout {
            Layout::HuggingFace => (
                self.layers(Layout::HuggingFace, "vision_model", &v.tower)?,
                self.weight_t("visual_projection.weight", p, w)?,
            ),
            Layout::OpenClip => {
                (self.layers(Layout::OpenClip, "visual.", &v.tower)?, self.tensor("visual.proj", [w, p])?)
            }
        };
        Ok(VisionTower {
            patch_embedding,
            class_embedding: self.tensor(class, [w])?,
            position_embedding: self.tensor(position, [tokens, w])?,
            pre_layernorm: self.layer_norm(pre, w, v.tower.eps)?,
            layers,
            post_layernorm: self.layer_norm(post, w, v.tower.eps)?,
            projection,
            patch_size: ps,
        })
    }
}

impl Clip {
    /// Builds the model described by `config` from a checkpoint, on `device`, computing in
    /// `dtype`. `max_bytes` is the device's largest buffer binding (`u64::MAX` on the CPU).
    pub fn load(
        config: &ClipConfig,
        ckpt: &Checkpoint,
        device: &Device,
        max_bytes: u64,
        dtype: FloatDType,
    ) -> Result<Self, ClipError> {
        let loader = Loader { ckpt, device, max_bytes, dtype };
        let scale = ckpt.read("logit_scale", &[])?[0];
        Ok(Clip {
            text: loader.text(config)?,
            vision: loader.vision(config)?,
            logit_scale: scale,
            dtype,
            config: config.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::safetensors_f32;

    #[test]
    fn the_f16_range_scan_names_the_tensor_that_would_overflow() {
        let fits = safetensors_f32(&[("a".into(), vec![2], vec![1.0, -65504.0])]).expect("serialize");
        let too_big =
            safetensors_f32(&[("a".into(), vec![1], vec![1.0]), ("b.weight".into(), vec![2], vec![3.0, 1.0e6])])
                .expect("serialize");
        assert_eq!(Checkpoint::parse("fits", &fits).expect("parse").f16_overflow(), None);
        let ckpt = Checkpoint::parse("too_big", &too_big).expect("parse");
        assert_eq!(ckpt.f16_overflow().as_deref(), Some("b.weight"));
        assert!(!ckpt.stored_half());
    }
}
