//! The CLIP towers on the CPU: the tower program (`tower.rs`) over the fused CPU kernels of
//! `cpu_kernels.rs`, matrices in f32, f16 or int8 (`cpu_matrix.rs`), activations in f32. This
//! is the page's path without WebGPU and the command line's `--device cpu`;
//! docs/ARCHITECTURE.md says why it replaced burn-flex there. Embeddings come back
//! unnormalised (the encoder normalises).

use prefscope_core::scoring::transformer::{im2col, vision_tokens, Epilogue};

use crate::config::ClipConfig;
use crate::cpu_kernels::{attention, layer_norm};
use crate::cpu_matrix::{self, Matrix};
use crate::dtype::Dtype;
use crate::error::ClipError;
use crate::tower::{self, Scratch, TowerOps};
use crate::weights::{Checkpoint, Loader, NormParts, Source, Stored, Target, TextParts, VisionParts};

/// Matrices and the token table in the chosen dtype (`x · W` orientation), everything added
/// to the activations in f32.
struct HostTarget {
    dtype: Dtype,
    /// Bytes of the matrices kept so far.
    bytes: std::cell::Cell<usize>,
}

impl HostTarget {
    fn keep(&self, m: Matrix) -> Result<Matrix, ClipError> {
        self.bytes.set(self.bytes.get() + m.bytes());
        Ok(m)
    }
}

impl Target for HostTarget {
    type Matrix = Matrix;
    type Vector = Vec<f32>;

    fn matrix(&self, _: &str, w: Stored, out_major: bool) -> Result<Matrix, ClipError> {
        self.keep(Matrix::stored(w, out_major, self.dtype))
    }

    fn table(&self, _: &str, values: Stored) -> Result<Matrix, ClipError> {
        self.keep(Matrix::stored_table(values, self.dtype))
    }

    fn added(&self, _: &str, values: Vec<f32>, _: [usize; 2]) -> Result<Matrix, ClipError> {
        self.keep(Matrix::F32(values))
    }

    fn vector(&self, _: &str, values: Vec<f32>) -> Result<Vec<f32>, ClipError> {
        Ok(values)
    }

    fn norm(&self, _: &str, values: Vec<f32>) -> Result<Vec<f32>, ClipError> {
        Ok(values)
    }
}

/// The tower operations on the CPU: each runs when called, over host vectors.
#[derive(Default)]
struct CpuOps {
    /// One head's attention scores.
    scores: Vec<f32>,
    /// The matrix products' buffers (quantized activations, widened f16 panels).
    products: cpu_matrix::Scratch,
}

/// The f32 values of an embedding that is added to the activations.
fn added(m: &Matrix) -> &[f32] {
    match m {
        Matrix::F32(v) => v,
        _ => unreachable!("embeddings added to the activations are kept in f32 (HostTarget::added)"),
    }
}

impl TowerOps for CpuOps {
    type Matrix = Matrix;
    type Vector = Vec<f32>;
    type Act = Vec<f32>;
    type Ids = Vec<u32>;

    fn ids(&mut self, ids: &[u32]) -> Result<Vec<u32>, ClipError> {
        Ok(ids.to_vec())
    }

    fn zeros(&mut self, _: &'static str, len: usize) -> Result<Vec<f32>, ClipError> {
        Ok(vec![0.0; len])
    }

    fn linear(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        k: usize,
        w: &Matrix,
        n: usize,
        bias: Option<&Vec<f32>>,
        epilogue: Epilogue,
        out: &mut Vec<f32>,
    ) -> Result<(), ClipError> {
        w.linear(x, rows, k, n, bias.map(Vec::as_slice), epilogue, out, &mut self.products);
        Ok(())
    }

    fn layer_norm(
        &mut self,
        x: &Vec<f32>,
        width: usize,
        rows: usize,
        gather: Option<&Vec<u32>>,
        norm: &NormParts<Vec<f32>>,
        out: &mut Vec<f32>,
    ) -> Result<(), ClipError> {
        let x = if gather.is_some() { x } else { &x[..rows * width] };
        layer_norm(x, width, gather.map(Vec::as_slice), &norm.gamma, &norm.beta, norm.eps as f32, out);
        Ok(())
    }

    fn attention(
        &mut self,
        qkv: &Vec<f32>,
        batch: usize,
        tokens: usize,
        heads: usize,
        head_dim: usize,
        causal: bool,
        out: &mut Vec<f32>,
    ) -> Result<(), ClipError> {
        self.scores.resize(tokens * tokens, 0.0);
        attention(qkv, batch, tokens, heads, head_dim, causal, &mut self.scores, out);
        Ok(())
    }

    fn embed_tokens(
        &mut self,
        ids: &Vec<u32>,
        table: &Matrix,
        positions: &Matrix,
        width: usize,
        tokens: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ClipError> {
        let positions = added(positions);
        out.resize(ids.len() * width, 0.0);
        for (i, (&id, row)) in ids.iter().zip(out.chunks_exact_mut(width)).enumerate() {
            table.row(id as usize, width, row);
            let t = i % tokens;
            row.iter_mut().zip(&positions[t * width..(t + 1) * width]).for_each(|(v, p)| *v += p);
        }
        Ok(())
    }

    fn im2col(&mut self, pixels: &Vec<f32>, batch: usize, size: usize, patch: usize) -> Result<Vec<f32>, ClipError> {
        Ok(im2col(pixels, batch, size, patch))
    }

    fn vision_tokens(
        &mut self,
        patches: &Vec<f32>,
        class: &Vec<f32>,
        positions: &Matrix,
        batch: usize,
        tokens: usize,
        width: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ClipError> {
        *out = vision_tokens(patches, class, &added(positions)[..tokens * width], batch, width);
        Ok(())
    }
}

pub struct CpuClip {
    config: ClipConfig,
    text: TextParts<Matrix, Vec<f32>>,
    vision: VisionParts<Matrix, Vec<f32>>,
    /// Bytes the matrices and embeddings take (vectors not counted).
    matrix_bytes: usize,
}

impl CpuClip {
    /// Loads both towers with their matrices kept in `dtype`.
    pub async fn load<S: Source>(config: &ClipConfig, ckpt: &Checkpoint<S>, dtype: Dtype) -> Result<Self, ClipError> {
        let target = HostTarget { dtype, bytes: Default::default() };
        let loader = Loader { ckpt, target: &target };
        let (text, vision) = (loader.text(config).await?, loader.vision(config).await?);
        Ok(CpuClip { config: config.clone(), text, vision, matrix_bytes: target.bytes.get() })
    }

    /// Bytes the towers' matrices and embeddings hold in memory.
    pub fn matrix_bytes(&self) -> usize {
        self.matrix_bytes
    }

    /// Text embeddings: `ids` holds `tokens` ids per text (checked against the vocabulary by
    /// the caller), `pool[b]` the position pooled for text `b`.
    pub fn embed_text(&self, ids: Vec<u32>, tokens: usize, pool: &[usize]) -> Result<Vec<f32>, ClipError> {
        let mut ops = CpuOps::default();
        let mut s = Scratch::new(&mut ops, &self.config.text.tower, pool.len() * tokens)?;
        tower::text(&mut ops, &self.text, &self.config, &mut s, &ids, tokens, pool)
    }

    /// Image embeddings of preprocessed `pixels: [batch, 3, size, size]`.
    pub fn embed_pixels(&self, pixels: Vec<f32>, batch: usize) -> Result<Vec<f32>, ClipError> {
        let mut ops = CpuOps::default();
        let tokens = self.config.vision.patches() + 1;
        let mut s = Scratch::new(&mut ops, &self.config.vision.tower, batch * tokens)?;
        tower::vision(&mut ops, &self.vision, &self.config, &mut s, &pixels, batch)
    }
}
