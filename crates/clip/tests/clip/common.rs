//! Fixture access shared by the native suite and the browser suite: files on disk natively,
//! bytes embedded in the test binary in the browser (which has no file system).

use prefscope_clip::{Backend, DtypeChoice, Encoder, ModelFiles, Rgba};
use serde_json::Value;

/// The models both suites check.
pub const MODELS: [&str; 4] =
    ["hf-quickgelu-f32", "hf-gelu-f16-legacy", "openclip-gelu-bf16", "openclip-quickgelu-f32"];

#[cfg(not(target_arch = "wasm32"))]
pub fn fixture_bytes(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[cfg(target_arch = "wasm32")]
pub fn fixture_bytes(path: &str) -> Vec<u8> {
    macro_rules! embedded {
        ($($p:literal),* $(,)?) => {
            match path {
                $($p => include_bytes!(concat!("../../../../tests/fixtures/clip/", $p)).to_vec(),)*
                other => panic!("{other} is not embedded in the browser suite"),
            }
        };
    }
    embedded!(
        "tokenizer.json",
        "tokenizer_cases.json",
        "images/square32.png",
        "images/square28.png",
        "images/square24.png",
        "images/wide.png",
        "images/tall_rgba.png",
        "images/grey.png",
        "images/rotated.jpg",
        "hf-quickgelu-f32/config.json",
        "hf-quickgelu-f32/preprocessor_config.json",
        "hf-quickgelu-f32/model.safetensors",
        "hf-quickgelu-f32/expected.json",
        "hf-gelu-f16-legacy/config.json",
        "hf-gelu-f16-legacy/preprocessor_config.json",
        "hf-gelu-f16-legacy/model.safetensors",
        "hf-gelu-f16-legacy/expected.json",
        "openclip-gelu-bf16/open_clip_config.json",
        "openclip-gelu-bf16/open_clip_model.safetensors",
        "openclip-gelu-bf16/expected.json",
        "openclip-quickgelu-f32/open_clip_config.json",
        "openclip-quickgelu-f32/open_clip_model.safetensors",
        "openclip-quickgelu-f32/expected.json",
    )
}

pub fn json(path: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(path)).unwrap()
}

/// A fixture model's files, with the shared tokenizer.json added.
pub fn model_files(name: &str) -> ModelFiles {
    let mut files = ModelFiles::new();
    let names: &[&str] = if name.starts_with("openclip") {
        &["open_clip_config.json", "open_clip_model.safetensors"]
    } else {
        &["config.json", "preprocessor_config.json", "model.safetensors"]
    };
    for file in names {
        files.insert(file, fixture_bytes(&format!("{name}/{file}")));
    }
    files.insert("tokenizer.json", fixture_bytes("tokenizer.json"));
    files
}

pub fn image(name: &str) -> Rgba {
    Rgba::decode(name, &fixture_bytes(&format!("images/{name}"))).unwrap()
}

pub fn load(name: &str, backend: Backend, dtype: DtypeChoice) -> Encoder {
    Encoder::load_with(&model_files(name), backend, dtype).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fixture models stored in F16 or BF16.
pub fn stored_half(name: &str) -> bool {
    name.contains("f16") || name.contains("bf16")
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

pub fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
