//! The golden checks of tests/clip inside headless Chromium: prefscope-gpu's kernels on WebGPU
//! (SwiftShader in CI) and burn-flex compiled to wasm, against transformers and open_clip. Run by
//! `cargo xtask test` through wasm-bindgen-test-runner and chromedriver.
#![cfg(target_arch = "wasm32")]

#[path = "clip/common.rs"]
mod common;
#[path = "clip/golden.rs"]
mod golden;
#[path = "clip/tokenizer.rs"]
mod tokenizer;

use burn::tensor::FloatDType;
use prefscope_clip::blob::BlobSource;
use prefscope_clip::export::{VIT_B32_CONFIG as B32, VIT_H14_CONFIG as VIT_H};
use prefscope_clip::{Backend, Encoder, ModelFiles, Precision};
use prefscope_gpu::Gpu;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn tokenizer_ids_match_both_libraries() {
    tokenizer::check_ids();
    tokenizer::check_padding_and_errors();
}

#[wasm_bindgen_test]
async fn towers_match_the_references_on_the_wasm_cpu_backend() {
    for name in common::MODELS {
        let dtype = golden::check_model(name, "burn-flex (wasm)", Backend::Cpu, Precision::Auto).await;
        assert_eq!(dtype, FloatDType::F32, "{name}");
    }
}

#[wasm_bindgen_test]
async fn towers_match_the_references_on_webgpu() {
    let gpu = Gpu::new(true).await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    assert_eq!(gpu.adapter().backend, "webgpu");
    // Half checkpoints keep f16 weights on every adapter (SwiftShader has no shader-f16; the
    // kernels unpack them with core WGSL).
    let want = FloatDType::F16;
    for name in common::MODELS {
        let dtype = golden::check_model(name, "gpu kernels (WebGPU)", Backend::Gpu(gpu.clone()), Precision::Auto).await;
        assert_eq!(dtype, if common::stored_half(name) { want } else { FloatDType::F32 }, "{name}");
    }
}

#[wasm_bindgen(inline_js = r#"
// A file of `header` then `dataBytes` bytes of random f16 or f32 values (one random 16 MiB
// chunk repeated: weights for load and speed tests, not a model), written by JavaScript to the origin's
// private file system, so that none of it passes through wasm memory and the browser keeps it
// on disk (in-memory Blobs are capped well below a ViT-H checkpoint).
export async function randomFile(name, header, dataBytes, half) {
  const chunk = half ? new Uint16Array(1 << 23) : new Float32Array(1 << 22);
  let seed = 12345;
  for (let i = 0; i < chunk.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    // f16: |x| in [2^-7, 2^-6), finite; f32: uniform in [-0.05, 0.05).
    chunk[i] = half ? ((seed >>> 16) & 0x83ff) | 0x2000 : ((seed >>> 8) / (1 << 24) - 0.5) * 0.1;
  }
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle(name, { create: true });
  const out = await handle.createWritable();
  await out.write(header);
  const per = chunk.BYTES_PER_ELEMENT;
  for (let left = dataBytes; left > 0; left -= chunk.byteLength) {
    await out.write(left >= chunk.byteLength ? chunk : chunk.subarray(0, left / per));
  }
  await out.close();
  return await handle.getFile();
}
export async function removeFile(name) {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(name);
}
export function bytesBlob(bytes) {
  return new Blob([bytes]);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = randomFile)]
    async fn random_file(name: &str, header: &[u8], data_bytes: f64, half: bool) -> JsValue;
    #[wasm_bindgen(js_name = removeFile)]
    async fn remove_file(name: &str);
    #[wasm_bindgen(js_name = bytesBlob)]
    fn bytes_blob(bytes: &[u8]) -> web_sys::Blob;
}

fn wasm_memory() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

#[wasm_bindgen_test]
async fn weights_streamed_from_a_blob_give_the_same_embeddings() {
    let gpu = Gpu::new(true).await.expect("WebGPU adapter");
    let name = "hf-gelu-f16-legacy";
    let files = common::model_files(name);
    let whole = Encoder::load(&files, Backend::Gpu(gpu.clone())).unwrap();
    let weights = common::fixture_bytes(&format!("{name}/model.safetensors"));
    let mut streamed_files = common::model_files(name);
    streamed_files.insert_streamed("model.safetensors");
    let streamed =
        Encoder::load_streamed(&streamed_files, BlobSource(bytes_blob(&weights)), Backend::Gpu(gpu), Precision::Auto)
            .await
            .unwrap();
    let texts = vec!["a photo of a cat".to_string(), "two red squares".to_string()];
    let (a, b) = (whole.embed_texts(&texts).await.unwrap(), streamed.embed_texts(&texts).await.unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.vector, y.vector);
    }
    // A truncated Blob is refused by name, before any tensor is read.
    let cut = bytes_blob(&weights[..weights.len() - 10]);
    let err =
        Encoder::load_streamed(&streamed_files, BlobSource(cut), Backend::Cpu, Precision::Auto).await.err().unwrap();
    assert!(err.to_string().starts_with("model.safetensors:"), "{err}");
}

/// A random checkpoint with `config`'s shapes in transformers' layout, written to the origin's
/// private file system: the disk-backed file and its size.
async fn random_checkpoint(config: &str, name: &str, half: bool) -> (web_sys::Blob, usize) {
    let config = prefscope_clip::ClipConfig::from_huggingface(config.as_bytes(), None).unwrap();
    let (dtype, width) = if half { ("F16", 2) } else { ("F32", 4) };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in prefscope_clip::export::hf_shapes(&config) {
        let bytes = width * shape.iter().product::<usize>();
        header.insert(
            name,
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut head = (json.len() as u64).to_le_bytes().to_vec();
    head.extend(json);
    let size = head.len() + offset;
    (random_file(name, &head, offset as f64, half).await.unchecked_into(), size)
}

/// config.json, the fixtures' tokenizer and the streamed weights' name.
fn model_files(config: &str) -> ModelFiles {
    let mut files = ModelFiles::new();
    files.insert("config.json", config.as_bytes().to_vec());
    files.insert("tokenizer.json", common::fixture_bytes("tokenizer.json"));
    files.insert_streamed("model.safetensors");
    files
}

/// A ViT-H/14-shaped f16 checkpoint (about 2 GB) loads onto WebGPU from a disk-backed file with wasm
/// memory under a quarter of the file. Minutes on SwiftShader in a debug build, so it runs on
/// demand: `cargo xtask test-big` (the number is in BENCHMARKS.md).
#[wasm_bindgen_test]
#[ignore]
async fn a_vit_h_checkpoint_loads_with_wasm_memory_under_a_quarter_of_the_file() {
    let (blob, size) = random_checkpoint(VIT_H, "vit-h.safetensors", true).await;
    let before = wasm_memory();
    let gpu = Gpu::new(true).await.expect("WebGPU adapter");
    let encoder = Encoder::load_streamed(&model_files(VIT_H), BlobSource(blob), Backend::Gpu(gpu), Precision::Auto)
        .await
        .unwrap();
    assert_eq!(encoder.dtype(), FloatDType::F16);
    let peak = wasm_memory();
    web_sys::console::log_1(
        &format!(
            "ViT-H/14 f16 checkpoint: {size} bytes; wasm memory {before} bytes before the load, {peak} after \
             ({:.1}% of the file)",
            100.0 * peak as f64 / size as f64
        )
        .into(),
    );
    remove_file("vit-h.safetensors").await;
    assert!(peak * 4 < size as u64, "wasm memory {peak} bytes for a {size}-byte checkpoint");
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// Times B/32 on WebGPU with random f32 weights: image batches 1 and 8 (224×224 RGBA,
/// preprocessing included) and text batch 8, warm, as ../shared/bench/transformersjs measures
/// transformers.js. Prints; asserts nothing. `cargo xtask bench-browser` runs it.
#[wasm_bindgen_test]
#[ignore]
async fn bench_b32_on_webgpu() {
    let (blob, _) = random_checkpoint(B32, "b32.safetensors", false).await;
    let gpu = Gpu::new(true).await.expect("WebGPU adapter");
    let adapter = gpu.adapter().to_string();
    let t = now();
    let mut encoder =
        Encoder::load_streamed(&model_files(B32), BlobSource(blob), Backend::Gpu(gpu), Precision::F32).await.unwrap();
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
        encoder.embed_images(&images, None).await.unwrap();
        image8.push(now() - t);
    }
    let mut text8 = Vec::new();
    for _ in 0..3 {
        let t = now();
        encoder.embed_texts(&texts).await.unwrap();
        text8.push(now() - t);
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
