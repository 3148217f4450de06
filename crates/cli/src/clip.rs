//! `prefscope embed` and `prefscope score`: the CLIP towers over files, with the same code
//! the browser runs (prefscope-clip), images decoded and embedded in batches so a large
//! manifest never sits in memory decoded.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prefscope_clip::pipeline::{distinct_images, embed_images_batched, resolve, score_manifest};
use prefscope_clip::scorer::{common_text_direction, Reference, Scorer};
use prefscope_clip::{Backend, DtypeChoice, Encoder, ImageLimits, ModelFiles, Rgba};
use prefscope_core::io::read::read_manifest;
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::longalign::DEFAULT_REWEIGHT;
use prefscope_core::scoring::preprocess::Preset;
use prefscope_gpu::block_on;

use crate::device::Device;
use crate::output::{write_rows, OutputFormat, Result};

/// Options every model command shares.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Model directory: config.json + model.safetensors (transformers CLIPModel) or
    /// open_clip_config.json + open_clip_model.safetensors, and tokenizer.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Where the towers run: `auto` uses a GPU unless the only adapter is a software
    /// fallback, `gpu` insists on one, `cpu` runs prefscope's CPU kernels.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: Device,
    /// Texts or images per forward pass (at least 1).
    #[arg(long, default_value_t = 16, allow_negative_numbers = true, value_parser = at_least_one)]
    pub batch: usize,
    /// Largest image decoded, in pixels (Pillow's decompression-bomb limit by default); a file
    /// that declares more is refused from its header, before anything is allocated.
    #[arg(long, default_value_t = prefscope_clip::image::DEFAULT_MAX_IMAGE_PIXELS, allow_negative_numbers = true,
          value_parser = at_least_one_u64)]
    pub max_image_pixels: u64,
    /// What the towers keep their matrices in: `f32` (exact parity with the reference
    /// implementations), `f16` (half the memory), `q8` (int8 weights and activations on the
    /// CPU, a quarter of the memory; f16 on the GPU), or `auto`: a checkpoint from `prefscope
    /// quantize` in its stored dtype, other F16/BF16 checkpoints in f16 on the GPU, f32
    /// elsewhere. Activations are f32 in every dtype. `fp32`/`fp16` also work.
    #[arg(long, alias = "precision", default_value = "auto", value_parser = DtypeChoice::parse)]
    pub dtype: DtypeChoice,
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// UTF-8 text file, one text per line.
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// Image files or folders (every image inside, by name), several after one flag.
    #[arg(long, num_args = 1..)]
    pub images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// CSV or JSON Lines with `prompt`, `image` and optional `group`, `id`; relative image
    /// paths are resolved against the manifest's folder.
    #[arg(long)]
    pub manifest: PathBuf,
    /// clip (logits), clipscore (torchmetrics, 100·cos), clipscore-original (2.5·max(cos, 0)
    /// with "A photo depicts "), pickscore, hps (cosine, longest-side pad).
    #[arg(long, default_value = "clip")]
    pub preset: String,
    /// Weight of the text-irrelevant part in `reweighted` (LongAlign).
    #[arg(long, default_value_t = DEFAULT_REWEIGHT, allow_negative_numbers = true)]
    pub reweight: f32,
    /// Prompts (one per line) whose mean embedding is the common text direction; the bundled
    /// set when absent.
    #[arg(long)]
    pub reference_prompts: Option<PathBuf>,
}

/// A count that must be at least 1, parsed from whatever the user typed (a negative number
/// included) so that the message is ours.
fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<i128>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("must be at most {}, got {text}", usize::MAX)),
        _ => Err(format!("must be a whole number of at least 1, got `{text}`")),
    }
}

fn at_least_one_u64(text: &str) -> std::result::Result<u64, String> {
    at_least_one(text).map(|n| n as u64)
}

/// The towers' backend for `--device`: a GPU or prefscope's CPU kernels (announced on stderr).
pub fn backend(device: Device) -> Result<Backend> {
    Ok(match crate::device::open(device)? {
        Some(gpu) => Backend::Gpu(gpu),
        None => Backend::Cpu,
    })
}

impl ModelArgs {
    /// The options of a command that takes a model beside its own input (`diversity`,
    /// `groups`): the defaults, with its model, device and output format.
    pub fn for_model(model: &std::path::Path, device: Device, format: OutputFormat) -> Self {
        ModelArgs {
            model: model.to_path_buf(),
            device,
            batch: 16,
            max_image_pixels: prefscope_clip::image::DEFAULT_MAX_IMAGE_PIXELS,
            dtype: DtypeChoice::Auto,
            format,
            out: None,
        }
    }

    pub fn limits(&self) -> ImageLimits {
        ImageLimits { max_pixels: self.max_image_pixels }
    }
}

pub fn load(args: &ModelArgs) -> Result<Encoder> {
    let files = ModelFiles::from_dir(&args.model)?;
    let mut encoder = Encoder::load_with(&files, backend(args.device)?, args.dtype)?;
    eprintln!("towers keep their matrices in {}", encoder.dtype().name());
    encoder.batch = args.batch.max(1);
    Ok(encoder)
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "jfif"];

/// Files given, folders expanded to their images sorted by name.
fn image_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| format!("{}: {e}", input.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

/// Decodes and embeds images a batch at a time, with a progress bar past one batch.
fn embed_image_files(
    encoder: &Encoder,
    paths: &[PathBuf],
    preset: &Preset,
    limits: &ImageLimits,
) -> Result<Embeddings> {
    let bar = (paths.len() > encoder.batch).then(|| bar(paths.len(), "embedding images"));
    let embedded = block_on(embed_images_batched(
        encoder,
        paths.len(),
        preset,
        &mut |i| Rgba::open(&paths[i], limits),
        &mut |n| {
            if let Some(bar) = &bar {
                bar.inc(n as u64);
            }
        },
    ))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(embedded)
}

pub fn embed(args: &EmbedArgs) -> Result<()> {
    if args.texts.is_none() && args.images.is_empty() {
        return Err("nothing to embed: give --texts FILE and/or --images PATH…".into());
    }
    let encoder = load(&args.model)?;
    let mut kinds = Vec::new();
    let mut inputs = Vec::new();
    let mut vectors: Vec<Vec<f32>> = Vec::new();
    if let Some(path) = &args.texts {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let texts: Vec<String> = text.lines().map(str::to_string).collect();
        let bar = (texts.len() > encoder.batch).then(|| bar(texts.len(), "embedding texts"));
        for chunk in texts.chunks(encoder.batch * 4) {
            for (text, embedded) in chunk.iter().zip(block_on(encoder.embed_texts(chunk))?) {
                kinds.push("text".to_string());
                inputs.push(text.clone());
                vectors.push(prefscope_core::scoring::embedding::normalize(&embedded.vector));
            }
            if let Some(bar) = &bar {
                bar.inc(chunk.len() as u64);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    let paths = image_paths(&args.images)?;
    let images = embed_image_files(&encoder, &paths, &encoder.preset(), &args.model.limits())?;
    for (i, path) in paths.iter().enumerate() {
        kinds.push("image".to_string());
        inputs.push(path.display().to_string());
        vectors.push(images.row(i).to_vec());
    }
    let table = OutputTable::new(vec![
        ("kind".into(), Column::Text(kinds)),
        ("input".into(), Column::Text(inputs)),
        ("embedding".into(), Column::Vector(vectors)),
    ]);
    write_rows(args.model.format, args.model.out.as_ref(), &table)
}

pub fn run_score(args: &ScoreArgs) -> Result<()> {
    let scorer = Scorer::parse(&args.preset)?;
    if !args.reweight.is_finite() {
        return Err(format!("--reweight must be a finite number, got {}", args.reweight).into());
    }
    let bytes = std::fs::read(&args.manifest).map_err(|e| format!("{}: {e}", args.manifest.display()))?;
    let rows = read_manifest(&args.manifest.display().to_string(), &bytes)?;
    let reference = match &args.reference_prompts {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let prompts: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
            if prompts.is_empty() {
                return Err(format!("{}: no prompts", path.display()).into());
            }
            Reference::Prompts(prompts)
        }
        None => Reference::Bundled,
    };
    let encoder = load(&args.model)?;
    // Each distinct image file is decoded and embedded once.
    let (image_rows, first_rows) = distinct_images(rows.iter().map(|r| Some(resolve(&args.manifest, &r.image))));
    let paths: Vec<PathBuf> = first_rows.iter().map(|&r| resolve(&args.manifest, &rows[r].image)).collect();
    let images = embed_image_files(&encoder, &paths, &scorer.preset(encoder.preset()), &args.model.limits())?;
    let u = block_on(common_text_direction(&encoder, scorer, &reference))?;
    let scored = block_on(score_manifest(&encoder, &rows, &image_rows, images, scorer, args.reweight, u))?;
    let table = prefscope_clip::scorer::rows_table(&scored);
    eprintln!(
        "{} rows scored with {} ({}); common direction from {} reference prompts",
        scored.len(),
        scorer.name(),
        prefscope_clip::encoder::layout_name(encoder.config().layout),
        match &reference {
            Reference::Bundled => "the bundled".to_string(),
            Reference::Prompts(p) => format!("{} user", p.len()),
        }
    );
    write_rows(args.model.format, args.model.out.as_ref(), &table)
}
