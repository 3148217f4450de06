//! The diversity split checked against the shapes world's ground truth. Two image sets share
//! one list of short captions. In the first, a picture varies only where its caption does: the
//! grey background (which short captions do not state), every object exactly at its stated
//! position and size, no degradations. In the second, what the captions leave unsaid varies
//! too: the background, a jitter of position, scale and rotation, degradations. The prompts
//! explain less of the second set, so its Schur complement entropy (SCE) should be higher.

use prefscope_clip::{ClipError, Encoder};
use prefscope_core::scoring::diversity::{split, Kernel, Paired, Split};
use prefscope_core::scoring::embedding::normalize;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::caption;
use crate::degrade;
use crate::demo::rgba;
use crate::scene::{Background, Scene};
use crate::world::Sample;

/// Captions and the two sets' pictures, in caption order.
pub struct VarietySets {
    pub captions: Vec<String>,
    /// Only what the captions state varies.
    pub prompted: Vec<Sample>,
    /// The background, jitter and degradations vary as well.
    pub unprompted: Vec<Sample>,
}

/// `n` random scenes from `seed`, drawn both ways.
pub fn variety_sets(seed: u64, n: usize) -> VarietySets {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut captions, mut prompted, mut unprompted) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let scene = Scene::random(&mut rng);
        captions.push(caption::short(&scene).text);
        // Grey hides no colour; objects sit exactly where and as large as stated.
        let mut plain = scene.clone();
        plain.background = Background::Gray;
        for o in &mut plain.objects {
            (o.offset, o.scale, o.rotation) = ((0.0, 0.0), 1.0, 0.0);
        }
        prompted.push(Sample { scene: plain, degradations: vec![] });
        // Any background that hides none of the objects, fresh jitter, degradations.
        let mut varied = scene.clone();
        let backgrounds: Vec<Background> =
            Background::ALL.into_iter().filter(|b| !varied.objects.iter().any(|o| b.hides(o.colour))).collect();
        varied.background = backgrounds[rng.random_range(0..backgrounds.len())];
        for o in &mut varied.objects {
            o.offset = (rng.random_range(-0.03..=0.03), rng.random_range(-0.03..=0.03));
            o.scale = rng.random_range(0.9..=1.1);
            o.rotation = rng.random_range(-0.15..=0.15);
        }
        unprompted.push(Sample { scene: varied, degradations: degrade::random(&mut rng) });
    }
    VarietySets { captions, prompted, unprompted }
}

/// The split of each set (`prompted`, `unprompted`) with `encoder`'s embeddings: texts and
/// images L2-normalised, as `prefscope diversity --model` embeds a manifest.
pub async fn split_sets(encoder: &Encoder, sets: &VarietySets, kernel: &Kernel) -> Result<(Split, Split), ClipError> {
    let texts = encoder.embed_texts(&sets.captions).await?;
    let text: Vec<f64> = texts.iter().flat_map(|t| normalize(&t.vector)).map(f64::from).collect();
    let dim = text.len() / sets.captions.len().max(1);
    let mut splits = Vec::with_capacity(2);
    for samples in [&sets.prompted, &sets.unprompted] {
        let images =
            samples.iter().enumerate().map(|(i, s)| rgba(&format!("v{i}"), s)).collect::<Result<Vec<_>, _>>()?;
        let embedded = encoder.embed_images(&images, None).await?;
        let image: Vec<f64> = embedded.data.iter().map(|&v| f64::from(v)).collect();
        let paired = Paired { rows: samples.len(), dim, text: &text, image: &image };
        splits.push(split(&paired, kernel).map_err(|e| ClipError::Input(e.to_string()))?);
    }
    let unprompted = splits.pop().expect("two sets");
    Ok((splits.pop().expect("two sets"), unprompted))
}
