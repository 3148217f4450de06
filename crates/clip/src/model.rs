//! The CLIP text and vision towers as burn modules (docs/FORMULAS.md "CLIP towers"): what the demo
//! model is trained with (autodiff) and, natively, the benchmark's comparison rows on burn-flex
//! and (with the `burn-wgpu` feature) burn-wgpu. The towers users run are `cpu_towers.rs` and
//! `device_towers.rs`.
//! Weights are laid out for burn's `x · W` convention (`[in, out]`) when they are loaded, and
//! q, k and v are fused into one projection, so a layer is four matrix products.
//!
//! The residual stream runs in the weights' compute type; LayerNorm and the attention softmax
//! always compute in f32, and the towers return f32.

use burn::module::{Module, Param};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::module::{embedding, layer_norm, linear};
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};

use crate::config::{Activation, ClipConfig, Tower};
use crate::dtype::Dtype;
use crate::error::ClipError;
use crate::weights::{
    ready, Checkpoint, LayerParts, LinearParts, Loader, NormParts, Source, Stored, Target, TextParts, VisionParts,
};

type P2 = Param<Tensor<2>>;
type P1 = Param<Tensor<1>>;

/// `x · W + b` with `W` stored `[in, out]`.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    fn from_parts(parts: LinearParts<P2, P1>) -> Self {
        Linear { weight: parts.weight, bias: parts.bias }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

#[derive(Module, Debug)]
pub struct LayerNorm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub epsilon: f64,
}

impl LayerNorm {
    fn from_parts(parts: NormParts<P1>) -> Self {
        LayerNorm { gamma: parts.gamma, beta: parts.beta, epsilon: parts.eps }
    }

    /// Normalises in f32 and returns `x`'s type.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        layer_norm(x.cast(FloatDType::F32), self.gamma.val(), Some(self.beta.val()), self.epsilon).cast(dtype)
    }
}

/// Multi-head self-attention with q, k, v fused: `qkv` maps `width → 3·width`.
#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub out: Linear,
    pub heads: usize,
}

impl Attention {
    /// `x`: `[batch, tokens, width]`; `mask`: additive `[1, 1, tokens, tokens]` (causal text).
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>) -> Tensor<3> {
        let [batch, tokens, width] = x.dims();
        let head_dim = width / self.heads;
        // [B, L, 3, H, D] → [3, B, H, L, D]
        let qkv = self.qkv.forward(x).reshape([batch, tokens, 3, self.heads, head_dim]).permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).reshape([batch, self.heads, tokens, head_dim]);
        let (q, k, v) = (part(0), part(1), part(2));
        let dtype = v.dtype();
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar((head_dim as f64).powf(-0.5));
        // The mask and softmax in f32, whatever the compute type.
        let mut scores = scores.cast(FloatDType::F32);
        if let Some(mask) = mask {
            scores = scores + mask.clone();
        }
        let context = softmax(scores, 3).cast(dtype).matmul(v);
        self.out.forward(context.swap_dims(1, 2).reshape([batch, tokens, width]))
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub ln1: LayerNorm,
    pub attn: Attention,
    pub ln2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl EncoderLayer {
    fn from_parts(parts: LayerParts<P2, P1>, tower: &Tower) -> Self {
        EncoderLayer {
            ln1: LayerNorm::from_parts(parts.ln1),
            attn: Attention {
                qkv: Linear::from_parts(parts.qkv),
                out: Linear::from_parts(parts.out),
                heads: tower.heads,
            },
            ln2: LayerNorm::from_parts(parts.ln2),
            fc1: Linear::from_parts(parts.fc1),
            fc2: Linear::from_parts(parts.fc2),
            activation: tower.activation,
        }
    }

    /// Pre-LN: `x += attn(LN1(x))`, then `x += fc2(act(fc1(LN2(x))))`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<4>>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln1.forward(x), mask);
        let h = self.fc1.forward(self.ln2.forward(x.clone()));
        let h = match self.activation {
            Activation::QuickGelu => h.clone() * sigmoid(h.mul_scalar(1.702)),
            Activation::Gelu => gelu(h),
        };
        x + self.fc2.forward(h)
    }
}

#[derive(Module, Debug)]
pub struct TextTower {
    /// `[vocab, width]`
    pub token_embedding: Param<Tensor<2>>,
    /// `[context, width]`
    pub position_embedding: Param<Tensor<2>>,
    pub layers: Vec<EncoderLayer>,
    pub final_layer_norm: LayerNorm,
    /// `[width, projection]`, no bias.
    pub projection: Param<Tensor<2>>,
}

impl TextTower {
    pub(crate) fn from_parts(parts: TextParts<P2, P1>, tower: &Tower) -> Self {
        TextTower {
            token_embedding: parts.token_embedding,
            position_embedding: parts.position_embedding,
            layers: parts.layers.into_iter().map(|l| EncoderLayer::from_parts(l, tower)).collect(),
            final_layer_norm: LayerNorm::from_parts(parts.final_norm),
            projection: parts.projection,
        }
    }

    /// `ids`: `[batch, tokens]` (already cut after the last pooled position: with the causal
    /// mask, later tokens cannot change it); `pool[b]` is the position pooled for row `b`.
    /// Returns the projected, not yet normalised, embeddings `[batch, projection]`.
    pub fn forward(&self, ids: Tensor<2, Int>, pool: &[usize]) -> Tensor<2> {
        let [batch, tokens] = ids.dims();
        let device = ids.device();
        let width = self.position_embedding.dims()[1];
        let positions = self.position_embedding.val().narrow(0, 0, tokens).unsqueeze::<3>();
        let mut x = embedding(self.token_embedding.val(), ids) + positions;
        let mask = causal_mask(tokens, &device);
        for layer in &self.layers {
            x = layer.forward(x, Some(&mask));
        }
        let x = self.final_layer_norm.forward(x).reshape([batch * tokens, width]);
        let rows: Vec<i64> = pool.iter().enumerate().map(|(b, &p)| (b * tokens + p) as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
        x.select(0, rows).matmul(self.projection.val()).cast(FloatDType::F32)
    }
}

/// Additive causal mask `[1, 1, n, n]`: 0 on and below the diagonal, the lowest f32 above
/// (what transformers adds; the softmax gives those positions exactly zero weight).
fn causal_mask(n: usize, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..n * n).map(|i| if i % n > i / n { f32::MIN } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(values, [1, 1, n, n]), device)
}

#[derive(Module, Debug)]
pub struct VisionTower {
    /// The patch convolution (stride = patch, no bias) as a matrix `[3·patch², width]` over
    /// patches flattened channel-major, as the convolution's weight is.
    pub patch_embedding: Param<Tensor<2>>,
    pub class_embedding: Param<Tensor<1>>,
    /// `[patches + 1, width]`
    pub position_embedding: Param<Tensor<2>>,
    pub pre_layernorm: LayerNorm,
    pub layers: Vec<EncoderLayer>,
    pub post_layernorm: LayerNorm,
    /// `[width, projection]`, no bias.
    pub projection: Param<Tensor<2>>,
    pub patch_size: usize,
}

impl VisionTower {
    pub(crate) fn from_parts(parts: VisionParts<P2, P1>, tower: &Tower, patch_size: usize) -> Self {
        VisionTower {
            patch_embedding: parts.patch_embedding,
            class_embedding: parts.class_embedding,
            position_embedding: parts.position_embedding,
            pre_layernorm: LayerNorm::from_parts(parts.pre_norm),
            layers: parts.layers.into_iter().map(|l| EncoderLayer::from_parts(l, tower)).collect(),
            post_layernorm: LayerNorm::from_parts(parts.post_norm),
            projection: parts.projection,
            patch_size,
        }
    }

    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, projection]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let [batch, channels, height, width_px] = pixels.dims();
        let p = self.patch_size;
        let (gh, gw) = (height / p, width_px / p);
        let width = self.class_embedding.dims()[0];
        let patches = pixels
            .cast(self.patch_embedding.val().dtype())
            .reshape([batch, channels, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([batch, gh * gw, channels * p * p])
            .matmul(self.patch_embedding.val().unsqueeze::<3>());
        let class = self.class_embedding.val().reshape([1, 1, width]).expand([batch, 1, width]);
        let x = Tensor::cat(vec![class, patches], 1) + self.position_embedding.val().unsqueeze::<3>();
        let mut x = self.pre_layernorm.forward(x);
        for layer in &self.layers {
            x = layer.forward(x, None);
        }
        let first = x.narrow(1, 0, 1).reshape([batch, width]);
        self.post_layernorm.forward(first).matmul(self.projection.val()).cast(FloatDType::F32)
    }
}

/// Both towers and the learned temperature.
#[derive(Module, Debug)]
pub struct Clip {
    pub text: TextTower,
    pub vision: VisionTower,
    /// The learned temperature as stored: a log (`exp` of it multiplies cosines).
    #[module(skip)]
    pub logit_scale: f32,
    /// The compute type of the matrices and the residual stream.
    #[module(skip)]
    pub dtype: FloatDType,
    #[module(skip)]
    pub config: ClipConfig,
}

/// burn parameters on one device.
struct BurnTarget<'d> {
    device: &'d Device,
    /// The compute type of matrices and embeddings.
    dtype: FloatDType,
}

impl BurnTarget<'_> {
    fn param<const D: usize>(&self, values: Vec<f32>, shape: [usize; D], dtype: FloatDType) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), (self.device, DType::from(dtype))))
    }
}

impl Target for BurnTarget<'_> {
    type Matrix = Param<Tensor<2>>;
    type Vector = Param<Tensor<1>>;

    fn matrix(&self, _: &str, w: Stored, out_major: bool) -> Result<Self::Matrix, ClipError> {
        let (values, shape) = w.into_kn(out_major);
        Ok(self.param(values, shape, self.dtype))
    }

    fn added(&self, _: &str, values: Vec<f32>, shape: [usize; 2]) -> Result<Self::Matrix, ClipError> {
        Ok(self.param(values, shape, self.dtype))
    }

    fn vector(&self, _: &str, values: Vec<f32>) -> Result<Self::Vector, ClipError> {
        let len = values.len();
        Ok(self.param(values, [len], self.dtype))
    }

    fn norm(&self, _: &str, values: Vec<f32>) -> Result<Self::Vector, ClipError> {
        let len = values.len();
        Ok(self.param(values, [len], FloatDType::F32))
    }
}

/// burn's float type for prefscope's.
pub fn burn_dtype(dtype: Dtype) -> FloatDType {
    match dtype {
        Dtype::F32 => FloatDType::F32,
        Dtype::F16 => FloatDType::F16,
        // The burn runners refuse q8 (`DtypeChoice::resolve`).
        Dtype::Q8 => FloatDType::F32,
    }
}

impl Clip {
    /// Builds the model described by `config` from a checkpoint, on `device` (burn-flex, or
    /// burn-wgpu for the native comparison), computing in `dtype`.
    pub fn load(
        config: &ClipConfig,
        ckpt: &Checkpoint<&[u8]>,
        device: &Device,
        dtype: FloatDType,
    ) -> Result<Self, ClipError> {
        ready(Self::load_from(config, ckpt, device, dtype))
    }

    /// [`Clip::load`] from any [`Source`] (the browser's streamed files).
    pub async fn load_from<S: Source>(
        config: &ClipConfig,
        ckpt: &Checkpoint<S>,
        device: &Device,
        dtype: FloatDType,
    ) -> Result<Self, ClipError> {
        let target = BurnTarget { device, dtype };
        let loader = Loader { ckpt, target: &target };
        let scale = ckpt.read("logit_scale", &[]).await?[0];
        Ok(Clip {
            text: TextTower::from_parts(loader.text(config).await?, &config.text.tower),
            vision: VisionTower::from_parts(
                loader.vision(config).await?,
                &config.vision.tower,
                config.vision.patch_size,
            ),
            logit_scale: scale,
            dtype,
            config: config.clone(),
        })
    }
}
