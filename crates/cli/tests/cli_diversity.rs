//! `prefscope diversity` end to end: the reference's split from paired embeddings
//! (tests/fixtures/diversity.json), groups, the Gaussian kernel's seed, the model path against
//! embeddings from `prefscope embed`, and errors on bad input.

mod common;

use common::{failure, fixtures, json_of, prefscope};

use std::path::Path;

use arrow_array::types::Float32Type;
use arrow_array::{ArrayRef, ListArray, RecordBatch, StringArray};
use serde_json::{json, Value};

/// Rows `{"id", "group", "text_embedding", "image_embedding"}` as JSON Lines.
fn write_rows(path: &Path, text: &[Value], image: &[Value], group: impl Fn(usize) -> Value) {
    let lines: Vec<String> = (0..text.len())
        .map(|i| {
            json!({"id": format!("r{i}"), "group": group(i), "text_embedding": text[i], "image_embedding": image[i]})
                .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn the_whole_set_matches_the_reference_and_groups_are_reported() {
    let fx: Value = serde_json::from_slice(&std::fs::read(fixtures().join("diversity.json")).unwrap()).unwrap();
    let case = fx["cases"].as_array().unwrap().iter().find(|c| c["kernel"] == "cosine").unwrap();
    let (text, image) = (case["text"].as_array().unwrap(), case["image"].as_array().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pairs.jsonl");
    // Two groups, and the last row in no group.
    let n = text.len();
    write_rows(&input, text, image, |i| if i == n - 1 { Value::Null } else { json!(["even", "odd"][i % 2]) });
    let got = json_of(&prefscope(&["diversity", "--input", input.to_str().unwrap(), "--format", "json"]));
    for key in ["sce", "text_part"] {
        let (ours, theirs) = (got[key].as_f64().unwrap(), case[key].as_f64().unwrap());
        assert!((ours - theirs).abs() <= 1e-9 * theirs.abs(), "{key}: {ours} vs reference {theirs}");
    }
    assert_eq!(
        (got["images"].as_u64(), got["prompts"].as_u64(), got["kernel"].as_str()),
        (Some(n as u64), Some(n as u64), Some("cosine"))
    );
    let groups = got["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["group"].as_str().unwrap()).collect();
    assert_eq!(names, ["even", "odd"]);
    assert_eq!(groups[0]["images"].as_u64().unwrap() + groups[1]["images"].as_u64().unwrap(), n as u64 - 1);
    for g in groups {
        assert!(g["sce"].as_f64().unwrap() > 0.0 && g["text_part"].as_f64().unwrap() > 0.0, "{g}");
    }
    // The tabular formats carry one row per group.
    let csv = prefscope(&["diversity", "--input", input.to_str().unwrap(), "--format", "csv"]);
    let text = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(text.lines().next(), Some("group,images,prompts,sce,text_part"));
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn the_gaussian_kernel_is_reproducible_from_its_seed() {
    let fx: Value = serde_json::from_slice(&std::fs::read(fixtures().join("diversity.json")).unwrap()).unwrap();
    let case = &fx["cases"][0];
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pairs.jsonl");
    write_rows(&input, case["text"].as_array().unwrap(), case["image"].as_array().unwrap(), |_| Value::Null);
    let run = |seed: &str| {
        let args = ["diversity", "--input", input.to_str().unwrap(), "--kernel", "gaussian", "--rff-dim", "16"];
        json_of(&prefscope(&[&args[..], &["--seed", seed]].concat()))
    };
    let (a, b, c) = (run("1"), run("1"), run("2"));
    assert_eq!(a, b);
    assert_ne!(a["sce"], c["sce"]);
    assert_eq!(a["kernel"], "gaussian");
    assert!(a["groups"].as_array().unwrap().is_empty());
}

#[test]
fn the_model_path_splits_the_embeddings_prefscope_embed_gives() {
    let clip = fixtures().join("clip");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(clip.join("hf-quickgelu-f32")).unwrap().flatten() {
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    std::fs::copy(clip.join("tokenizer.json"), model.join("tokenizer.json")).unwrap();
    let images = ["square32.png", "wide.png", "grey.png", "tall_rgba.png", "square24.png"];
    let prompts = ["a red circle", "a red circle", "a blue square", "a blue square", "a green star"];
    let manifest = tmp.path().join("manifest.jsonl");
    let lines: Vec<String> = (0..5)
        .map(|i| {
            let image = clip.join("images").join(images[i]);
            json!({"prompt": prompts[i], "image": image, "group": if i < 2 { "circles" } else { "rest" }}).to_string()
        })
        .collect();
    std::fs::write(&manifest, lines.join("\n")).unwrap();
    let m = model.to_str().unwrap();
    let direct =
        json_of(&prefscope(&["diversity", "--model", m, "--manifest", manifest.to_str().unwrap(), "--device", "cpu"]));
    // The same rows through `prefscope embed` and `--input`.
    let texts = tmp.path().join("texts.txt");
    std::fs::write(&texts, prompts.join("\n")).unwrap();
    let paths: Vec<String> = images.iter().map(|i| clip.join("images").join(i).display().to_string()).collect();
    let mut args = vec!["embed", "--model", m, "--device", "cpu", "--texts", texts.to_str().unwrap(), "--images"];
    args.extend(paths.iter().map(String::as_str));
    let embedded = json_of(&prefscope(&args));
    let rows = embedded["rows"].as_array().unwrap();
    // As float32 lists in Parquet, so that the values are the towers' own (decimal JSON would
    // move them by an f32 rounding, which the split can magnify when prompts explain nearly all).
    let vectors = |range: std::ops::Range<usize>| {
        let lists = range.map(|k| {
            Some(
                rows[k]["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| Some(v.as_f64().unwrap() as f32))
                    .collect::<Vec<_>>(),
            )
        });
        std::sync::Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(lists)) as ArrayRef
    };
    let groups = StringArray::from(vec!["circles", "circles", "rest", "rest", "rest"]);
    let batch = RecordBatch::try_from_iter([
        ("group", std::sync::Arc::new(groups) as ArrayRef),
        ("text_embedding", vectors(0..5)),
        ("image_embedding", vectors(5..10)),
    ])
    .unwrap();
    let input = tmp.path().join("pairs.parquet");
    let file = std::fs::File::create(&input).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let via_input = json_of(&prefscope(&["diversity", "--input", input.to_str().unwrap()]));
    assert_eq!(direct["prompts"].as_u64(), Some(3));
    assert_eq!(direct["groups"][0]["prompts"].as_u64(), Some(1));
    for (a, b) in [(&direct, &via_input), (&direct["groups"][1], &via_input["groups"][1])] {
        for key in ["sce", "text_part"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * y.abs(), "{key}: model path {x}, embed + input {y}");
        }
    }
}

#[test]
fn bad_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ragged = file("ragged.jsonl", "{\"text_embedding\": [1, 0], \"image_embedding\": [0, 1]}\n{\"text_embedding\": [1, 0, 2], \"image_embedding\": [0, 1]}\n");
    assert!(
        failure(&["diversity", "--input", &ragged]).contains("ragged.jsonl: row 2 (line 2), column `text_embedding`")
    );
    let missing = file("missing.jsonl", "{\"text_embedding\": [1, 0]}\n");
    assert!(failure(&["diversity", "--input", &missing]).contains("column `image_embedding`: value is missing"));
    let one = file("one.jsonl", "{\"text_embedding\": [1, 0], \"image_embedding\": [0, 1]}\n");
    assert!(failure(&["diversity", "--input", &one]).contains("at least 2 rows"));
    let two = file("two.jsonl", "{\"text_embedding\": [1, 0], \"image_embedding\": [0, 1]}\n{\"text_embedding\": [0, 1], \"image_embedding\": [1, 1]}\n");
    let gaussian = ["diversity", "--input", two.as_str(), "--kernel", "gaussian"];
    assert!(failure(&[&gaussian[..], &["--sigma", "0"]].concat()).contains("sigma must be a positive number"));
    assert!(failure(&[&gaussian[..], &["--rff-dim", "100000"]].concat()).contains("rff_dim must be"));
    let csv = file("pairs.csv", "text_embedding,image_embedding\n");
    assert!(failure(&["diversity", "--input", &csv]).contains("JSON Lines or Parquet"));
    assert!(failure(&["diversity", "--input", &two, "--manifest", &two]).contains("cannot be used with"));
}
