//! `prefscope embed` and `prefscope score` end to end on a tiny transformers checkpoint from
//! tests/fixtures/clip, against the reference's embeddings.

mod common;

use common::{json_of, prefscope};

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt())
}

/// A model directory as users have it: the fixture's files plus tokenizer.json.
fn model_dir(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::copy(fixtures().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    dir
}

const MODEL: &str = "hf-quickgelu-f32";

#[test]
fn embed_matches_transformers_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_dir(tmp.path(), MODEL);
    let expected: Value = serde_json::from_slice(&std::fs::read(model.join("expected.json")).unwrap()).unwrap();
    let texts: Vec<&str> = expected["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let texts_file = tmp.path().join("texts.txt");
    std::fs::write(&texts_file, texts.join("\n")).unwrap();
    let square = fixtures().join("images/square32.png");
    let wide = fixtures().join("images/wide.png");
    let out = json_of(&prefscope(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
        "--texts",
        texts_file.to_str().unwrap(),
        "--images",
        square.to_str().unwrap(),
        wide.to_str().unwrap(),
    ]));
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len(), texts.len() + 2);
    let names: Vec<&str> = expected["images"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for (i, row) in rows.iter().enumerate() {
        let embedding = floats(&row["embedding"]);
        let norm: f64 = embedding.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        let (want, floor) = if i < texts.len() {
            assert_eq!((row["kind"].as_str(), row["input"].as_str()), (Some("text"), Some(texts[i])));
            (floats(&expected["text_embeds"][i]), 0.9999)
        } else {
            assert_eq!(row["kind"], "image");
            let name = if i == texts.len() { "square32.png" } else { "wide.png" };
            assert!(row["input"].as_str().unwrap().ends_with(name));
            let k = names.iter().position(|n| *n == name).unwrap();
            (floats(&expected["image_embeds"][k]), if name == "square32.png" { 0.9999 } else { 0.999 })
        };
        let c = cosine(&embedding, &want);
        assert!(c >= floor, "row {i}: cos {c}");
    }
}

#[test]
fn score_rows_carry_the_contract_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_dir(tmp.path(), MODEL);
    let images = tmp.path().join("imgs");
    std::fs::create_dir_all(&images).unwrap();
    for name in ["square32.png", "wide.png", "grey.png"] {
        std::fs::copy(fixtures().join("images").join(name), images.join(name)).unwrap();
    }
    // Relative paths resolve against the manifest's folder.
    let manifest = tmp.path().join("manifest.csv");
    std::fs::write(
        &manifest,
        "prompt,image,id\na photo of a cat,imgs/square32.png,a\na photo of a cat,imgs/wide.png,b\na photo of a cat,imgs/grey.png,c\na red circle next to a blue square,imgs/wide.png,d\n",
    )
    .unwrap();
    let run = |preset: &str, device: &str| {
        json_of(&prefscope(&[
            "score",
            "--model",
            model.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--preset",
            preset,
            "--device",
            device,
            "--reweight",
            "0.5",
        ]))
    };
    let expected: Value = serde_json::from_slice(&std::fs::read(model.join("expected.json")).unwrap()).unwrap();
    let scale = expected["logit_scale_exp"].as_f64().unwrap();
    let clip = run("clip", "cpu");
    let rows = clip["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for key in
        ["id", "group", "prompt", "image", "score", "relevant", "irrelevant", "reweighted", "probability", "rank"]
    {
        assert!(rows.iter().all(|r| !r[key].is_null()), "column {key}");
    }
    // Row a is square32.png against text 0: the reference's logit.
    let want = expected["logits_per_image"][0][0].as_f64().unwrap();
    let got = rows[0]["score"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{got} vs {want}");
    for r in rows {
        let (rel, irr) = (r["relevant"].as_f64().unwrap(), r["irrelevant"].as_f64().unwrap());
        assert!((rel + irr - r["score"].as_f64().unwrap()).abs() < 1e-4 * scale);
        assert!((rel + 0.5 * irr - r["reweighted"].as_f64().unwrap()).abs() < 1e-4 * scale);
    }
    // The three rows of the cat prompt share a group: probabilities sum to 1, ranks 1..3.
    let p: f64 = rows[..3].iter().map(|r| r["probability"].as_f64().unwrap()).sum();
    assert!((p - 1.0).abs() < 1e-5);
    let mut ranks: Vec<i64> = rows[..3].iter().map(|r| r["rank"].as_i64().unwrap()).collect();
    ranks.sort();
    assert_eq!(ranks, [1, 2, 3]);
    assert_eq!((rows[3]["probability"].as_f64(), rows[3]["rank"].as_i64()), (Some(1.0), Some(1)));

    // Other presets: same cosines, other units; GPU and CPU agree.
    let hps = run("hps", "cpu");
    let clipscore = run("clipscore", "gpu");
    for i in 0..4 {
        let cos_hps = hps["rows"][i]["score"].as_f64().unwrap();
        let cos_clip = rows[i]["score"].as_f64().unwrap() / scale;
        let cs = clipscore["rows"][i]["score"].as_f64().unwrap();
        // hps pads instead of cropping, so only the square image (no resize either way) agrees.
        if i == 0 {
            assert!((cos_hps - cos_clip).abs() < 1e-5, "{cos_hps} vs {cos_clip}");
        }
        assert!((cs - 100.0 * cos_clip).abs() < 1e-3, "clipscore {cs} vs 100·{cos_clip}");
    }
}

/// Runs prefscope expecting failure; returns its stderr.
fn failure(args: &[&str]) -> String {
    let out = prefscope(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_dir(tmp.path(), MODEL);
    let manifest = tmp.path().join("m.jsonl");
    std::fs::write(&manifest, "{\"prompt\": \"a\", \"image\": \"missing.png\"}\n").unwrap();
    let (model, manifest, empty) = (model.to_str().unwrap(), manifest.to_str().unwrap(), tmp.path().to_str().unwrap());
    let err = failure(&["score", "--model", model, "--manifest", manifest, "--device", "cpu"]);
    assert!(err.contains("missing.png"), "{err}");
    let err = failure(&["embed", "--model", empty, "--texts", manifest, "--device", "cpu"]);
    assert!(err.contains("config.json"), "{err}");
    let err = failure(&["score", "--model", model, "--manifest", manifest, "--preset", "nope"]);
    assert!(err.contains("unknown preset"), "{err}");
    let err = failure(&["embed", "--model", model, "--texts", manifest, "--dtype", "f8"]);
    assert!(err.contains("unknown dtype `f8`"), "{err}");
    // The flag's old name still works.
    let err = failure(&["embed", "--model", model, "--texts", manifest, "--precision", "int4"]);
    assert!(err.contains("unknown dtype `int4`"), "{err}");
    let out = tmp.path().join("out");
    let err = failure(&["quantize", "--model", model, "--dtype", "f32", "--out", out.to_str().unwrap()]);
    assert!(err.contains("q8 or f16"), "{err}");
    let err = failure(&["quantize", "--model", model, "--dtype", "q8", "--out", model]);
    assert!(err.contains("is the model directory"), "{err}");
}

/// Text embeddings from `embed` with extra flags, and what it said about the dtype.
fn embed_texts(model: &Path, texts: &Path, extra: &[&str]) -> (Vec<Vec<f64>>, String) {
    let mut args = vec!["embed", "--model", model.to_str().unwrap(), "--texts", texts.to_str().unwrap()];
    args.extend(extra);
    let out = prefscope(&args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let rows = json_of(&out)["rows"].as_array().unwrap().iter().map(|r| floats(&r["embedding"])).collect();
    (rows, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn quantized_models_embed_in_their_stored_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_dir(tmp.path(), MODEL);
    let texts = tmp.path().join("texts.txt");
    std::fs::write(&texts, "a red square\ntwo blue circles\n").unwrap();
    let (f32_rows, said) = embed_texts(&model, &texts, &["--device", "cpu"]);
    assert!(said.contains("in f32"), "{said}");
    for (dtype, floor) in [("q8", 0.999), ("f16", 0.9999)] {
        let out = tmp.path().join(dtype);
        let report = json_of(&prefscope(&[
            "quantize",
            "--model",
            model.to_str().unwrap(),
            "--dtype",
            dtype,
            "--out",
            out.to_str().unwrap(),
        ]));
        assert_eq!(report["dtype"], dtype);
        let (bytes_in, bytes_out) = (report["bytes_in"].as_f64().unwrap(), report["bytes_out"].as_f64().unwrap());
        assert!(bytes_out < bytes_in * if dtype == "q8" { 0.4 } else { 0.6 }, "{report}");
        for file in ["config.json", "preprocessor_config.json", "tokenizer.json"] {
            assert!(out.join(file).exists(), "{file} copied");
        }
        // `auto` runs the stored dtype; asking for it at load gives the same embeddings.
        let (stored, said) = embed_texts(&out, &texts, &["--device", "cpu"]);
        assert!(said.contains(&format!("in {dtype}")), "{said}");
        let (at_load, _) = embed_texts(&model, &texts, &["--device", "cpu", "--dtype", dtype]);
        for ((s, l), f) in stored.iter().zip(&at_load).zip(&f32_rows) {
            assert!(s.iter().zip(l).all(|(a, b)| (a - b).abs() <= 1e-6), "{dtype}: read back vs at load");
            assert!(cosine(s, f) >= floor, "{dtype} against f32: {}", cosine(s, f));
        }
    }
    // transformers.js's spelling.
    let (fp16, _) = embed_texts(&model, &texts, &["--device", "cpu", "--dtype", "fp16"]);
    assert!(cosine(&fp16[0], &f32_rows[0]) >= 0.9999);
}

/// A PNG that declares `width × height` pixels and holds none: a decompression bomb's header.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]); // 8-bit RGBA, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    // IHDR, then the start of the pixel data (a decoder reads the header up to it), then the end.
    for chunk in [ihdr, b"IDAT\x78\x9c\x03\x00".to_vec(), b"IEND".to_vec()] {
        png.extend((chunk.len() as u32 - 4).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn an_image_past_the_pixel_limit_is_refused_from_its_header() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_dir(tmp.path(), MODEL);
    let bomb = tmp.path().join("bomb.png");
    std::fs::write(&bomb, png_header_only(30_000, 30_000)).unwrap();
    let (model, bomb) = (model.to_str().unwrap(), bomb.to_str().unwrap());
    let err = failure(&["embed", "--model", model, "--images", bomb, "--device", "cpu"]);
    assert!(err.contains("bomb.png: is 30000×30000 (900.0 megapixels), past the limit of 89.5 megapixels"), "{err}");
    // A lower limit refuses an ordinary image, naming the flag.
    let small = fixtures().join("images/square24.png");
    let small = small.to_str().unwrap();
    let err = failure(&["embed", "--model", model, "--images", small, "--device", "cpu", "--max-image-pixels", "10"]);
    assert!(err.contains("--max-image-pixels"), "{err}");
    let err = failure(&["embed", "--model", model, "--images", bomb, "--max-image-pixels", "-5"]);
    assert!(err.contains("must be a whole number of at least 1, got `-5`"), "{err}");
}
