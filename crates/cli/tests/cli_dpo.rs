//! `prefscope dpo` end to end: the bundled export against TRL 1.16's numbers for it, every
//! output format, and errors that name the file, row and column.

mod common;

use common::{json_of, prefscope};

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample() -> PathBuf {
    root().join("tests/fixtures/dpo_sample.jsonl")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-12
}

#[test]
fn metrics_and_pairs_match_trl_for_the_bundled_export() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/dpo_sample_expected.json")).unwrap())
            .unwrap();
    let input = sample();
    for case in expected["cases"].as_array().unwrap() {
        let losses: Vec<&str> = case["losses"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let weights: Vec<String> = case["weights"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
        let beta = case["beta"].to_string();
        let loss = losses.join(",");
        let weights = weights.join(",");
        let out = prefscope(&[
            "dpo",
            "--input",
            input.to_str().unwrap(),
            "--loss",
            &loss,
            "--weights",
            &weights,
            "--beta",
            &beta,
        ]);
        let doc = json_of(&out);
        for (k, v) in case["metrics"].as_object().unwrap() {
            let ours = doc["metrics"][k].as_f64().unwrap_or_else(|| panic!("metric {k} missing"));
            assert!(close(ours, v.as_f64().unwrap()), "{loss} {k}: {ours} vs {v}");
        }
        let pairs = doc["pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), 40);
        assert_eq!(pairs[0]["id"], "held-0");
        for key in ["id", "chosen_reward", "rejected_reward", "margin", "loss"] {
            assert!(pairs[0].get(key).is_some(), "pairs carry {key}");
        }
        if let Some(per_pair) = case["per_pair"].as_array() {
            for (p, t) in pairs.iter().zip(per_pair) {
                assert!(close(p["loss"].as_f64().unwrap(), t.as_f64().unwrap()), "{loss} pair {}", p["id"]);
            }
        }
    }
}

#[test]
fn tabular_formats_carry_the_same_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample();
    // `prefscope dpo` on the sample with IPO at β 0.5, plus format arguments.
    let ipo = |extra: &[&str]| {
        let mut args = vec!["dpo", "--input", input.to_str().unwrap(), "--loss", "ipo", "--beta", "0.5"];
        args.extend_from_slice(extra);
        prefscope(&args)
    };
    let json = json_of(&ipo(&[]));
    let first_margin = json["pairs"][0]["margin"].as_f64().unwrap();

    let csv = dir.path().join("pairs.csv");
    let out = ipo(&["--format", "csv", "--out", csv.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rewards/margins"), "metrics summarised on stderr");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "id,chosen_reward,rejected_reward,margin,loss");
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[0], "held-0");
    assert_eq!(first[3].parse::<f64>().unwrap(), first_margin, "CSV floats round-trip exactly");

    let jsonl = ipo(&["--format", "jsonl"]);
    assert!(jsonl.status.success());
    let rows: Vec<Value> =
        String::from_utf8_lossy(&jsonl.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 40);
    assert_eq!(rows[0]["margin"].as_f64().unwrap(), first_margin);

    let parquet = dir.path().join("pairs.parquet");
    let out = ipo(&["--format", "parquet", "--out", parquet.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&parquet).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");

    let refused = prefscope(&["dpo", "--input", input.to_str().unwrap(), "--format", "parquet"]);
    assert!(!refused.status.success());
}

#[test]
fn parquet_and_csv_inputs_give_the_same_metrics_as_jsonl() {
    // Convert the sample's sequence columns to CSV; metrics must not depend on the format.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample()).unwrap();
    let mut csv =
        String::from("id,policy_chosen_logps,policy_rejected_logps,reference_chosen_logps,reference_rejected_logps\n");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        csv += &format!(
            "{},{},{},{},{}\n",
            v["id"].as_str().unwrap(),
            v["policy_chosen_logps"],
            v["policy_rejected_logps"],
            v["reference_chosen_logps"],
            v["reference_rejected_logps"]
        );
    }
    let csv_path = dir.path().join("pairs.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let a = json_of(&prefscope(&["dpo", "--input", sample().to_str().unwrap(), "--loss", "sigmoid,hinge"]));
    let b = json_of(&prefscope(&["dpo", "--input", csv_path.to_str().unwrap(), "--loss", "sigmoid,hinge"]));
    for key in ["loss", "rewards/margins", "rewards/accuracies", "logps/chosen"] {
        assert_eq!(a["metrics"][key], b["metrics"][key], "{key}");
    }
}

#[test]
fn diffusion_rows_get_diffusion_dpo_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diffusion.csv");
    std::fs::write(
        &path,
        "id,model_mse_chosen,model_mse_rejected,reference_mse_chosen,reference_mse_rejected\na,0.10,0.12,0.11,0.11\na,0.20,0.25,0.21,0.22\nb,0.30,0.28,0.30,0.30\n",
    )
    .unwrap();
    let doc = json_of(&prefscope(&["dpo", "--input", path.to_str().unwrap(), "--loss", "diffusion_dpo"]));
    let pairs = doc["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "rows of one id form one pair");
    // Row a1: inside = −2500·((0.10 − 0.12) − 0) = 50; row a2: −2500·((0.20−0.25) − (0.21−0.22)) = 100.
    assert!((pairs[0]["margin"].as_f64().unwrap() - 75.0).abs() < 1e-9);
    assert!((doc["metrics"]["implicit_acc"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let refused = prefscope(&["dpo", "--input", path.to_str().unwrap(), "--loss", "ipo"]);
    assert!(!refused.status.success());
}

#[test]
fn bad_input_names_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let text = std::fs::read_to_string(sample()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = lines[2].replacen("\"policy_rejected_logps\": ", "\"policy_rejected_logps\": NaN, \"x\": ", 1);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = prefscope(&["dpo", "--input", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl: row 3, column `policy_rejected_logps`: value is not finite (NaN)"), "{err}");

    let out = prefscope(&["dpo", "--input", sample().to_str().unwrap(), "--loss", "exo_pair"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("label_smoothing > 0"), "exo_pair needs ε > 0");

    // Parameters outside their domain, negative ones included, get prefscope's message.
    let sample_path = sample();
    let input = sample_path.to_str().unwrap();
    for (flags, message) in [
        (&["--beta", "-1"][..], "beta must be a positive number, got -1"),
        (&["--beta", "nan"][..], "beta must be a positive number, got NaN"),
        (&["--label-smoothing", "0.9"][..], "label_smoothing must lie in [0, 0.5)"),
        (&["--label-smoothing", "-0.1"][..], "label_smoothing must lie in [0, 0.5)"),
        (&["--loss", "sigmoid,hinge", "--weights", "1,inf"][..], "weight of `hinge` is not finite"),
        (&["--f-divergence", "alpha_divergence", "--f-alpha", "nan"][..], "alpha must be finite"),
    ] {
        let out = prefscope(&[&["dpo", "--input", input, "--device", "cpu"][..], flags].concat());
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{flags:?}: {err}");
    }

    let out = prefscope(&["dpo", "--input", sample().to_str().unwrap(), "--loss", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown loss type `nope`"));

    let out = prefscope(&["dpo", "--input", dir.path().join("missing.jsonl").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl: cannot read"));
}

/// Reward accuracy and the mean share of |per-token reward| on differing tokens, recomputed
/// from a DPO demo export with plain arithmetic.
fn recompute(path: &Path, beta: f64) -> (usize, f64, f64) {
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    let floats = |r: &Value, k: &str| r[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    let words = |r: &Value, k: &str| {
        r[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let (mut correct, mut shares) = (0, Vec::new());
    for r in &rows {
        let margin = beta
            * ((f(r, "policy_chosen_logps") - f(r, "reference_chosen_logps"))
                - (f(r, "policy_rejected_logps") - f(r, "reference_rejected_logps")));
        correct += usize::from(margin > 0.0);
        let (ct, rt) = (words(r, "chosen_tokens"), words(r, "rejected_tokens"));
        let (mut on, mut all) = (0.0, 0.0);
        for (side, tokens, other) in [("chosen", &ct, &rt), ("rejected", &rt, &ct)] {
            let p = floats(r, &format!("policy_{side}_token_logps"));
            let q = floats(r, &format!("reference_{side}_token_logps"));
            for t in 0..p.len() {
                let reward = (beta * (p[t] - q[t])).abs();
                all += reward;
                if tokens.get(t) != other.get(t) {
                    on += reward;
                }
            }
        }
        shares.push(on / all);
    }
    (rows.len(), correct as f64 / rows.len() as f64, shares.iter().sum::<f64>() / shares.len() as f64)
}

#[test]
fn demo_runs_every_objective_on_the_bundled_dpo_run_and_the_run_meets_its_goals() {
    let out = prefscope(&["demo", "--dpo", "--format", "json"]);
    let doc = json_of(&out);
    let dir = root().join("crates/synth/dpo-demo");
    let (pairs, accuracy, share) = recompute(&dir.join("heldout.jsonl"), 0.1);
    assert_eq!(doc["pairs"], pairs as u64);
    assert!(pairs >= 100, "{pairs} held-out pairs");
    let objectives = doc["objectives"].as_object().unwrap();
    assert!(objectives.len() >= 19);
    assert!(close(objectives["sigmoid"]["rewards/accuracies"].as_f64().unwrap(), accuracy));
    let (last, early) = (&doc["training"]["final"], &doc["training"]["early"]);
    let get = |v: &Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {v}"));
    assert!(close(get(last, "reward_accuracy"), accuracy));
    assert!(close(get(last, "differing_token_share"), share));
    let (_, early_accuracy, early_share) = recompute(&dir.join("heldout_early.jsonl"), 0.1);
    assert!(close(get(early, "reward_accuracy"), early_accuracy));
    assert!(close(get(early, "differing_token_share"), early_share));
    // The run's goals: held-out rewards and rankings above where the reference ranked, the
    // preference carried by the one differing word, and training still moving after the
    // early checkpoint.
    let reference = get(last, "reference_ranking_accuracy");
    assert!(accuracy > reference && get(last, "ranking_accuracy") > reference, "{last}");
    assert!(share >= 0.7, "share of the reward on the differing word: {share}");
    assert!(get(last, "reward_margin") > get(early, "reward_margin"), "{early} → {last}");
    let text = prefscope(&["demo", "--dpo"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("ranking/idealized_accuracy") && text.contains("reward share on the differing word"),
        "{text}"
    );
}

#[test]
fn gpu_and_cpu_give_the_same_numbers() {
    // `--device gpu` takes the software adapter too (lavapipe in CI); `auto` would not.
    let input = sample();
    let input = input.to_str().unwrap();
    for loss in ["sigmoid", "ipo", "kto"] {
        let cpu = json_of(&prefscope(&["dpo", "--input", input, "--loss", loss, "--device", "cpu"]));
        let gpu_out = prefscope(&["dpo", "--input", input, "--loss", loss, "--device", "gpu"]);
        assert!(String::from_utf8_lossy(&gpu_out.stderr).contains("computing on"), "no GPU used");
        let gpu = json_of(&gpu_out);
        for (name, v) in cpu["metrics"].as_object().unwrap() {
            let (a, b) = (v.as_f64().unwrap(), gpu["metrics"][name].as_f64().unwrap());
            assert!((a - b).abs() <= 2e-5 * a.abs().max(1.0), "{loss} {name}: cpu {a} gpu {b}");
        }
        let (cp, gp) = (cpu["pairs"].as_array().unwrap(), gpu["pairs"].as_array().unwrap());
        assert_eq!(cp.len(), gp.len());
        for (c, g) in cp.iter().zip(gp) {
            assert_eq!(c["id"], g["id"]);
            let (a, b) = (c["loss"].as_f64().unwrap(), g["loss"].as_f64().unwrap());
            assert!((a - b).abs() <= 2e-5 * a.abs().max(1.0), "{loss} pair {}: cpu {a} gpu {b}", c["id"]);
        }
    }
    let bad = prefscope(&["dpo", "--input", input, "--device", "tpu"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tpu"));
}

/// Spearman's ρ from scratch: Pearson's correlation of average ranks.
fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let ranks = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|a| {
                let below = v.iter().filter(|b| *b < a).count() as f64;
                let equal = v.iter().filter(|b| *b == a).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let sy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (sx * sy).sqrt()
}

#[test]
fn displacement_and_length_diagnostics_equal_a_recomputation_from_the_file() {
    let text = std::fs::read_to_string(sample()).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    let len = |r: &Value, k: &str| r[k].as_array().map_or(0, Vec::len) as f64;
    let chosen: Vec<f64> = rows.iter().map(|r| f(r, "policy_chosen_logps") - f(r, "reference_chosen_logps")).collect();
    let rejected: Vec<f64> =
        rows.iter().map(|r| f(r, "policy_rejected_logps") - f(r, "reference_rejected_logps")).collect();
    let n = rows.len() as f64;
    let chosen_negative = chosen.iter().filter(|c| **c < 0.0).count() as f64 / n;
    let both_negative = chosen.iter().zip(&rejected).filter(|(c, r)| **c < 0.0 && **r < 0.0).count() as f64 / n;
    let margin: Vec<f64> = chosen.iter().zip(&rejected).map(|(c, r)| 0.1 * (c - r)).collect();
    let difference: Vec<f64> =
        rows.iter().map(|r| len(r, "policy_chosen_token_logps") - len(r, "policy_rejected_token_logps")).collect();
    let rho = spearman(&margin, &difference);
    for device in ["cpu", "gpu"] {
        let doc = json_of(&prefscope(&["dpo", "--input", sample().to_str().unwrap(), "--device", device]));
        let m = &doc["metrics"];
        assert!(close(m["diagnostics/chosen_logratio_negative"].as_f64().unwrap(), chosen_negative), "{device}");
        assert!(close(m["diagnostics/both_logratios_negative"].as_f64().unwrap(), both_negative), "{device}");
        let got = m["diagnostics/margin_length_spearman"].as_f64().unwrap();
        assert!((got - rho).abs() < 1e-9, "{device}: ρ {got} vs {rho}");
    }
}

/// PRO on ranked lists against the authors' compute_loss (tests/fixtures/pro.py): every list's
/// loss, and the batch loss, which the authors take over lists of one length.
#[test]
fn pro_equals_the_authors_compute_loss() {
    let fixtures = root().join("tests/fixtures");
    let want: Value = serde_json::from_str(&std::fs::read_to_string(fixtures.join("pro.json")).unwrap()).unwrap();
    let input = fixtures.join("pro_input.jsonl");
    let lengths: Vec<usize> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["lengths"].as_array().unwrap().len())
        .collect();
    for case in want["cases"].as_array().unwrap() {
        let weight = case["sft_weight"].as_f64().unwrap();
        let doc = json_of(&prefscope(&[
            "dpo",
            "--input",
            input.to_str().unwrap(),
            "--loss",
            "pro",
            "--sft-weight",
            &weight.to_string(),
        ]));
        let per_list: Vec<f64> = case["per_list"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let got: Vec<f64> = doc["pairs"].as_array().unwrap().iter().map(|p| p["loss"].as_f64().unwrap()).collect();
        assert_eq!(got.len(), per_list.len());
        for (k, (g, w)) in got.iter().zip(&per_list).enumerate() {
            assert!(close(*g, *w), "λ {weight} list {k}: {g} vs {w}");
        }
        let mean = per_list.iter().sum::<f64>() / per_list.len() as f64;
        assert!(close(doc["metrics"]["loss"].as_f64().unwrap(), mean), "λ {weight}");
        for (n, batch) in case["batch_by_n"].as_object().unwrap() {
            let n: usize = n.parse().unwrap();
            let of_n: Vec<f64> = got.iter().zip(&lengths).filter(|(_, l)| **l == n).map(|(g, _)| *g).collect();
            assert!(close(of_n.iter().sum::<f64>() / of_n.len() as f64, batch.as_f64().unwrap()), "λ {weight} n {n}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, "{\"id\": \"p\", \"rewards\": [1], \"policy_logps\": [-2], \"lengths\": [2]}\n").unwrap();
    let out = prefscope(&["dpo", "--input", one.to_str().unwrap(), "--loss", "pro"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one.jsonl: row 1 (line 1), column `rewards`: a list of 1"));
}

/// SmPO against the authors' train.py lines and RankDPO against numpy's statement of the
/// paper's equations (tests/fixtures/diffusion_lists.py), at two β.
#[test]
fn smpo_and_rankdpo_equal_their_references() {
    let fixtures = root().join("tests/fixtures");
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("diffusion_lists.json")).unwrap()).unwrap();
    for (objective, input) in [("smpo", "smpo_input.jsonl"), ("rankdpo", "rankdpo_input.jsonl")] {
        for (beta, losses) in want[objective].as_object().unwrap() {
            let beta = beta.parse::<f64>().unwrap().to_string();
            let input = fixtures.join(input);
            let doc =
                json_of(&prefscope(&["dpo", "--input", input.to_str().unwrap(), "--loss", objective, "--beta", &beta]));
            let got: Vec<f64> = doc["pairs"].as_array().unwrap().iter().map(|p| p["loss"].as_f64().unwrap()).collect();
            let losses: Vec<f64> = losses.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(got.len(), losses.len());
            for (k, (g, w)) in got.iter().zip(&losses).enumerate() {
                assert!(close(*g, *w), "{objective} β {beta} list {k}: {g} vs {w}");
            }
            let mean = losses.iter().sum::<f64>() / losses.len() as f64;
            assert!(close(doc["metrics"]["loss"].as_f64().unwrap(), mean), "{objective} β {beta}");
        }
    }
    // A list of log-probs is not an image list.
    let out = prefscope(&["dpo", "--input", fixtures.join("pro_input.jsonl").to_str().unwrap(), "--loss", "smpo"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("smpo needs model_mse and reference_mse"));
}
