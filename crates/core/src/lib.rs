//! prefscope-core: the data types, input/output formats and CPU reference of every formula
//! prefscope computes. No GPU and no web here; every other crate builds on this one, and the
//! GPU kernels are tested against these functions.

pub mod clip_score;
pub mod correlation;
pub mod diffusion;
pub mod diversity;
pub mod dpo;
pub mod embedding;
pub mod error;
pub mod gpm;
pub mod groups;
pub mod histogram;
pub mod lanes;
pub mod longalign;
pub mod numeric;
pub mod preprocess;
pub mod ranking;
pub mod read;
pub mod record;
pub mod report;
pub mod shards;
pub mod strength;
pub mod tokens;
pub mod transformer;
pub mod write;

pub use error::{ConfigError, ErrorKind, InputError, Location};
pub use record::{DiffusionRecord, DiffusionTable, DpoRecord, DpoTable};
