//! `prefscope demo`: the bundled export (a byte-level GPT-2 policy trained with DPO from its
//! reference, held-out pairs with per-token log-probs; see tests/fixtures/generate.py) run
//! through every objective, the ranking accuracies and the per-token rewards.

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::Args;
use prefscope_core::dpo::{LossType, PairwiseParams};
use prefscope_core::read::{read_preferences, Format, Input, Preferences};
use prefscope_core::report::{report, ReportRequest};
use prefscope_core::tokens::token_rewards;
use prefscope_core::DpoTable;
use serde_json::json;

use crate::output::{metrics_json, Result};

/// The bundled DPO export.
pub const SAMPLE: &str = include_str!("../../../tests/fixtures/dpo_sample.jsonl");

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// β for every objective.
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    /// `text` for people, `json` for scripts.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

pub fn sample_table() -> Result<DpoTable> {
    let input = Input::Bytes { name: "bundled dpo_sample.jsonl", bytes: Bytes::from_static(SAMPLE.as_bytes()) };
    match read_preferences(input, Some(Format::Jsonl), &mut |_| {})? {
        Preferences::Dpo(t) => Ok(t),
        Preferences::Diffusion(_) => Err("bundled sample is not DPO data".into()),
    }
}

/// Objectives the demo evaluates: every pairwise type that needs no extra setting, then the
/// standalone trainers.
fn objectives() -> Vec<&'static str> {
    let mut names: Vec<&'static str> =
        LossType::ALL.iter().filter(|l| !matches!(l, LossType::ExoPair)).map(|l| l.name()).collect();
    names.extend(["simpo", "cpo", "orpo", "kto", "bco"]);
    names
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let table = sample_table()?;
    let data = Preferences::Dpo(table.clone());
    let mut rows: Vec<(String, BTreeMap<String, f64>)> = Vec::new();
    for name in objectives() {
        let request = ReportRequest {
            objective: name.into(),
            beta: Some(args.beta),
            params: PairwiseParams::default(),
            ..ReportRequest::default()
        };
        rows.push((name.to_string(), report(&data, &request)?.evaluation.metrics));
    }
    let sigmoid = &rows[0].1;
    let highlights = token_highlights(&table, args.beta, 5);

    if args.format == "json" {
        let doc = json!({
            "pairs": table.len(),
            "objectives": rows.iter().map(|(n, m)| (n.clone(), metrics_json(m))).collect::<serde_json::Map<_, _>>(),
            "token_highlights": highlights.iter().map(|h| json!({"id": h.0, "token": h.1, "reward": h.2, "share": h.3})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }

    println!("prefscope demo — {} held-out pairs from the bundled DPO export (β = {})", table.len(), args.beta);
    println!("policy: byte-level GPT-2 trained with the DPO sigmoid loss from its reference; warm colours preferred\n");
    println!("{:<14} {:>10} {:>10} {:>10} {:>10}", "objective", "loss", "accuracy", "margin", "chosen");
    for (name, m) in &rows {
        let get = |k: &str| m.get(k).map_or("—".to_string(), |v| format!("{v:.4}"));
        println!(
            "{:<14} {:>10} {:>10} {:>10} {:>10}",
            name,
            get("loss"),
            get("rewards/accuracies"),
            get("rewards/margins"),
            get("rewards/chosen")
        );
    }
    println!();
    for key in ["ranking/accuracy", "ranking/accuracy_normalized", "ranking/idealized_accuracy"] {
        if let Some(v) = sigmoid.get(key) {
            println!("{key:<28} {v:.4}");
        }
    }
    println!("\nlargest per-token implicit rewards β(logπ − logπref) on chosen completions:");
    for (id, token, reward, share) in &highlights {
        println!("  {id:<10} {token:?} reward {reward:+.4} ({:.0}% of the pair's total)", share * 100.0);
    }
    Ok(())
}

/// Chosen-side tokens with the largest reward, one per pair, for the first `n` pairs.
fn token_highlights(table: &DpoTable, beta: f64, n: usize) -> Vec<(String, String, f64, f64)> {
    let rewards = token_rewards(&table.chosen_tokens, beta);
    (0..table.len().min(n))
        .filter_map(|i| {
            let range = table.chosen_tokens.range(i);
            let r = &rewards[range.clone()];
            let total: f64 = r.iter().map(|x| x.abs()).sum();
            let (k, best) = r.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))?;
            let token = table.chosen_tokens.tokens.get(i).map_or(String::new(), |t| t[k].clone());
            Some((table.id[i].clone(), token, *best, if total > 0.0 { best.abs() / total } else { 0.0 }))
        })
        .collect()
}
