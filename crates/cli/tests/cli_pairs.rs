//! `prefscope pairs`: PickScore's evaluation of labelled pairs, checked against `prefscope
//! score` (each pair a group of two: its softmax is PickScore's p0, p1) and against the
//! labels by hand.

use std::process::Command;

use serde_json::Value;

const IMAGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/clip/images");
const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../synth/demo-model");

fn prefscope(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_prefscope")).args(args).output().expect("run prefscope");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn pairs_match_the_pickscore_softmax_of_score_and_count_ties_half() {
    let dir = std::env::temp_dir().join(format!("prefscope-pairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pairs = [
        ("a large red circle in the center", "square24.png", "wide.png", 1.0),
        ("a small blue square on the left", "grey.png", "tall_rgba.png", 0.0),
        ("a large red circle in the center", "rotated.jpg", "grey.png", 0.5),
    ];
    let mut jsonl = String::new();
    let mut manifest = String::from("prompt,image,group,id\n");
    for (i, (caption, a, b, label)) in pairs.iter().enumerate() {
        let (a, b) = (format!("{IMAGES}/{a}"), format!("{IMAGES}/{b}"));
        jsonl += &serde_json::json!({"caption": caption, "jpg_0": a, "jpg_1": b, "label_0": label}).to_string();
        jsonl.push('\n');
        manifest += &format!("{caption},{a},g{i},{i}-0\n{caption},{b},g{i},{i}-1\n");
    }
    std::fs::write(dir.join("pairs.jsonl"), jsonl).unwrap();
    std::fs::write(dir.join("manifest.csv"), manifest).unwrap();
    let input = dir.join("pairs.jsonl");
    let doc = prefscope(&["pairs", "--model", MODEL, "--input", input.to_str().unwrap(), "--device", "cpu"]);
    let manifest = dir.join("manifest.csv");
    let scored = prefscope(&[
        "score",
        "--model",
        MODEL,
        "--manifest",
        manifest.to_str().unwrap(),
        "--preset",
        "pickscore",
        "--device",
        "cpu",
    ]);
    let rows = scored["rows"].as_array().unwrap();
    let probability = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap()["probability"].as_f64().unwrap();
    let got = doc["pairs"].as_array().unwrap();
    let mut accuracy = 0.0;
    for (i, p) in got.iter().enumerate() {
        let (p0, p1) = (p["p0"].as_f64().unwrap(), p["p1"].as_f64().unwrap());
        assert!((p0 - probability(&format!("{i}-0"))).abs() < 1e-5, "pair {i}: {p0}");
        assert!((p1 - probability(&format!("{i}-1"))).abs() < 1e-5, "pair {i}: {p1}");
        let predicted = if p0 > p1 { 1.0 } else { 0.0 };
        assert_eq!(p["predicted"].as_f64().unwrap(), predicted, "threshold 0: no ties predicted");
        let label = pairs[i].3;
        accuracy += if label == 0.5 { 0.5 } else { f64::from(u8::from(label == predicted)) };
    }
    let m = &doc["metrics"];
    assert!((m["accuracy"].as_f64().unwrap() - accuracy / 3.0).abs() < 1e-12, "{m}");
    assert_eq!(m["labelled_ties"].as_f64(), Some(1.0));
    // Every pair a predicted tie at threshold 1: accuracy 0.5 on strict labels, 1 on the tie.
    let all_ties = prefscope(&[
        "pairs",
        "--model",
        MODEL,
        "--input",
        input.to_str().unwrap(),
        "--device",
        "cpu",
        "--tie-threshold",
        "1",
    ]);
    assert!((all_ties["metrics"]["accuracy"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_pairs_are_named() {
    let dir = std::env::temp_dir().join(format!("prefscope-badpairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("bad.jsonl");
    std::fs::write(&input, "{\"caption\": \"a\", \"jpg_0\": \"x.png\", \"jpg_1\": \"y.png\", \"label_0\": 2}\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prefscope"))
        .args(["pairs", "--model", MODEL, "--input", input.to_str().unwrap(), "--device", "cpu"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl") && err.contains("label_0"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--strength` on the shapes-world pairs with 15% flipped labels (the Pairs view's bundled
/// set): the `likely_wrong` band, against the truth of which labels were flipped.
#[test]
fn strength_bands_catch_the_flipped_labels() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = prefscope_synth::flipped_pairs::bundled();
    let mut lines = String::new();
    for p in &pairs {
        let mut files = Vec::new();
        for (k, sample) in p.images.iter().enumerate() {
            let rgba = prefscope_synth::demo::rgba("x", sample).unwrap();
            let name = format!("{}-{k}.png", p.id);
            image::save_buffer(
                dir.path().join(&name),
                &rgba.data,
                rgba.width,
                rgba.height,
                image::ExtendedColorType::Rgba8,
            )
            .unwrap();
            files.push(name);
        }
        lines += &serde_json::json!({"caption": p.caption, "jpg_0": files[0], "jpg_1": files[1], "label_0": p.label_0})
            .to_string();
        lines.push('\n');
    }
    let input = dir.path().join("pairs.jsonl");
    std::fs::write(&input, lines).unwrap();
    let model = std::path::PathBuf::from(MODEL);
    let out = Command::new(env!("CARGO_BIN_EXE_prefscope"))
        .args(["pairs", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--device", "cpu"])
        .args(["--strength", "clip,hps,clipscore-original"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["pairs"].as_array().unwrap();
    assert_eq!(rows.len(), pairs.len());
    let flagged: Vec<bool> = rows.iter().map(|r| r["band"] == "likely_wrong").collect();
    assert_eq!(
        doc["metrics"]["strength/likely_wrong"].as_f64().unwrap() as usize,
        flagged.iter().filter(|f| **f).count()
    );
    let hits = pairs.iter().zip(&flagged).filter(|(p, f)| p.flipped && **f).count() as f64;
    let precision = hits / flagged.iter().filter(|f| **f).count() as f64;
    let recall = hits / pairs.iter().filter(|p| p.flipped).count() as f64;
    assert!(precision >= 0.6 && recall >= 0.6, "precision {precision}, recall {recall}");
    // An ensemble of one is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_prefscope"))
        .args(["pairs", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--device", "cpu"])
        .args(["--strength", "clip"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs an ensemble of at least two"));
}

#[test]
fn calibration_and_subsets_of_labelled_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("a large red circle in the center", "square24.png", "wide.png", 1.0, "shapes"),
        ("a small blue square on the left", "grey.png", "tall_rgba.png", 0.0, "colours"),
        ("a large red circle in the center", "rotated.jpg", "grey.png", 0.5, "shapes"),
        ("a small blue square on the left", "wide.png", "square24.png", 1.0, "colours"),
    ];
    let line = |(caption, a, b, label, subset): &(&str, &str, &str, f64, &str)| {
        serde_json::json!({"caption": caption, "jpg_0": format!("{IMAGES}/{a}"), "jpg_1": format!("{IMAGES}/{b}"),
            "label_0": label, "subset": subset})
        .to_string()
            + "\n"
    };
    let write = |name: &str, keep: &dyn Fn(&str) -> bool| {
        let path = dir.path().join(name);
        std::fs::write(&path, rows.iter().filter(|r| keep(r.4)).map(line).collect::<String>()).unwrap();
        path.display().to_string()
    };
    let all = write("all.jsonl", &|_| true);
    let run = |input: &str, by: bool| {
        let mut args = vec!["pairs", "--model", MODEL, "--input", input, "--device", "cpu", "--bins", "5"];
        if by {
            args.extend(["--by", "subset"]);
        }
        prefscope(&args)
    };
    let doc = run(&all, true);
    // Brier against the labels, a tie's target ½, from the pairs' own p0.
    let pairs = doc["pairs"].as_array().unwrap();
    let brier = pairs.iter().map(|p| (p["p0"].as_f64().unwrap() - p["label_0"].as_f64().unwrap()).powi(2)).sum::<f64>()
        / pairs.len() as f64;
    assert!((doc["metrics"]["calibration/brier"].as_f64().unwrap() - brier).abs() < 1e-6);
    let bins = doc["calibration"]["bins"].as_array().unwrap();
    assert_eq!((bins.len(), bins.iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>()), (5, 8));
    for subset in ["shapes", "colours"] {
        let alone = run(&write(&format!("{subset}.jsonl"), &|s| s == subset), false);
        assert_eq!(doc["subsets"][subset], alone["metrics"], "{subset}");
    }
    let mean = (doc["subsets"]["shapes"]["accuracy"].as_f64().unwrap()
        + doc["subsets"]["colours"]["accuracy"].as_f64().unwrap())
        / 2.0;
    assert_eq!(doc["subsets_mean"]["accuracy"].as_f64().unwrap(), mean);
}
