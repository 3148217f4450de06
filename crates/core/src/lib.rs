//! prefscope-core: the data types, input/output formats and CPU reference of every formula
//! prefscope computes. No GPU and no web here; every other crate builds on this one, and the
//! GPU kernels are tested against these functions.
//!
//! - [`preference`]: preference objectives and what is measured of them (the DPO family,
//!   Diffusion-DPO and MaPO, ranked lists, preference strength, annotator groups, the general
//!   preference model, ranking accuracy, per-token rewards, reports over shards).
//! - [`scoring`]: image-text scoring (CLIP-family scores, LongAlign's split, embeddings, the
//!   diversity split, image preprocessing, the towers' transformer steps).
//! - [`io`]: readers and writers (JSON Lines, CSV, Parquet) and the records they carry.
//! - Shared numerics at the root: errors, `numeric`, the vectorised `lanes`, correlations,
//!   histograms.

pub mod correlation;
pub mod error;
pub mod histogram;
pub mod io;
pub mod lanes;
pub mod numeric;
pub mod preference;
pub mod scoring;

pub use error::{ConfigError, ErrorKind, InputError, Location};
pub use io::record::{DiffusionRecord, DiffusionTable, DpoRecord, DpoTable, UnpairedRecord, UnpairedTable};
