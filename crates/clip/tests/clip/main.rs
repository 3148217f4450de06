//! prefscope-clip against transformers and open_clip (goldens from tests/fixtures/clip), on
//! burn-flex and on burn-wgpu (lavapipe in CI). One binary: burn and wgpu link once. The
//! same checks run in headless Chromium from tests/browser.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
mod golden;
mod malformed;
mod tokenizer;

use std::sync::OnceLock;

use prefscope_clip::Backend;
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
        pollster::block_on(golden::check_model(name, "burn-flex", Backend::Cpu));
    }
}

#[test]
fn towers_match_the_references_on_wgpu() {
    for name in common::MODELS {
        pollster::block_on(golden::check_model(name, "burn-wgpu", Backend::Gpu(gpu())));
    }
}
