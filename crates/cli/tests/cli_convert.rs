//! `prefscope convert --hps` end to end: PyTorch checkpoints saved as HPS v2 saves its release
//! (tests/fixtures/clip/hps_pt.py) become open_clip directories whose embeddings match
//! open_clip's on the same weights, and broken or malicious files are refused by name without
//! anything in them being run.

mod common;

use common::{failure, fixtures, json_of, prefscope};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn hps() -> PathBuf {
    fixtures().join("clip/hps-pt")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt())
}

/// The base directory as users have it: the open_clip config and the tokenizer.
fn base_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("base");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(hps().join("base/open_clip_config.json"), dir.join("open_clip_config.json")).unwrap();
    std::fs::copy(fixtures().join("clip/tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    dir
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn hps_checkpoints_convert_and_embed_like_open_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base_dir(tmp.path());
    let mut f32_bytes = 0.0;
    for (pt, golden, dtype) in
        [("hps-tiny.pt", "expected.json", "f32"), ("hps-tiny_compressed.pt", "expected_compressed.json", "f16")]
    {
        let out = tmp.path().join(dtype);
        let report =
            json_of(&prefscope(&["convert", "--hps", s(&hps().join(pt)), "--like", s(&base), "--out", s(&out)]));
        assert_eq!(report["dtype"], dtype, "{report}");
        assert_eq!(report["tensors"], 50, "open_clip's state dict for this config has 50 tensors");
        assert_eq!(report["prefix_stripped"], Value::Null);
        assert_eq!(report["copied"], serde_json::json!(["open_clip_config.json", "tokenizer.json"]));
        let weights = out.join("open_clip_model.safetensors");
        assert_eq!(report["weights"], s(&weights));
        let bytes_out = std::fs::metadata(&weights).unwrap().len() as f64;
        assert_eq!(report["bytes_out"].as_f64(), Some(bytes_out));
        if dtype == "f32" {
            f32_bytes = bytes_out;
        } else {
            // Kept in half precision, not widened.
            assert!(bytes_out < 0.55 * f32_bytes, "{bytes_out} vs {f32_bytes}");
        }

        let expected: Value = serde_json::from_slice(&std::fs::read(hps().join(golden)).unwrap()).unwrap();
        let texts: Vec<&str> = expected["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let texts_file = tmp.path().join("texts.txt");
        std::fs::write(&texts_file, texts.join("\n")).unwrap();
        let images: Vec<PathBuf> = expected["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| fixtures().join("clip/images").join(n.as_str().unwrap()))
            .collect();
        let mut args = vec!["embed", "--model", s(&out), "--device", "cpu", "--texts", s(&texts_file), "--images"];
        args.extend(images.iter().map(|p| s(p)));
        let rows = json_of(&prefscope(&args))["rows"].as_array().unwrap().clone();
        assert_eq!(rows.len(), texts.len() + images.len());
        for (i, row) in rows.iter().enumerate() {
            let got = floats(&row["embedding"]);
            let (want, floor) = if i < texts.len() {
                (floats(&expected["text_embeds"][i]), 0.9999)
            } else {
                let k = i - texts.len();
                // The square image is at model size (no resize); the wide one is resized and
                // padded, where bicubic implementations differ slightly (as in cli_clip.rs).
                (floats(&expected["image_embeds"][k]), if k == 0 { 0.9999 } else { 0.999 })
            };
            let c = cosine(&got, &want);
            assert!(c >= floor, "{pt} row {i}: cos {c}");
        }
    }
}

#[test]
fn bad_checkpoints_are_refused_by_file_and_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base_dir(tmp.path());
    let out = tmp.path().join("out");
    let convert = |pt: &Path| failure(&["convert", "--hps", s(pt), "--like", s(&base), "--out", s(&out)]);
    let cases = [
        ("wrong-shape.pt", "wrong-shape.pt: tensor `visual.proj` has shape [8, 16], the config implies [16, 8]"),
        ("missing.pt", "missing.pt: tensor `positional_embedding` is missing"),
        ("unexpected.pt", "unexpected.pt: tensor `visual.head.weight` is not part of the model the config describes"),
        (
            "evil-huge-storage.pt",
            "evil-huge-storage.pt: reading `visual.proj`, storage `0` claims 1099511627776 elements of 4 bytes, \
             its entry `data/0` holds 16 bytes",
        ),
        (
            "evil-shape-overflow.pt",
            "evil-shape-overflow.pt: tensor `visual.proj`: has shape [4611686018427387904, 4611686018427387904], \
             more elements than any file holds",
        ),
    ];
    for (name, message) in cases {
        let err = convert(&hps().join(name));
        assert!(err.contains(message), "{name}: {err}");
    }
    // A truncated download: the zip's central directory is gone.
    let whole = std::fs::read(hps().join("hps-tiny_compressed.pt")).unwrap();
    let truncated = tmp.path().join("truncated.pt");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let err = convert(&truncated);
    assert!(err.contains("truncated.pt: is not a readable zip archive"), "{err}");
    // The base and the checkpoint disagree (another architecture): the first tensor named.
    let other = fixtures().join("clip/openclip-quickgelu-f32");
    let err = failure(&["convert", "--hps", s(&hps().join("hps-tiny.pt")), "--like", s(&other), "--out", s(&out)]);
    assert!(
        err.contains("hps-tiny.pt: tensor `positional_embedding` has shape [77, 4], the config implies [77, 8]"),
        "{err}"
    );
    // A transformers directory is not an open_clip base.
    let hf = fixtures().join("clip/hf-quickgelu-f32");
    let err = failure(&["convert", "--hps", s(&hps().join("hps-tiny.pt")), "--like", s(&hf), "--out", s(&out)]);
    assert!(err.contains("no open_clip_config.json"), "{err}");
    let err = failure(&["convert", "--hps", s(&hps().join("hps-tiny.pt")), "--like", s(&base), "--out", s(&base)]);
    assert!(err.contains("is the --like directory"), "{err}");
    assert!(!out.exists(), "nothing is written for a refused checkpoint");
}

/// The pickle of evil-os-system.pt calls `os.system("touch prefscope-pwned")` when Python
/// unpickles it: prefscope refuses the global by name, and the file is never created.
#[test]
fn a_pickle_that_runs_a_command_is_refused_and_nothing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base_dir(tmp.path());
    let out = tmp.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_prefscope"))
        .current_dir(tmp.path())
        .args(["convert", "--hps", s(&hps().join("evil-os-system.pt")), "--like", s(&base), "--out", s(&out)])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(
            "evil-os-system.pt: reading `visual.proj`, the pickle asks for os.system, which is not a tensor or \
             plain container; refusing (nothing is executed)"
        ),
        "{err}"
    );
    assert!(!tmp.path().join("prefscope-pwned").exists(), "the command ran");
    assert!(!out.exists());
}
