//! Annotator groups against tests/fixtures/groups.py: MaxMin-RLHF's EM restated in float64
//! torch (its start, its E-step expression, its tie rule), with the M-step solved to the
//! optimum: assignments exactly, rewards, likelihoods and accuracies within 1e-6.

mod common;

use common::*;
use prefscope_core::preference::groups::{adjusted_rand_index, fit_groups, AnnotatedPairs, GroupOptions};
use serde_json::Value;

fn rows(v: &Value) -> (usize, Vec<f64>) {
    let rows = v.as_array().unwrap();
    (rows[0].as_array().unwrap().len(), rows.iter().flat_map(floats).collect())
}

#[track_caller]
fn near(ours: f64, theirs: f64, what: &str) {
    assert!((ours - theirs).abs() <= 1e-6 * theirs.abs().max(1.0), "{what}: ours {ours}, reference {theirs}");
}

#[test]
fn em_matches_the_reference_loop() {
    let fx = fixture("groups.json");
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let users: Vec<String> =
            case["users"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect();
        let (dim, f0) = rows(&case["features_0"]);
        let (_, f1) = rows(&case["features_1"]);
        let labels = floats(&case["label_0"]);
        let pairs = AnnotatedPairs { users: &users, dim, features_0: &f0, features_1: &f1, label_0: &labels };
        let o = &case["options"];
        let options = GroupOptions {
            k: o["k"].as_u64().map(|k| k as usize),
            max_k: o["max_k"].as_u64().unwrap_or(6) as usize,
            soft: o["soft"].as_bool().unwrap(),
            ridge: f(&o["ridge"]),
            ..GroupOptions::default()
        };
        let fit = fit_groups(&pairs, &options).unwrap();
        let e = &case["expected"];
        assert_eq!(fit.k as u64, e["k"].as_u64().unwrap(), "{name}: k");
        let want: Vec<(String, usize)> = e["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u[0].as_str().unwrap().to_string(), u[1].as_u64().unwrap() as usize))
            .collect();
        assert_eq!(fit.users, want, "{name}: assignments");
        for key in ["log_likelihood", "accuracy_single", "accuracy_groups"] {
            let ours = match key {
                "log_likelihood" => fit.log_likelihood,
                "accuracy_single" => fit.accuracy_single,
                _ => fit.accuracy_groups,
            };
            near(ours, f(&e[key]), &format!("{name}: {key}"));
        }
        for (g, (ours, theirs)) in fit.groups.iter().zip(e["groups"].as_array().unwrap()).enumerate() {
            assert_eq!(
                (ours.users as u64, ours.pairs as u64),
                (theirs["users"].as_u64().unwrap(), theirs["pairs"].as_u64().unwrap()),
                "{name}: group {g}"
            );
            if !theirs["accuracy"].is_null() {
                near(ours.accuracy, f(&theirs["accuracy"]), &format!("{name}: group {g} accuracy"));
            }
            for (a, b) in ours.weights.iter().zip(floats(&theirs["weights"])) {
                near(*a, b, &format!("{name}: group {g} weights"));
            }
        }
        for (h, (ours, theirs)) in
            fit.responsibilities.iter().zip(e["responsibilities"].as_array().unwrap()).enumerate()
        {
            for (a, b) in ours.iter().zip(floats(theirs)) {
                near(*a, b, &format!("{name}: responsibility of user {h}"));
            }
        }
        for (ours, theirs) in fit.candidates.iter().zip(e["candidates"].as_array().unwrap()) {
            assert_eq!(ours.0 as u64, theirs[0].as_u64().unwrap());
            near(ours.1, f(&theirs[1]), &format!("{name}: held-out log-likelihood at K = {}", ours.0));
        }
        // The hand-made case's groups are known.
        if let Some(partition) = case["partition"].as_object() {
            let truth: Vec<usize> = fit.users.iter().map(|(u, _)| partition[u].as_u64().unwrap() as usize).collect();
            let found: Vec<usize> = fit.users.iter().map(|(_, g)| *g).collect();
            assert_eq!(adjusted_rand_index(&truth, &found), 1.0, "{name}");
        }
    }
}

/// GPM heads trained as general-preference-model's loss trains them (its own loss.py, torch's
/// gradient, the same start): the projection, loss and held-out accuracy within 1e-6, and
/// the cyclic triads among the items.
#[test]
fn gpm_heads_match_the_reference_loss() {
    use prefscope_core::preference::gpm::{fit_gpm_from, GpmOptions};
    let fx = fixture("groups.json");
    for case in fx["gpm"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let data =
            if case["data"].is_null() { &fx["cases"][case["pairs"].as_u64().unwrap() as usize] } else { &case["data"] };
        let users: Vec<String> =
            data["users"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect();
        let (dim, f0) = rows(&data["features_0"]);
        let (_, f1) = rows(&data["features_1"]);
        let labels = floats(&data["label_0"]);
        let pairs = AnnotatedPairs { users: &users, dim, features_0: &f0, features_1: &f1, label_0: &labels };
        let o = &case["options"];
        let options = GpmOptions {
            dim: o["dim"].as_u64().unwrap() as usize,
            tau: f(&o["tau"]),
            steps: o["steps"].as_u64().unwrap() as usize,
            learning_rate: f(&o["learning_rate"]),
            seed: 0,
        };
        let (_, start) = rows(&case["start"]);
        let fit = fit_gpm_from(&pairs, &options, start).unwrap();
        let e = &case["expected"];
        for (a, b) in fit.projection.iter().zip(floats(&e["projection"])) {
            near(*a, b, &format!("{name}: projection"));
        }
        near(fit.loss, f(&e["loss"]), &format!("{name}: loss"));
        near(fit.accuracy, f(&e["accuracy"]), &format!("{name}: accuracy"));
        assert_eq!(fit.items as u64, e["items"].as_u64().unwrap(), "{name}: items");
        assert_eq!(fit.intransitive_triads, e["intransitive_triads"].as_u64(), "{name}: triads");
    }
}
