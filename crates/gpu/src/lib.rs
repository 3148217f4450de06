//! prefscope-gpu: the wgpu device (native and in the browser) and our WGSL kernels around the
//! CLIP towers. Every kernel has a twin in prefscope-core with the same inputs and outputs,
//! and tests that compare the two.
//!
//! All operations are `async` (the browser cannot block); native callers use
//! [`block_on`]. Inputs larger than the adapter's storage-binding limit are processed in
//! chunks; failures are [`GpuError`]s, never panics.

mod annotators;
/// The benchmark's timing loops (the `testing` feature).
#[cfg(feature = "testing")]
pub mod bench;
#[cfg(feature = "burn")]
mod burn;
#[cfg(feature = "testing")]
mod calibrate;
mod device;
mod diffusion;
mod error;
mod groups;
mod kernel;
mod longalign;
mod params;
mod preference;
mod preprocess;
mod report;
mod scoring;
mod similarity;
mod stats;
#[cfg(feature = "testing")]
mod tokens;
mod transformer;

pub use annotators::{DevicePairs, GroupsError};
#[cfg(feature = "testing")]
pub use calibrate::{seconds, Peaks};
#[cfg(not(target_arch = "wasm32"))]
pub use device::holding_stderr;
pub use device::{is_software, open, with_driver_noise, AdapterSummary, DeviceChoice, Gpu};
pub use error::GpuError;
#[cfg(feature = "testing")]
pub use groups::GroupedScores;
pub use longalign::Decomposed;
pub use preference::DpoError;
pub use scoring::{RowRequest, RowScores};
#[cfg(feature = "testing")]
pub use similarity::DeviceMatrix;
#[cfg(feature = "testing")]
pub use tokens::TokenRewards;
pub use transformer::{Pass, Tensor, MAX_HEAD_DIM, MAX_TOKENS};

/// Runs a future to completion on this thread (native only; the browser awaits instead).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}
