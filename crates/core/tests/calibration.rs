//! Calibration against tests/fixtures/calibration.py: scikit-learn's `calibration_curve` and
//! `brier_score_loss` (hard labels) or the script's numpy restatement (soft targets), bin by
//! bin; bin edges and counts exactly, the rest within 1e-12 relative. Where MORE's pipeline
//! applies (hard labels, p from margins), its ECE is held to the same tolerance.

mod common;

use common::*;
use prefscope_core::preference::calibration::{calibration, DEFAULT_BINS, MAX_BINS};
use serde_json::Value;

/// Inputs and edges are stored as bit patterns: values on float64 edges must arrive unrounded.
fn from_bits(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|b| f64::from_bits(b.as_u64().unwrap())).collect()
}

#[track_caller]
fn near(ours: f64, theirs: f64, what: &str) {
    assert!((ours - theirs).abs() <= 1e-12 * theirs.abs().max(1e-3), "{what}: ours {ours:e}, reference {theirs:e}");
}

#[test]
fn matches_the_references_bin_by_bin() {
    let fx = fixture("calibration.json");
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = from_bits(&case["p_bits"]);
        let target = (!case["target_bits"].is_null()).then(|| from_bits(&case["target_bits"]));
        let bins = case["bins"].as_u64().unwrap() as usize;
        let c = calibration(&p, target.as_deref(), bins).unwrap();
        let e = &case["expected"];
        near(c.ece, f(&e["ece"]), &format!("{name} ece"));
        near(c.brier, f(&e["brier"]), &format!("{name} brier"));
        let edges = from_bits(&e["edges_bits"]);
        assert_eq!(c.bins.len(), bins, "{name}");
        for (k, b) in c.bins.iter().enumerate() {
            assert_eq!(
                (b.lo.to_bits(), b.hi.to_bits()),
                (edges[k].to_bits(), edges[k + 1].to_bits()),
                "{name} bin {k}"
            );
            assert_eq!(b.count as u64, e["count"][k].as_u64().unwrap(), "{name} bin {k} count");
            for (ours, theirs, what) in
                [(b.confidence, &e["confidence"][k], "confidence"), (b.accuracy, &e["accuracy"][k], "accuracy")]
            {
                if theirs.is_null() {
                    assert!(ours.is_nan(), "{name} bin {k} {what}: empty bin, got {ours}");
                } else {
                    near(ours, f(theirs), &format!("{name} bin {k} {what}"));
                }
            }
        }
        // MORE's ECE (utils.py calibration_error over compute_metrics' ordered pairs) is ours
        // with σ(−m) computed on its own instead of 1 − σ(m); the script asserts no point sits
        // on an edge, so the bins coincide and the two agree to rounding.
        if let Some(more) = case.get("more_ece").and_then(Value::as_f64) {
            near(c.ece, more, &format!("{name} MORE ece"));
        }
    }
}

#[test]
fn bins_use_numpy_linspace_edges() {
    let fx = fixture("calibration.json");
    for (n, edges) in fx["linspace_bits"].as_object().unwrap() {
        let bins: usize = n.parse().unwrap();
        let edges = from_bits(edges);
        let c = calibration(&[0.25], None, bins).unwrap();
        for (k, b) in c.bins.iter().enumerate() {
            assert_eq!(
                (b.lo.to_bits(), b.hi.to_bits()),
                (edges[k].to_bits(), edges[k + 1].to_bits()),
                "{n} bins, bin {k}"
            );
        }
    }
}

#[test]
fn empty_bins_are_null_in_json() {
    let fx = fixture("calibration.json");
    let case = &fx["cases"].as_array().unwrap().iter().find(|c| c["name"] == "small_10_bins").unwrap();
    let c = calibration(&from_bits(&case["p_bits"]), None, DEFAULT_BINS).unwrap();
    let json = c.json();
    for (k, bin) in json["bins"].as_array().unwrap().iter().enumerate() {
        assert_eq!(bin["count"], case["expected"]["count"][k]);
        assert_eq!(bin["confidence"].is_null(), case["expected"]["confidence"][k].is_null(), "bin {k}");
        assert_eq!(bin["accuracy"].is_null(), case["expected"]["accuracy"][k].is_null(), "bin {k}");
    }
}

#[track_caller]
fn rejected(p: &[f64], target: Option<&[f64]>, bins: usize, names: &str) {
    let message = calibration(p, target, bins).unwrap_err().to_string();
    assert!(message.contains(names), "{message:?} should name {names}");
}

#[test]
fn bad_inputs_name_the_parameter() {
    rejected(&[0.5, f64::NAN], None, 10, "`p`");
    rejected(&[0.5, -0.1], None, 10, "`p`");
    rejected(&[1.0 + f64::EPSILON], None, 10, "`p`");
    rejected(&[0.5, 0.5], Some(&[0.5, 1.5]), 10, "`preference_share`");
    rejected(&[0.5], Some(&[f64::NAN]), 10, "`preference_share`");
    rejected(&[0.5], Some(&[f64::INFINITY]), 10, "`preference_share`");
    rejected(&[0.5, 0.5], Some(&[0.5]), 10, "`preference_share`");
    rejected(&[0.5], None, 0, "`--bins`");
    rejected(&[0.5], None, MAX_BINS + 1, "`--bins`");
    assert!(calibration(&[0.5, 0.2], None, MAX_BINS).is_ok());
    assert!(calibration(&[0.0, 1.0], Some(&[0.0, 1.0]), 1).is_ok());
}
