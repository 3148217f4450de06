//! The demo gallery: a fixed list of prompts, each with candidates of varying alignment and
//! quality. The page and `prefscope demo` show the same one; evaluation draws held-out sets
//! the same way from other seeds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::caption::{self, Caption};
use crate::degrade::{self, Degradation, Kind};
use crate::scene::Scene;
use crate::world::{mutate, Sample, Truth};

/// Seed of the gallery the page opens on.
pub const DEMO_SEED: u64 = 2026;
/// Prompts in the demo gallery.
pub const DEMO_PROMPTS: usize = 8;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `p{prompt}-c{candidate}`
    pub id: String,
    pub sample: Sample,
    pub truth: Truth,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub prompt: Caption,
    pub candidates: Vec<Candidate>,
}

/// The gallery of `prompts` entries drawn from `seed`; every fourth prompt is a long caption.
pub fn gallery(seed: u64, prompts: usize) -> Vec<Entry> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..prompts).map(|p| entry(p, p % 4 == 3, &mut rng)).collect()
}

/// The demo gallery.
pub fn demo() -> Vec<Entry> {
    gallery(DEMO_SEED, DEMO_PROMPTS)
}

/// One prompt and 6–8 candidates: the scene itself clean and degraded, one- and two-edit
/// variants, and an unrelated scene, each with random degradations.
fn entry(index: usize, long: bool, rng: &mut impl Rng) -> Entry {
    let scene = Scene::random(rng);
    let prompt = if long { caption::long(&scene) } else { caption::short(&scene) };
    let count = rng.random_range(6..=8);
    let candidates = (0..count)
        .map(|c| {
            let (scene, degradations) = match c {
                0 => (scene.clone(), Vec::new()),
                1 => (scene.clone(), vec![strong(rng)]),
                2 | 3 => (mutate(&scene, rng), degrade::random(rng)),
                4 => (mutate(&mutate(&scene, rng), rng), degrade::random(rng)),
                5 => (Scene::random(rng), Vec::new()),
                _ => (jittered(&scene, rng), degrade::random(rng)),
            };
            let sample = Sample { scene, degradations };
            let truth = sample.truth(&prompt);
            Candidate { id: format!("p{index}-c{c}"), sample, truth }
        })
        .collect();
    Entry { prompt, candidates }
}

/// The same facts, drawn again with fresh jitter.
fn jittered(scene: &Scene, rng: &mut impl Rng) -> Scene {
    let mut out = scene.clone();
    for o in &mut out.objects {
        *o = crate::scene::Object::with_jitter(o.shape, o.colour, o.size, o.position, rng);
    }
    out
}

fn strong(rng: &mut impl Rng) -> Degradation {
    let kind = Kind::ALL[rng.random_range(0..Kind::ALL.len())];
    Degradation { kind, severity: rng.random_range(0.6..=0.9), seed: rng.random() }
}
