//! Image-text scoring: CLIP-family scores and their presets' maps, LongAlign's split into a
//! text-relevant and a text-irrelevant part, embeddings, the Schur-complement diversity split,
//! image preprocessing, and the CPU reference of the towers' transformer steps.

pub mod clip_score;
pub mod diversity;
pub mod embedding;
pub mod longalign;
pub mod preprocess;
pub mod transformer;
