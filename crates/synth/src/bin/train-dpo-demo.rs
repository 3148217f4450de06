//! `cargo xtask train-dpo-demo`: trains the DPO demo's reference and policy from a seed and
//! writes the held-out exports (final and early checkpoint) and the training log to the folder
//! given (by default crates/synth/dpo-demo), then prints both summaries.

use std::path::PathBuf;

use prefscope_core::DpoRecord;
use prefscope_synth::train::dpo_run::{run, DpoBudget};

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("train-dpo-demo: {e}");
        std::process::exit(1);
    }
}

fn jsonl(records: &[DpoRecord]) -> Result<String, serde_json::Error> {
    records.iter().map(|r| serde_json::to_string(r).map(|line| line + "\n")).collect()
}

fn main_inner() -> Result<(), Box<dyn std::error::Error>> {
    let mut budget = DpoBudget::default();
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/dpo-demo"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--seed" => budget.seed = value()?.parse()?,
            "--mle-steps" => budget.mle_steps = value()?.parse()?,
            "--dpo-steps" => budget.dpo_steps = value()?.parse()?,
            "--early-step" => budget.early_step = value()?.parse()?,
            "--beta" => budget.beta = value()?.parse()?,
            "--dpo-learning-rate" => budget.dpo_learning_rate = value()?.parse()?,
            "--held-out-scenes" => budget.held_out_scenes = value()?.parse()?,
            "--dpo-epsilon" => budget.dpo_epsilon = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    eprintln!("training with {budget:?}");
    let result = run(&budget, |line| eprintln!("{line}"))?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("heldout.jsonl"), jsonl(&result.last)?)?;
    std::fs::write(out.join("heldout_early.jsonl"), jsonl(&result.early)?)?;
    std::fs::write(out.join("training.json"), serde_json::to_vec_pretty(&result.log)?)?;
    eprintln!("wrote {} ({} parameters, {:.0} s)", out.display(), result.log.parameters, result.log.seconds);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"early": result.log.early, "last": result.log.last}))?
    );
    Ok(())
}
