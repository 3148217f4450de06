//! `prefscope strength` against numpy's statement of Secrets of RLHF II's Eq. 4 and the bands
//! (tests/fixtures/strength.py), and its errors on bad input.

mod common;

use common::{failure, fixtures, prefscope};

use std::path::Path;

use serde_json::Value;

#[test]
fn strength_and_bands_equal_numpy() {
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("strength.json")).unwrap()).unwrap();
    let input = fixtures().join("strength_input.jsonl");
    let out = prefscope(&["strength", "--input", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (k, v) in want["summary"].as_object().unwrap() {
        assert_eq!(&got["summary"][k], v, "{k}");
    }
    // The calibration of σ(mean), against scikit-learn's.
    for k in ["ece", "brier"] {
        let (x, y) =
            (got["summary"][format!("calibration/{k}")].as_f64().unwrap(), want["calibration"][k].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-12, "calibration/{k}: {x} vs {y}");
    }
    assert_eq!(got["summary"]["calibration"]["bins"].as_array().unwrap().len(), 10);
    let (g, w) = (got["pairs"].as_array().unwrap(), want["pairs"].as_array().unwrap());
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(w) {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["band"], b["band"], "{}", a["id"]);
        for k in ["mean", "std"] {
            let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{} {k}: {x} vs {y}", a["id"]);
        }
    }
    // Other bands: everything at or below the median is likely wrong or ambiguous.
    let out = prefscope(&["strength", "--input", input.to_str().unwrap(), "--bands", "25,50,75"]);
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["summary"]["likely_wrong"].as_u64().unwrap() + got["summary"]["ambiguous"].as_u64().unwrap(), 30);
}

#[test]
fn bad_input_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let error = |path: &Path, extra: &[&str]| {
        let out = prefscope(&[&["strength", "--input", path.to_str().unwrap()][..], extra].concat());
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let one = file("one.jsonl", "{\"id\": \"a\", \"chosen_rewards\": [1.0], \"rejected_rewards\": [0.0]}\n");
    assert!(error(&one, &[]).contains("one.jsonl: row 1 (line 1), column `chosen_rewards`: 1 reward given"));
    let ragged = file("ragged.jsonl", "{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0]}\n{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0, 1]}\n");
    assert!(error(&ragged, &[]).contains("ragged.jsonl: row 2 (line 2), column `rejected_rewards`"));
    let missing = file("missing.jsonl", "{\"chosen_rewards\": [1, 2]}\n");
    assert!(error(&missing, &[]).contains("column `rejected_rewards`: value is missing"));
    let ok = file("ok.jsonl", "{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0]}\n");
    assert!(error(&ok, &["--bands", "50,20,90"]).contains("bands must be three percentiles"));
    assert!(error(&ok, &["--bands", "-5,20,90"]).contains("bands must be three percentiles"));
}

#[test]
fn a_strong_over_weak_density_ratio_joins_the_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    // Rewards (2, 1) against (0, 0); the density ratio: chosen (−1 − 2) − (−6) = 3, rejected −5 − (−4) = −1.
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"chosen_rewards\": [2, 1], \"rejected_rewards\": [0, 0], \"chosen_strong_logps\": [-1, -2], \
         \"chosen_weak_logps\": -6, \"rejected_strong_logps\": -5, \"rejected_weak_logps\": [-3, -1]}\n",
    )
    .unwrap();
    let out = prefscope(&["strength", "--input", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = [2.0f64, 1.0, 4.0];
    let mean = d.iter().sum::<f64>() / 3.0;
    let std = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    assert!((got["pairs"][0]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((got["pairs"][0]["std"].as_f64().unwrap() - std).abs() < 1e-12);
}

#[test]
fn subsets_are_their_rows_alone_and_shares_are_soft_targets() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        r#"{"id": "a", "chosen_rewards": [1, 2], "rejected_rewards": [0, 0.5], "subset": "chat", "preference_share": 0.9}"#,
        r#"{"id": "b", "chosen_rewards": [0, 1], "rejected_rewards": [1, 0.5], "subset": "code", "preference_share": 0.6}"#,
        r#"{"id": "c", "chosen_rewards": [3, 2], "rejected_rewards": [0, 0], "subset": "chat", "preference_share": 1}"#,
        r#"{"id": "d", "chosen_rewards": [-1, 0], "rejected_rewards": [0, 0], "subset": "code", "preference_share": 0.5}"#,
    ];
    let write = |name: &str, keep: &[usize]| {
        let path = dir.path().join(name);
        std::fs::write(&path, keep.iter().map(|&i| format!("{}\n", rows[i])).collect::<String>()).unwrap();
        path.display().to_string()
    };
    let run = |input: &str, by: bool| {
        let mut args = vec!["strength", "--input", input];
        if by {
            args.extend(["--by", "subset"]);
        }
        let out = prefscope(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let all = run(&write("all.jsonl", &[0, 1, 2, 3]), true);
    // Brier against the shares: σ(1.25), σ(−0.25), σ(2.5), σ(−0.5).
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let brier = [(s(1.25) - 0.9).powi(2), (s(-0.25) - 0.6).powi(2), (s(2.5) - 1.0).powi(2), (s(-0.5) - 0.5).powi(2)]
        .iter()
        .sum::<f64>()
        / 4.0;
    assert!((all["summary"]["calibration/brier"].as_f64().unwrap() - brier).abs() < 1e-15);
    for (name, keep) in [("chat", [0, 2]), ("code", [1, 3])] {
        let mut alone = run(&write(&format!("{name}.jsonl"), &keep), false)["summary"].clone();
        alone.as_object_mut().unwrap().remove("calibration");
        assert_eq!(all["summary"]["subsets"][name], alone, "{name}");
    }
    let e = failure(&["strength", "--input", &write("again.jsonl", &[0, 1]), "--by", "category"]);
    assert!(e.contains("again.jsonl") && e.contains("category"), "{e}");
}
