//! `cargo xtask train-demo`: trains the demo model from a seed and writes it, with its
//! config, preprocessor config, tokenizer and training log, to the folder given (by default
//! crates/synth/demo-model), then prints the held-out evaluation.

use std::path::PathBuf;

use clap::Parser;
use prefscope_clip::{Backend, Encoder, ModelFiles};
use prefscope_synth::demo;
use prefscope_synth::train::{self, Budget};

fn main() {
    if let Err(e) = run() {
        eprintln!("train-demo: {e}");
        std::process::exit(1);
    }
}

/// The training budget (`Budget`'s fields; its defaults are the committed model's).
#[derive(Parser)]
#[command(name = "train-demo")]
struct Args {
    /// Where the model's files are written.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/demo-model"))]
    out: PathBuf,
    #[arg(long, default_value_t = Budget::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = Budget::default().contrastive_steps)]
    contrastive_steps: usize,
    #[arg(long, default_value_t = Budget::default().preference_steps)]
    preference_steps: usize,
    /// (caption, picture) pairs per contrastive step; labelled pairs per preference step.
    #[arg(long, default_value_t = Budget::default().batch)]
    batch: usize,
    #[arg(long, default_value_t = Budget::default().learning_rate)]
    learning_rate: f64,
    /// Share of preference pairs between pictures of scenes other than the captioned one.
    #[arg(long, default_value_t = Budget::default().unrelated_pairs)]
    unrelated_pairs: f64,
    /// Weight of the contrastive loss kept during the preference stage.
    #[arg(long, default_value_t = Budget::default().keep_contrastive)]
    keep_contrastive: f64,
    /// Weight of the penalty on the spread of the texts' projections on their common direction.
    #[arg(long, default_value_t = Budget::default().common_direction)]
    common_direction: f64,
    /// Weight of the preference loss between pictures of different captions.
    #[arg(long, default_value_t = Budget::default().across_prompts)]
    across_prompts: f64,
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let out = args.out;
    let budget = Budget {
        seed: args.seed,
        contrastive_steps: args.contrastive_steps,
        preference_steps: args.preference_steps,
        batch: args.batch,
        learning_rate: args.learning_rate,
        unrelated_pairs: args.unrelated_pairs,
        keep_contrastive: args.keep_contrastive,
        common_direction: args.common_direction,
        across_prompts: args.across_prompts,
        ..Budget::default()
    };
    let (tokenizer_bytes, tokenizer, config) = train::tokenizer_and_config()?;
    eprintln!("training with {budget:?}");
    let (clip, log) = train::train(&budget, &tokenizer, &config, |line| eprintln!("{line}"))?;
    std::fs::create_dir_all(&out)?;
    let write = |name: &str, bytes: &[u8]| std::fs::write(out.join(name), bytes);
    write("model.safetensors", &pollster::block_on(clip.to_hf_safetensors())?)?;
    write("config.json", &serde_json::to_vec_pretty(&config.to_hf_config(tokenizer.end_id() - 1)?)?)?;
    write("preprocessor_config.json", &serde_json::to_vec_pretty(&config.to_hf_preprocessor())?)?;
    write("tokenizer.json", &tokenizer_bytes)?;
    write("training.json", &serde_json::to_vec_pretty(&log)?)?;
    eprintln!("wrote {} ({} parameters, {:.0} s)", out.display(), log.parameters, log.seconds);
    // What `prefscope demo --evaluate` will report, from the files just written.
    let files = ModelFiles::from_dir(&out)?;
    let mut encoder = Encoder::load(&files, Backend::Cpu)?;
    encoder.batch = 64;
    let evaluation = pollster::block_on(demo::evaluate(&encoder, demo::EVALUATION_SEED, 200))?;
    println!("{}", serde_json::to_string_pretty(&evaluation)?);
    Ok(())
}
