//! `prefscope diversity`: how much of an image set's diversity its prompts explain (the
//! Schur-complement split of "Dissecting CLIP"), over the whole set and each group, from
//! paired embeddings or from a model and a manifest.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use prefscope_clip::pipeline::{distinct_images, embed_images_batched, resolve};
use prefscope_clip::Rgba;
use prefscope_core::io::read::{read_embedding_pairs, read_manifest, EmbeddingPairs};
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::scoring::diversity::{split_by_group, Kernel, Paired, SetSplit};
use prefscope_gpu::block_on;
use serde_json::{json, Value};

use crate::clip::{load, ModelArgs};
use crate::device::Device;
use crate::output::{write_document, OutputFormat, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// Cosine similarities between embedding dimensions (parameter-free; d × d matrices).
    Cosine,
    /// The Gaussian kernel through random Fourier features (`--sigma`, `--rff-dim`, `--seed`).
    Gaussian,
}

#[derive(Args, Debug)]
pub struct DiversityArgs {
    /// JSON Lines or Parquet rows with `text_embedding` and `image_embedding` (arrays of one
    /// width), optional `group` and `id`.
    #[arg(long, required_unless_present = "manifest", conflicts_with = "manifest")]
    pub input: Option<PathBuf>,
    /// Model directory whose towers embed the manifest's prompts and images (L2-normalised, as
    /// `prefscope embed` gives them).
    #[arg(long, requires = "manifest")]
    pub model: Option<PathBuf>,
    /// CSV or JSON Lines with `prompt`, `image` and optional `group`, `id` (with `--model`).
    #[arg(long, requires = "model")]
    pub manifest: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cosine")]
    pub kernel: KernelArg,
    /// Bandwidth of the Gaussian kernel. The reference's 3.5 suits raw CLIP ViT-B/32
    /// embeddings (norms near 10); unit-norm embeddings call for about a tenth of that.
    #[arg(long, default_value_t = 3.5, allow_negative_numbers = true)]
    pub sigma: f64,
    /// Random Fourier features D of the Gaussian kernel (matrices of 2D × 2D; at most 2500).
    #[arg(long, default_value_t = 256)]
    pub rff_dim: usize,
    /// Seed of the random features' draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the towers run (with `--model`).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: Device,
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &DiversityArgs) -> Result<()> {
    let pairs = match (&args.input, &args.model, &args.manifest) {
        (Some(input), _, _) => {
            let name = input.display().to_string();
            let bytes = std::fs::read(input).map_err(|e| format!("{name}: cannot read: {e}"))?;
            read_embedding_pairs(&name, Bytes::from(bytes))?
        }
        (None, Some(model), Some(manifest)) => embed_manifest(args, model, manifest)?,
        _ => return Err("give --input FILE, or --model DIR with --manifest FILE".into()),
    };
    let kernel = match args.kernel {
        KernelArg::Cosine => Kernel::Cosine,
        KernelArg::Gaussian => Kernel::gaussian(args.sigma, pairs.dim, args.rff_dim, args.seed)?,
    };
    let rows = pairs.ids.len();
    let paired = Paired { rows, dim: pairs.dim, text: &pairs.text, image: &pairs.image };
    let (overall, groups) = split_by_group(&paired, &pairs.groups, &kernel)?;
    let mut document = entry(&overall);
    if let Value::Object(map) = &mut document {
        map.remove("group");
        map.insert("kernel".into(), json!(kernel_name(args.kernel)));
        map.insert("groups".into(), Value::Array(groups.iter().map(entry).collect()));
    }
    let table = OutputTable::new(vec![
        ("group".into(), Column::Text(groups.iter().map(|g| g.group.clone().unwrap_or_default()).collect())),
        ("images".into(), Column::Int(groups.iter().map(|g| g.images as i64).collect())),
        ("prompts".into(), Column::Int(groups.iter().map(|g| g.prompts as i64).collect())),
        ("sce".into(), Column::Float(groups.iter().map(|g| g.split.as_ref().map_or(f64::NAN, |s| s.sce)).collect())),
        (
            "text_part".into(),
            Column::Float(groups.iter().map(|g| g.split.as_ref().map_or(f64::NAN, |s| s.text_part)).collect()),
        ),
    ]);
    let summary = format!(
        "whole set: {} images, {} prompts, sce {:.6}, text part {:.6}",
        overall.images,
        overall.prompts,
        overall.split.as_ref().map_or(f64::NAN, |s| s.sce),
        overall.split.as_ref().map_or(f64::NAN, |s| s.text_part)
    );
    write_document(args.format, args.out.as_ref(), &table, document, &summary)
}

fn kernel_name(k: KernelArg) -> &'static str {
    match k {
        KernelArg::Cosine => "cosine",
        KernelArg::Gaussian => "gaussian",
    }
}

/// `{"group", "images", "prompts", "sce", "text_part"}`; a set of one image has no split
/// (`null`s).
fn entry(s: &SetSplit) -> Value {
    json!({
        "group": s.group,
        "images": s.images,
        "prompts": s.prompts,
        "sce": s.split.as_ref().map(|s| s.sce),
        "text_part": s.split.as_ref().map(|s| s.text_part),
    })
}

/// The manifest's prompts and images through the model's towers (each distinct prompt and
/// image file once), as paired rows.
fn embed_manifest(args: &DiversityArgs, model: &Path, manifest: &Path) -> Result<EmbeddingPairs> {
    let bytes = std::fs::read(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let rows = read_manifest(&manifest.display().to_string(), &bytes)?;
    let model_args = ModelArgs::for_model(model, args.device, args.format);
    let encoder = load(&model_args)?;
    let (prompt_of_row, first_prompt) = distinct_images(rows.iter().map(|r| Some(r.prompt.as_str())));
    let prompts: Vec<String> = first_prompt.iter().map(|&r| rows[r].prompt.clone()).collect();
    let mut text_vectors = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(encoder.batch) {
        for embedded in block_on(encoder.embed_texts(chunk))? {
            text_vectors.push(prefscope_core::scoring::embedding::normalize(&embedded.vector));
        }
    }
    let paths: Vec<PathBuf> = rows.iter().map(|r| resolve(manifest, &r.image)).collect();
    let (image_of_row, first_row) = distinct_images(paths.iter().map(Some));
    let limits = model_args.limits();
    let images = block_on(embed_images_batched(
        &encoder,
        first_row.len(),
        &encoder.preset(),
        &mut |i| Rgba::open(&paths[first_row[i]], &limits),
        &mut |_| {},
    ))?;
    let dim = images.dim;
    let mut out = EmbeddingPairs { ids: vec![], groups: vec![], dim, text: vec![], image: vec![] };
    for (i, row) in rows.iter().enumerate() {
        out.ids.push(row.id.clone().unwrap_or_else(|| (i + 1).to_string()));
        out.groups.push(row.group.clone());
        out.text.extend(text_vectors[prompt_of_row[i]].iter().map(|&v| v as f64));
        out.image.extend(images.row(image_of_row[i]).iter().map(|&v| v as f64));
    }
    Ok(out)
}
