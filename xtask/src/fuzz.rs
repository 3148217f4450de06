//! `cargo xtask fuzz [--minutes N] [--target NAME]`: runs prefscope's fuzz targets (fuzz/) with
//! cargo-fuzz on the nightly toolchain, installing both when missing. N minutes in all
//! (default 10), shared evenly by the targets; each target starts from its committed corpus
//! (fuzz/corpus/NAME) and seeds (fuzz/seeds/NAME, the fixtures in its format), and its corpus is minimised
//! afterwards so that what is committed stays small. A crash stops the run and names the
//! input libFuzzer saved; it belongs in fuzz/regressions/NAME once fixed, where the stable
//! replay test (crates/cli/tests/fuzz_corpus.rs) keeps it fixed.

use std::process::Command;

use crate::{cargo, root, run, Result};

/// Every target in fuzz/fuzz_targets.
pub const TARGETS: &[&str] = &["checkpoint", "tokenizer", "segments", "dpo", "pairs", "manifest", "image"];

fn ensure_tools() -> Result {
    let nightly = Command::new("rustup").args(["run", "nightly", "rustc", "--version"]).output();
    if !nightly.map(|o| o.status.success()).unwrap_or(false) {
        run("rustup", &["toolchain", "install", "nightly", "--profile", "minimal"])?;
    }
    let fuzz = Command::new("cargo").args(["fuzz", "--version"]).output();
    if !fuzz.map(|o| o.status.success()).unwrap_or(false) {
        cargo(&["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}

pub fn fuzz(args: &[String]) -> Result {
    let mut minutes = 10.0;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--minutes" => {
                minutes = it
                    .next()
                    .and_then(|m| m.parse::<f64>().ok())
                    .filter(|m| m.is_finite() && *m > 0.0)
                    .ok_or("--minutes takes a positive number")?;
            }
            "--target" => only = Some(it.next().ok_or("--target takes a target name")?.clone()),
            other => return Err(format!("unknown argument `{other}` (expected --minutes N, --target NAME)")),
        }
    }
    let targets: Vec<&str> = match &only {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => return Err(format!("unknown fuzz target `{t}` (expected one of {})", TARGETS.join(", "))),
        None => TARGETS.to_vec(),
    };
    ensure_tools()?;
    let fuzz_dir = root().join("fuzz");
    let seconds = ((minutes * 60.0) / targets.len() as f64).max(1.0).round() as u64;
    let dir = fuzz_dir.to_str().ok_or("path")?;
    for target in targets {
        println!("fuzzing `{target}` for {seconds} s");
        let status = Command::new("cargo")
            .current_dir(dir)
            // New inputs go to the corpus; the seeds (fuzz/seeds, the fixtures) are read too.
            .args(["+nightly", "fuzz", "run", "-O", target])
            .arg(format!("corpus/{target}"))
            .arg(format!("seeds/{target}"))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-rss_limit_mb=2048", "-timeout=30", "-print_final_stats=1"])
            .status()
            .map_err(|e| format!("cargo fuzz: {e}"))?;
        if !status.success() {
            return Err(format!(
                "fuzz target `{target}` failed: the input is under fuzz/artifacts/{target}; fix the bug and move the \
                 input to fuzz/regressions/{target}/"
            ));
        }
        let status = Command::new("cargo")
            .current_dir(dir)
            .args(["+nightly", "fuzz", "cmin", "-O", target])
            .status()
            .map_err(|e| format!("cargo fuzz cmin: {e}"))?;
        if !status.success() {
            return Err(format!("minimising the corpus of `{target}` failed"));
        }
    }
    Ok(())
}
