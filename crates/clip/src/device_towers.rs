//! The CLIP towers on prefscope-gpu's own WGSL kernels (docs/ARCHITECTURE.md says why they
//! are hand-written): weights uploaded once (f32, or f16 under the [`crate::Precision`]
//! rules), every dispatch of a batch recorded into one pass and submitted once, activation
//! buffers kept between batches, pixels preprocessed on the device straight into the patch
//! rows. The embeddings come back L2-normalised.

use std::sync::Mutex;

use prefscope_core::preprocess::Preset;
use prefscope_core::transformer::Epilogue;
use prefscope_gpu::{Gpu, Pass, Tensor};

use crate::config::{Activation, ClipConfig, Tower};
use crate::error::ClipError;
use crate::image::Rgba;
use crate::weights::{Checkpoint, LayerParts, Loader, NormParts, Source, Target, TextParts, VisionParts};

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

    fn matrix(&self, name: &str, values: Vec<f32>, _: [usize; 2]) -> Result<Tensor, ClipError> {
        self.upload(name, &values, self.half)
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

/// Activation buffers for `rows` token rows of one tower, reused across layers and batches.
struct Scratch {
    rows: usize,
    /// The residual stream.
    x: Tensor,
    /// LayerNorm outputs (and the vision tokens before `pre_layrnorm`).
    h: Tensor,
    qkv: Tensor,
    context: Tensor,
    mlp: Tensor,
}

impl Scratch {
    fn new(gpu: &Gpu, tower: &Tower, rows: usize) -> Result<Self, ClipError> {
        let w = tower.width;
        Ok(Scratch {
            rows,
            x: gpu.zeros("residual stream", rows * w)?,
            h: gpu.zeros("normalised", rows * w)?,
            qkv: gpu.zeros("qkv", rows * 3 * w)?,
            context: gpu.zeros("attention context", rows * w)?,
            mlp: gpu.zeros("mlp hidden", rows * tower.mlp)?,
        })
    }
}

/// A slot holding a tower's buffers between calls. A call takes them out and puts them back,
/// so concurrent calls (the page's async tasks) never share buffers.
#[derive(Default)]
struct ScratchSlot(Mutex<Option<Scratch>>);

impl ScratchSlot {
    fn take(&self, gpu: &Gpu, tower: &Tower, rows: usize) -> Result<Scratch, ClipError> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        match kept {
            Some(s) if s.rows >= rows => Ok(s),
            _ => Scratch::new(gpu, tower, rows),
        }
    }

    fn put(&self, scratch: Scratch) {
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

    /// The encoder layers over `rows = batch·tokens` rows of the residual stream `s.x`.
    fn layers(
        pass: &mut Pass,
        layers: &[LayerParts<Tensor, Tensor>],
        tower: &Tower,
        s: &Scratch,
        batch: usize,
        tokens: usize,
        causal: bool,
    ) -> Result<(), ClipError> {
        let (w, m, rows) = (tower.width, tower.mlp, batch * tokens);
        let eps = tower.eps as f32;
        let act = match tower.activation {
            Activation::QuickGelu => Epilogue::QuickGelu,
            Activation::Gelu => Epilogue::Gelu,
        };
        let norm = |pass: &mut Pass, n: &NormParts<Tensor>, out: &Tensor| {
            pass.layer_norm(&s.x, w, rows, None, &n.gamma, &n.beta, eps, out)
        };
        for l in layers {
            norm(pass, &l.ln1, &s.h)?;
            pass.linear(&s.h, rows, w, &l.qkv.weight, 3 * w, l.qkv.bias.as_ref(), Epilogue::None, &s.qkv)?;
            pass.attention(&s.qkv, batch, tokens, tower.heads, w / tower.heads, causal, &s.context)?;
            pass.linear(&s.context, rows, w, &l.out.weight, w, l.out.bias.as_ref(), Epilogue::Residual, &s.x)?;
            norm(pass, &l.ln2, &s.h)?;
            pass.linear(&s.h, rows, w, &l.fc1.weight, m, l.fc1.bias.as_ref(), act, &s.mlp)?;
            pass.linear(&s.mlp, rows, m, &l.fc2.weight, w, l.fc2.bias.as_ref(), Epilogue::Residual, &s.x)?;
        }
        Ok(())
    }

    /// Pools rows `pooled` of the residual stream, applies the final LayerNorm and the
    /// projection, normalises, and reads the embeddings back.
    async fn project(
        &self,
        mut pass: Pass<'_>,
        s: &Scratch,
        tower: &Tower,
        pooled: &[u32],
        norm: &NormParts<Tensor>,
        projection: &Tensor,
    ) -> Result<Vec<f32>, ClipError> {
        let (w, p, batch) = (tower.width, self.config.projection, pooled.len());
        let index = self.gpu.ids(pooled)?;
        let picked = self.gpu.zeros("pooled", batch * w)?;
        let projected = self.gpu.zeros("projected", batch * p)?;
        let embeds = self.gpu.zeros("embeddings", batch * p)?;
        pass.layer_norm(&s.x, w, batch, Some(&index), &norm.gamma, &norm.beta, tower.eps as f32, &picked)?;
        pass.linear(&picked, batch, w, projection, p, None, Epilogue::None, &projected)?;
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
            let s = self.text_scratch.take(&self.gpu, tower, batch * tokens)?;
            let result = async {
                let ids = self.gpu.ids(&ids[start * tokens..(start + batch) * tokens])?;
                let mut pass = self.gpu.pass("text tower")?;
                let t = &self.text;
                pass.embed_tokens(&ids, &t.token_embedding, &t.position_embedding, tower.width, tokens, &s.x)?;
                Self::layers(&mut pass, &t.layers, tower, &s, batch, tokens, true)?;
                let pooled: Vec<u32> = chunk.iter().enumerate().map(|(b, &p)| (b * tokens + p) as u32).collect();
                self.project(pass, &s, tower, &pooled, &t.final_norm, &t.projection).await
            }
            .await;
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
            let s = self.vision_scratch.take(&self.gpu, tower, batch * tokens)?;
            let result = async {
                let pixels = self.gpu.zeros("pixels", batch * plane)?;
                let cols = self.gpu.zeros("patch rows", batch * grid2 * 3 * patch * patch)?;
                let patches = self.gpu.zeros("patch embeddings", batch * grid2 * tower.width)?;
                let mut pass = self.gpu.pass("vision tower")?;
                for (b, image) in chunk.iter().enumerate() {
                    pass.preprocess(&image.data, image.width, image.height, preset, &pixels, b * plane)
                        .map_err(|e| ClipError::Image { name: image.name.clone(), detail: e.to_string() })?;
                }
                let vt = &self.vision;
                let w = tower.width;
                pass.im2col(&pixels, batch, size, patch, &cols)?;
                let k = 3 * patch * patch;
                pass.linear(&cols, batch * grid2, k, &vt.patch_embedding, w, None, Epilogue::None, &patches)?;
                pass.vision_tokens(&patches, &vt.class_embedding, &vt.position_embedding, batch, tokens, w, &s.h)?;
                let pre = &vt.pre_norm;
                pass.layer_norm(&s.h, w, batch * tokens, None, &pre.gamma, &pre.beta, tower.eps as f32, &s.x)?;
                Self::layers(&mut pass, &vt.layers, tower, &s, batch, tokens, false)?;
                let pooled: Vec<u32> = (0..batch).map(|b| (b * tokens) as u32).collect();
                self.project(pass, &s, tower, &pooled, &vt.post_norm, &vt.projection).await
            }
            .await;
            self.vision_scratch.put(s);
            out.extend(result?);
        }
        Ok(out)
    }
}
