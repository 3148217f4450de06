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
use prefscope_clip::{Backend, Precision};
use prefscope_gpu::Gpu;
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
    // SwiftShader has no shader-f16: half checkpoints run in f32 and meet the f32 bars.
    let want = if gpu.has_shader_f16() { FloatDType::F16 } else { FloatDType::F32 };
    for name in common::MODELS {
        let dtype = golden::check_model(name, "gpu kernels (WebGPU)", Backend::Gpu(gpu.clone()), Precision::Auto).await;
        assert_eq!(dtype, if common::stored_half(name) { want } else { FloatDType::F32 }, "{name}");
    }
}
