//! Diffusion-DPO and MaPO against their published formulas in torch; ranking accuracy (Chen et
//! al.), GPM, CLIPScore (torchmetrics and original), PickScore, LongAlign and histograms
//! against their references (tests/fixtures/diffusion.json, scores.json).

mod common;

use common::*;
use prefscope_core::histogram;
use prefscope_core::preference::diffusion::{self, MapoParams};
use prefscope_core::preference::{gpm, ranking};
use prefscope_core::scoring::clip_score::*;
use prefscope_core::scoring::embedding::{dot, normalize, Embeddings};
use prefscope_core::scoring::longalign;
use prefscope_core::{DiffusionRecord, DiffusionTable};

#[test]
fn diffusion_dpo_and_mapo_match_their_formulas() {
    let fx = fixture("diffusion.json");
    let mut table = DiffusionTable::new("fixture");
    for r in fx["rows"].as_array().unwrap() {
        table.push(DiffusionRecord {
            id: r["id"].as_str().unwrap().into(),
            model_mse_chosen: f(&r["mw"]),
            model_mse_rejected: f(&r["ml"]),
            reference_mse_chosen: f(&r["rw"]),
            reference_mse_rejected: f(&r["rl"]),
        });
    }
    for case in fx["cases"].as_array().unwrap() {
        let beta = f(&case["beta"]);
        match case["objective"].as_str().unwrap() {
            "diffusion_dpo" => {
                let rows = diffusion::diffusion_dpo_rows(&table, beta);
                for (o, t) in rows.loss.iter().zip(floats(&case["per_row_loss"])) {
                    assert_close(*o, t, "diffusion-dpo row loss");
                }
                for (o, t) in rows.inside.iter().zip(floats(&case["inside"])) {
                    assert_close(*o, t, "diffusion-dpo inside");
                }
                let (_, eval) = diffusion::diffusion_dpo(&table, beta).unwrap();
                assert_close(eval.metrics["loss"], f(&case["loss"]), "diffusion-dpo loss");
                assert_close(eval.metrics["implicit_acc"], f(&case["implicit_acc"]), "implicit_acc");
            }
            "mapo" => {
                let (ids, eval) = diffusion::mapo(&table, &MapoParams { beta, ..Default::default() }).unwrap();
                assert_close(eval.metrics["loss"], f(&case["loss"]), "mapo loss");
                // Pairs average their rows; check one pair built from two rows.
                let per_row = floats(&case["per_row_loss"]);
                let k = ids.iter().position(|i| i == "p0").unwrap();
                assert_close(eval.pairs.loss[k], 0.5 * (per_row[0] + per_row[1]), "mapo pair p0");
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn ranking_accuracies_match_chen_et_al() {
    let fx = fixture("scores.json");
    let pairs = Pairs::from(&fixture("dpo.json")["pairs"]);
    let r = &fx["ranking"];
    assert_close(ranking::ranking_accuracy(&pairs.pc, &pairs.pr), f(&r["ranking_accuracy"]), "R");
    assert_close(
        ranking::ranking_accuracy_normalized(&pairs.pc, &pairs.pr, &pairs.cl, &pairs.rl),
        f(&r["ranking_accuracy_normalized"]),
        "R normalized",
    );
    let shares = floats(&r["shares"]);
    for case in r["idealized"].as_array().unwrap() {
        let beta = f(&case["beta"]);
        let correct: Vec<bool> = case["correct"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        for i in 0..shares.len() {
            assert_eq!(
                ranking::idealized_correct(pairs.rc[i], pairs.rr[i], shares[i], beta),
                correct[i],
                "pair {i} β={beta}"
            );
        }
        assert_close(
            ranking::idealized_ranking_accuracy(&pairs.rc, &pairs.rr, &shares, beta),
            f(&case["accuracy"]),
            "R*",
        );
    }
}

#[test]
fn gpm_matches_the_block_rotation() {
    for case in fixture("scores.json")["gpm"].as_array().unwrap() {
        let (v1, v2) = (floats32(&case["v1"]), floats32(&case["v2"]));
        // Inputs were drawn in f64; f32 storage limits agreement to ~1e-7 absolute.
        let s = gpm::gpm_score(&v1, &v2).unwrap();
        assert!((s - f(&case["score"])).abs() < 1e-6, "{s} vs {}", case["score"]);
        let p = gpm::gpm_probability(&v1, &v2, gpm::DEFAULT_TAU).unwrap();
        assert!((p - f(&case["probability"])).abs() < 1e-6);
    }
}

#[test]
fn clipscore_and_pickscore_match_torchmetrics_and_papers() {
    for case in fixture("scores.json")["clip"].as_array().unwrap() {
        let images = Embeddings::from_rows(&matrix32(&case["images"])).unwrap();
        let texts = Embeddings::from_rows(&matrix32(&case["texts"])).unwrap();
        let n = images.len();
        let all = cosine_matrix(&images, &texts);
        let matched: Vec<f32> = (0..n).map(|i| all[i * n + i]).collect();
        for (c, t) in matched.iter().zip(floats(&case["per_pair_torchmetrics"])) {
            assert!((100.0 * *c as f64 - t).abs() < 1e-4, "{c} vs {t}");
        }
        let tol = |a: f32, b: f64| (a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0);
        assert!(tol(clipscore_torchmetrics(&matched), f(&case["clipscore_torchmetrics"])));
        assert!(tol(clipscore_original(&matched), f(&case["clipscore_original"])));
        let to_text0: Vec<f32> = (0..n).map(|i| all[i * n]).collect();
        let (scores, probs) = pickscore(&to_text0, f(&case["logit_scale"]) as f32);
        for (o, t) in scores.iter().zip(floats(&case["pickscore_scores"])) {
            assert!(tol(*o, t), "pickscore {o} vs {t}");
        }
        for (o, t) in probs.iter().zip(floats(&case["pickscore_probs"])) {
            assert!((*o as f64 - t).abs() < 1e-6, "prob {o} vs {t}");
        }
    }
}

#[test]
fn longalign_split_average_direction_and_reweighting_match_the_reference() {
    let fx = &fixture("scores.json")["longalign"];
    for case in fx["splits"].as_array().unwrap() {
        let expected: Vec<String> =
            case["segments"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        assert_eq!(longalign::split_segments(case["text"].as_str().unwrap()), expected, "{}", case["text"]);
    }
    let texts: Vec<Vec<f32>> = fx["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|segs| longalign::segment_average(&Embeddings::from_rows(&matrix32(segs)).unwrap()))
        .collect();
    for (ours, theirs) in texts.iter().zip(matrix32(&fx["text_embeddings"])) {
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-6);
        }
    }
    let u = longalign::common_direction(&Embeddings::from_rows(&texts).unwrap());
    for (a, b) in u.iter().zip(floats32(&fx["common_direction"])) {
        assert!((a - b).abs() < 1e-6);
    }
    let images = matrix32(&fx["images"]);
    let plain = matrix32(&fx["plain"]);
    for case in fx["reweighted"].as_array().unwrap() {
        let w = f(&case["weight"]) as f32;
        let expected = matrix32(&case["reweighted"]);
        for (ti, t) in texts.iter().enumerate() {
            for (ii, img) in images.iter().enumerate() {
                let d = longalign::decompose(t, img, &u, 1.0);
                assert!((d.reweighted(w) - expected[ti][ii]).abs() < 1e-5, "w={w} t{ti} i{ii}");
                assert!((d.score() - plain[ti][ii]).abs() < 1e-5);
                assert!((d.score() as f64 - dot(t, &normalize(img))).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn histograms_match_numpy() {
    for case in fixture("scores.json")["histograms"].as_array().unwrap() {
        let range = case["range"].as_array().map(|r| (f(&r[0]), f(&r[1])));
        let h = histogram::histogram(&floats(&case["values"]), case["bins"].as_u64().unwrap() as usize, range);
        let counts: Vec<u64> = case["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
        assert_eq!(h.counts, counts, "bins {} range {:?}", case["bins"], range);
        for (a, b) in h.edges.iter().zip(floats(&case["edges"])) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0));
        }
    }
}
