//! Preference objectives and what is measured of them: the DPO family over exported
//! log-probabilities, Diffusion-DPO and MaPO, preference strength, annotator groups and the
//! general preference model, ranking accuracy, per-token rewards, and reports (whole or over
//! shards that combine exactly).

pub mod calibration;
pub mod diffusion;
pub mod dpo;
pub mod gpm;
pub mod groups;
pub mod ranking;
pub mod report;
pub mod run;
pub mod shards;
pub mod strength;
pub mod subsets;
pub mod tokens;
