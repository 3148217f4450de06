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
fn demo_evaluate_reports_the_issue_metrics() {
    let doc = json_of(&prefscope(&["demo", "--evaluate", "--format", "json", "--prompts", "60", "--device", "cpu"]));
    for key in [
        "retrieval_top1",
        "preference_accuracy",
        "spearman_irrelevant_quality",
        "spearman_relevant_alignment",
        "spearman_irrelevant_alignment",
        "spearman_relevant_quality",
    ] {
        assert!(f(&doc, key).is_finite(), "{key}");
    }
    // On 60 held-out prompts (the committed numbers use 200), with slack for the smaller draw.
    assert!(f(&doc, "retrieval_top1") >= RETRIEVAL, "{doc}");
    assert!(f(&doc, "preference_accuracy") >= PREFERENCE, "{doc}");
    assert!(f(&doc, "spearman_irrelevant_quality") >= QUALITY, "{doc}");
    assert!(f(&doc, "spearman_relevant_alignment") >= ALIGNMENT, "{doc}");
    assert!(f(&doc, "spearman_irrelevant_alignment").abs() < CROSS, "{doc}");
    assert!(f(&doc, "spearman_relevant_quality").abs() < CROSS, "{doc}");
}

// The committed model measures 0.933, 0.844, 0.834 / 0.654 and |ρ| ≤ 0.285 on these 60 prompts
// (README has the 200-prompt numbers, which meet every goal of the evaluation); the bars sit a
// little below, so a retrained or broken model that loses ground fails here.
const RETRIEVAL: f64 = 0.85;
const PREFERENCE: f64 = 0.82;
const QUALITY: f64 = 0.75;
const ALIGNMENT: f64 = 0.6;
const CROSS: f64 = 0.3;
