//! The CLIP towers on prefscope-gpu's own WGSL kernels (docs/ARCHITECTURE.md says why they
//! are hand-written), running the tower program (`tower.rs`): weights uploaded once (f32, or
//! f16 under the [`crate::DtypeChoice`] rules), every dispatch of a batch recorded into one
//! pass and submitted once, activation buffers kept between batches, pixels preprocessed on
//! the device straight into the patch rows. The embeddings come back L2-normalised.

use std::sync::Mutex;

use prefscope_core::scoring::preprocess::Preset;
use prefscope_core::scoring::transformer::Epilogue;
use prefscope_gpu::{Gpu, Pass, Tensor};

use crate::config::{ClipConfig, Tower};
use crate::error::ClipError;
use crate::image::Rgba;
use crate::tower::{self, Scratch, TowerOps};
use crate::weights::{Checkpoint, Loader, NormParts, Source, Stored, Target, TextParts, VisionParts};

/// Weights go to the device as they are read: the host holds one tensor at a time (with a
/// streamed [`Source`], not the file either).
struct DeviceTarget<'g> {
    gpu: &'g Gpu,
    file: &'g str,
    half: bool,
}

impl DeviceTarget<'_> {
    fn upload(&self, name: &str, values: &[f32], half: bool) -> Result<Tensor, ClipError> {
        self.gpu.weight(name, values, half).map_err(|e| ClipError::Input(format!("{}: {e}", self.file)))
    }
}

impl Target for DeviceTarget<'_> {
    type Matrix = Tensor;
    type Vector = Tensor;

    fn matrix(&self, name: &str, w: Stored, out_major: bool) -> Result<Tensor, ClipError> {
        self.upload(name, &w.into_kn(out_major).0, self.half)
    }

    // Position and class embeddings and biases are small and added in f32.
    fn added(&self, name: &str, values: Vec<f32>, _: [usize; 2]) -> Result<Tensor, ClipError> {
        self.upload(name, &values, false)
    }

    fn vector(&self, name: &str, values: Vec<f32>) -> Result<Tensor, ClipError> {
        self.upload(name, &values, false)
    }

    fn norm(&self, name: &str, values: Vec<f32>) -> Result<Tensor, ClipError> {
        self.upload(name, &values, false)
    }
}

/// The tower operations on the GPU: each records its kernel into one pass.
struct PassOps<'a, 'g> {
    gpu: &'g Gpu,
    pass: &'a mut Pass<'g>,
}

impl TowerOps for PassOps<'_, '_> {
    type Matrix = Tensor;
    type Vector = Tensor;
    type Act = Tensor;
    type Ids = Tensor;

    fn ids(&mut self, ids: &[u32]) -> Result<Tensor, ClipError> {
        Ok(self.gpu.ids(ids)?)
    }

    fn zeros(&mut self, what: &'static str, len: usize) -> Result<Tensor, ClipError> {
        Ok(self.gpu.zeros(what, len)?)
    }

    fn linear(
        &mut self,
        x: &Tensor,
        rows: usize,
        k: usize,
        w: &Tensor,
        n: usize,
        bias: Option<&Tensor>,
        epilogue: Epilogue,
        out: &mut Tensor,
    ) -> Result<(), ClipError> {
        Ok(self.pass.linear(x, rows, k, w, n, bias, epilogue, out)?)
    }

    fn layer_norm(
        &mut self,
        x: &Tensor,
        width: usize,
        rows: usize,
        gather: Option<&Tensor>,
        norm: &NormParts<Tensor>,
        out: &mut Tensor,
    ) -> Result<(), ClipError> {
        Ok(self.pass.layer_norm(x, width, rows, gather, &norm.gamma, &norm.beta, norm.eps as f32, out)?)
    }

    fn attention(
        &mut self,
        qkv: &Tensor,
        batch: usize,
        tokens: usize,
        heads: usize,
        head_dim: usize,
        causal: bool,
        out: &mut Tensor,
    ) -> Result<(), ClipError> {
        Ok(self.pass.attention(qkv, batch, tokens, heads, head_dim, causal, out)?)
    }

    fn embed_tokens(
        &mut self,
        ids: &Tensor,
        table: &Tensor,
        positions: &Tensor,
        width: usize,
        tokens: usize,
        out: &mut Tensor,
    ) -> Result<(), ClipError> {
        Ok(self.pass.embed_tokens(ids, table, positions, width, tokens, out)?)
    }

    fn im2col(&mut self, pixels: &Tensor, batch: usize, size: usize, patch: usize) -> Result<Tensor, ClipError> {
        let grid = size / patch;
        let out = self.gpu.zeros("patch rows", batch * grid * grid * 3 * patch * patch)?;
        self.pass.im2col(pixels, batch, size, patch, &out)?;
        Ok(out)
    }

    fn vision_tokens(
        &mut self,
        patches: &Tensor,
        class: &Tensor,
        positions: &Tensor,
        batch: usize,
        tokens: usize,
        width: usize,
        out: &mut Tensor,
    ) -> Result<(), ClipError> {
        Ok(self.pass.vision_tokens(patches, class, positions, batch, tokens, width, out)?)
    }
}

/// A slot holding a tower's buffers between calls. A call takes them out and puts them back,
/// so concurrent calls (the page's async tasks) never share buffers.
#[derive(Default)]
struct ScratchSlot(Mutex<Option<Scratch<Tensor>>>);

impl ScratchSlot {
    fn take(&self, ops: &mut PassOps, tower: &Tower, rows: usize) -> Result<Scratch<Tensor>, ClipError> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        match kept {
            Some(s) if s.rows >= rows => Ok(s),
            _ => Scratch::new(ops, tower, rows),
        }
    }

    fn put(&self, scratch: Scratch<Tensor>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(scratch);
    }
}

pub struct DeviceClip {
    gpu: Gpu,
    config: ClipConfig,
    text: TextParts<Tensor, Tensor>,
    vision: VisionParts<Tensor, Tensor>,
    text_scratch: ScratchSlot,
    vision_scratch: ScratchSlot,
    half: bool,
    pipelines: usize,
}

impl DeviceClip {
    /// Uploads the checkpoint's towers (matrices as f16 when `half`) and creates every
    /// pipeline they use.
    pub async fn load<S: Source>(
        config: &ClipConfig,
        ckpt: &Checkpoint<S>,
        gpu: &Gpu,
        half: bool,
    ) -> Result<Self, ClipError> {
        let target = DeviceTarget { gpu, file: ckpt.file(), half };
        let loader = Loader { ckpt, target: &target };
        let text = loader.text(config).await?;
        let vision = loader.vision(config).await?;
        let pipelines = gpu.prepare_tower_pipelines(half);
        Ok(DeviceClip {
            gpu: gpu.clone(),
            config: config.clone(),
            text,
            vision,
            text_scratch: ScratchSlot::default(),
            vision_scratch: ScratchSlot::default(),
            half,
            pipelines,
        })
    }

    pub fn half(&self) -> bool {
        self.half
    }

    /// The distinct compute pipelines both towers use (created at load).
    pub fn pipelines(&self) -> usize {
        self.pipelines
    }

    /// How many sequences of `tokens` one dispatch may hold: the widest activation (the MLP's
    /// hidden layer or q/k/v) must fit one binding. Larger batches are split.
    fn sub_batch(&self, tower: &Tower, tokens: usize, what: &str) -> Result<usize, ClipError> {
        let widest = tokens as u64 * tower.mlp.max(3 * tower.width) as u64 * 4;
        let fits = self.gpu.binding_limit() / widest.max(1);
        if fits == 0 {
            return Err(ClipError::Input(format!(
                "one of the {what} needs a {widest}-byte activation, past the adapter's largest binding ({} bytes)",
                self.gpu.binding_limit()
            )));
        }
        Ok(fits as usize)
    }

    /// Normalises the projected rows on the device and reads them back.
    async fn read_embeddings(
        &self,
        mut pass: Pass<'_>,
        projected: Tensor,
        batch: usize,
    ) -> Result<Vec<f32>, ClipError> {
        let p = self.config.projection;
        let embeds = self.gpu.zeros("embeddings", batch * p)?;
        pass.normalize_rows(&projected, batch, p, &embeds)?;
        Ok(pass.finish(&[(&embeds, batch * p)]).await?.remove(0))
    }

    /// L2-normalised text embeddings: `ids` holds `tokens` ids per text, `pool[b]` the
    /// position pooled for text `b`.
    pub async fn embed_text(&self, ids: &[u32], tokens: usize, pool: &[usize]) -> Result<Vec<f32>, ClipError> {
        let tower = &self.config.text.tower;
        let per = self.sub_batch(tower, tokens, "texts")?;
        let mut out = Vec::with_capacity(pool.len() * self.config.projection);
        for (start, chunk) in (0..pool.len()).step_by(per).zip(pool.chunks(per)) {
            let batch = chunk.len();
            let mut pass = self.gpu.pass("text tower")?;
            let mut ops = PassOps { gpu: &self.gpu, pass: &mut pass };
            let mut s = self.text_scratch.take(&mut ops, tower, batch * tokens)?;
            let recorded = ops
                .ids(&ids[start * tokens..(start + batch) * tokens])
                .and_then(|ids| tower::text(&mut ops, &self.text, &self.config, &mut s, &ids, tokens, chunk));
            let result = match recorded {
                Ok(projected) => self.read_embeddings(pass, projected, batch).await,
                Err(e) => Err(e),
            };
            self.text_scratch.put(s);
            out.extend(result?);
        }
        Ok(out)
    }

    /// L2-normalised image embeddings, each image preprocessed with `preset` on the device.
    pub async fn embed_images(&self, images: &[Rgba], preset: &Preset) -> Result<Vec<f32>, ClipError> {
        let v = &self.config.vision;
        let tower = &v.tower;
        let (size, patch, grid2) = (v.image_size, v.patch_size, v.patches());
        let tokens = grid2 + 1;
        for image in images {
            let (ow, oh) = preset.plan(image.width, image.height).out;
            if (ow as usize, oh as usize) != (size, size) {
                return Err(ClipError::Image {
                    name: image.name.clone(),
                    detail: format!(
                        "is {ow}×{oh} after preprocessing and the model takes {size}×{size}: HPS v2's resize leaves an \
                         image whose longest side already equals the size unpadded, so it cannot be encoded either"
                    ),
                });
            }
        }
        // The patch rows are as wide as 3·patch² (wider than the MLP for small models).
        let rows_width = (3 * patch * patch) as u64 * 4 * grid2 as u64;
        let per = self
            .sub_batch(tower, tokens, "images")?
            .min((self.gpu.binding_limit() / rows_width.max(1)).max(1) as usize);
        let plane = 3 * size * size;
        let mut out = Vec::with_capacity(images.len() * self.config.projection);
        for chunk in images.chunks(per) {
            let batch = chunk.len();
            let mut pass = self.gpu.pass("vision tower")?;
            let mut ops = PassOps { gpu: &self.gpu, pass: &mut pass };
            let mut s = self.vision_scratch.take(&mut ops, tower, batch * tokens)?;
            let recorded = (|| {
                let pixels = ops.zeros("pixels", batch * plane)?;
                for (b, image) in chunk.iter().enumerate() {
                    ops.pass
                        .preprocess(&image.data, image.width, image.height, preset, &pixels, b * plane)
                        .map_err(|e| ClipError::Image { name: image.name.clone(), detail: e.to_string() })?;
                }
                tower::vision(&mut ops, &self.vision, &self.config, &mut s, &pixels, batch)
            })();
            let result = match recorded {
                Ok(projected) => self.read_embeddings(pass, projected, batch).await,
                Err(e) => Err(e),
            };
            self.vision_scratch.put(s);
            out.extend(result?);
        }
        Ok(out)
    }
}
