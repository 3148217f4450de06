//! prefscope-clip against transformers and open_clip (goldens from tests/fixtures/clip), on
//! the CPU kernels (the CPU towers; burn-flex as well, the benchmark's comparison row) and on prefscope-gpu's kernels (the GPU towers; lavapipe in CI).
//! One binary: burn and wgpu link once. The same checks run in headless Chromium from
//! tests/browser.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
mod golden;
mod malformed;
mod quantized;
mod tokenizer;

use std::sync::OnceLock;

use prefscope_clip::{Backend, Dtype, DtypeChoice};
use prefscope_gpu::Gpu;

/// The software adapter the GPU tests run on (lavapipe in CI), opened once per process.
pub fn gpu() -> Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| pollster::block_on(Gpu::new(true)).expect("a wgpu adapter (install mesa-vulkan-drivers)"))
        .clone()
}

#[test]
fn tokenizer_ids_match_both_libraries() {
    tokenizer::check_ids();
    tokenizer::check_padding_and_errors();
}

#[test]
fn towers_match_the_references_on_the_cpu() {
    for name in common::MODELS {
        // Half checkpoints are widened: the CPU backend computes in f32.
        let dtype = pollster::block_on(golden::check_model(name, "cpu kernels", Backend::Cpu, DtypeChoice::Auto));
        assert_eq!(dtype, Dtype::F32, "{name}");
        // burn-flex, the benchmark's CPU comparison row, computes the same towers (`cargo
        // xtask test` builds with the `burn` feature).
        #[cfg(feature = "burn")]
        pollster::block_on(golden::check_model(name, "burn-flex", Backend::BurnFlex, DtypeChoice::Auto));
    }
}

#[test]
fn towers_in_f16_and_q8_on_the_cpu_stay_close_to_the_references() {
    for name in common::MODELS {
        for dtype in [Dtype::F16, Dtype::Q8] {
            let got =
                pollster::block_on(golden::check_model(name, "cpu kernels", Backend::Cpu, DtypeChoice::Exactly(dtype)));
            assert_eq!(got, dtype, "{name}");
        }
    }
}

#[test]
fn quantized_checkpoints_read_back_as_quantized_at_load() {
    quantized::read_back_equals_quantizing_at_load();
    quantized::broken_quantized_files_name_the_file_and_tensor();
    quantized::q8_files_run_as_f16_on_the_gpu(gpu());
}

#[test]
fn towers_match_the_references_on_the_gpu_kernels() {
    // Half checkpoints keep f16 weights on the GPU and f32 ones run in f32 ...
    for name in common::MODELS {
        let dtype =
            pollster::block_on(golden::check_model(name, "gpu kernels", Backend::Gpu(gpu()), DtypeChoice::Auto));
        let want = if common::stored_half(name) { Dtype::F16 } else { Dtype::F32 };
        assert_eq!(dtype, want, "{name}");
    }
    // ... and the f32 path (`--dtype f32`) meets the f32 bars on them.
    for name in common::MODELS.into_iter().filter(|n| common::stored_half(n)) {
        let dtype = pollster::block_on(golden::check_model(
            name,
            "gpu kernels",
            Backend::Gpu(gpu()),
            DtypeChoice::Exactly(Dtype::F32),
        ));
        assert_eq!(dtype, Dtype::F32, "{name}");
    }
}

#[test]
fn oversized_weights_are_refused_and_oversized_batches_split() {
    let files = common::model_files("hf-quickgelu-f32");
    // The token embedding (49 408 × 8 f32, 1.6 MB) is the largest weight.
    let err = prefscope_clip::Encoder::load(&files, Backend::Gpu(gpu().with_binding_limit(1 << 20))).err().unwrap();
    assert!(err.to_string().contains("text_model.embeddings.token_embedding.weight"), "{err}");
    // 600 texts of 77 tokens need 600·tokens·24·4 bytes (q/k/v are the widest) of MLP activations: past a 2 MB binding,
    // so the batch runs as several dispatches, with the embeddings of one unsplit batch.
    let mut encoder = prefscope_clip::Encoder::load(&files, Backend::Gpu(gpu().with_binding_limit(2 << 20))).unwrap();
    encoder.batch = 600;
    let texts: Vec<String> = (0..600).map(|i| format!("a long prompt number {i} ").repeat(8)).collect();
    let split = pollster::block_on(encoder.embed_texts(&texts)).unwrap();
    let whole = prefscope_clip::Encoder::load(&files, Backend::Gpu(gpu())).unwrap();
    let unsplit = pollster::block_on(whole.embed_texts(&texts)).unwrap();
    for (a, b) in split.iter().zip(&unsplit) {
        assert!(common::cosine(&a.vector, &b.vector) > 0.99999);
    }
}

#[test]
fn a_device_lost_before_or_during_a_batch_is_an_error() {
    let gpu = Gpu::new(true);
    let gpu = pollster::block_on(gpu).expect("adapter");
    let encoder =
        prefscope_clip::Encoder::load(&common::model_files("hf-quickgelu-f32"), Backend::Gpu(gpu.clone())).unwrap();
    let images = vec![common::image("square32.png"); 3];
    assert_eq!(pollster::block_on(encoder.embed_images(&images, None)).unwrap().len(), 3);
    gpu.destroy();
    let err = pollster::block_on(encoder.embed_images(&images, None)).expect_err("a lost device");
    assert!(err.to_string().contains("the GPU device was lost"), "{err}");
    let err = pollster::block_on(encoder.embed_texts(&["a photo".to_string()])).expect_err("a lost device");
    assert!(err.to_string().contains("the GPU device was lost"), "{err}");
}
