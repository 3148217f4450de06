//! `prefscope demo`: the embedded shapes-world model on the demo gallery and on held-out
//! draws, judged against the world's ground truth (alignment, quality, utility).

mod common;

use common::{json_of, prefscope};

use serde_json::Value;

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn demo_ranks_the_gallery_by_utility() {
    let doc = json_of(&prefscope(&["demo", "--format", "json", "--device", "cpu"]));
    let prompts = doc["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 8);
    let mut best_utility_on_top = 0;
    for prompt in prompts {
        let rows = prompt["rows"].as_array().unwrap();
        assert!((6..=8).contains(&rows.len()));
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["rank"].as_u64().unwrap(), i as u64 + 1, "rows come in rank order");
            let (relevant, irrelevant) = (f(row, "relevant"), f(row, "irrelevant"));
            assert!((relevant + irrelevant - f(row, "score")).abs() < 1e-3 * f(row, "score").abs().max(1.0));
            assert!((f(row, "reweighted") - (relevant + 0.3 * irrelevant)).abs() < 1e-3);
        }
        let top = f(&rows[0], "utility");
        best_utility_on_top += usize::from(rows.iter().all(|r| f(r, "utility") <= top + 0.25));
    }
    // The model's first choice is (near) the best candidate for most prompts.
    assert!(best_utility_on_top >= 6, "{best_utility_on_top} of 8 prompts");
    let text = prefscope(&["demo", "--device", "cpu"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("irrelevant") && text.contains("segments]"), "{text}");
}

#[test]
fn demo_evaluate_reports_the_issue_metrics_and_q8_keeps_them() {
    // One run in q8 evaluates in f32 as well (`against_f32`): both on the 200 held-out prompts.
    let doc = json_of(&prefscope(&[
        "demo",
        "--evaluate",
        "--format",
        "json",
        "--prompts",
        "200",
        "--device",
        "cpu",
        "--dtype",
        "q8",
    ]));
    assert_eq!(doc["dtype"], "q8");
    let against = &doc["against_f32"];
    let f32 = &against["metrics"];
    let keys = [
        "retrieval_top1",
        "retrieval_top1_hard",
        "preference_accuracy",
        "spearman_irrelevant_quality",
        "spearman_relevant_alignment",
        "spearman_irrelevant_alignment",
        "spearman_relevant_quality",
        "spearman_relevant_alignment_within_prompt",
    ];
    for key in keys {
        assert!(f(f32, key).is_finite(), "{key}");
    }
    assert!(f(f32, "retrieval_top1") >= RETRIEVAL, "{f32}");
    assert!(f(f32, "preference_accuracy") >= PREFERENCE, "{f32}");
    assert!(f(f32, "spearman_irrelevant_quality") >= QUALITY, "{f32}");
    assert!(f(f32, "spearman_relevant_alignment") >= ALIGNMENT, "{f32}");
    assert!(f(f32, "spearman_irrelevant_alignment").abs() < CROSS, "{f32}");
    assert!(f(f32, "spearman_relevant_quality").abs() < CROSS, "{f32}");
    // q8 against f32 (issue 31): the rankings within each prompt, and every metric within 0.01.
    // Measured: τ 0.984, the best candidate changed for 5 of 200 prompts, metrics within 0.002.
    let tau = f(against, "kendall_tau_within_prompts");
    println!(
        "q8 against f32: τ {tau:.4}, top-1 changed for {} of {} prompts",
        against["top1_changes"], against["prompts"]
    );
    assert!(tau >= 0.97, "{against}");
    assert_eq!(against["prompts"], 200);
    for key in keys {
        assert!((f(&doc, key) - f(f32, key)).abs() <= 0.01, "{key}: q8 {} against f32 {}", f(&doc, key), f(f32, key));
    }
}

// The committed model measures 0.895, 0.852, 0.808 / 0.641 and |ρ| ≤ 0.253 on the 200 prompts
// (README's numbers, which meet every goal of the evaluation); the bars sit a little below, so
// a retrained or broken model that loses ground fails here.
const RETRIEVAL: f64 = 0.85;
const PREFERENCE: f64 = 0.82;
const QUALITY: f64 = 0.75;
const ALIGNMENT: f64 = 0.6;
const CROSS: f64 = 0.3;
