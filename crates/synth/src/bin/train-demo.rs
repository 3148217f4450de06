//! `cargo xtask train-demo`: trains the demo model from a seed and writes it, with its
//! config, preprocessor config, tokenizer and training log, to the folder given (by default
//! crates/synth/demo-model), then prints the held-out evaluation.

use std::path::PathBuf;

use prefscope_clip::{Backend, Encoder, ModelFiles};
use prefscope_synth::demo;
use prefscope_synth::train::{self, Budget};

fn main() {
    if let Err(e) = run() {
        eprintln!("train-demo: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut budget = Budget::default();
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/demo-model"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--seed" => budget.seed = value()?.parse()?,
            "--contrastive-steps" => budget.contrastive_steps = value()?.parse()?,
            "--preference-steps" => budget.preference_steps = value()?.parse()?,
            "--batch" => budget.batch = value()?.parse()?,
            "--learning-rate" => budget.learning_rate = value()?.parse()?,
            "--unrelated-pairs" => budget.unrelated_pairs = value()?.parse()?,
            "--keep-contrastive" => budget.keep_contrastive = value()?.parse()?,
            "--common-direction" => budget.common_direction = value()?.parse()?,
            "--across-prompts" => budget.across_prompts = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
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
