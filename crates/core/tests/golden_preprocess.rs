//! Image preprocessing against Pillow 12 (bit-exact: the same fixed-point taps, pass order and
//! rounding) and
//! against transformers 5's torchvision `CLIPImageProcessor` (within one 8-bit level, as
//! docs/FORMULAS.md "Image preprocessing" allows), on the random RGBA images of
//! tests/fixtures/preprocess.json.

mod common;

use base64::Engine;
use common::{fixture, floats};
use prefscope_core::scoring::preprocess::{preprocess, Preset, OPENAI_STD};

fn rgba(case: &serde_json::Value) -> (Vec<u8>, u32, u32) {
    let bytes = base64::engine::general_purpose::STANDARD.decode(case["rgba"].as_str().unwrap()).unwrap();
    (bytes, case["width"].as_u64().unwrap() as u32, case["height"].as_u64().unwrap() as u32)
}

/// Largest difference in 8-bit levels between two normalised images.
fn levels(ours: &[f32], reference: &[f64], plane: usize) -> f64 {
    assert_eq!(ours.len(), reference.len());
    ours.iter()
        .zip(reference)
        .enumerate()
        .map(|(i, (&a, &b))| (a as f64 - b).abs() * OPENAI_STD[i / plane] as f64 * 255.0)
        .fold(0.0, f64::max)
}

#[test]
fn matches_pillow_exactly_and_transformers_within_a_level() {
    let fx = fixture("preprocess.json");
    for case in fx["cases"].as_array().unwrap() {
        let (bytes, w, h) = rgba(case);
        let size = case["size"].as_u64().unwrap() as u32;
        let name = format!("{w}×{h}");
        let hps = preprocess(&bytes, w, h, &Preset::hps(size)).unwrap();
        let shape: Vec<u64> = case["hps_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(shape, vec![3, hps.height as u64, hps.width as u64], "{name} hps shape");
        let plane = (hps.width * hps.height) as usize;
        // JSON keeps 6 decimals: exact bytes differ by ≥ 1/255/0.27 ≈ 0.0146 per level.
        assert!(levels(&hps.data, &floats(&case["hps"]), plane) < 1e-3, "{name}: hps differs from Pillow");
        let clip = preprocess(&bytes, w, h, &Preset::clip(size)).unwrap();
        let plane = (size * size) as usize;
        assert!(levels(&clip.data, &floats(&case["clip_pillow"]), plane) < 1e-3, "{name}: clip differs from Pillow");
        let hf = levels(&clip.data, &floats(&case["clip_transformers"]), plane);
        assert!(hf <= 1.0 + 1e-3, "{name}: {hf} levels from transformers' CLIPImageProcessor");
    }
}
