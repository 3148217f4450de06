//! `prefscope convert --hps`: a PyTorch checkpoint of an open_clip model (HPS v2 / v2.1's
//! `.pt` release) written as an open_clip model directory: the base model's config, tokenizer
//! and preprocessor files beside the checkpoint's weights as open_clip_model.safetensors
//! (prefscope-clip's `convert` and `torch`, which read the pickle without running it).

use std::path::PathBuf;

use clap::Args;
use prefscope_clip::convert::{read_checked, stored_dtype, write_safetensors};
use prefscope_clip::{ClipConfig, ModelFiles};

use crate::output::Result;

const OPEN_CLIP_CONFIG: &str = "open_clip_config.json";
const OPEN_CLIP_WEIGHTS: &str = "open_clip_model.safetensors";

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The PyTorch checkpoint (`HPS_v2_compressed.pt`, `HPS_v2.1_compressed.pt`, …): a
    /// torch.save zip of `{"state_dict": …}` or of the state dict itself, in f32, f16 or bf16.
    /// Its pickle is read, never run: only tensors and plain containers are accepted.
    #[arg(long, value_name = "FILE.pt")]
    pub hps: PathBuf,
    /// The open_clip model directory the checkpoint fine-tunes (for HPS v2 and v2.1:
    /// laion/CLIP-ViT-H-14-laion2B-s32B-b79K). Its open_clip_config.json fixes every tensor's name
    /// and shape; its JSON files (configs, tokenizer) are copied. Its weights are not read.
    #[arg(long, value_name = "BASE_DIR")]
    pub like: PathBuf,
    /// The directory to write (created; files already there are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let base = ModelFiles::from_dir(&args.like)?;
    let Some(config) = base.read(OPEN_CLIP_CONFIG)? else {
        return Err(format!(
            "--like {}: no {OPEN_CLIP_CONFIG}; it must be the open_clip model directory the checkpoint \
             fine-tunes (for HPS v2: laion/CLIP-ViT-H-14-laion2B-s32B-b79K)",
            args.like.display()
        )
        .into());
    };
    let config = ClipConfig::from_open_clip(&config)?;
    if args.out.canonicalize().ok() == args.like.canonicalize().ok() {
        return Err(format!(
            "--out {} is the --like directory: write the converted model elsewhere",
            args.out.display()
        )
        .into());
    }
    // transformers' weights win over open_clip's when both are present (ModelFiles::config):
    // a stale model.safetensors beside the copied config.json would be loaded instead.
    let stale = args.out.join("model.safetensors");
    if stale.exists() {
        return Err(format!(
            "--out {} already holds model.safetensors, which loaders would read instead of the converted \
             weights: remove it or choose an empty directory",
            args.out.display()
        )
        .into());
    }
    let file = args.hps.display().to_string();
    let bytes = std::fs::read(&args.hps).map_err(|e| format!("{file}: {e}"))?;
    let state = read_checked(&file, &bytes, &config)?;

    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut copied = Vec::new();
    for name in base.names().into_iter().filter(|n| !n.ends_with(".safetensors")) {
        let to = args.out.join(name);
        std::fs::copy(args.like.join(name), &to).map_err(|e| format!("{}: {e}", to.display()))?;
        copied.push(name);
    }
    if !base.contains("tokenizer.json") {
        eprintln!(
            "note: {} has no tokenizer.json; add the CLIP tokenizer's before embedding with {}",
            args.like.display(),
            args.out.display()
        );
    }
    let to = args.out.join(OPEN_CLIP_WEIGHTS);
    write_safetensors(&state, &to)?;
    let bytes_out = std::fs::metadata(&to).map_err(|e| format!("{}: {e}", to.display()))?.len();
    let report = serde_json::json!({
        "checkpoint": file,
        "like": args.like.display().to_string(),
        "weights": to.display().to_string(),
        "dtype": stored_dtype(&state),
        "tensors": state.tensors.len(),
        "bytes_in": bytes.len(),
        "bytes_out": bytes_out,
        "prefix_stripped": state.stripped_prefix,
        "f64_narrowed": state.narrowed,
        "entries_skipped": state.other_entries,
        "copied": copied,
    });
    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    Ok(())
}
