//! prefscope-clip: CLIP-family text and vision towers, loading the checkpoints people have
//! (transformers CLIPModel and open_clip safetensors), with the tokenizer, image preprocessing
//! and scorer presets around them.
//!
//! ```text
//! ModelFiles ──config──▶ ClipConfig ──weights──▶ DeviceClip (prefscope-gpu's kernels) or
//!      │                                         CpuClip (their fused CPU twins)
//!      └─tokenizer.json──▶ ClipTokenizer        └──▶ Encoder::{embed_texts, embed_images}
//! ```
//! The towers run on prefscope-gpu's WGSL kernels on a GPU, or on the same steps as fused CPU
//! kernels (the gemm crate's matrix products) without one; the burn modules (`model.rs`, behind
//! the `burn` feature) train the demo model. Scoring around them (similarity, softmax, ranks, LongAlign) is prefscope-gpu's kernels or
//! their prefscope-core twins.

pub mod blob;
#[cfg(feature = "burn")]
mod burn_export;
#[cfg(feature = "burn")]
pub mod burn_towers;
pub mod clean;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
pub mod cpu_kernels;
pub mod cpu_matrix;
pub mod cpu_towers;
pub mod device_towers;
pub mod dtype;
pub mod encoder;
pub mod error;
pub mod export;
pub mod files;
pub mod image;
#[cfg(feature = "burn")]
pub mod model;
pub mod pairs;
pub mod pipeline;
pub mod qgemm;
pub mod quantize;
pub mod scorer;
pub mod session;
pub mod tokenizer;
#[cfg(not(target_arch = "wasm32"))]
pub mod torch;
mod tower;
pub mod weights;

pub use config::{Activation, ClipConfig, Layout, Pooling};
pub use dtype::{Dtype, DtypeChoice};
pub use encoder::{Backend, Encoder, TextEmbedding};
pub use error::ClipError;
pub use files::ModelFiles;
pub use image::{ImageLimits, Rgba};
pub use scorer::{PromptEmbeddings, Reference, ScoreRow, Scorer};
pub use tokenizer::{ClipTokenizer, Convention, Tokens};
