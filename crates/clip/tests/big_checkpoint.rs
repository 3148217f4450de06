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
/// memory under a quarter of the file (about 2 minutes on SwiftShader in a debug build).
#[wasm_bindgen_test]
async fn a_vit_h_checkpoint_loads_with_wasm_memory_under_a_quarter_of_the_file() {
    let (blob, size) = random_checkpoint(VIT_H, "vit-h.safetensors", true).await;
    let before = wasm_memory();
    let gpu = Gpu::new(true).await.expect("WebGPU adapter");
    let encoder =
        Encoder::load_streamed(&model_files(VIT_H), BlobSource::new(blob), Backend::Gpu(gpu), DtypeChoice::Auto)
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
    remove_file("vit-h.safetensors").await;
    assert!(peak * 4 < size as u64, "wasm memory {peak} bytes for a {size}-byte checkpoint");
}
