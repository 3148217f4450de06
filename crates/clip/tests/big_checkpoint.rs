//! PickScore's and HPS v2's size in the browser: a ViT-H/14-shaped f16 checkpoint streamed
//! onto WebGPU from a disk-backed file. Its own test binary, so that the wasm memory it
//! measures starts from a fresh page; `cargo xtask test` runs it.
#![cfg(target_arch = "wasm32")]

#[path = "clip/browser_files.rs"]
mod browser_files;

use browser_files::{model_files, random_checkpoint, remove_file, wasm_memory};
use prefscope_clip::blob::BlobSource;
use prefscope_clip::export::VIT_H14_CONFIG as VIT_H;
use prefscope_clip::Dtype;
use prefscope_clip::{Backend, DtypeChoice, Encoder};
use prefscope_gpu::Gpu;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A ViT-H/14-shaped f16 checkpoint (about 2 GB) loads onto WebGPU from a disk-backed file with wasm
/// memory under a quarter of the file (about 2 minutes on SwiftShader in a debug build), then
/// on the CPU path in q8 within 1.6 GB.
#[wasm_bindgen_test]
async fn a_vit_h_checkpoint_loads_on_webgpu_and_in_q8_on_the_cpu() {
    let (blob, size) = random_checkpoint(VIT_H, "vit-h.safetensors", true).await;
    let before = wasm_memory();
    let gpu = Gpu::new(true).await.expect("WebGPU adapter");
    let encoder = Encoder::load_streamed(
        &model_files(VIT_H),
        BlobSource::new(blob.clone()),
        Backend::Gpu(gpu),
        DtypeChoice::Auto,
    )
    .await
    .unwrap();
    assert_eq!(encoder.dtype(), Dtype::F16);
    let peak = wasm_memory();
    web_sys::console::log_1(
        &format!(
            "ViT-H/14 f16 checkpoint: {size} bytes; wasm memory {before} bytes before the load, {peak} after \
             ({:.1}% of the file)",
            100.0 * peak as f64 / size as f64
        )
        .into(),
    );
    assert!(peak * 4 < size as u64, "wasm memory {peak} bytes for a {size}-byte checkpoint");
    drop(encoder);

    // The same file on the CPU path in q8 (issue 31: PickScore-size towers without WebGPU): as
    // f32 the towers would take 3.9 GB, past what wasm32 holds; quantized tensor by tensor while
    // they stream in, they fit with wasm memory under 1.6 GB. Loading only: a ViT-H image is
    // about 170 GOP, for the release benchmark (`cargo xtask bench-web`), not a debug build.
    let encoder = Encoder::load_streamed(
        &model_files(VIT_H),
        BlobSource::new(blob),
        Backend::Cpu,
        DtypeChoice::Exactly(Dtype::Q8),
    )
    .await
    .unwrap();
    assert_eq!(encoder.dtype(), Dtype::Q8);
    let after = wasm_memory();
    let held = encoder.matrix_bytes().unwrap_or(0);
    web_sys::console::log_1(
        &format!("the same checkpoint on the CPU in q8: matrices hold {held} bytes; wasm memory {after} bytes after the load")
            .into(),
    );
    remove_file("vit-h.safetensors").await;
    assert!(after < 1_600_000_000, "wasm memory {after} bytes");
}
