//! The Pairs view's bundled set: labelled image pairs of the shapes world in which a known
//! share of the labels is flipped, so that preference strength's `likely_wrong` band can be
//! checked against the truth. Each pair is a caption's own scene against one edit of it (one
//! object changed, removed or added), both with random degradations; the true label follows the
//! world's utility (alignment and quality), and then exactly [`FLIPPED_SHARE`] of the labels
//! are swapped.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::caption;
use crate::degrade;
use crate::scene::Scene;
use crate::world::{mutate, Sample};

/// Seed and size of the bundled set.
pub const BUNDLED_SEED: u64 = 1515;
pub const BUNDLED_PAIRS: usize = 60;
/// Share of the labels that are flipped.
pub const FLIPPED_SHARE: f64 = 0.15;

/// One labelled pair and what is true about it.
#[derive(Clone, Debug)]
pub struct FlippedPair {
    pub id: String,
    pub caption: String,
    pub images: [Sample; 2],
    /// The world's utility of each image for the caption.
    pub utility: [f32; 2],
    /// The label as given: 1 when image 0 is preferred, 0 when image 1 is.
    pub label_0: f32,
    /// Whether the given label contradicts the utility.
    pub flipped: bool,
}

/// `count` pairs drawn from `seed`, `round(count · FLIPPED_SHARE)` of them flipped.
pub fn pairs(seed: u64, count: usize) -> Vec<FlippedPair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let scene = Scene::random(&mut rng);
        let caption = caption::short(&scene);
        let own = Sample { scene: scene.clone(), degradations: degrade::random(&mut rng) };
        let edited = Sample { scene: mutate(&scene, &mut rng), degradations: degrade::random(&mut rng) };
        let (a, b) = (own.truth(&caption).utility, edited.truth(&caption).utility);
        // A pair whose truth is a near tie says nothing about a flipped label.
        if (a - b).abs() < 0.15 {
            continue;
        }
        let swap = rng.random_bool(0.5);
        let (images, utility) = if swap { ([edited, own], [b, a]) } else { ([own, edited], [a, b]) };
        let label_0 = if utility[0] > utility[1] { 1.0 } else { 0.0 };
        out.push(FlippedPair {
            id: format!("pair{}", out.len()),
            caption: caption.text.clone(),
            images,
            utility,
            label_0,
            flipped: false,
        });
    }
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut rng);
    let flips = (count as f64 * FLIPPED_SHARE).round() as usize;
    for &i in &order[..flips] {
        out[i].label_0 = 1.0 - out[i].label_0;
        out[i].flipped = true;
    }
    out
}

/// The bundled set.
pub fn bundled() -> Vec<FlippedPair> {
    pairs(BUNDLED_SEED, BUNDLED_PAIRS)
}
