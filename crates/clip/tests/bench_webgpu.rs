//! B/32 on WebGPU in headless Chromium, timed as the transformers.js harness times
//! transformers.js (docs/DESIGN.md "Reference tools"; `cargo xtask
//! bench-browser`).
#![cfg(target_arch = "wasm32")]

#[path = "clip/browser_files.rs"]
mod browser_files;

use browser_files::{model_files, random_checkpoint, remove_file};
use prefscope_clip::blob::BlobSource;
use prefscope_clip::export::VIT_B32_CONFIG as B32;
use prefscope_clip::{Backend, DtypeChoice, Encoder};
use prefscope_gpu::Gpu;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn now() -> f64 {
    js_sys::Date::now()
}

/// Times B/32 on WebGPU with random f32 weights: image batches 1 and 8 (224×224 RGBA,
/// preprocessing included) and text batch 8, warm, as the transformers.js harness measures
/// transformers.js (docs/DESIGN.md "Reference tools"), and prints the times; checks only that
/// every embedding came back. A benchmark, not part of `cargo xtask test`: `cargo xtask
/// bench-browser` runs it.
#[wasm_bindgen_test]
async fn bench_b32_on_webgpu() {
    let (blob, _) = random_checkpoint(B32, "b32.safetensors", false).await;
    let gpu = Gpu::new(true).await.expect("WebGPU adapter");
    let adapter = gpu.adapter().to_string();
    let t = now();
    let mut encoder = Encoder::load_streamed(
        &model_files(B32),
        BlobSource::new(blob),
        Backend::Gpu(gpu),
        DtypeChoice::Exactly(Dtype::F32),
    )
    .await
    .unwrap();
    encoder.batch = 8;
    let load = now() - t;
    let mut seed = 12345u32;
    let images: Vec<prefscope_clip::Rgba> = (0..8)
        .map(|i| {
            let data = (0..224 * 224 * 4)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            prefscope_clip::Rgba::from_raw(&format!("img{i}"), 224, 224, data).unwrap()
        })
        .collect();
    let texts: Vec<String> = [
        "a photo of a cat",
        "a photo of a dog",
        "a red sports car on a road",
        "two people playing football",
        "a bowl of fresh fruit",
        "a mountain lake at sunrise",
        "an old wooden house",
        "a diagram of a neural network",
    ]
    .map(String::from)
    .to_vec();
    let t = now();
    encoder.embed_images(&images[..1], None).await.unwrap();
    encoder.embed_texts(&texts[..1]).await.unwrap();
    let first = now() - t;
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let mut image1 = Vec::new();
    for _ in 0..3 {
        let t = now();
        encoder.embed_images(&images[..1], None).await.unwrap();
        image1.push(now() - t);
    }
    let mut image8 = Vec::new();
    for _ in 0..2 {
        let t = now();
        let embedded = encoder.embed_images(&images, None).await.unwrap();
        image8.push(now() - t);
        assert_eq!(embedded.len(), 8);
        assert!(embedded.data.iter().all(|v| v.is_finite()), "a non-finite image embedding");
    }
    let mut text8 = Vec::new();
    for _ in 0..3 {
        let t = now();
        let embedded = encoder.embed_texts(&texts).await.unwrap();
        text8.push(now() - t);
        assert_eq!(embedded.len(), 8);
        assert!(embedded.iter().all(|e| e.vector.iter().all(|v| v.is_finite())), "a non-finite text embedding");
    }
    remove_file("b32.safetensors").await;
    web_sys::console::log_1(
        &format!(
            "B/32 f32 on {adapter}: load {load:.0} ms, first image + text {first:.0} ms; warm median: image batch 1 \
             {:.0} ms, image batch 8 {:.0} ms, text batch 8 {:.0} ms",
            median(&mut image1),
            median(&mut image8),
            median(&mut text8)
        )
        .into(),
    );
}
