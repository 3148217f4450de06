//! Annotator groups on the GPU: EM's two kernels over pairs held on the device for a whole
//! fit. Twins of `prefscope_core::preference::groups::{pair_terms, moments}`; core's one EM runs on either
//! through [`GroupKernels`]. The device computes in f32 (the host sums chunks in f64), so
//! Newton stops at a step of 1e-4 of the weights' size: its next step, about that squared,
//! would sit below f32's resolution.

use prefscope_core::error::ConfigError;
use prefscope_core::preference::groups::{moments_len, GroupKernels, Prepared, TERMS};
use thiserror::Error;

use crate::kernel::{cast, chunks, groups_for, shader, Shader};
use crate::params::{AnnotatorParams, SimilarityParams};
use crate::similarity::SHADER as SIMILARITY;
use crate::{Gpu, GpuError};

pub(crate) const SHADER: Shader = shader!("annotators");

/// Groups per dispatch at most: the terms of a chunk of pairs are sized for this many.
const MAX_GROUPS: usize = 64;
/// Pairs per chunk at most.
const MAX_CHUNK: usize = 1 << 16;
/// Feature differences larger than this could overflow the f32 sums of a chunk's Hessian.
const MAX_FEATURE: f64 = 1e15;

/// A refused input or setting (the CPU path's messages), or a GPU failure.
#[derive(Debug, Error)]
pub enum GroupsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// One chunk of pairs on the device.
struct Chunk {
    pairs: std::ops::Range<usize>,
    z: wgpu::Buffer,
    labels: wgpu::Buffer,
}

/// A fit's pairs (feature differences and labels) on the device, in chunks that fit one
/// binding, uploaded once for every E- and M-step.
pub struct DevicePairs<'g> {
    gpu: &'g Gpu,
    dim: usize,
    pairs: usize,
    /// Pairs per chunk (the last may hold fewer).
    chunk: usize,
    chunks: Vec<Chunk>,
}

impl Gpu {
    /// Uploads prepared pairs. Fails with [`GpuError::TooLarge`] when one group's Hessian
    /// (`(dim + 1) × dim` values) exceeds a binding, and refuses features beyond f32's range.
    pub fn annotated_pairs<'g>(&'g self, prepared: &Prepared) -> Result<DevicePairs<'g>, GpuError> {
        self.upload_pairs(prepared.differences(), prepared.dim(), prepared.labels())
    }

    /// [`Gpu::annotated_pairs`] from raw differences (`pairs × dim`) and labels.
    pub fn upload_pairs<'g>(&'g self, z: &[f64], dim: usize, labels: &[f64]) -> Result<DevicePairs<'g>, GpuError> {
        let pairs = labels.len();
        if dim == 0 || z.len() != pairs * dim {
            return Err(GpuError::Shape(format!("{} differences for {pairs} pairs of width {dim}", z.len())));
        }
        if let Some(i) = z.iter().position(|v| v.is_nan() || v.abs() > MAX_FEATURE) {
            return Err(GpuError::Shape(format!(
                "pair {}: a feature difference of {} is beyond what the GPU's f32 sums hold (|v| ≤ {MAX_FEATURE:e}; scale the features down)",
                i / dim + 1,
                z[i]
            )));
        }
        self.check_fits(|| format!("one group's Hessian of {dim} features"), moments_len(dim) as u64 * 4)?;
        let per_pair = (dim as u64 * 4).max(MAX_GROUPS as u64 * TERMS as u64 * 4);
        // A chunk's sums run over at most 65 536 pairs in f32 (the host adds chunks in f64),
        // which also keeps each dispatch short and every index within u32.
        let chunk = self.items_per_binding(per_pair).min(MAX_CHUNK);
        let chunks = chunks(pairs, chunk)
            .map(|r| {
                let zc: Vec<f32> = z[r.start * dim..r.end * dim].iter().map(|&v| v as f32).collect();
                let yc: Vec<f32> = labels[r.clone()].iter().map(|&v| v as f32).collect();
                Chunk { z: self.upload("pair differences", &zc), labels: self.upload("labels", &yc), pairs: r }
            })
            .collect();
        Ok(DevicePairs { gpu: self, dim, pairs, chunk, chunks })
    }
}

impl DevicePairs<'_> {
    /// The rewards of `groups` (rows of `weights`) on the device, in f32.
    fn rewards(&self, weights: &[f64], groups: &std::ops::Range<usize>) -> wgpu::Buffer {
        let w: Vec<f32> = weights[groups.start * self.dim..groups.end * self.dim].iter().map(|&v| v as f32).collect();
        self.gpu.upload("group rewards", &w)
    }

    /// Records margins (similarity's matmul) and terms for one chunk and the batch `groups` of
    /// `k` groups, whose pair weights are those columns of `pair_weights` (`pairs × k`);
    /// returns the terms buffer.
    fn record_terms(
        &self,
        enc: &mut wgpu::CommandEncoder,
        chunk: &Chunk,
        weights: &wgpu::Buffer,
        k: usize,
        groups: &std::ops::Range<usize>,
        pair_weights: &[f64],
    ) -> wgpu::Buffer {
        let pair_weights = Self::columns(pair_weights, k, chunk.pairs.clone(), groups);
        let groups = groups.len();
        let g = self.gpu;
        let n = chunk.pairs.len();
        let margins = g.scratch("margins", (n * groups * 4) as u64);
        let mm =
            SimilarityParams { rows_a: n as u32, rows_b: groups as u32, dim: self.dim as u32, clamp: 0, scale: 1.0 };
        let tiles = [(groups as u32).div_ceil(64), (n as u32).div_ceil(64), 1];
        g.dispatch(enc, &SIMILARITY, "matmul", &mm, &[&chunk.z, weights, &margins], tiles);
        let c = g.upload("pair weights", &pair_weights);
        let terms = g.scratch("pair terms", (n * groups * TERMS * 4) as u64);
        let p = AnnotatorParams { pairs: n as u32, dim: self.dim as u32, groups: groups as u32 };
        let buffers = [(1, &margins), (2, &chunk.labels), (3, &c), (4, &terms)];
        g.dispatch_at(enc, &SHADER, "terms", &p, &buffers, groups_for((n * groups) as u64));
        terms
    }

    /// Batches of at most [`MAX_GROUPS`] groups, and of as many as one binding holds of a
    /// chunk's terms and of `bytes_per_group` more.
    fn group_batches(&self, k: usize, bytes_per_group: u64) -> impl Iterator<Item = std::ops::Range<usize>> {
        let terms = (self.chunk * TERMS * 4) as u64;
        let fit = self.gpu.items_per_binding(bytes_per_group.max(terms));
        chunks(k, fit.min(MAX_GROUPS))
    }

    fn check(&self, weights: &[f64], k: usize, pair_weights: &[f64]) -> Result<(), GpuError> {
        if weights.len() != k * self.dim || pair_weights.len() != k * self.pairs {
            return Err(GpuError::Shape(format!(
                "{} weights and {} pair weights for {k} groups of {} features and {} pairs",
                weights.len(),
                pair_weights.len(),
                self.dim,
                self.pairs
            )));
        }
        Ok(())
    }

    /// The columns `groups` of a `pairs × k` table, rows `pairs`, as f32.
    fn columns(table: &[f64], k: usize, pairs: std::ops::Range<usize>, groups: &std::ops::Range<usize>) -> Vec<f32> {
        pairs.flat_map(|i| table[i * k + groups.start..i * k + groups.end].iter().map(|&v| v as f32)).collect()
    }

    /// Twin of core's `pair_terms`: `pairs × k × TERMS`.
    pub async fn pair_terms(&self, weights: &[f64], k: usize, pair_weights: &[f64]) -> Result<Vec<f64>, GpuError> {
        self.check(weights, k, pair_weights)?;
        let mut out = vec![0.0; self.pairs * k * TERMS];
        for groups in self.group_batches(k, 4) {
            let kb = groups.len();
            let rewards = self.rewards(weights, &groups);
            for chunk in &self.chunks {
                let scope = self.gpu.scope("annotator terms")?;
                let mut enc = self.gpu.encoder();
                let terms = self.record_terms(&mut enc, chunk, &rewards, k, &groups, pair_weights);
                let bytes = (chunk.pairs.len() * kb * TERMS * 4) as u64;
                let read = self.gpu.finish(scope, enc, &[(&terms, bytes)]).await?;
                for (local, row) in cast::<f32>(&read[0]).chunks_exact(kb * TERMS).enumerate() {
                    let i = chunk.pairs.start + local;
                    let at = (i * k + groups.start) * TERMS;
                    for (o, v) in out[at..at + kb * TERMS].iter_mut().zip(row) {
                        *o = *v as f64;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Twin of core's `moments` of `pair_terms`: `k × (dim + 1) × dim`, the chunks' sums added
    /// in f64.
    pub async fn pair_moments(&self, weights: &[f64], k: usize, pair_weights: &[f64]) -> Result<Vec<f64>, GpuError> {
        self.check(weights, k, pair_weights)?;
        let block = moments_len(self.dim);
        let mut out = vec![0.0; k * block];
        for groups in self.group_batches(k, block as u64 * 4) {
            let kb = groups.len();
            let rewards = self.rewards(weights, &groups);
            for chunk in &self.chunks {
                let scope = self.gpu.scope("annotator moments")?;
                let mut enc = self.gpu.encoder();
                let terms = self.record_terms(&mut enc, chunk, &rewards, k, &groups, pair_weights);
                let m = self.gpu.scratch("moments", (kb * block * 4) as u64);
                let p = AnnotatorParams { pairs: chunk.pairs.len() as u32, dim: self.dim as u32, groups: kb as u32 };
                let tiles = [(self.dim as u32).div_ceil(64), (self.dim as u32 + 1).div_ceil(64), kb as u32];
                self.gpu.dispatch_at(&mut enc, &SHADER, "moments", &p, &[(5, &chunk.z), (6, &terms), (7, &m)], tiles);
                let read = self.gpu.finish(scope, enc, &[(&m, (kb * block * 4) as u64)]).await?;
                let part = cast::<f32>(&read[0]);
                for (o, v) in out[groups.start * block..groups.end * block].iter_mut().zip(part) {
                    *o += v as f64;
                }
            }
        }
        Ok(out)
    }
}

impl GroupKernels for DevicePairs<'_> {
    type Error = GroupsError;

    fn tolerance(&self) -> f64 {
        1e-4
    }

    async fn terms(&self, weights: &[f64], k: usize, pair_weights: &[f64]) -> Result<Vec<f64>, GroupsError> {
        Ok(self.pair_terms(weights, k, pair_weights).await?)
    }

    async fn moments(&self, weights: &[f64], k: usize, pair_weights: &[f64]) -> Result<Vec<f64>, GroupsError> {
        Ok(self.pair_moments(weights, k, pair_weights).await?)
    }
}
