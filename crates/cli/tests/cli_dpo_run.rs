//! `prefscope dpo` over a run (several evaluations), its calibration and its subsets: steps
//! from metadata, a column or the file name; flips, missing ids and trajectories checked
//! against margins worked out by hand; subsets against each subset's rows run alone.

mod common;

use common::{failure, json_of, prefscope};

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

/// A JSON Lines row with reference log-probabilities of zero, so that with β = 1 the margin
/// is `chosen − rejected`.
fn row(id: &str, chosen: f64, rejected: f64, extra: &str) -> String {
    format!(
        r#"{{"id": "{id}", "policy_chosen_logps": {chosen}, "policy_rejected_logps": {rejected}, "reference_chosen_logps": 0, "reference_rejected_logps": 0{extra}}}"#
    )
}

fn write(dir: &Path, name: &str, rows: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path.display().to_string()
}

/// Three evaluations whose margins (β = 1) are:
///
/// | id | step 5 | step 10 | step 20 |
/// |----|--------|---------|---------|
/// | a  | 1      | −1      | −2      |
/// | b  | −1     | 0       | 3       |
/// | c  | 2      | —       | 1       |
///
/// so a flips at 10 (1 → −1), b at 20 (0 → 3; −1 → 0 is not a flip: zero is not positive), c
/// never (compared with its previous evaluation, step 5), and c is missing from step 10.
fn run_folder(dir: &Path) {
    write(dir, "eval-5.jsonl", &[row("a", -1.0, -2.0, ""), row("b", -2.0, -1.0, ""), row("c", 0.0, -2.0, "")]);
    write(dir, "eval-10.jsonl", &[row("b", -1.5, -1.5, ""), row("a", -3.0, -2.0, "")]);
    write(dir, "eval-20.jsonl", &[row("a", -4.0, -2.0, ""), row("b", 0.0, -3.0, ""), row("c", -1.0, -2.0, "")]);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-12
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn a_run_reports_its_steps_flips_missing_ids_and_trajectories() {
    let dir = tempfile::tempdir().unwrap();
    run_folder(dir.path());
    let folder = dir.path().display().to_string();
    let doc = json_of(&prefscope(&["dpo", "--input", &folder, "--beta", "1"]));

    let steps: Vec<i64> = doc["steps"].as_array().unwrap().iter().map(|s| s["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, [5, 10, 20]);
    // Step 10's accuracy: a is negative, b is zero (not a win).
    assert_eq!(doc["steps"][1]["metrics"]["rewards/accuracies"].as_f64(), Some(0.0));
    assert!(close(doc["steps"][0]["metrics"]["rewards/accuracies"].as_f64().unwrap(), 2.0 / 3.0));

    let flips: Vec<(String, i64, f64, f64)> = doc["flips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["step"].as_i64().unwrap(),
                f["from"].as_f64().unwrap(),
                f["to"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(flips, [("a".to_string(), 10, 1.0, -1.0), ("b".to_string(), 20, 0.0, 3.0)]);
    assert_eq!(doc["missing"], serde_json::json!(["c"]));

    // `metrics` and `pairs` are the last step's, in its file's order, with trajectories.
    assert!(close(doc["metrics"]["rewards/accuracies"].as_f64().unwrap(), 2.0 / 3.0));
    let pairs = doc["pairs"].as_array().unwrap();
    let ids: Vec<&str> = pairs.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(pairs[2]["steps"], serde_json::json!([5, 20]));
    assert_eq!(numbers(&pairs[2]["margins"]), [2.0, 1.0]);
    assert_eq!(numbers(&pairs[2]["chosen_rewards"]), [0.0, -1.0]);
    assert_eq!(numbers(&pairs[2]["rejected_rewards"]), [-2.0, -2.0]);
    assert_eq!(numbers(&pairs[0]["margins"]), [1.0, -1.0, -2.0]);

    // The same files named one by one, in any order, give the same report.
    let file = |n: &str| dir.path().join(n).display().to_string();
    let (f5, f10, f20) = (file("eval-5.jsonl"), file("eval-10.jsonl"), file("eval-20.jsonl"));
    let named = json_of(&prefscope(&["dpo", "--input", &f20, "--input", &f5, "--input", &f10, "--beta", "1"]));
    assert_eq!(named, doc);

    // Each step's metrics are that file's own report.
    let alone = json_of(&prefscope(&["dpo", "--input", &f10, "--beta", "1"]));
    assert_eq!(alone["metrics"], doc["steps"][1]["metrics"]);

    // The tabular formats carry the trajectories as lists.
    let csv = prefscope(&["dpo", "--input", &folder, "--beta", "1", "--format", "csv"]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    assert!(text.lines().next().unwrap().ends_with("steps,margins,chosen_rewards,rejected_rewards"), "{text}");
    let out = dir.path().join("run.parquet");
    let parquet =
        prefscope(&["dpo", "--input", &folder, "--beta", "1", "--format", "parquet", "--out", out.to_str().unwrap()]);
    assert!(parquet.status.success(), "{}", String::from_utf8_lossy(&parquet.stderr));
}

#[test]
fn the_step_comes_from_parquet_metadata_then_a_step_column_then_the_name() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use parquet::file::metadata::KeyValue;
    let dir = tempfile::tempdir().unwrap();
    // Named 999, but its metadata says step 30 (the export callback's `trl.global_step`).
    let path = dir.path().join("eval-999.parquet");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(vec!["a", "b"]))),
        ("policy_chosen_logps", Arc::new(Float64Array::from(vec![-1.0, -1.0]))),
        ("policy_rejected_logps", Arc::new(Float64Array::from(vec![-2.0, 0.0]))),
        ("reference_chosen_logps", Arc::new(Float64Array::from(vec![0.0, 0.0]))),
        ("reference_rejected_logps", Arc::new(Float64Array::from(vec![0.0, 0.0]))),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new("trl.global_step".into(), "30".to_string())]))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), Some(props))
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    // A constant `step` column: step 7, whatever the name says.
    let column = write(
        dir.path(),
        "eval-100.jsonl",
        &[row("a", -1.0, -1.5, r#", "step": 7"#), row("b", 0.0, -1.0, r#", "step": 7"#)],
    );
    let named = write(dir.path(), "checkpoint-3-eval-12.jsonl", &[row("b", -1.0, -1.5, ""), row("a", 0.0, -1.0, "")]);
    let doc = json_of(&prefscope(&["dpo", "--input", path.to_str().unwrap(), "--input", &column, "--input", &named]));
    let steps: Vec<i64> = doc["steps"].as_array().unwrap().iter().map(|s| s["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, [7, 12, 30]);
    // b: 0.1 at 7, 0.05 at 12, −0.1 at 30 (β = 0.1); a stays positive.
    assert_eq!(doc["flips"].as_array().unwrap().len(), 1);
    assert_eq!(doc["flips"][0]["id"], "b");
    assert_eq!(doc["flips"][0]["step"], 30);
}

#[test]
fn a_run_refuses_what_it_cannot_follow() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "eval-1.jsonl", &[row("a", -1.0, -2.0, "")]);
    let same = write(dir.path(), "other.jsonl", &[row("a", -1.0, -2.0, r#", "step": 1"#)]);
    let e = failure(&["dpo", "--input", &a, "--input", &same]);
    assert!(e.contains("eval-1.jsonl") && e.contains("other.jsonl") && e.contains("step 1"), "{e}");

    let repeated =
        write(dir.path(), "eval-2.jsonl", &[row("a", -1.0, -2.0, ""), row("b", 0.0, 0.0, ""), row("a", 0.0, 0.0, "")]);
    let e = failure(&["dpo", "--input", &a, "--input", &repeated]);
    assert!(e.contains("eval-2.jsonl") && e.contains("row 3") && e.contains("`a`"), "{e}");

    let unnamed = dir.path().join("eval-3.jsonl");
    std::fs::write(&unnamed, r#"{"policy_chosen_logps": -1, "policy_rejected_logps": -2, "reference_chosen_logps": 0, "reference_rejected_logps": 0}"#).unwrap();
    let e = failure(&["dpo", "--input", &a, "--input", unnamed.to_str().unwrap()]);
    assert!(e.contains("eval-3.jsonl") && e.contains("row 1") && e.contains("`id`"), "{e}");

    let stepless = write(dir.path(), "final.jsonl", &[row("a", -1.0, -2.0, "")]);
    let e = failure(&["dpo", "--input", &a, "--input", &stepless]);
    assert!(e.contains("final.jsonl") && e.contains("no step"), "{e}");

    let uneven = write(
        dir.path(),
        "eval-9.jsonl",
        &[row("a", -1.0, -2.0, r#", "step": 4"#), row("b", -1.0, -2.0, r#", "step": 5"#)],
    );
    let e = failure(&["dpo", "--input", &a, "--input", &uneven]);
    assert!(e.contains("eval-9.jsonl") && e.contains("row 2") && e.contains("step"), "{e}");

    let empty = tempfile::tempdir().unwrap();
    let e = failure(&["dpo", "--input", empty.path().to_str().unwrap()]);
    assert!(e.contains("no .jsonl, .csv or .parquet"), "{e}");
}

#[test]
fn subset_metrics_are_each_subsets_rows_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let subset = |s: &str, share: f64| format!(r#", "subset": "{s}", "preference_share": {share}"#);
    let rows = [
        row("1", -1.0, -2.5, &subset("chat", 0.9)),
        row("2", -3.0, -2.0, &subset("code", 0.6)),
        row("3", -1.2, -1.0, &subset("chat", 0.7)),
        row("4", -0.5, -2.0, &subset("code", 1.0)),
        row("5", -2.0, -2.2, &subset("safety", 0.55)),
    ];
    let all = write(dir.path(), "all.jsonl", &rows);
    let chat = write(dir.path(), "chat.jsonl", &[rows[0].clone(), rows[2].clone()]);
    let code = write(dir.path(), "code.jsonl", &[rows[1].clone(), rows[3].clone()]);
    let safety = write(dir.path(), "safety.jsonl", &[rows[4].clone()]);
    let args = ["--loss", "sigmoid,hinge", "--beta", "0.5"];
    let run = |input: &str, by: Option<&str>| {
        let mut a = vec!["dpo", "--input", input];
        a.extend(args);
        if let Some(by) = by {
            a.extend(["--by", by]);
        }
        json_of(&prefscope(&a))
    };
    let doc = run(&all, Some("subset"));
    let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
    for (name, file) in [("chat", &chat), ("code", &code), ("safety", &safety)] {
        let alone = run(file, None);
        assert_eq!(doc["subsets"][name], alone["metrics"], "{name}");
        for (k, v) in alone["metrics"].as_object().unwrap() {
            *sums.entry(k.clone()).or_default() += v.as_f64().unwrap_or(f64::NAN) / 3.0;
        }
    }
    for (k, mean) in &sums {
        let ours = doc["subsets_mean"][k].as_f64().unwrap_or(f64::NAN);
        assert!(close(ours, *mean) || (ours.is_nan() && mean.is_nan()), "{k}: {ours} vs {mean}");
    }
    // The pooled numbers stay beside them.
    assert_eq!(doc["metrics"], run(&all, None)["metrics"]);

    let e = failure(&["dpo", "--input", &all, "--by", "category"]);
    assert!(e.contains("all.jsonl") && e.contains("category"), "{e}");
    let partial = write(dir.path(), "partial.jsonl", &[rows[0].clone(), row("6", -1.0, -2.0, "")]);
    let e = failure(&["dpo", "--input", &partial, "--by", "subset"]);
    assert!(e.contains("partial.jsonl") && e.contains("row 2") && e.contains("subset"), "{e}");
}

#[test]
fn every_report_carries_its_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let file =
        write(dir.path(), "e.jsonl", &[row("a", -1.0, -2.0, ""), row("b", -2.0, -1.0, ""), row("c", -1.0, -1.5, "")]);
    let doc = json_of(&prefscope(&["dpo", "--input", &file, "--beta", "1", "--bins", "4"]));
    let bins = doc["calibration"]["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 4);
    // Both orders of each pair: 6 points.
    assert_eq!(bins.iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>(), 6);
    // Brier: σ(1), σ(−1), σ(0.5) against label 1.
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let brier = [(1.0 - s(1.0)).powi(2), (1.0 - s(-1.0)).powi(2), (1.0 - s(0.5)).powi(2)].iter().sum::<f64>() / 3.0;
    assert!(close(doc["metrics"]["calibration/brier"].as_f64().unwrap(), brier));
    assert!(doc["metrics"]["calibration/ece"].as_f64().is_some());
    let e = failure(&["dpo", "--input", &file, "--bins", "0"]);
    assert!(e.contains("--bins"), "{e}");
}

#[test]
fn kto_weights_scale_its_terms_as_ktoconfig_does() {
    let dir = tempfile::tempdir().unwrap();
    // One batch, no KL sequences (KL 0), β = 1: each term is 1 − σ(1).
    let rows = [
        r#"{"id": "a", "prompt": "p", "completion": "x", "label": true, "policy_logps": -1, "reference_logps": -2}"#,
        r#"{"id": "b", "prompt": "p", "completion": "y", "label": false, "policy_logps": -2, "reference_logps": -1}"#,
    ];
    let file = write(dir.path(), "kto.jsonl", &rows.map(str::to_string));
    let term = 1.0 - 1.0 / (1.0 + (-1.0f64).exp());
    let loss = |args: &[&str]| {
        let mut all = vec!["dpo", "--input", &file, "--loss", "kto", "--beta", "1"];
        all.extend(args);
        json_of(&prefscope(&all))["metrics"]["loss"].as_f64().unwrap()
    };
    assert!(close(loss(&[]), term));
    assert!(close(loss(&["--desirable-weight", "2"]), (2.0 * term + term) / 2.0));
    assert!(close(loss(&["--undesirable-weight", "0.5"]), (term + 0.5 * term) / 2.0));
    let e = failure(&["dpo", "--input", &file, "--loss", "kto", "--desirable-weight", "0"]);
    assert!(e.contains("--desirable-weight"), "{e}");
}
