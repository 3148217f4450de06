//! `prefscope groups` end to end against tests/fixtures/groups.json (MaxMin-RLHF's EM restated
//! in torch), and its errors on bad input.

mod common;

use common::{failure, fixtures, json_of, prefscope};

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, Float64Array, ListArray, RecordBatch, StringArray};
use serde_json::{json, Value};

fn near(ours: &Value, theirs: &Value, what: &str, tolerance: f64) {
    let (a, b) = (ours.as_f64().unwrap(), theirs.as_f64().unwrap());
    assert!((a - b).abs() <= tolerance * b.abs().max(1.0), "{what}: ours {a}, reference {b}");
}

/// A fixture case as JSON Lines rows.
fn write_case(case: &Value, path: &Path) {
    let n = case["users"].as_array().unwrap().len();
    let lines: Vec<String> = (0..n)
        .map(|i| {
            json!({"user_id": case["users"][i], "features_0": case["features_0"][i], "features_1": case["features_1"][i], "label_0": case["label_0"][i]})
                .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn groups_match_the_reference_loop() {
    reference_cases("cpu", 1e-6);
}

/// The same fits with EM's kernels on the GPU (lavapipe in CI), in f32: the same groups, the
/// likelihood and accuracies within 1e-4.
#[test]
fn groups_on_the_gpu_match_the_reference_loop() {
    reference_cases("gpu", 1e-4);
}

fn reference_cases(device: &str, tolerance: f64) {
    let fx: Value = serde_json::from_slice(&std::fs::read(fixtures().join("groups.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let input = tmp.path().join("pairs.jsonl");
        write_case(case, &input);
        let o = &case["options"];
        let mut args = vec![
            "groups".to_string(),
            "--input".into(),
            input.display().to_string(),
            "--ridge".into(),
            o["ridge"].to_string(),
            "--device".into(),
            device.into(),
        ];
        if let Some(k) = o["k"].as_u64() {
            args.extend(["--k".into(), k.to_string()]);
        }
        if let Some(k) = o["max_k"].as_u64() {
            args.extend(["--max-k".into(), k.to_string()]);
        }
        if o["soft"] == true {
            args.push("--soft".into());
        }
        let out = prefscope(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("fitted on the CPU"), "{name}: the fit left the {device}: {stderr}");
        let got = json_of(&out);
        let e = &case["expected"];
        let users: Vec<(String, u64)> = got["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["user_id"].as_str().unwrap().to_string(), u["group"].as_u64().unwrap()))
            .collect();
        let want: Vec<(String, u64)> = e["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u[0].as_str().unwrap().to_string(), u[1].as_u64().unwrap()))
            .collect();
        assert_eq!(users, want, "{name}");
        assert_eq!(got["metrics"]["k"], e["k"], "{name}");
        for key in ["log_likelihood", "accuracy_single", "accuracy_groups"] {
            near(&got["metrics"][key], &e[key], &format!("{name} {key} on the {device}"), tolerance);
        }
        for (g, (ours, theirs)) in
            got["groups"].as_array().unwrap().iter().zip(e["groups"].as_array().unwrap()).enumerate()
        {
            assert_eq!((&ours["users"], &ours["pairs"]), (&theirs["users"], &theirs["pairs"]), "{name} group {g}");
        }
        assert_eq!(got["candidates"].as_array().unwrap().len(), e["candidates"].as_array().unwrap().len(), "{name}");
        // MaxMin's view: every distinct item, with a group and a finite reward.
        let items = got["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.iter().all(|i| i["reward"].as_f64().unwrap().is_finite()), "{name}");
    }
}

#[test]
fn gpm_finds_the_cycle_no_reward_can_hold() {
    let fx: Value = serde_json::from_slice(&std::fs::read(fixtures().join("groups.json")).unwrap()).unwrap();
    let case = fx["gpm"].as_array().unwrap().iter().find(|c| c["name"] == "GPM on a cycle").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("cycle.jsonl");
    write_case(&case["data"], &input);
    let got = json_of(&prefscope(&[
        "groups",
        "--input",
        input.to_str().unwrap(),
        "--k",
        "1",
        "--gpm",
        "--gpm-dim",
        "2",
        "--gpm-steps",
        "200",
    ]));
    assert_eq!(got["gpm"]["items"], 3);
    assert_eq!(got["gpm"]["intransitive_triads"], 1);
    assert_eq!(got["gpm"]["accuracy"], 1.0);
    // One Bradley–Terry reward cannot order a cycle: a third of the held-out pairs at best.
    assert!(got["metrics"]["accuracy_single"].as_f64().unwrap() <= 2.0 / 3.0, "{}", got["metrics"]);
}

/// With a model, Pick-a-Pic pairs' images are embedded and the embeddings are the features:
/// the same fit as `--input` on the embeddings `prefscope embed` gives.
#[test]
fn the_model_path_fits_the_embeddings_prefscope_embed_gives() {
    let clip = fixtures().join("clip");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(clip.join("hf-quickgelu-f32")).unwrap().flatten() {
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    std::fs::copy(clip.join("tokenizer.json"), model.join("tokenizer.json")).unwrap();
    let images = ["square32.png", "wide.png", "grey.png", "tall_rgba.png", "square24.png"];
    let image = |k: usize| clip.join("images").join(images[k % images.len()]).display().to_string();
    let (mut lines, mut pairs) = (Vec::new(), Vec::new());
    for (u, user) in ["ann", "bo", "cy"].iter().enumerate() {
        for j in 0..3 {
            let (a, b) = (u + j, u + j + 2);
            let label = if (u + j) % 2 == 0 { 1.0 } else { 0.0 };
            lines.push(
                json!({"caption": "a shape", "jpg_0": image(a), "jpg_1": image(b), "label_0": label, "user_id": user})
                    .to_string(),
            );
            pairs.push((user.to_string(), a % images.len(), b % images.len(), label));
        }
    }
    let input = tmp.path().join("pairs.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let m = model.to_str().unwrap();
    let direct = json_of(&prefscope(&[
        "groups",
        "--input",
        input.to_str().unwrap(),
        "--model",
        m,
        "--device",
        "cpu",
        "--k",
        "2",
    ]));
    // The same features from `prefscope embed`, as float32 lists in Parquet (exact values).
    let paths: Vec<String> = (0..images.len()).map(image).collect();
    let mut args = vec!["embed", "--model", m, "--device", "cpu", "--images"];
    args.extend(paths.iter().map(String::as_str));
    let embedded = json_of(&prefscope(&args));
    let vector = |k: usize| -> Vec<f64> {
        embedded["rows"][k]["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32 as f64).collect()
    };
    let lists = |side: usize| {
        Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(
            pairs
                .iter()
                .map(|p| Some(vector(if side == 0 { p.1 } else { p.2 }).into_iter().map(Some).collect::<Vec<_>>())),
        )) as ArrayRef
    };
    let batch = RecordBatch::try_from_iter([
        ("user_id", Arc::new(StringArray::from(pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>())) as ArrayRef),
        ("features_0", lists(0)),
        ("features_1", lists(1)),
        ("label_0", Arc::new(Float64Array::from(pairs.iter().map(|p| p.3).collect::<Vec<_>>())) as ArrayRef),
    ])
    .unwrap();
    let features = tmp.path().join("features.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&features).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let via_input =
        json_of(&prefscope(&["groups", "--input", features.to_str().unwrap(), "--k", "2", "--device", "cpu"]));
    assert_eq!(direct["users"], via_input["users"]);
    for key in ["log_likelihood", "accuracy_single", "accuracy_groups"] {
        near(&direct["metrics"][key], &via_input["metrics"][key], key, 1e-6);
    }
    // A pair without its annotator is named.
    let missing = tmp.path().join("missing.jsonl");
    std::fs::write(&missing, json!({"caption": "a", "jpg_0": image(0), "jpg_1": image(1), "label_0": 1}).to_string())
        .unwrap();
    let err = failure(&["groups", "--input", missing.to_str().unwrap(), "--model", m, "--device", "cpu"]);
    assert!(err.contains("missing.jsonl: row 1, column `user_id`"), "{err}");
}

#[test]
fn bad_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let row = |user: &str, label: f64| {
        json!({"user_id": user, "features_0": [1.0, 0.0], "features_1": [0.0, 1.0], "label_0": label}).to_string()
    };
    let lonely = file("lonely.jsonl", &[row("a", 1.0), row("a", 0.0), row("b", 1.0)].join("\n"));
    assert!(failure(&["groups", "--input", &lonely]).contains("user `b` has 1 pair: each user needs at least 2"));
    let two = file("two.jsonl", &[row("a", 1.0), row("a", 0.0), row("b", 1.0), row("b", 1.0)].join("\n"));
    assert!(failure(&["groups", "--input", &two, "--k", "3"])
        .contains("k must be between 1 and the number of users (2), got 3"));
    let label = file(
        "label.jsonl",
        &json!({"user_id": "a", "features_0": [1.0], "features_1": [0.0], "label_0": 3}).to_string(),
    );
    assert!(failure(&["groups", "--input", &label]).contains("label.jsonl: row 1 (line 1), column `label_0`"));
    let nouser = file("nouser.jsonl", &json!({"features_0": [1.0], "features_1": [0.0], "label_0": 1}).to_string());
    assert!(failure(&["groups", "--input", &nouser]).contains("column `user_id`: value is missing"));
    // A NaN feature (Parquet can hold one).
    let lists = |rows: Vec<Vec<f64>>| {
        Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(
            rows.into_iter().map(|r| Some(r.into_iter().map(Some).collect::<Vec<_>>())),
        )) as ArrayRef
    };
    let batch = RecordBatch::try_from_iter([
        ("user_id", Arc::new(StringArray::from(vec!["a", "a"])) as ArrayRef),
        ("features_0", lists(vec![vec![1.0, 0.0], vec![f64::NAN, 0.0]])),
        ("features_1", lists(vec![vec![0.0, 1.0], vec![0.0, 1.0]])),
        ("label_0", Arc::new(Float64Array::from(vec![1.0, 0.0])) as ArrayRef),
    ])
    .unwrap();
    let nan = tmp.path().join("nan.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&nan).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = failure(&["groups", "--input", nan.to_str().unwrap()]);
    assert!(err.contains("nan.parquet: row 2, column `features_0`"), "{err}");
    assert!(failure(&["groups", "--input", &two, "--ridge", "0"]).contains("ridge must be a positive number"));
}
