//! Annotator groups checked against the shapes world's ground truth: raters from two
//! populations that want different things label pairs of pictures. One population weighs
//! alignment with the caption (`u = a + 0.1·q`), the other quality (`u = 0.2·a + q`); each label
//! is drawn from Bradley–Terry on the rater's utility, `P(0 ≻ 1) = σ(30·(u₀ − u₁))`. The fit
//! should find the two populations from the labels and the pictures' features alone.

use prefscope_clip::{ClipError, Encoder};
use prefscope_core::preference::groups::{adjusted_rand_index, fit_groups, AnnotatedPairs, GroupFit, GroupOptions};
use prefscope_core::scoring::longalign::decompose;
use prefscope_core::ConfigError;
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

/// Each pair's two feature vectors from the world's own alignment and quality (×10, a unit the
/// fit's ridge hardly touches): the best features any scorer could give. Row-major, 2 wide.
pub fn true_features(pairs: &[RatedPair]) -> (Vec<f64>, Vec<f64>) {
    let side = |s: usize| -> Vec<f64> {
        pairs.iter().flat_map(|p| [f64::from(p.truth[s].0) * 10.0, f64::from(p.truth[s].1) * 10.0]).collect()
    };
    (side(0), side(1))
}

/// The groups fitted to the raters' labels over features `f0`, `f1` (row-major, `dim` wide).
pub fn fit(
    pairs: &[RatedPair],
    dim: usize,
    f0: &[f64],
    f1: &[f64],
    options: &GroupOptions,
) -> Result<GroupFit, ConfigError> {
    let users: Vec<String> = pairs.iter().map(|p| p.user.clone()).collect();
    let labels: Vec<f64> = pairs.iter().map(|p| p.label_0).collect();
    fit_groups(&AnnotatedPairs { users: &users, dim, features_0: f0, features_1: f1, label_0: &labels }, options)
}

/// Adjusted Rand index of a fit's groups (`(user, group)` as the fit lists them) against the
/// populations [`rated_pairs`] drew for its raters.
pub fn population_ari(users: &[(String, usize)], population: &[usize]) -> f64 {
    let found: Vec<usize> = users.iter().map(|(_, g)| *g).collect();
    let truth: Vec<usize> = users
        .iter()
        .map(|(u, _)| {
            // A user `rated_pairs` did not name stands alone.
            u.strip_prefix("rater").and_then(|h| h.parse::<usize>().ok()).and_then(|h| population.get(h).copied())
        })
        .map(|p| p.unwrap_or(usize::MAX))
        .collect();
    adjusted_rand_index(&truth, &found)
}

/// What a pair's two scenes differ in (`mutate` makes one edit): `"count"`, else the first of
/// `"shape"`, `"colour"`, `"size"` and `"position"` whose addition to the objects' facts tells
/// the scenes apart, or `"none"`.
pub fn edit(x: &Scene, y: &Scene) -> &'static str {
    if x.objects.len() != y.objects.len() {
        return "count";
    }
    let facts = |s: &Scene, depth: usize| -> Vec<String> {
        let mut v: Vec<String> = s
            .objects
            .iter()
            .map(|o| format!("{:?} {:?} {:?} {:?}", o.shape, o.colour, o.size, o.position))
            .map(|all| all.split(' ').take(depth).collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    };
    ["shape", "colour", "size", "position"]
        .into_iter()
        .zip(1..)
        .find(|&(_, depth)| facts(x, depth) != facts(y, depth))
        .map_or("none", |(name, _)| name)
}
