//! Every GPU kernel against its CPU twin in prefscope-core, on the adapter wgpu finds (Mesa's
//! lavapipe in CI). One test binary, so that wgpu is linked once. Tolerances are stated at the
//! top of each module.

mod common;

#[cfg(feature = "burn")]
mod burn_shared;
mod device;
mod preference;
mod preprocess;
mod report;
mod scoring;
mod stats_tokens;
