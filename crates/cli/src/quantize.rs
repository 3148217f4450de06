//! `prefscope quantize`: a model directory rewritten with its matrices in int8 or f16
//! (prefscope-clip's `quantize`), beside its config, tokenizer and preprocessor files, so that
//! the page downloads a quarter (q8) or half (f16) of the bytes.

use std::path::PathBuf;

use clap::Args;
use prefscope_clip::quantize::quantize;
use prefscope_clip::weights::Checkpoint;
use prefscope_clip::{Dtype, ModelFiles};
use prefscope_gpu::block_on;

use crate::output::Result;

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The model directory to read (transformers CLIPModel or open_clip safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// `q8` (int8 per output channel with F32 scales) or `f16`.
    #[arg(long, value_parser = parse_dtype)]
    pub dtype: Dtype,
    /// The directory to write (created; files already there are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_dtype(text: &str) -> std::result::Result<Dtype, String> {
    match Dtype::parse(text) {
        Some(Dtype::F32) => Err("quantize writes q8 or f16; f32 is what a checkpoint already holds".into()),
        Some(dtype) => Ok(dtype),
        None => Err(format!("unknown dtype `{text}` (expected q8 or f16)")),
    }
}

pub fn run(args: &QuantizeArgs) -> Result<()> {
    let files = ModelFiles::from_dir(&args.model)?;
    let (config, weights) = files.config()?;
    let path = args.model.join(&weights);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let checkpoint = Checkpoint::parse(&path.display().to_string(), &bytes)?;
    let summary = block_on(quantize(&config, &checkpoint, args.dtype))?;
    if args.out.canonicalize().ok() == args.model.canonicalize().ok() {
        return Err(format!(
            "--out {} is the model directory: write the quantized model elsewhere",
            args.out.display()
        )
        .into());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for name in files.names().into_iter().filter(|n| *n != weights) {
        let to = args.out.join(name);
        std::fs::copy(args.model.join(name), &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    let to = args.out.join(&weights);
    std::fs::write(&to, &summary.bytes).map_err(|e| format!("{}: {e}", to.display()))?;
    let report = serde_json::json!({
        "dtype": args.dtype.name(),
        "weights": to.display().to_string(),
        "bytes_in": bytes.len(),
        "bytes_out": summary.bytes.len(),
        "tensors_converted": summary.converted,
        "tensors_kept": summary.kept,
    });
    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    Ok(())
}
