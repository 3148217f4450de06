//! DPOTrainer loss types against TRL 1.16 (tests/fixtures/dpo.json), and cDPO and BCO against
//! TRL 0.28, CPO/SimPO, ORPO and KTO against TRL 1.16 (tests/fixtures/dpo_families.json).

mod common;

use common::*;
use prefscope_core::preference::dpo::*;

#[test]
fn every_dpo_loss_type_matches_trl_1_16() {
    let fx = fixture("dpo.json");
    let all = Pairs::from(&fx["pairs"]);
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "fixture covers every type");
    let mut seen = std::collections::BTreeSet::new();
    for case in cases {
        let names: Vec<&str> = case["losses"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let weights = floats(&case["weights"]);
        let mut pairs = all.subset(case["subset"].as_str());
        if case["dtype"] == "float32" {
            pairs = pairs.rounded_to_f32();
        }
        let alpha = 0.5;
        let params = PairwiseParams {
            beta: f(&case["beta"]),
            label_smoothing: f(&case["eps"]),
            f_divergence: FDivergence::parse(case["fdiv"].as_str().unwrap(), alpha).unwrap(),
            discopop_tau: 0.05,
        };
        let losses: Vec<(LossType, f64)> =
            names.iter().zip(&weights).map(|(n, w)| (LossType::parse(n).unwrap(), *w)).collect();
        let label = format!("{names:?} β={} ε={} {}", params.beta, params.label_smoothing, case["fdiv"]);
        let eval = pairwise::evaluate(&pairs.logps(), &losses, &params).unwrap();
        assert_metrics(&eval.metrics, &case["metrics"], &label);
        if let Some(per_pair) = case["per_pair"].as_array() {
            assert_eq!(per_pair.len(), pairs.pc.len());
            for (i, (ours, theirs)) in eval.pairs.loss.iter().zip(per_pair).enumerate() {
                assert_close(*ours, f(theirs), &format!("{label} pair {}", pairs.ids[i]));
            }
        }
        seen.extend(names.iter().map(|s| s.to_string()));
    }
    for t in LossType::ALL.iter().filter(|t| **t != LossType::Cdpo) {
        assert!(seen.contains(t.name()), "no TRL case for {}", t.name());
    }
}

/// The pair losses are computed a block of pairs at a time, on several threads: repeating the
/// fixture past a block (128 pairs) and a thread's share (2^16 pairs), with a partial last
/// block, must still give each pair TRL's value and the batch TRL's mean.
#[test]
fn blocks_and_threads_keep_trl_values() {
    let fx = fixture("dpo.json");
    let all = Pairs::from(&fx["pairs"]);
    let mut checked = 0;
    for case in fx["cases"].as_array().unwrap() {
        let names: Vec<&str> = case["losses"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let Some(per_pair) = case["per_pair"].as_array() else { continue };
        if names.len() != 1 || ["aot", "aot_unpaired", "sft"].contains(&names[0]) {
            continue;
        }
        let mut pairs = all.subset(case["subset"].as_str());
        if case["dtype"] == "float32" {
            pairs = pairs.rounded_to_f32();
        }
        let len = pairs.pc.len();
        let repeated = pairs.cycled(len * (70_000 / len + 1));
        let params = PairwiseParams {
            beta: f(&case["beta"]),
            label_smoothing: f(&case["eps"]),
            f_divergence: FDivergence::parse(case["fdiv"].as_str().unwrap(), 0.5).unwrap(),
            discopop_tau: 0.05,
        };
        let loss = LossType::parse(names[0]).unwrap();
        let eval = pairwise::evaluate(&repeated.logps(), &[(loss, 1.0)], &params).unwrap();
        let label = format!("{names:?} β={} ε={} {}", params.beta, params.label_smoothing, case["fdiv"]);
        for (i, ours) in eval.pairs.loss.iter().enumerate() {
            assert_close(*ours, f(&per_pair[i % len]), &format!("{label} pair {i}"));
        }
        assert_close(eval.metrics["loss"], f(&case["metrics"]["loss"]), &label);
        checked += 1;
    }
    assert!(checked >= 40, "{checked} cases");
}

#[test]
fn cdpo_matches_trl_0_28_sigmoid_with_label_smoothing() {
    let fx = fixture("dpo_families.json");
    let pairs = Pairs::from(&fx["pairs"]);
    for case in fx["trl028"]["cdpo"].as_array().unwrap() {
        let params = PairwiseParams { beta: f(&case["beta"]), label_smoothing: f(&case["eps"]), ..Default::default() };
        let eval = pairwise::evaluate(&pairs.logps(), &[(LossType::Cdpo, 1.0)], &params).unwrap();
        let label = format!("cdpo β={} ε={}", params.beta, params.label_smoothing);
        assert_close(eval.metrics["loss"], f(&case["loss"]), &label);
        assert_close(eval.metrics["rewards/chosen"], f(&case["rewards/chosen"]), &label);
        assert_close(eval.metrics["rewards/rejected"], f(&case["rewards/rejected"]), &label);
        for (o, t) in eval.pairs.loss.iter().zip(floats(&case["per_pair"])) {
            assert_close(*o, t, &label);
        }
    }
}

#[test]
fn bco_matches_trl_0_28() {
    let fx = fixture("dpo_families.json");
    let pairs = Pairs::from(&fx["pairs"]);
    for case in fx["trl028"]["bco"].as_array().unwrap() {
        let eval = unpaired::bco(&pairs.logps(), &BcoParams { beta: f(&case["beta"]) }).unwrap();
        let label = format!("bco β={}", case["beta"]);
        for key in ["loss", "delta", "rewards/chosen", "rewards/rejected"] {
            assert_close(eval.metrics[key], f(&case[key]), &format!("{label} {key}"));
        }
        for (o, t) in eval.pairs.loss.iter().zip(floats(&case["per_pair"])) {
            assert_close(*o, t, &label);
        }
    }
}

#[test]
fn cpo_simpo_orpo_kto_match_trl_1_16_trainers() {
    let fx = fixture("dpo_families.json");
    let all = Pairs::from(&fx["pairs"]);
    let mut trainers = std::collections::BTreeSet::new();
    for case in fx["cases"].as_array().unwrap() {
        let trainer = case["trainer"].as_str().unwrap();
        trainers.insert(trainer.to_string());
        let pairs = all.subset(case["subset"].as_str());
        let beta = f(&case["beta"]);
        let (eval, label) = match trainer {
            "cpo" => {
                let loss = match case["loss_type"].as_str().unwrap() {
                    "sigmoid" => CpoLoss::Sigmoid,
                    "hinge" => CpoLoss::Hinge,
                    "ipo" => CpoLoss::Ipo,
                    "simpo" => CpoLoss::Simpo,
                    other => panic!("{other}"),
                };
                let p = CpoParams {
                    beta,
                    label_smoothing: f(&case["eps"]),
                    loss,
                    cpo_alpha: f(&case["cpo_alpha"]),
                    simpo_gamma: 0.5,
                };
                (reference_free::cpo(&pairs.logps(), &p).unwrap(), format!("cpo {p:?}"))
            }
            "orpo" => (reference_free::orpo(&pairs.logps(), &OrpoParams { beta }).unwrap(), format!("orpo β={beta}")),
            "kto" => {
                let kl = match case["kl"].as_array() {
                    None => 0.0,
                    Some(rows) => {
                        let d: Vec<f64> = rows.iter().map(|r| f(&r[0]) - f(&r[1])).collect();
                        prefscope_core::numeric::mean(&d).max(0.0)
                    }
                };
                let p = KtoParams {
                    beta,
                    desirable_weight: f(&case["desirable_weight"]),
                    undesirable_weight: f(&case["undesirable_weight"]),
                };
                (unpaired::kto(&pairs.logps(), kl, &p).unwrap(), format!("kto {p:?} kl={kl}"))
            }
            other => panic!("unknown trainer {other}"),
        };
        assert_metrics(&eval.metrics, &case["metrics"], &label);
        if let Some(per_pair) = case["per_pair"].as_array() {
            for (o, t) in eval.pairs.loss.iter().zip(per_pair) {
                assert_close(*o, f(t), &label);
            }
        }
    }
    assert_eq!(trainers.into_iter().collect::<Vec<_>>(), vec!["cpo", "kto", "orpo"]);
}

#[test]
fn fused_comparison_equals_each_objective_evaluated_alone() {
    let fx = fixture("dpo.json");
    let pairs = Pairs::from(&fx["pairs"]);
    let mut table = prefscope_core::DpoTable::new("fixture");
    for i in 0..pairs.pc.len() {
        table.push(prefscope_core::DpoRecord {
            id: pairs.ids[i].clone(),
            policy_chosen_logps: pairs.pc[i],
            policy_rejected_logps: pairs.pr[i],
            reference_chosen_logps: pairs.rc[i],
            reference_rejected_logps: pairs.rr[i],
            chosen_length: Some(pairs.cl[i] as u32),
            rejected_length: Some(pairs.rl[i] as u32),
            policy_kl_logps: Some(pairs.pc[i] / 2.0),
            reference_kl_logps: Some(pairs.rc[i] / 2.0 - 1.0),
            ..Default::default()
        });
    }
    // ORPO needs log-probs ≤ 0; keep the pairs that have them.
    let keep: Vec<usize> = (0..table.len()).filter(|&i| pairs.pc[i] <= 0.0 && pairs.pr[i] <= 0.0).collect();
    let table = prefscope_core::DpoTable::from_records("fixture", keep.iter().map(|&i| table.record(i)));
    let names = Objective::names();
    let params = PairwiseParams { beta: 0.2, label_smoothing: 0.1, ..Default::default() };
    let all = compare(&table, &names, params).unwrap();
    // The same pairs 1000 times over: many blocks, two threads, the same batch losses (each
    // value repeated equally leaves every mean, and AOT's sorted pairing, as it was).
    let repeated = prefscope_core::DpoTable::from_records(
        "fixture",
        (0..1000 * table.len()).map(|i| table.record(i % table.len())),
    );
    let all_repeated = compare(&repeated, &names, params).unwrap();
    for name in &names {
        let alone = Objective::parse(name, None, params).unwrap().evaluate(&table).unwrap();
        let b = alone.metrics["loss"];
        for (a, how) in [(all.losses[*name], "fused"), (all_repeated.losses[*name], "fused, repeated")] {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{name}: {how} {a} vs alone {b}");
        }
    }
    let sigmoid = Objective::parse("sigmoid", None, params).unwrap().evaluate(&table).unwrap();
    for key in ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen"] {
        assert_close(all.metrics[key], sigmoid.metrics[key], key);
    }
    assert!(compare(&table, &["exo_pair"], PairwiseParams::default()).is_err());
}
