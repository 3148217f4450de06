//! prefscope-synth: the shapes world, a procedural world in which both halves of a
//! preference score are known exactly. A scene is a background and one to three flat shapes;
//! a caption states facts about it; alignment `a` is the share of those facts a picture
//! satisfies and quality `q` what its degradations left, so a utility `u = a + λ·q` labels
//! preference pairs and the LongAlign decomposition can be checked against `a` and `q`.
//! Deterministic from a seed and pure Rust, so the page draws its demo gallery itself.

pub mod align;
pub mod caption;
pub mod degrade;
pub mod demo;
pub mod dpo_demo;
pub mod flipped_pairs;
pub mod gallery;
pub mod raster;
/// Two populations of raters with known preferences (the `testing` feature: the annotator
/// groups' checks and their measurement example).
#[cfg(feature = "testing")]
pub mod raters;
pub mod scene;
pub mod text_pairs;
/// Image sets whose unprompted attributes vary (the `testing` feature: the diversity split's
/// check).
#[cfg(feature = "testing")]
pub mod variety;
pub mod vocab;
pub mod world;

#[cfg(feature = "train")]
pub mod train;

pub use caption::Caption;
pub use raster::Image;
pub use scene::Scene;
pub use world::{Sample, Truth};
