//! Training batches drawn from the world: (caption, picture) pairs for the contrastive stage,
//! and (caption, picture, picture, label) pairs labelled by the utility for the preference
//! stage. Pictures are degraded at random in both, so the towers learn what degradations
//! look like before they learn that people dislike them.

use rand::Rng;

use crate::caption::{self, Caption};
use crate::degrade;
use crate::raster::Image;
use crate::scene::Scene;
use crate::world::{mutate, Sample};

pub use crate::demo::{SIZE, TIE};

/// One text a scene can be captioned with in training: mostly the short caption, sometimes
/// the long caption (encoded by segments, as the scorer encodes it), sometimes one sentence of
/// it.
fn training_caption(scene: &Scene, rng: &mut impl Rng) -> String {
    let roll: f32 = rng.random();
    if roll < 0.65 {
        return caption::short_shuffled(scene, rng).text;
    }
    let long = caption::long(scene);
    if roll < 0.85 {
        return long.text;
    }
    let sentences: Vec<&str> = long.text.split_inclusive('.').map(str::trim).collect();
    // The background sentence, or one object's sentence (the filler sentences teach nothing).
    let pick = rng.random_range(0..=scene.objects.len());
    sentences[pick].to_string()
}

/// A prompt for a preference pair: a long caption as often as the gallery has one (every
/// fourth prompt), else the short caption.
fn preference_caption(scene: &Scene, rng: &mut impl Rng) -> Caption {
    if rng.random_bool(0.25) {
        caption::long(scene)
    } else {
        caption::short_shuffled(scene, rng)
    }
}

pub struct Contrastive {
    pub captions: Vec<String>,
    pub images: Vec<Image>,
}

/// `n` pairs; half the scenes come with an edited twin (one fact changed), so the batch holds
/// hard negatives that differ in a single attribute.
pub fn contrastive(n: usize, rng: &mut impl Rng) -> Contrastive {
    let mut scenes = Vec::with_capacity(n);
    while scenes.len() < n {
        let scene = Scene::random(rng);
        if scenes.len() + 1 < n && rng.random_bool(0.5) {
            scenes.push(mutate(&scene, rng));
        }
        scenes.push(scene);
    }
    let mut batch = Contrastive { captions: Vec::with_capacity(n), images: Vec::with_capacity(n) };
    for scene in scenes {
        batch.captions.push(training_caption(&scene, rng));
        let degradations = if rng.random_bool(0.5) { degrade::random(rng) } else { Vec::new() };
        batch.images.push(Sample { scene, degradations }.render(SIZE));
    }
    batch
}

pub struct Preference {
    pub captions: Vec<String>,
    pub first: Vec<Image>,
    pub second: Vec<Image>,
    /// Probability that `first` is preferred: 1, 0 or ½ for a tie.
    pub target: Vec<f32>,
    /// Rows whose `first` is the captioned scene itself: its contrastive positive.
    pub anchored: Vec<usize>,
    /// Each row's two utilities against its own caption (for comparisons across captions).
    pub utilities: Vec<[f32; 2]>,
}

/// `n` pairs for one caption each, labelled by the utility. A share `unrelated` of them
/// compares two pictures of other scenes: nothing there matches the caption, so only quality
/// separates them — the prompt-independent preference LongAlign's irrelevant part measures.
/// The rest compare the captioned scene with itself at another quality, with an edited
/// scene, or with an unrelated one.
pub fn preference(n: usize, unrelated: f64, rng: &mut impl Rng) -> Preference {
    let mut batch = Preference {
        captions: Vec::new(),
        first: Vec::new(),
        second: Vec::new(),
        target: Vec::new(),
        anchored: Vec::new(),
        utilities: Vec::new(),
    };
    while batch.captions.len() < n {
        let scene = Scene::random(rng);
        let caption: Caption = preference_caption(&scene, rng);
        let (first, second) = if rng.random_bool(unrelated) {
            (Scene::random(rng), Scene::random(rng))
        } else {
            batch.anchored.push(batch.captions.len());
            let other = match rng.random_range(0..4) {
                0 => scene.clone(),
                1 => mutate(&scene, rng),
                2 => mutate(&mutate(&scene, rng), rng),
                _ => Scene::random(rng),
            };
            (scene, other)
        };
        let a = Sample { scene: first, degradations: degrade::random(rng) };
        let b = Sample { scene: second, degradations: degrade::random(rng) };
        let (ua, ub) = (a.truth(&caption).utility, b.truth(&caption).utility);
        // Ties (label ½), as PickScore treats equal votes.
        let target = if (ua - ub).abs() < TIE {
            0.5
        } else if ua > ub {
            1.0
        } else {
            0.0
        };
        batch.captions.push(caption.text);
        batch.first.push(a.render(SIZE));
        batch.second.push(b.render(SIZE));
        batch.target.push(target);
        batch.utilities.push([ua, ub]);
    }
    batch
}
