//! Training the demo model with burn's autodiff on the CPU backend: a CLIP-architecture
//! model (the same modules and loader as real checkpoints) over the shapes world, first
//! contrastively on (caption, picture), then PickScore-style on pairs labelled by the
//! utility `u = a + λ·q`, with the contrastive loss kept on the preferred picture so
//! retrieval is not forgotten. The result is written as a transformers CLIPModel directory.

pub mod caption_lm;
pub mod data;
pub mod dpo_run;

use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use prefscope_clip::config::{Activation, ClipConfig, ImageConfig, Layout, Pooling, TextConfig, Tower, VisionConfig};
use prefscope_clip::export::{hf_shapes, safetensors_f32};
use prefscope_clip::model::Clip;
use prefscope_clip::tokenizer::{ClipTokenizer, Convention};
use prefscope_clip::weights::Checkpoint;
use prefscope_clip::ClipError;
use prefscope_core::scoring::longalign::split_segments;
use prefscope_core::scoring::preprocess::{OPENAI_MEAN, OPENAI_STD};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raster::Image;
use data::TIE;

/// The demo model's text context: short captions (up to 25 tokens) fit, long ones do not.
pub const CONTEXT: usize = 32;

/// The demo architecture for a tokenizer of `vocab` ids whose end of text is `eos`.
pub fn architecture(vocab: usize, eos: u32) -> ClipConfig {
    let tower =
        |width, layers, mlp| Tower { width, layers, heads: 4, mlp, activation: Activation::QuickGelu, eps: 1e-5 };
    ClipConfig {
        layout: Layout::HuggingFace,
        text: TextConfig { tower: tower(64, 3, 256), vocab, context: CONTEXT, pooling: Pooling::FirstId(eos) },
        vision: VisionConfig { tower: tower(96, 4, 384), image_size: data::SIZE as usize, patch_size: 8 },
        projection: 64,
        image: ImageConfig { size: data::SIZE, mean: OPENAI_MEAN, std: OPENAI_STD, longest_side: false },
    }
}

/// How long to train.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Budget {
    pub seed: u64,
    pub contrastive_steps: usize,
    pub preference_steps: usize,
    /// (caption, picture) pairs per contrastive step; labelled pairs per preference step.
    pub batch: usize,
    pub learning_rate: f64,
    /// Share of preference pairs between two pictures of scenes other than the captioned one.
    pub unrelated_pairs: f64,
    /// Weight of the contrastive loss kept during the preference stage.
    pub keep_contrastive: f64,
    /// Weight of the penalty on the spread of the texts' projections on their common direction
    /// (LongAlign's split assumes every prompt shares that direction alike).
    pub common_direction: f64,
    /// Weight of the preference loss between pictures of different captions, labelled by
    /// their utilities: scores comparable across prompts.
    pub across_prompts: f64,
    /// Steps between logged losses.
    pub log_every: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            seed: 7,
            contrastive_steps: 1400,
            preference_steps: 1800,
            batch: 64,
            learning_rate: 1e-3,
            unrelated_pairs: 0.3,
            keep_contrastive: 0.5,
            common_direction: 5.0,
            across_prompts: 0.5,
            log_every: 50,
        }
    }
}

/// Standard normal draws (Box–Muller) from a seeded stream.
fn normal(rng: &mut impl Rng) -> f32 {
    let (a, b): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f32::consts::PI * b).cos()
}

/// A fresh model as safetensors bytes: matrices N(0, 1/fan_in) (residual outputs scaled down
/// by √(2·layers)), embeddings N(0, 0.02²), LayerNorms at identity, CLIP's initial
/// temperature 1/0.07.
pub fn initial_weights(config: &ClipConfig, seed: u64) -> Result<Vec<u8>, ClipError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, shape) in hf_shapes(config) {
        let n: usize = shape.iter().product();
        let norm = name.contains("norm") || name.contains("layrnorm");
        let layers = if name.starts_with("text") { config.text.tower.layers } else { config.vision.tower.layers };
        let values: Vec<f32> = if name == "logit_scale" {
            vec![(1.0f32 / 0.07).ln()]
        } else if norm && name.ends_with("weight") {
            vec![1.0; n]
        } else if name.ends_with("bias") {
            vec![0.0; n]
        } else {
            let std = if name.contains("embedding") && !name.contains("patch") {
                0.02
            } else {
                let fan_in: usize = shape[1..].iter().product();
                let residual = name.contains("out_proj") || name.contains("fc2");
                (fan_in as f32).powf(-0.5) / if residual { (2.0 * layers as f32).sqrt() } else { 1.0 }
            };
            (0..n).map(|_| std * normal(&mut rng)).collect()
        };
        tensors.push((name, shape, values));
    }
    safetensors_f32(&tensors)
}

/// The towers and the learned temperature (a log, as CLIP stores it).
#[derive(Module, Debug)]
pub struct Trainable {
    pub clip: Clip,
    pub log_scale: Param<Tensor<1>>,
}

/// Rows scaled to unit length.
fn unit(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-6);
    x / norm
}

impl Trainable {
    /// `exp(log_scale)`, capped at 100 as CLIP caps it, as a `[1, 1]` tensor.
    fn scale(&self) -> Tensor<2> {
        self.log_scale.val().clamp_max(100f32.ln()).exp().reshape([1, 1])
    }

    /// Text embeddings `[n, projection]` as the scorer computes them: normalised for a
    /// caption that fits the context, LongAlign's average of the normalised segment embeddings
    /// (not renormalised) for a longer one. Training on the average is what LongAlign's own
    /// fine-tuning does, and it puts long prompts' scores on the short ones' scale.
    pub fn texts(
        &self,
        tokenizer: &ClipTokenizer,
        captions: &[String],
        device: &Device,
    ) -> Result<Tensor<2>, ClipError> {
        let end = tokenizer.end_id();
        let mut tokens = Vec::new();
        let mut offsets = vec![0];
        for caption in captions {
            let whole = tokenizer.encode(caption)?;
            if whole.truncated {
                for segment in split_segments(caption) {
                    tokens.push(tokenizer.encode(&segment)?);
                }
            } else {
                tokens.push(whole);
            }
            offsets.push(tokens.len());
        }
        let pool: Vec<usize> =
            tokens.iter().map(|t| t.ids.iter().position(|&id| id == end).unwrap_or(t.ids.len() - 1)).collect();
        let len = pool.iter().max().map_or(1, |p| p + 1);
        let ids: Vec<i64> = tokens
            .iter()
            .flat_map(|t| tokenizer.padded(t)[..len].iter().map(|&id| id as i64).collect::<Vec<_>>())
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [tokens.len(), len]), device);
        let segments = unit(self.clip.text.forward(ids, &pool));
        if tokens.len() == captions.len() {
            return Ok(segments);
        }
        // Row k of the average: 1/|segments| on caption k's segments.
        let mut average = vec![0.0f32; captions.len() * tokens.len()];
        for (k, w) in offsets.windows(2).enumerate() {
            for s in w[0]..w[1] {
                average[k * tokens.len() + s] = 1.0 / (w[1] - w[0]) as f32;
            }
        }
        let average = Tensor::<2>::from_data(TensorData::new(average, [captions.len(), tokens.len()]), device);
        Ok(average.matmul(segments))
    }

    /// Normalised image embeddings `[n, projection]`.
    pub fn images(&self, images: &[Image], device: &Device) -> Tensor<2> {
        let size = data::SIZE as usize;
        let mut values = Vec::with_capacity(images.len() * 3 * size * size);
        for image in images {
            for c in 0..3 {
                values
                    .extend(image.data.chunks_exact(4).map(|p| (p[c] as f32 / 255.0 - OPENAI_MEAN[c]) / OPENAI_STD[c]));
            }
        }
        let pixels = Tensor::<4>::from_data(TensorData::new(values, [images.len(), 3, size, size]), device);
        unit(self.clip.vision.forward(pixels))
    }
}

/// Symmetric InfoNCE over a batch of matching rows.
fn contrastive_loss(images: Tensor<2>, texts: Tensor<2>, scale: Tensor<2>, device: &Device) -> Tensor<1> {
    let n = images.dims()[0];
    let logits = images.matmul(texts.transpose()) * scale;
    let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    let eye = Tensor::<2>::from_data(TensorData::new(eye, [n, n]), device);
    let rows = (log_softmax(logits.clone(), 1) * eye.clone()).sum().neg();
    let cols = (log_softmax(logits.transpose(), 1) * eye).sum().neg();
    (rows + cols).div_scalar(2.0 * n as f64)
}

/// PickScore's loss: cross-entropy of the softmax over the two scores against the label.
fn preference_loss(
    texts: Tensor<2>,
    first: Tensor<2>,
    second: Tensor<2>,
    scale: Tensor<2>,
    target: &[f32],
    device: &Device,
) -> Tensor<1> {
    let n = target.len();
    let s1 = (texts.clone() * first).sum_dim(1);
    let s2 = (texts * second).sum_dim(1);
    let logits = Tensor::cat(vec![s1, s2], 1) * scale;
    let labels: Vec<f32> = target.iter().flat_map(|&t| [t, 1.0 - t]).collect();
    let labels = Tensor::<2>::from_data(TensorData::new(labels, [n, 2]), device);
    (log_softmax(logits, 1) * labels).sum().neg().div_scalar(n as f64)
}

/// The variance over the batch of each text's projection on the batch's common direction
/// `u = normalise(mean t)`. The text-irrelevant part `(t·u)(u·î)` of a score compares images
/// alike across prompts only when `t·u` is the same for every prompt; long captions' segment
/// averages otherwise drift off it.
fn common_direction_spread(texts: Tensor<2>) -> Tensor<1> {
    let mean = texts.clone().mean_dim(0);
    let u = unit(mean);
    let projections = texts.matmul(u.transpose());
    let centred = projections.clone() - projections.mean_dim(0);
    centred.powi_scalar(2).mean().reshape([1])
}

/// Bradley–Terry between rows' pictures under their own captions, each row against the next
/// one (first pictures and second pictures alike), labelled by the utilities; ties left out.
fn across_prompts_loss(
    texts: Tensor<2>,
    first: Tensor<2>,
    second: Tensor<2>,
    scale: Tensor<2>,
    utilities: &[[f32; 2]],
    device: &Device,
) -> Option<Tensor<1>> {
    let n = utilities.len();
    if n < 2 {
        return None;
    }
    let s1 = (texts.clone() * first).sum_dim(1);
    let s2 = (texts * second).sum_dim(1);
    let scores = Tensor::cat(vec![s1, s2], 0) * scale;
    // Row k's comparison: the next row of its half (first or second pictures), wrapping.
    let other = |k: usize| if k % n == n - 1 { k + 1 - n } else { k + 1 };
    let next: Vec<i64> = (0..2 * n).map(|k| other(k) as i64).collect();
    let next = Tensor::<1, Int>::from_data(TensorData::new(next, [2 * n]), device);
    let margins = scores.clone() - scores.select(0, next);
    let u: Vec<f32> = (0..2 * n).map(|k| utilities[k % n][k / n]).collect();
    let (mut signs, mut kept) = (Vec::with_capacity(2 * n), 0usize);
    for k in 0..2 * n {
        let d = u[k] - u[other(k)];
        signs.push(if d.abs() < TIE { 0.0 } else { d.signum() });
        kept += usize::from(d.abs() >= TIE);
    }
    if kept == 0 {
        return None;
    }
    let signs = Tensor::<2>::from_data(TensorData::new(signs, [2 * n, 1]), device);
    // −log σ(sign·margin) on the untied comparisons (sign 0 contributes log 2, a constant).
    let loss = burn::tensor::activation::softplus(margins * signs.neg(), 1.0).sum().div_scalar(kept as f64);
    Some(loss.reshape([1]))
}

/// Warm-up over the first 5 % of steps, then cosine decay to a tenth.
pub(crate) fn learning_rate(base: f64, step: usize, total: usize) -> f64 {
    let warm = (total / 20).max(1);
    if step < warm {
        return base * (step + 1) as f64 / warm as f64;
    }
    let t = (step - warm) as f64 / (total - warm).max(1) as f64;
    base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

pub(crate) fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().convert::<f32>().try_into_vec::<f32>().ok().and_then(|v| v.first().copied()).unwrap_or(f32::NAN)
}

/// What a run did, for training.json.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Log {
    pub budget: Budget,
    pub parameters: usize,
    pub seconds: f64,
    /// (step, stage, loss, seconds since start) every `log_every` steps.
    pub losses: Vec<(usize, &'static str, f32, f64)>,
}

/// Trains from scratch and returns the model (its `logit_scale` set) and the log. `progress`
/// receives a line every `log_every` steps.
pub fn train(
    budget: &Budget,
    tokenizer: &ClipTokenizer,
    config: &ClipConfig,
    mut progress: impl FnMut(&str),
) -> Result<(Clip, Log), ClipError> {
    let device = Device::flex().autodiff();
    let weights = initial_weights(config, budget.seed)?;
    let checkpoint = Checkpoint::parse("initial weights", &weights)?;
    let clip = Clip::load(config, &checkpoint, &device, FloatDType::F32)?;
    let log_scale = Param::from_tensor(Tensor::<1>::from_data(TensorData::new(vec![clip.logit_scale], [1]), &device));
    let mut model = Trainable { clip, log_scale };
    let parameters = model.num_params();
    let mut optimizer = AdamWConfig::new().with_weight_decay(0.01).init();
    let mut rng = ChaCha8Rng::seed_from_u64(budget.seed ^ 0x5eed);
    let start = Instant::now();
    let mut log = Log { budget: budget.clone(), parameters, seconds: 0.0, losses: Vec::new() };
    let total = budget.contrastive_steps + budget.preference_steps;
    for step in 0..total {
        let contrastive_stage = step < budget.contrastive_steps;
        let (stage, loss) = if contrastive_stage {
            let batch = data::contrastive(budget.batch, &mut rng);
            let texts = model.texts(tokenizer, &batch.captions, &device)?;
            let images = model.images(&batch.images, &device);
            let spread = common_direction_spread(texts.clone()).mul_scalar(budget.common_direction);
            ("contrastive", contrastive_loss(images, texts, model.scale(), &device) + spread)
        } else {
            let batch = data::preference(budget.batch / 2, budget.unrelated_pairs, &mut rng);
            let texts = model.texts(tokenizer, &batch.captions, &device)?;
            let first = model.images(&batch.first, &device);
            let second = model.images(&batch.second, &device);
            let mut pref =
                preference_loss(texts.clone(), first.clone(), second.clone(), model.scale(), &batch.target, &device);
            if budget.common_direction > 0.0 {
                pref = pref + common_direction_spread(texts.clone()).mul_scalar(budget.common_direction);
            }
            if budget.across_prompts > 0.0 {
                let t = (texts.clone(), first.clone(), second);
                if let Some(across) = across_prompts_loss(t.0, t.1, t.2, model.scale(), &batch.utilities, &device) {
                    pref = pref + across.mul_scalar(budget.across_prompts);
                }
            }
            let loss = if batch.anchored.len() > 1 && budget.keep_contrastive > 0.0 {
                let rows: Vec<i64> = batch.anchored.iter().map(|&r| r as i64).collect();
                let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch.anchored.len()]), &device);
                let keep =
                    contrastive_loss(first.select(0, rows.clone()), texts.select(0, rows), model.scale(), &device);
                pref + keep.mul_scalar(budget.keep_contrastive)
            } else {
                pref
            };
            ("preference", loss)
        };
        let lr = if contrastive_stage {
            learning_rate(budget.learning_rate, step, budget.contrastive_steps)
        } else {
            learning_rate(budget.learning_rate * 0.3, step - budget.contrastive_steps, budget.preference_steps)
        };
        let value =
            if step % budget.log_every.max(1) == 0 || step + 1 == total { Some(scalar(loss.clone())) } else { None };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        if let Some(value) = value {
            let seconds = start.elapsed().as_secs_f64();
            if !value.is_finite() {
                return Err(ClipError::Execution(format!("the {stage} loss diverged at step {step}")));
            }
            log.losses.push((step, stage, value, seconds));
            progress(&format!("step {step:>5}/{total} {stage:<11} loss {value:.4}  lr {lr:.2e}  {seconds:.0} s"));
        }
    }
    log.seconds = start.elapsed().as_secs_f64();
    let mut clip = model.clip;
    clip.logit_scale = scalar(model.log_scale.val()).min(100f32.ln());
    Ok((clip, log))
}

/// The demo tokenizer (for the shapes-world vocabulary) and the architecture around it.
pub fn tokenizer_and_config() -> Result<(Vec<u8>, ClipTokenizer, ClipConfig), ClipError> {
    let words = crate::caption::vocabulary();
    let json = crate::vocab::tokenizer_json(&words);
    let bytes = serde_json::to_vec(&json).map_err(|e| ClipError::Tokenizer(e.to_string()))?;
    let tokenizer = ClipTokenizer::from_json(&bytes, Convention::HuggingFace, CONTEXT)?;
    let vocab = json["model"]["vocab"].as_object().map_or(0, |v| v.len());
    let config = architecture(vocab, tokenizer.end_id());
    Ok((bytes, tokenizer, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_survives_its_config_files() {
        let (_, tokenizer, config) = tokenizer_and_config().unwrap();
        let written = serde_json::to_vec(&config.to_hf_config(tokenizer.end_id() - 1).unwrap()).unwrap();
        let preprocessor = serde_json::to_vec(&config.to_hf_preprocessor()).unwrap();
        assert_eq!(ClipConfig::from_huggingface(&written, Some(&preprocessor)).unwrap(), config);
    }

    #[test]
    fn a_few_steps_lower_the_contrastive_loss() {
        let (_, tokenizer, config) = tokenizer_and_config().unwrap();
        let budget = Budget {
            seed: 1,
            contrastive_steps: 40,
            preference_steps: 2,
            batch: 8,
            learning_rate: 2e-3,
            log_every: 1,
            ..Budget::default()
        };
        let (clip, log) = train(&budget, &tokenizer, &config, |_| {}).unwrap();
        let contrastive: Vec<f32> = log.losses.iter().filter(|l| l.1 == "contrastive").map(|l| l.2).collect();
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let (first, last) = (mean(&contrastive[..8]), mean(&contrastive[contrastive.len() - 8..]));
        assert!(last < first - 0.1, "contrastive loss {first} → {last}");
        assert!(log.losses.iter().any(|l| l.1 == "preference"));
        assert!(clip.logit_scale.is_finite());
    }
}
