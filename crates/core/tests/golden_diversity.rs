//! The Schur-complement diversity split against the authors' code for "Dissecting CLIP"
//! (tests/fixtures/diversity.py → diversity.json): both kernels, the random-feature draws
//! shared, and the prompt-independent embeddings.

mod common;

use common::*;
use prefscope_core::scoring::diversity::{corrected_embeddings, split, Kernel, Paired};
use serde_json::Value;

fn rows(v: &Value) -> (usize, usize, Vec<f64>) {
    let rows = v.as_array().unwrap();
    let dim = rows[0].as_array().unwrap().len();
    (rows.len(), dim, rows.iter().flat_map(floats).collect())
}

#[track_caller]
fn near(ours: f64, theirs: f64, tolerance: f64, what: &str) {
    assert!((ours - theirs).abs() <= tolerance * theirs.abs().max(1.0), "{what}: ours {ours}, reference {theirs}");
}

#[test]
fn the_split_matches_the_reference() {
    let fx = fixture("diversity.json");
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for (k, case) in cases.iter().enumerate() {
        let (n, d, text) = rows(&case["text"]);
        let (_, _, image) = rows(&case["image"]);
        let p = Paired { rows: n, dim: d, text: &text, image: &image };
        let kernel = match case["kernel"].as_str().unwrap() {
            "cosine" => Kernel::Cosine,
            _ => {
                let (_, features, draws) = rows(&case["frequencies_standard"]);
                Kernel::with_draws(f(&case["sigma"]), features, draws).unwrap()
            }
        };
        let s = split(&p, &kernel).unwrap();
        let what = format!("case {k} ({}, {n} rows)", case["kernel"]);
        // 1e-9, except where the reference's own rounding is larger (the fixture says).
        let tolerance = case["tolerance"].as_f64().unwrap_or(1e-9);
        let eigen_tolerance = if case["tolerance"].is_null() { 1e-10 } else { tolerance };
        near(s.sce, f(&case["sce"]), tolerance, &format!("{what} sce"));
        near(s.text_part, f(&case["text_part"]), tolerance, &format!("{what} text part"));
        for (ours, theirs, name) in [
            (&s.unexplained, &case["unexplained_eigenvalues"], "S"),
            (&s.explained, &case["explained_eigenvalues"], "E"),
        ] {
            let theirs = floats(theirs);
            assert_eq!(ours.len(), theirs.len(), "{what} {name}");
            let top = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= eigen_tolerance * top,
                    "{what} {name} eigenvalue {i}: ours {a}, reference {b}"
                );
            }
        }
        // The two parts split the image covariance's trace (1 for the random features).
        let trace: f64 = s.unexplained.iter().chain(&s.explained).sum();
        if case["kernel"] == "gaussian" {
            near(trace, 1.0, 1e-9, &format!("{what} trace"));
        }
        if let Some(corrected) = case["corrected_first_5"].as_array() {
            let ours = corrected_embeddings(&p, &text[..5 * d], &image[..5 * d]).unwrap();
            let theirs: Vec<f64> = corrected.iter().flat_map(floats).collect();
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                near(*a, *b, tolerance, &format!("{what} corrected value {i}"));
            }
        }
    }
}
