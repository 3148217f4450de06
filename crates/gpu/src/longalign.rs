//! LongAlign on the GPU: the relevant/irrelevant split of every image×text score, kept on the
//! device so that moving the reweighting slider re-runs one small kernel. Twin of
//! `prefscope_core::scoring::longalign::decompose_all`. (Segment averages and the common direction are
//! computed once per prompt set on the host, where the text tower's embeddings arrive.)

use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::longalign::Decomposition;

use crate::kernel::{cast, chunks, groups_for, groups_per_item, shader, Shader};
use crate::params::{LongAlignParams, SimilarityParams};
use crate::similarity::SHADER as SIMILARITY;
use crate::{Gpu, GpuError};

pub(crate) const SHADER: Shader = shader!("longalign");

/// One block of image rows × text rows whose parts live on the device.
struct Block {
    images: std::ops::Range<usize>,
    texts: std::ops::Range<usize>,
    parts: wgpu::Buffer,
}

/// The decomposition of every image×text score, resident on the GPU.
pub struct Decomposed {
    rows: usize,
    cols: usize,
    blocks: Vec<Block>,
    /// Text-relevant parts, `images × texts` row-major, in score units.
    pub relevant: Vec<f32>,
    /// Text-irrelevant parts, same layout.
    pub irrelevant: Vec<f32>,
}

impl Decomposed {
    /// As core's `Decomposition` values, for comparison and export.
    pub fn parts(&self) -> Vec<Decomposition> {
        self.relevant
            .iter()
            .zip(&self.irrelevant)
            .map(|(&relevant, &irrelevant)| Decomposition { relevant, irrelevant })
            .collect()
    }

    /// `relevant + w·irrelevant` for every pair, recomputed on the device.
    pub async fn reweighted(&self, gpu: &Gpu, weight: f32) -> Result<Vec<f32>, GpuError> {
        let mut out = vec![0f32; self.rows * self.cols];
        for b in &self.blocks {
            let (ra, rb) = (b.images.len(), b.texts.len());
            let scope = gpu.scope("reweight")?;
            let mut enc = gpu.encoder();
            let dst = gpu.scratch("reweighted", (ra * rb * 4) as u64);
            let params = LongAlignParams { rows: ra as u32, cols: rb as u32, scale: 1.0, weight, ..Default::default() };
            gpu.dispatch(
                &mut enc,
                &SHADER,
                "reweight",
                &params,
                &[&b.parts, &b.parts, &dst],
                groups_for((ra * rb) as u64),
            );
            let bytes = gpu.finish(scope, enc, &[(&dst, (ra * rb * 4) as u64)]).await?;
            for (i, row) in cast::<f32>(&bytes[0]).chunks(rb).enumerate() {
                let at = (b.images.start + i) * self.cols + b.texts.start;
                out[at..at + rb].copy_from_slice(row);
            }
        }
        Ok(out)
    }
}

impl Gpu {
    /// Records what every split reads: `images` (rows of `dim`) normalised, their products with
    /// `texts` (`images × texts`), and the projections `[u·image…, text·u…]` on `u`. Returns
    /// the products and the projections.
    pub(crate) fn record_projections(
        &self,
        enc: &mut wgpu::CommandEncoder,
        images: &[f32],
        texts: &[f32],
        u: &wgpu::Buffer,
        dim: usize,
    ) -> (wgpu::Buffer, wgpu::Buffer) {
        let (ni, np) = (images.len() / dim.max(1), texts.len() / dim.max(1));
        let a = self.upload("images", images);
        let b = self.upload("texts", texts);
        let an = self.scratch("images normalised", (ni * dim * 4) as u64);
        let prod = self.scratch("products", (ni * np * 4) as u64);
        let ui = self.scratch("u·image", (ni * 4) as u64);
        let tu = self.scratch("text·u", (np * 4) as u64);
        let y = self.scratch("projections", ((ni + np) * 4) as u64);
        self.normalize_into(enc, &a, ni, dim, &an);
        let mm = SimilarityParams { rows_a: ni as u32, rows_b: np as u32, dim: dim as u32, clamp: 0, scale: 1.0 };
        let tiles = [(np as u32).div_ceil(64), (ni as u32).div_ceil(64), 1];
        self.dispatch(enc, &SIMILARITY, "matmul", &mm, &[&an, &b, &prod], tiles);
        let pa = LongAlignParams { rows: ni as u32, dim: dim as u32, scale: 1.0, ..Default::default() };
        self.dispatch(enc, &SHADER, "dot_rows", &pa, &[&an, u, &ui], groups_per_item(ni as u64));
        let pb = LongAlignParams { rows: np as u32, dim: dim as u32, scale: 1.0, ..Default::default() };
        self.dispatch(enc, &SHADER, "dot_rows", &pb, &[&b, u, &tu], groups_per_item(np as u64));
        enc.copy_buffer_to_buffer(&ui, 0, &y, 0, (ni * 4) as u64);
        enc.copy_buffer_to_buffer(&tu, 0, &y, (ni * 4) as u64, (np * 4) as u64);
        (prod, y)
    }

    /// Splits every image×text score against `u` (twin of `longalign::decompose_all`):
    /// images are normalised here, texts used as given (segment averages are not renormalised).
    pub async fn decompose(
        &self,
        images: &Embeddings,
        texts: &Embeddings,
        u: &[f32],
        scale: f32,
    ) -> Result<Decomposed, GpuError> {
        let dim = same_widths(images, texts, u)?;
        let (rows, cols) = (images.len(), texts.len());
        self.check_fits(|| format!("one embedding of width {dim}"), dim as u64 * 4)?;
        let side =
            self.items_per_binding(dim as u64 * 4).min((self.items_per_binding(8) as f64).sqrt() as usize).max(1);
        let mut out = Decomposed {
            rows,
            cols,
            blocks: Vec::new(),
            relevant: vec![0.0; rows * cols],
            irrelevant: vec![0.0; rows * cols],
        };
        let ub = self.upload("direction", u);
        for ra in chunks(rows, side) {
            for rb in chunks(cols, side) {
                let (na, nb) = (ra.len(), rb.len());
                let scope = self.scope("decomposition")?;
                let mut enc = self.encoder();
                let (prod, y) = self.record_projections(
                    &mut enc,
                    &images.data[ra.start * dim..ra.end * dim],
                    &texts.data[rb.start * dim..rb.end * dim],
                    &ub,
                    dim,
                );
                let parts = self.scratch("parts", (2 * na * nb * 4) as u64);
                let ps =
                    LongAlignParams { rows: na as u32, cols: nb as u32, dim: dim as u32, scale, ..Default::default() };
                self.dispatch(&mut enc, &SHADER, "split", &ps, &[&prod, &y, &parts], groups_for((na * nb) as u64));
                let bytes = self.finish(scope, enc, &[(&parts, (2 * na * nb * 4) as u64)]).await?;
                let v = cast::<f32>(&bytes[0]);
                for i in 0..na {
                    let at = (ra.start + i) * cols + rb.start;
                    out.relevant[at..at + nb].copy_from_slice(&v[i * nb..(i + 1) * nb]);
                    out.irrelevant[at..at + nb].copy_from_slice(&v[na * nb + i * nb..na * nb + (i + 1) * nb]);
                }
                out.blocks.push(Block { images: ra.clone(), texts: rb.clone(), parts });
            }
        }
        Ok(out)
    }
}

/// The common width of image and text embeddings and the direction `u`, or an error naming all three.
pub(crate) fn same_widths(images: &Embeddings, texts: &Embeddings, u: &[f32]) -> Result<usize, GpuError> {
    let dim = images.dim;
    if texts.dim != dim || u.len() != dim {
        return Err(GpuError::Shape(format!(
            "widths differ: images {dim}, texts {}, direction {}",
            texts.dim,
            u.len()
        )));
    }
    Ok(dim)
}
