//! `prefscope demo`: the embedded demo model (trained on the shapes world, crates/synth)
//! scoring the demo gallery, or evaluated against the world's ground truth (`--evaluate`);
//! `--dpo` runs the bundled DPO demo run (a caption language model trained with DPO in burn from
//! its reference, crates/synth/dpo-demo; held-out pairs with per-token log-probs) through every
//! objective, and checks the run: rewards and rankings against the reference's, and the share
//! of the per-token reward on the one word each pair is about, early and at the end.

use std::collections::BTreeMap;

use clap::Args;
use prefscope_clip::scorer::Scorer;
use prefscope_clip::{Dtype, DtypeChoice, Encoder};
use prefscope_core::io::read::Preferences;
use prefscope_core::preference::dpo::{LossType, PairwiseParams};
use prefscope_core::preference::report::{report, ReportRequest};
use prefscope_core::preference::tokens::token_rewards;
use prefscope_core::scoring::longalign::DEFAULT_REWEIGHT;
use prefscope_core::DpoTable;
use prefscope_gpu::block_on;
use prefscope_synth::demo::{self, GalleryRow};
use prefscope_synth::dpo_demo;
use serde_json::json;

use crate::device::Device;
use crate::output::Result;
use prefscope_core::io::write::metrics_json;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Evaluate the demo model on held-out draws of the shapes world instead of scoring the
    /// gallery: retrieval, preference accuracy and the decomposition's rank correlations.
    #[arg(long, conflicts_with = "dpo")]
    pub evaluate: bool,
    /// Held-out prompts (and retrieval captions) for `--evaluate`.
    #[arg(long, default_value_t = 200)]
    pub prompts: usize,
    /// Summarise the bundled DPO export instead.
    #[arg(long)]
    pub dpo: bool,
    /// β for every DPO objective (`--dpo`).
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    /// Weight of the text-irrelevant part in `reweighted` (LongAlign).
    #[arg(long, default_value_t = DEFAULT_REWEIGHT)]
    pub reweight: f32,
    /// Where the towers run (as for `score`).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: Device,
    /// What the towers keep their weights in (as for `score`); with `--evaluate` in another
    /// dtype than f32, the report adds how far it keeps f32's rankings.
    #[arg(long, default_value = "auto", value_parser = DtypeChoice::parse)]
    pub dtype: DtypeChoice,
    /// `text` for people, `json` for scripts.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

fn encoder(args: &DemoArgs, dtype: DtypeChoice) -> Result<Encoder> {
    let mut encoder = Encoder::load_with(&demo::model_files(), crate::clip::backend(args.device)?, dtype)?;
    encoder.batch = 64;
    Ok(encoder)
}

pub fn run(args: &DemoArgs) -> Result<()> {
    if args.dpo {
        dpo_summary(args)
    } else if args.evaluate {
        evaluate(args)
    } else {
        gallery(args)
    }
}

/// The demo gallery ranked per prompt, as the page shows it first.
fn gallery(args: &DemoArgs) -> Result<()> {
    let encoder = encoder(args, args.dtype)?;
    let entries = prefscope_synth::gallery::demo();
    let rows = block_on(demo::score_gallery(&encoder, &entries, Scorer::PickScore, args.reweight, None))?;
    if args.format == "json" {
        let prompts: Vec<_> = entries
            .iter()
            .map(|e| {
                let mut ranked: Vec<&GalleryRow> = rows.iter().filter(|r| r.prompt == e.prompt.text).collect();
                ranked.sort_by_key(|r| r.rank);
                json!({"prompt": e.prompt.text, "rows": ranked})
            })
            .collect();
        let doc = json!({"preset": "pickscore", "reweight": args.reweight, "reference": "shapes-world prompts", "prompts": prompts});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("prefscope demo — the embedded shapes-world model scoring the demo gallery (PickScore-style,");
    println!(
        "LongAlign split against 64 shapes-world prompts, reweighted = relevant + {} × irrelevant)",
        args.reweight
    );
    for entry in &entries {
        let mut ranked: Vec<&GalleryRow> = rows.iter().filter(|r| r.prompt == entry.prompt.text).collect();
        ranked.sort_by_key(|r| r.rank);
        let segments = ranked.first().map_or(1, |r| r.segments);
        let note = if segments > 1 { format!(" [{segments} segments]") } else { String::new() };
        println!("\n{}{note}", entry.prompt.text);
        println!(
            "  {:>4} {:<7} {:>8} {:>9} {:>10} {:>10} {:>6}  {:>5} {:>5}",
            "rank", "image", "score", "relevant", "irrelevant", "reweighted", "prob", "a", "q"
        );
        for r in ranked {
            println!(
                "  {:>4} {:<7} {:>8.3} {:>9.3} {:>10.3} {:>10.3} {:>6.3}  {:>5.2} {:>5.2}",
                r.rank, r.id, r.score, r.relevant, r.irrelevant, r.reweighted, r.probability, r.alignment, r.quality
            );
        }
    }
    Ok(())
}

/// The held-out evaluation, with the goals beside each number.
fn evaluate(args: &DemoArgs) -> Result<()> {
    let encoder = encoder(args, args.dtype)?;
    let prompts = args.prompts.max(1);
    // In another dtype, the same evaluation in f32 (on a second thread) and how far the
    // rankings moved.
    let f32 = match encoder.dtype() {
        Dtype::F32 => None,
        _ => Some(self::encoder(args, DtypeChoice::Exactly(Dtype::F32))?),
    };
    let (here, reference) = std::thread::scope(|s| {
        let reference =
            f32.as_ref().map(|f32| s.spawn(|| block_on(demo::evaluate_rows(f32, demo::EVALUATION_SEED, prompts))));
        let here = block_on(demo::evaluate_rows(&encoder, demo::EVALUATION_SEED, prompts));
        let reference = reference.map(|h| {
            h.join().unwrap_or_else(|_| Err(prefscope_clip::ClipError::Input("the f32 evaluation panicked".into())))
        });
        (here, reference)
    });
    let (e, rows) = here?;
    let against = match reference {
        Some(r) => {
            let (reference, f32_rows) = r?;
            Some((reference, demo::agreement(&f32_rows, &rows)))
        }
        None => None,
    };
    if args.format == "json" {
        let mut doc = serde_json::to_value(&e)?;
        doc["dtype"] = json!(encoder.dtype().name());
        if let Some((reference, agreement)) = &against {
            let mut f32 = serde_json::to_value(agreement)?;
            f32["metrics"] = serde_json::to_value(reference)?;
            doc["against_f32"] = f32;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "prefscope demo --evaluate — {} held-out prompts, {} scored rows, {} preference pairs, weights in {}",
        e.gallery_prompts,
        e.scored_rows,
        e.preference_pairs,
        encoder.dtype().name()
    );
    let f32 = against.as_ref().map(|(r, _)| r);
    let rows = |e: &demo::Evaluation| {
        [
            ("retrieval_top1", e.retrieval_top1, "≥ 0.8"),
            ("retrieval_top1_hard", e.retrieval_top1_hard, ""),
            ("preference_accuracy", e.preference_accuracy, "≥ 0.85"),
            ("spearman_irrelevant_quality", e.spearman_irrelevant_quality, "≥ 0.6"),
            ("spearman_relevant_alignment", e.spearman_relevant_alignment, "≥ 0.6"),
            ("spearman_irrelevant_alignment", e.spearman_irrelevant_alignment, "< 0.3"),
            ("spearman_relevant_quality", e.spearman_relevant_quality, "< 0.3"),
            ("  relevant ~ alignment within a prompt", e.spearman_relevant_alignment_within_prompt, ""),
        ]
    };
    for (k, (name, value, goal)) in rows(&e).into_iter().enumerate() {
        match f32 {
            Some(r) => println!("{name:<40} {value:>7.3}   f32 {:>7.3}   {goal}", rows(r)[k].1),
            None => println!("{name:<40} {value:>7.3}   {goal}"),
        }
    }
    if let Some((_, a)) = &against {
        println!(
            "against f32: mean Kendall τ within prompts {:.4}; best candidate changed for {} of {} prompts",
            a.kendall_tau_within_prompts, a.top1_changes, a.prompts
        );
    }
    Ok(())
}

/// Objectives the demo evaluates: every pairwise type that needs no extra setting, then the
/// standalone trainers.
fn objectives() -> Vec<&'static str> {
    let mut names: Vec<&'static str> =
        LossType::ALL.iter().filter(|l| !matches!(l, LossType::ExoPair)).map(|l| l.name()).collect();
    names.extend(["simpo", "cpo", "orpo", "kto", "bco"]);
    names
}

fn dpo_summary(args: &DemoArgs) -> Result<()> {
    let table = dpo_demo::table(false)?;
    let early = dpo_demo::summarize(&dpo_demo::table(true)?, args.beta)?;
    let last = dpo_demo::summarize(&table, args.beta)?;
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
            "beta": args.beta,
            "trained_beta": dpo_demo::BETA,
            "training": {"early": early, "final": last},
            "objectives": rows.iter().map(|(n, m)| (n.clone(), metrics_json(m))).collect::<serde_json::Map<_, _>>(),
            "token_highlights": highlights.iter().map(|h| json!({"id": h.0, "token": h.1, "reward": h.2, "share": h.3})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }

    println!("prefscope demo --dpo — {} held-out pairs of the bundled DPO run (β = {})", table.len(), args.beta);
    println!(
        "policy: a caption language model trained with the DPO sigmoid loss (β = {}) from its maximum-likelihood",
        dpo_demo::BETA
    );
    println!("reference, on pairs that differ in one colour word, warm preferred over cold\n");
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
    println!("\nthe run, early checkpoint → end of training:");
    for (label, a, b) in [
        ("rewards/accuracies", early.reward_accuracy, last.reward_accuracy),
        ("rewards/margins", early.reward_margin, last.reward_margin),
        ("ranking accuracy (policy)", early.ranking_accuracy, last.ranking_accuracy),
        ("ranking accuracy (reference)", early.reference_ranking_accuracy, last.reference_ranking_accuracy),
        ("idealized ranking accuracy", early.idealized_ranking_accuracy, last.idealized_ranking_accuracy),
        ("reward share on the differing word", early.differing_token_share, last.differing_token_share),
    ] {
        println!("  {label:<36} {a:>8.4} → {b:.4}");
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
