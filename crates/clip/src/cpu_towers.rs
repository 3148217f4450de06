//! The CLIP towers on the CPU: the GPU towers' program (`device_towers.rs`) step for step over
//! the fused CPU kernels of `cpu_kernels.rs`, weights and activations in f32. This is the
//! page's path without WebGPU and the command line's `--device cpu`; docs/ARCHITECTURE.md says
//! why it replaced burn-flex there. Embeddings come back unnormalised (the encoder normalises).

use prefscope_core::transformer::{embed_tokens, im2col, vision_tokens, Epilogue};

use crate::config::{Activation, ClipConfig, Tower};
use crate::cpu_kernels::{attention, layer_norm, linear};
use crate::error::ClipError;
use crate::weights::{Checkpoint, LayerParts, Loader, NormParts, Source, Target, TextParts, VisionParts};

/// Every tensor stays as read: f32, `x · W` orientation.
struct HostTarget;

impl Target for HostTarget {
    type Matrix = Vec<f32>;
    type Vector = Vec<f32>;

    fn matrix(&self, _: &str, values: Vec<f32>, _: [usize; 2]) -> Result<Vec<f32>, ClipError> {
        Ok(values)
    }

    fn added(&self, _: &str, values: Vec<f32>, _: [usize; 2]) -> Result<Vec<f32>, ClipError> {
        Ok(values)
    }

    fn vector(&self, _: &str, values: Vec<f32>) -> Result<Vec<f32>, ClipError> {
        Ok(values)
    }

    fn norm(&self, _: &str, values: Vec<f32>) -> Result<Vec<f32>, ClipError> {
        Ok(values)
    }
}

/// Activations of one batch of `rows = batch·tokens` token rows.
struct Scratch {
    /// The residual stream.
    x: Vec<f32>,
    /// LayerNorm outputs.
    h: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    mlp: Vec<f32>,
    /// One head's attention scores.
    scores: Vec<f32>,
}

impl Scratch {
    fn new(tower: &Tower, rows: usize, tokens: usize) -> Self {
        let w = tower.width;
        Scratch {
            x: vec![0.0; rows * w],
            h: vec![0.0; rows * w],
            qkv: vec![0.0; rows * 3 * w],
            context: vec![0.0; rows * w],
            mlp: vec![0.0; rows * tower.mlp],
            scores: vec![0.0; tokens * tokens],
        }
    }
}

pub struct CpuClip {
    config: ClipConfig,
    text: TextParts<Vec<f32>, Vec<f32>>,
    vision: VisionParts<Vec<f32>, Vec<f32>>,
}

impl CpuClip {
    pub async fn load<S: Source>(config: &ClipConfig, ckpt: &Checkpoint<S>) -> Result<Self, ClipError> {
        let loader = Loader { ckpt, target: &HostTarget };
        Ok(CpuClip { config: config.clone(), text: loader.text(config).await?, vision: loader.vision(config).await? })
    }

    /// The encoder layers over the residual stream `s.x` of `batch` sequences of `tokens`.
    fn layers(
        layers: &[LayerParts<Vec<f32>, Vec<f32>>],
        tower: &Tower,
        s: &mut Scratch,
        batch: usize,
        tokens: usize,
        causal: bool,
    ) {
        let (w, m, rows) = (tower.width, tower.mlp, batch * tokens);
        let eps = tower.eps as f32;
        let act = match tower.activation {
            Activation::QuickGelu => Epilogue::QuickGelu,
            Activation::Gelu => Epilogue::Gelu,
        };
        let norm =
            |x: &[f32], n: &NormParts<Vec<f32>>, out: &mut [f32]| layer_norm(x, w, None, &n.gamma, &n.beta, eps, out);
        for l in layers {
            norm(&s.x, &l.ln1, &mut s.h);
            linear(&s.h, rows, w, &l.qkv.weight, 3 * w, l.qkv.bias.as_deref(), Epilogue::None, &mut s.qkv);
            attention(&s.qkv, batch, tokens, tower.heads, w / tower.heads, causal, &mut s.scores, &mut s.context);
            linear(&s.context, rows, w, &l.out.weight, w, l.out.bias.as_deref(), Epilogue::Residual, &mut s.x);
            norm(&s.x, &l.ln2, &mut s.h);
            linear(&s.h, rows, w, &l.fc1.weight, m, l.fc1.bias.as_deref(), act, &mut s.mlp);
            linear(&s.mlp, rows, m, &l.fc2.weight, w, l.fc2.bias.as_deref(), Epilogue::Residual, &mut s.x);
        }
    }

    /// The final LayerNorm of the residual rows `pooled`, then the projection.
    fn project(
        &self,
        s: &Scratch,
        tower: &Tower,
        pooled: &[u32],
        norm: &NormParts<Vec<f32>>,
        projection: &[f32],
    ) -> Vec<f32> {
        let (w, p, batch) = (tower.width, self.config.projection, pooled.len());
        let mut picked = vec![0.0; batch * w];
        layer_norm(&s.x, w, Some(pooled), &norm.gamma, &norm.beta, tower.eps as f32, &mut picked);
        let mut out = vec![0.0; batch * p];
        linear(&picked, batch, w, projection, p, None, Epilogue::None, &mut out);
        out
    }

    /// Text embeddings: `ids` holds `tokens` ids per text (checked against the vocabulary by
    /// the caller), `pool[b]` the position pooled for text `b`.
    pub fn embed_text(&self, ids: &[u32], tokens: usize, pool: &[usize]) -> Vec<f32> {
        let tower = &self.config.text.tower;
        let t = &self.text;
        let batch = pool.len();
        let mut s = Scratch::new(tower, batch * tokens, tokens);
        s.x = embed_tokens(&t.token_embedding, &t.position_embedding, tower.width, ids, tokens);
        Self::layers(&t.layers, tower, &mut s, batch, tokens, true);
        let pooled: Vec<u32> = pool.iter().enumerate().map(|(b, &p)| (b * tokens + p) as u32).collect();
        self.project(&s, tower, &pooled, &t.final_norm, &t.projection)
    }

    /// Image embeddings of preprocessed `pixels: [batch, 3, size, size]`.
    pub fn embed_pixels(&self, pixels: &[f32], batch: usize) -> Vec<f32> {
        let v = &self.config.vision;
        let (tower, size, patch) = (&v.tower, v.image_size, v.patch_size);
        let (tokens, w) = (v.patches() + 1, tower.width);
        let vt = &self.vision;
        let cols = im2col(pixels, batch, size, patch);
        let mut patches = vec![0.0; batch * v.patches() * w];
        linear(
            &cols,
            batch * v.patches(),
            3 * patch * patch,
            &vt.patch_embedding,
            w,
            None,
            Epilogue::None,
            &mut patches,
        );
        let mut s = Scratch::new(tower, batch * tokens, tokens);
        let embedded = vision_tokens(&patches, &vt.class_embedding, &vt.position_embedding, batch, w);
        let pre = &vt.pre_norm;
        layer_norm(&embedded, w, None, &pre.gamma, &pre.beta, tower.eps as f32, &mut s.x);
        Self::layers(&vt.layers, tower, &mut s, batch, tokens, false);
        let pooled: Vec<u32> = (0..batch).map(|b| (b * tokens) as u32).collect();
        self.project(&s, tower, &pooled, &vt.post_norm, &vt.projection)
    }
}
