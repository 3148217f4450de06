//! Similarity of image and text embeddings: L2 normalisation and a tiled matrix product whose
//! epilogue applies the preset's score (cosine, CLIP logit, CLIPScore, HPS), which LongAlign and
//! the annotator groups record into their passes. As calls of their own (the `testing`
//! feature) they are the twin of `prefscope_core::scoring::clip_score::score_matrix`.

use crate::kernel::{groups_per_item, shader, Shader};
use crate::params::SimilarityParams;
use crate::Gpu;

pub(crate) const SHADER: Shader = shader!("similarity", ["tile", "similarity"]);

impl Gpu {
    /// Records the row normalisation of `rows × dim` values in `src` into `dst`.
    pub(crate) fn normalize_into(
        &self,
        enc: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        rows: usize,
        dim: usize,
        dst: &wgpu::Buffer,
    ) {
        let params = SimilarityParams { rows_a: rows as u32, rows_b: 0, dim: dim as u32, clamp: 0, scale: 1.0 };
        self.dispatch(enc, &SHADER, "normalize_rows", &params, &[src, src, dst], groups_per_item(rows as u64));
    }
}

/// Score matrices as calls of their own, for the kernels' twin tests and the benchmark (the
/// `testing` feature): the product runs the same kernels inside its own passes (LongAlign,
/// annotator groups).
#[cfg(feature = "testing")]
mod standalone {
    use prefscope_core::scoring::clip_score::PairScore;
    use prefscope_core::scoring::embedding::Embeddings;

    use super::SHADER;
    use crate::kernel::{cast, chunks};
    use crate::params::SimilarityParams;
    use crate::{Gpu, GpuError};

    /// Output tile edge of the matmul kernel.
    const TILE: u32 = 64;

    /// A row-major `rows × cols` f32 matrix living on the device (embeddings from the towers,
    /// or scores), so that chained steps never copy through the host.
    pub struct DeviceMatrix {
        pub(crate) buffer: wgpu::Buffer,
        pub rows: usize,
        pub cols: usize,
    }

    impl DeviceMatrix {
        /// Wraps `size` bytes at `offset` of a buffer someone else owns on the same device (a
        /// burn-wgpu tensor's storage): the rows are copied device-side into a buffer of ours.
        pub fn from_buffer(
            gpu: &Gpu,
            source: &wgpu::Buffer,
            offset: u64,
            rows: usize,
            cols: usize,
        ) -> Result<Self, GpuError> {
            let bytes = (rows * cols * 4) as u64;
            if offset + bytes > source.size() {
                return Err(GpuError::Shape(format!(
                    "{rows}×{cols} f32 at offset {offset} exceeds a {}-byte buffer",
                    source.size()
                )));
            }
            gpu.check_fits(|| format!("a {rows}×{cols} matrix"), bytes)?;
            let buffer = gpu.scratch("matrix", bytes);
            let mut enc = gpu.encoder();
            enc.copy_buffer_to_buffer(source, offset, &buffer, 0, bytes.next_multiple_of(4));
            gpu.queue.submit([enc.finish()]);
            Ok(Self { buffer, rows, cols })
        }
    }

    impl Gpu {
        /// Uploads embeddings to stay on the device (one binding's worth at most).
        pub fn upload_matrix(&self, m: &Embeddings) -> Result<DeviceMatrix, GpuError> {
            self.check_fits(|| format!("{} embeddings of width {}", m.len(), m.dim), m.data.len() as u64 * 4)?;
            Ok(DeviceMatrix { buffer: self.upload("matrix", &m.data), rows: m.len(), cols: m.dim })
        }

        /// Scores of resident matrices, left on the device (`a.rows × b.rows`).
        pub async fn score_matrix_on_device(
            &self,
            a: &DeviceMatrix,
            b: &DeviceMatrix,
            score: PairScore,
        ) -> Result<DeviceMatrix, GpuError> {
            if a.cols != b.cols {
                return Err(GpuError::Shape(format!("widths differ: {} and {}", a.cols, b.cols)));
            }
            let (na, nb, dim) = (a.rows, b.rows, a.cols);
            self.check_fits(|| format!("a {na}×{nb} score matrix"), (na * nb * 4) as u64)?;
            let (scale, clamp) = score.affine();
            let scope = self.scope("similarity")?;
            let mut enc = self.encoder();
            let c = self.record_block(&mut enc, &a.buffer, na, &b.buffer, nb, dim, true, scale, clamp);
            self.finish(scope, enc, &[]).await?;
            Ok(DeviceMatrix { buffer: c, rows: na, cols: nb })
        }

        /// Reads a resident matrix back.
        pub async fn read_matrix(&self, m: &DeviceMatrix) -> Result<Vec<f32>, GpuError> {
            let scope = self.scope("read back")?;
            let bytes = self.finish(scope, self.encoder(), &[(&m.buffer, (m.rows * m.cols * 4) as u64)]).await?;
            Ok(cast(&bytes[0]))
        }

        /// Scores of every image against every text, `images × texts` row-major; embeddings are
        /// L2-normalised here. Inputs past the binding limit are processed in blocks.
        pub async fn score_matrix(
            &self,
            images: &Embeddings,
            texts: &Embeddings,
            score: PairScore,
        ) -> Result<Vec<f32>, GpuError> {
            if images.dim != texts.dim {
                return Err(GpuError::Shape(format!("image width {} ≠ text width {}", images.dim, texts.dim)));
            }
            let (scale, clamp) = score.affine();
            self.products(images, texts, true, scale, clamp).await
        }

        /// `map(normalise(A)·Bᵀ)` in blocks that fit the binding limit; `normalize_b` chooses
        /// whether `b`'s rows are normalised too (LongAlign keeps segment averages as they are).
        pub(crate) async fn products(
            &self,
            a: &Embeddings,
            b: &Embeddings,
            normalize_b: bool,
            scale: f32,
            clamp: bool,
        ) -> Result<Vec<f32>, GpuError> {
            let dim = a.dim;
            let (na, nb) = (a.len(), b.len());
            let mut out = vec![0f32; na * nb];
            if na == 0 || nb == 0 {
                return Ok(out);
            }
            self.check_fits(|| format!("one embedding of width {dim}"), dim as u64 * 4)?;
            let rows = self.items_per_binding(dim as u64 * 4);
            // The output block (ra × rb) must fit one binding as well.
            let side = rows.min((self.items_per_binding(4) as f64).sqrt() as usize).max(1);
            for ra in chunks(na, side) {
                let a_block = self.upload("a", &a.data[ra.start * dim..ra.end * dim]);
                for rb in chunks(nb, side) {
                    let b_block = self.upload("b", &b.data[rb.start * dim..rb.end * dim]);
                    let scope = self.scope("similarity")?;
                    let mut enc = self.encoder();
                    let c = self.record_block(
                        &mut enc,
                        &a_block,
                        ra.len(),
                        &b_block,
                        rb.len(),
                        dim,
                        normalize_b,
                        scale,
                        clamp,
                    );
                    let bytes = self.finish(scope, enc, &[(&c, (ra.len() * rb.len() * 4) as u64)]).await?;
                    let block = cast::<f32>(&bytes[0]);
                    for (i, row) in block.chunks(rb.len()).enumerate() {
                        let at = (ra.start + i) * nb + rb.start;
                        out[at..at + rb.len()].copy_from_slice(row);
                    }
                }
            }
            Ok(out)
        }

        /// Records normalisation and the tiled product; returns the score buffer.
        #[allow(clippy::too_many_arguments)]
        fn record_block(
            &self,
            enc: &mut wgpu::CommandEncoder,
            a: &wgpu::Buffer,
            na: usize,
            b: &wgpu::Buffer,
            nb: usize,
            dim: usize,
            normalize_b: bool,
            scale: f32,
            clamp: bool,
        ) -> wgpu::Buffer {
            let an = self.scratch("a normalised", (na * dim * 4) as u64);
            self.normalize_into(enc, a, na, dim, &an);
            let bn;
            let b_used = if normalize_b {
                bn = self.scratch("b normalised", (nb * dim * 4) as u64);
                self.normalize_into(enc, b, nb, dim, &bn);
                &bn
            } else {
                b
            };
            let c = self.scratch("scores", (na * nb * 4) as u64);
            let params =
                SimilarityParams { rows_a: na as u32, rows_b: nb as u32, dim: dim as u32, clamp: clamp as u32, scale };
            let groups = [(nb as u32).div_ceil(TILE), (na as u32).div_ceil(TILE), 1];
            self.dispatch(enc, &SHADER, "matmul", &params, &[&an, b_used, &c], groups);
            c
        }

        /// L2-normalised rows (twin of `Embeddings::normalized`).
        pub async fn normalized(&self, x: &Embeddings) -> Result<Embeddings, GpuError> {
            let dim = x.dim;
            self.check_fits(|| format!("one embedding of width {dim}"), dim as u64 * 4)?;
            let mut data = Vec::with_capacity(x.data.len());
            for r in chunks(x.len(), self.items_per_binding(dim as u64 * 4)) {
                let scope = self.scope("normalise")?;
                let src = self.upload("rows", &x.data[r.start * dim..r.end * dim]);
                let dst = self.scratch("normalised", (r.len() * dim * 4) as u64);
                let mut enc = self.encoder();
                self.normalize_into(&mut enc, &src, r.len(), dim, &dst);
                let bytes = self.finish(scope, enc, &[(&dst, (r.len() * dim * 4) as u64)]).await?;
                data.extend(cast::<f32>(&bytes[0]));
            }
            Ok(Embeddings { dim, data })
        }
    }
}

#[cfg(feature = "testing")]
pub use standalone::DeviceMatrix;
