//! Annotator groups checked against the shapes world's ground truth: raters from two
//! populations that want different things label pairs of pictures. One population weighs
//! alignment with the caption (`u = a + 0.1·q`), the other quality (`u = 0.2·a + q`); each label
//! is drawn from Bradley–Terry on the rater's utility, `P(0 ≻ 1) = σ(30·(u₀ − u₁))`. The fit
//! should find the two populations from the labels and the pictures' features alone.

use prefscope_clip::{ClipError, Encoder};
use prefscope_core::longalign::decompose;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::caption;
use crate::degrade;
use crate::demo::rgba;
use crate::scene::Scene;
use crate::world::{mutate, Sample};

/// The populations' utilities: (weight of alignment, weight of quality).
pub const POPULATIONS: [(f32, f32); 2] = [(1.0, 0.1), (0.2, 1.0)];
/// How sharply a utility difference decides a label.
pub const SHARPNESS: f32 = 30.0;

/// One labelled pair: the rater, the caption, both pictures and `P(0 preferred)` drawn as 0 or 1.
pub struct RatedPair {
    pub user: String,
    pub caption: String,
    /// Each picture's (alignment, quality) against the caption: the ground truth.
    pub truth: [(f32, f32); 2],
    pub samples: [Sample; 2],
    pub label_0: f64,
}

/// `users` raters (populations alternate through a shuffled order), `pairs` pairs each. A
/// pair's pictures are its caption's scene or a one-edit variant (alignment below 1), each
/// randomly degraded, so that alignment and quality both vary.
pub fn rated_pairs(seed: u64, users: usize, pairs: usize) -> (Vec<RatedPair>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut population: Vec<usize> = (0..users).map(|h| h % POPULATIONS.len()).collect();
    for i in (1..users).rev() {
        population.swap(i, rng.random_range(0..=i));
    }
    let mut out = Vec::with_capacity(users * pairs);
    for (h, &pop) in population.iter().enumerate() {
        let (wa, wq) = POPULATIONS[pop];
        for _ in 0..pairs {
            let scene = Scene::random(&mut rng);
            let caption = caption::short(&scene);
            let draw = |rng: &mut ChaCha8Rng| {
                let scene = if rng.random_bool(0.5) { scene.clone() } else { mutate(&scene, rng) };
                Sample { scene, degradations: degrade::random(rng) }
            };
            let samples = [draw(&mut rng), draw(&mut rng)];
            let truth = samples.each_ref().map(|s| {
                let t = s.truth(&caption);
                (t.alignment, t.quality)
            });
            let utility = |(a, q): (f32, f32)| wa * a + wq * q;
            let p = 1.0 / (1.0 + (-SHARPNESS * (utility(truth[0]) - utility(truth[1]))).exp());
            let label_0 = if rng.random_bool(p as f64) { 1.0 } else { 0.0 };
            out.push(RatedPair { user: format!("rater{h:02}"), caption: caption.text, truth, samples, label_0 });
        }
    }
    (out, population)
}

/// Each pair's two feature vectors: the picture's score against its caption split into its
/// text-relevant and text-irrelevant parts (LongAlign, against the demo model's common
/// direction `u`, in CLIPScore's units: 100·cosine). The relevant part should follow alignment
/// and the irrelevant part quality, so a linear reward over the two can weigh them as a
/// population does. Row-major, 2 wide.
pub async fn pair_features(
    encoder: &Encoder,
    pairs: &[RatedPair],
    u: &[f32],
) -> Result<(usize, Vec<f64>, Vec<f64>), ClipError> {
    let captions: Vec<String> = pairs.iter().map(|p| p.caption.clone()).collect();
    let texts = encoder.embed_texts(&captions).await?;
    let mut features = [Vec::new(), Vec::new()];
    for (side, out) in features.iter_mut().enumerate() {
        let images = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| rgba(&format!("p{i}-{side}"), &p.samples[side]))
            .collect::<Result<Vec<_>, _>>()?;
        let embedded = encoder.embed_images(&images, None).await?;
        for (i, text) in texts.iter().enumerate() {
            let d = decompose(&text.vector, embedded.row(i), u, 100.0);
            out.extend([f64::from(d.relevant), f64::from(d.irrelevant)]);
        }
    }
    let [f0, f1] = features;
    Ok((2, f0, f1))
}
