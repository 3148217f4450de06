//! The golden checks of tests/clip inside headless Chromium: prefscope-gpu's kernels on WebGPU
//! (SwiftShader in CI) and the CPU kernels compiled to wasm, against transformers and open_clip. Run by
//! `cargo xtask test` through wasm-bindgen-test-runner and chromedriver.
#![cfg(target_arch = "wasm32")]

#[path = "clip/browser_files.rs"]
mod browser_files;
#[path = "clip/common.rs"]
mod common;
#[path = "clip/golden.rs"]
mod golden;
#[path = "clip/tokenizer.rs"]
mod tokenizer;

use browser_files::bytes_blob;
use prefscope_clip::blob::BlobSource;
use prefscope_clip::Dtype;
use prefscope_clip::{Backend, DtypeChoice, Encoder};
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
        let dtype = golden::check_model(name, "cpu kernels (wasm)", Backend::Cpu, DtypeChoice::Auto).await;
        assert_eq!(dtype, Dtype::F32, "{name}");
    }
}

#[wasm_bindgen_test]
async fn towers_in_f16_and_q8_on_the_wasm_cpu_backend_stay_close_to_the_references() {
    for name in common::MODELS {
        for dtype in [Dtype::F16, Dtype::Q8] {
            let got = golden::check_model(name, "cpu kernels (wasm)", Backend::Cpu, DtypeChoice::Exactly(dtype)).await;
            assert_eq!(got, dtype, "{name}");
        }
    }
}

#[wasm_bindgen_test]
fn int8_products_give_the_integer_twins_sums_on_every_instruction_set_here() {
    // This build's SIMD: simd128 (relaxed SIMD is the page's second build, checked by the
    // page's suites through its `int8SelfCheck`).
    let checked = prefscope_clip::qgemm::self_check().unwrap();
    assert_eq!(checked, ["scalar", "simd128"]);
}

#[wasm_bindgen_test]
async fn towers_match_the_references_on_webgpu() {
    let gpu = Gpu::new(true).await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    assert_eq!(gpu.adapter().backend, "webgpu");
    // Half checkpoints keep f16 weights on every adapter (SwiftShader has no shader-f16; the
    // kernels unpack them with core WGSL).
    let want = Dtype::F16;
    for name in common::MODELS {
        let dtype =
            golden::check_model(name, "gpu kernels (WebGPU)", Backend::Gpu(gpu.clone()), DtypeChoice::Auto).await;
        assert_eq!(dtype, if common::stored_half(name) { want } else { Dtype::F32 }, "{name}");
    }
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
    let streamed = Encoder::load_streamed(
        &streamed_files,
        BlobSource::new(bytes_blob(&weights)),
        Backend::Gpu(gpu),
        DtypeChoice::Auto,
    )
    .await
    .unwrap();
    let texts = vec!["a photo of a cat".to_string(), "two red squares".to_string()];
    let (a, b) = (whole.embed_texts(&texts).await.unwrap(), streamed.embed_texts(&texts).await.unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.vector, y.vector);
    }
    // A truncated Blob is refused by name, before any tensor is read.
    let cut = bytes_blob(&weights[..weights.len() - 10]);
    let err = Encoder::load_streamed(&streamed_files, BlobSource::new(cut), Backend::Cpu, DtypeChoice::Auto)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("model.safetensors:"), "{err}");
}
