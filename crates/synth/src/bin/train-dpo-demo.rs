//! `cargo xtask train-dpo-demo`: trains the DPO demo's reference and policy from a seed and
//! writes the held-out exports (final and early checkpoint, and every `export_every` steps
//! between them into run/) and the training log to the folder
//! given (by default crates/synth/dpo-demo), then prints both summaries.

use std::path::PathBuf;

use clap::Parser;
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

/// The training budget (`DpoBudget`'s fields; its defaults are the committed run's).
#[derive(Parser)]
#[command(name = "train-dpo-demo")]
struct Args {
    /// Where the exports and the log are written.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/dpo-demo"))]
    out: PathBuf,
    #[arg(long, default_value_t = DpoBudget::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = DpoBudget::default().mle_steps)]
    mle_steps: usize,
    #[arg(long, default_value_t = DpoBudget::default().dpo_steps)]
    dpo_steps: usize,
    /// DPO step after which the early checkpoint is exported.
    #[arg(long, default_value_t = DpoBudget::default().early_step)]
    early_step: usize,
    /// Every this many DPO steps the held-out pairs are exported into run/ too (0: never).
    #[arg(long, default_value_t = DpoBudget::default().export_every)]
    export_every: usize,
    #[arg(long, default_value_t = DpoBudget::default().beta)]
    beta: f64,
    #[arg(long, default_value_t = DpoBudget::default().dpo_learning_rate)]
    dpo_learning_rate: f64,
    /// One-object scenes (of 50) whose warm × cold pairs are held out.
    #[arg(long, default_value_t = DpoBudget::default().held_out_scenes)]
    held_out_scenes: usize,
    /// AdamW's ε in the DPO stage.
    #[arg(long, default_value_t = DpoBudget::default().dpo_epsilon)]
    dpo_epsilon: f64,
}

fn main_inner() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let out = args.out;
    let budget = DpoBudget {
        seed: args.seed,
        mle_steps: args.mle_steps,
        dpo_steps: args.dpo_steps,
        early_step: args.early_step,
        export_every: args.export_every,
        beta: args.beta,
        dpo_learning_rate: args.dpo_learning_rate,
        held_out_scenes: args.held_out_scenes,
        dpo_epsilon: args.dpo_epsilon,
        ..DpoBudget::default()
    };
    eprintln!("training with {budget:?}");
    let result = run(&budget, |line| eprintln!("{line}"))?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("heldout.jsonl"), jsonl(&result.last)?)?;
    std::fs::write(out.join("heldout_early.jsonl"), jsonl(&result.early)?)?;
    // The checkpoints between them, named by their step (the DPO view's bundled run).
    let run = out.join("run");
    std::fs::create_dir_all(&run)?;
    for (step, records) in &result.checkpoints {
        std::fs::write(run.join(format!("eval-{step}.jsonl")), jsonl(records)?)?;
    }
    std::fs::write(out.join("training.json"), serde_json::to_vec_pretty(&result.log)?)?;
    eprintln!("wrote {} ({} parameters, {:.0} s)", out.display(), result.log.parameters, result.log.seconds);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"early": result.log.early, "last": result.log.last}))?
    );
    Ok(())
}
