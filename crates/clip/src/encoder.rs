//! A loaded model ready to embed: config → weights on a device (prefscope-gpu's kernels on a
//! GPU, their fused CPU twins otherwise), plus the tokenizer and the image preset. Texts
//! longer than the context are encoded segment by segment and averaged (LongAlign); images
//! are preprocessed on the GPU when the towers run there.

use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::longalign::{segment_averages, split_segments};
use prefscope_core::scoring::preprocess::{preprocess, Pixels, Preset, Resize};
use prefscope_gpu::Gpu;

#[cfg(feature = "burn")]
use crate::burn_towers::BurnClip;
use crate::config::{ClipConfig, Layout, Pooling};
use crate::cpu_towers::CpuClip;
use crate::device_towers::DeviceClip;
use crate::dtype::{Capabilities, Dtype, DtypeChoice, Runner};
use crate::error::ClipError;
use crate::files::ModelFiles;
use crate::image::Rgba;
use crate::tokenizer::{ClipTokenizer, Tokens};
use crate::weights::{ready, Checkpoint, Source};

/// Where the towers run.
pub enum Backend {
    /// prefscope-gpu's transformer kernels on this GPU (the same device as the scoring kernels).
    Gpu(Gpu),
    /// The fused CPU kernels (`cpu_towers.rs`): the page without WebGPU, `--device cpu`.
    Cpu,
    /// The burn modules on burn-flex (the `burn` feature): the benchmark's CPU comparison row.
    #[cfg(feature = "burn")]
    BurnFlex,
    /// The burn modules on burn-wgpu sharing this GPU's device: the native benchmark's
    /// comparison row, not a product path.
    #[cfg(feature = "burn-wgpu")]
    BurnWgpu(Gpu),
}

/// One text's embedding as scored.
#[derive(Clone, Debug)]
pub struct TextEmbedding {
    /// L2-normalised for a text that fits the context; for a longer text the mean of its
    /// normalised segment embeddings, not renormalised (LongAlign).
    pub vector: Vec<f32>,
    /// Number of segments encoded (1 when the text fits the context).
    pub segments: usize,
}

/// The loaded towers.
enum Towers {
    Device(Box<DeviceClip>),
    Cpu(Box<CpuClip>),
    /// burn modules (burn-flex; burn-wgpu for the comparison row).
    #[cfg(feature = "burn")]
    Burn(Box<BurnClip>),
}

pub struct Encoder {
    towers: Towers,
    config: ClipConfig,
    logit_scale: f32,
    dtype: Dtype,
    tokenizer: ClipTokenizer,
    gpu: Option<Gpu>,
    /// Texts / images per forward pass (the GPU towers split a batch whose activations would
    /// not fit one buffer binding).
    pub batch: usize,
}

impl Encoder {
    /// Loads a model from its files onto `backend` in the `auto` dtype (`dtype.rs`).
    pub fn load(files: &ModelFiles, backend: Backend) -> Result<Self, ClipError> {
        Self::load_with(files, backend, DtypeChoice::Auto)
    }

    /// [`Encoder::load`] with the dtype the user chose.
    pub fn load_with(files: &ModelFiles, backend: Backend, dtype: DtypeChoice) -> Result<Self, ClipError> {
        let (_, weights_name) = files.config()?;
        let weights = files.read(&weights_name)?.ok_or_else(|| ClipError::File {
            file: weights_name.clone(),
            detail: "missing: the weights of the model".into(),
        })?;
        let checkpoint = Checkpoint::parse(&weights_name, &weights)?;
        ready(Self::load_from(files, &checkpoint, backend, dtype))
    }

    /// Loads the model with its weights streamed from `weights` (the file `files.config()`
    /// names; in the browser a `Blob` outside wasm memory), tensor by tensor.
    pub async fn load_streamed<S: Source>(
        files: &ModelFiles,
        weights: S,
        backend: Backend,
        dtype: DtypeChoice,
    ) -> Result<Self, ClipError> {
        let (_, weights_name) = files.config()?;
        let checkpoint = Checkpoint::open(&weights_name, weights).await?;
        Self::load_from(files, &checkpoint, backend, dtype).await
    }

    async fn load_from<S: Source>(
        files: &ModelFiles,
        checkpoint: &Checkpoint<S>,
        backend: Backend,
        choice: DtypeChoice,
    ) -> Result<Self, ClipError> {
        let (config, _) = files.config()?;
        let tokenizer_bytes = files.read("tokenizer.json")?.ok_or_else(|| ClipError::File {
            file: "tokenizer.json".into(),
            detail: "missing: the model directory needs the tokenizer.json of its CLIP tokenizer".into(),
        })?;
        let tokenizer = ClipTokenizer::from_json(&tokenizer_bytes, config.layout.into(), config.text.context)?;
        let gpu = match &backend {
            Backend::Gpu(gpu) => Some(gpu.clone()),
            Backend::Cpu => None,
            #[cfg(feature = "burn")]
            Backend::BurnFlex => None,
            #[cfg(feature = "burn-wgpu")]
            Backend::BurnWgpu(gpu) => Some(gpu.clone()),
        };
        let runner = match &backend {
            Backend::Gpu(_) => Runner::Gpu,
            Backend::Cpu => Runner::Cpu,
            #[cfg(feature = "burn")]
            Backend::BurnFlex => Runner::Burn { f16: false },
            #[cfg(feature = "burn-wgpu")]
            Backend::BurnWgpu(gpu) => Runner::Burn { f16: gpu.has_shader_f16() },
        };
        let (stored, stored_half) = (checkpoint.stored_dtype(), checkpoint.stored_half());
        // The range scan reads every weight: only when f16 could be chosen.
        let overflows_f16 =
            if choice.may_use_f16(runner, stored, stored_half) { checkpoint.f16_overflow().await? } else { None };
        let dtype = choice.resolve(&Capabilities { runner, stored, stored_half, overflows_f16 })?;
        let logit_scale = checkpoint.read("logit_scale", &[]).await?[0];
        let towers = match backend {
            Backend::Gpu(gpu) => {
                Towers::Device(Box::new(DeviceClip::load(&config, checkpoint, &gpu, dtype == Dtype::F16).await?))
            }
            Backend::Cpu => Towers::Cpu(Box::new(CpuClip::load(&config, checkpoint, dtype).await?)),
            #[cfg(feature = "burn")]
            Backend::BurnFlex => {
                Towers::Burn(Box::new(BurnClip::load(&config, checkpoint, burn::tensor::Device::flex(), dtype).await?))
            }
            #[cfg(feature = "burn-wgpu")]
            Backend::BurnWgpu(gpu) => {
                let device = burn::tensor::Device::from(gpu.burn_device()?);
                Towers::Burn(Box::new(BurnClip::load(&config, checkpoint, device, dtype).await?))
            }
        };
        Ok(Encoder { towers, config, logit_scale, dtype, tokenizer, gpu, batch: 16 })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// The checkpoint's `logit_scale` (a log; CLIP logits are `exp(logit_scale)·cos`).
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// The type the towers keep their matrices in (activations are f32 in every dtype).
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Bytes the CPU towers' matrices and embeddings hold (`None` on the GPU).
    pub fn matrix_bytes(&self) -> Option<usize> {
        match &self.towers {
            Towers::Cpu(towers) => Some(towers.matrix_bytes()),
            _ => None,
        }
    }

    /// How many compute pipelines the towers run on the GPU (`None` on the CPU).
    pub fn tower_pipelines(&self) -> Option<usize> {
        match &self.towers {
            Towers::Device(towers) => Some(towers.pipelines()),
            _ => None,
        }
    }

    /// The GPU the towers run on, if any.
    pub fn gpu(&self) -> Option<&Gpu> {
        self.gpu.as_ref()
    }

    /// The checkpoint's own image preprocessing.
    pub fn preset(&self) -> Preset {
        let image = &self.config.image;
        let resize = if image.longest_side {
            Resize::LongestSidePad { size: image.size }
        } else {
            Resize::ShortestEdgeCrop { size: image.size, crop: image.size }
        };
        Preset { resize, mean: image.mean, std: image.std }
    }

    /// Runs both towers once on a dummy text and image so that burn-wgpu compiles its kernels
    /// now (seconds on a first run) rather than on the user's first input; the web app calls
    /// it while the user is still choosing files. Cheap on the CPU backend.
    pub async fn warm_up(&self) -> Result<(), ClipError> {
        let tokens = self.tokenizer.encode("a photo")?;
        self.embed_tokens(std::slice::from_ref(&tokens)).await?;
        let size = self.config.vision.image_size as u32;
        let blank =
            Rgba { name: "warm-up".into(), width: size, height: size, data: vec![127; (size * size * 4) as usize] };
        self.embed_images(std::slice::from_ref(&blank), None).await?;
        Ok(())
    }

    /// The position the config's pooling rule reads in `ids`.
    fn pool_position(&self, ids: &[u32]) -> usize {
        match self.config.text.pooling {
            Pooling::FirstId(eos) => ids.iter().position(|&t| t == eos).unwrap_or(ids.len() - 1),
            // First maximum, as torch.argmax.
            Pooling::Argmax => ids.iter().enumerate().fold(0, |best, (i, &t)| if t > ids[best] { i } else { best }),
        }
    }

    /// Embeddings of tokenised texts (each at most the context long), L2-normalised.
    pub async fn embed_tokens(&self, texts: &[Tokens]) -> Result<Embeddings, ClipError> {
        let dim = self.config.projection;
        let vocab = self.config.text.vocab as u32;
        let mut out = Vec::with_capacity(texts.len() * dim);
        for chunk in texts.chunks(self.batch.max(1)) {
            let pool: Vec<usize> = chunk.iter().map(|t| self.pool_position(&t.ids)).collect();
            // Causal attention: positions after the last pooled one cannot change the result.
            let tokens = pool.iter().max().map_or(1, |p| p + 1);
            let mut ids = Vec::with_capacity(chunk.len() * tokens);
            for t in chunk {
                if let Some(&bad) = t.ids.iter().find(|&&id| id >= vocab) {
                    return Err(ClipError::Input(format!(
                        "token id {bad} is outside the model's vocabulary of {vocab}"
                    )));
                }
                ids.extend_from_slice(&self.tokenizer.padded(t)[..tokens]);
            }
            match &self.towers {
                Towers::Device(towers) => out.extend(towers.embed_text(&ids, tokens, &pool).await?),
                Towers::Cpu(towers) => out.extend(towers.embed_text(ids, tokens, &pool)?),
                #[cfg(feature = "burn")]
                Towers::Burn(towers) => out.extend(towers.embed_text(&ids, tokens, &pool).await?),
            }
        }
        Ok(normalized(dim, out))
    }

    /// Texts as scored: one normalised embedding per text that fits the context, the
    /// LongAlign segment average for longer ones.
    pub async fn embed_texts(&self, texts: &[String]) -> Result<Vec<TextEmbedding>, ClipError> {
        let mut tokens = Vec::new();
        let mut offsets = vec![0];
        for text in texts {
            let whole = self.tokenizer.encode(text)?;
            if whole.truncated {
                for segment in split_segments(text) {
                    tokens.push(self.tokenizer.encode(&segment)?);
                }
            } else {
                tokens.push(whole);
            }
            offsets.push(tokens.len());
        }
        let segments = self.embed_tokens(&tokens).await?;
        let averaged = segment_averages(&segments, &offsets);
        Ok((0..texts.len())
            .map(|i| TextEmbedding { vector: averaged.row(i).to_vec(), segments: offsets[i + 1] - offsets[i] })
            .collect())
    }

    /// Preprocesses one image for this model (on the GPU when the towers run there).
    pub async fn pixels(&self, image: &Rgba, preset: &Preset) -> Result<Pixels, ClipError> {
        let bad = |detail: String| ClipError::Image { name: image.name.clone(), detail };
        let pixels = match &self.gpu {
            Some(gpu) => gpu.preprocess(&image.data, image.width, image.height, preset).await?,
            None => preprocess(&image.data, image.width, image.height, preset).map_err(|e| bad(e.to_string()))?,
        };
        let size = self.config.vision.image_size as u32;
        if pixels.width != size || pixels.height != size {
            return Err(bad(format!(
                "is {}×{} after preprocessing and the model takes {size}×{size}: HPS v2's resize leaves an image \
                 whose longest side already equals the size unpadded, so it cannot be encoded either",
                pixels.width, pixels.height
            )));
        }
        Ok(pixels)
    }

    /// The images of a batch preprocessed side by side, `[batch, 3, size, size]`.
    async fn batch_pixels(&self, images: &[Rgba], preset: &Preset) -> Result<Vec<f32>, ClipError> {
        let size = self.config.vision.image_size;
        let mut data = Vec::with_capacity(images.len() * 3 * size * size);
        for image in images {
            data.extend(self.pixels(image, preset).await?.data);
        }
        Ok(data)
    }

    /// L2-normalised image embeddings, with `preset` (the checkpoint's own when `None`).
    pub async fn embed_images(&self, images: &[Rgba], preset: Option<&Preset>) -> Result<Embeddings, ClipError> {
        let preset = preset.copied().unwrap_or_else(|| self.preset());
        let dim = self.config.projection;
        let mut out = Vec::with_capacity(images.len() * dim);
        for chunk in images.chunks(self.batch.max(1)) {
            match &self.towers {
                Towers::Device(towers) => out.extend(towers.embed_images(chunk, &preset).await?),
                Towers::Cpu(towers) => {
                    out.extend(towers.embed_pixels(self.batch_pixels(chunk, &preset).await?, chunk.len())?)
                }
                #[cfg(feature = "burn")]
                Towers::Burn(towers) => {
                    out.extend(towers.embed_pixels(self.batch_pixels(chunk, &preset).await?, chunk.len()).await?)
                }
            }
        }
        Ok(normalized(dim, out))
    }
}

/// Rows of width `dim` (the config's projection, never 0), L2-normalised.
fn normalized(dim: usize, values: Vec<f32>) -> Embeddings {
    Embeddings { dim, data: values }.normalized()
}

/// Layout name for reports.
pub fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::HuggingFace => "transformers CLIPModel",
        Layout::OpenClip => "open_clip",
    }
}
