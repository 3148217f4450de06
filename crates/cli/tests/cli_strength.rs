//! `prefscope strength` against numpy's statement of Secrets of RLHF II's Eq. 4 and the bands
//! (tests/fixtures/strength.py), and its errors on bad input.

mod common;

use common::{fixtures, prefscope};

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
    assert_eq!(got["summary"], want["summary"]);
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
