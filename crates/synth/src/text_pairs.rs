//! The DPO demo's data: prompts and captions for a small caption language model, and
//! preference pairs whose two completions differ in one word. The prompt names how many shapes
//! to describe ("describe two shapes"); the completion is the short caption. A pair describes
//! one shape, warm (red, orange, yellow) in the chosen caption and cold (blue, green, purple) in
//! the rejected one, everything else identical, so the preference is about exactly one token,
//! the only colour word. Raters' share preferring the warm caption is drawn per pair (for Chen
//! et al.'s idealized ranking accuracy).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::caption::{self, ObjectFacts};
use crate::scene::{Colour, Position, Scene, Shape, Size};

pub const WARM: [Colour; 3] = [Colour::Red, Colour::Orange, Colour::Yellow];
pub const COLD: [Colour; 3] = [Colour::Blue, Colour::Green, Colour::Purple];

/// Raters' share preferring the warm caption lies in this range.
pub const SHARE_RANGE: (f64, f64) = (0.6, 0.95);

/// The prompt for a caption of `objects` shapes.
pub fn prompt(objects: usize) -> String {
    let count = ["one shape", "two shapes", "three shapes"][objects.clamp(1, 3) - 1];
    format!("describe {count}")
}

/// A (prompt, caption) draw for maximum-likelihood training: a random scene, its objects in a
/// random order.
pub fn sample(rng: &mut impl Rng) -> (String, String) {
    let scene = Scene::random(rng);
    (prompt(scene.objects.len()), caption::short_shuffled(&scene, rng).text)
}

/// One labelled pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextPair {
    pub id: String,
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    /// Share of raters preferring `chosen`.
    pub preference_share: f64,
}

/// Every one-object scene a pair can describe: (shape, size, position).
fn templates() -> Vec<(Shape, Size, Position)> {
    let mut all = Vec::new();
    for shape in Shape::ALL {
        for size in Size::ALL {
            for position in Position::ALL {
                all.push((shape, size, position));
            }
        }
    }
    all
}

/// The pairs of one-object captions: for each (shape, size, position) every warm × cold colour,
/// a caption such as "a large orange star at the top" over "a large blue star at the top". The
/// templates are shuffled by `seed`; the first `held_out_scenes` give the held-out pairs, the
/// rest the training pairs, so no held-out caption occurs in training. Each pair draws its
/// raters' share.
pub fn pairs(seed: u64, held_out_scenes: usize) -> (Vec<TextPair>, Vec<TextPair>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scenes = templates();
    scenes.shuffle(&mut rng);
    let (mut training, mut held) = (Vec::new(), Vec::new());
    for (s, &(shape, size, position)) in scenes.iter().enumerate() {
        let out = if s < held_out_scenes { &mut held } else { &mut training };
        for warm in WARM {
            for cold in COLD {
                let caption = |colour| caption::from_facts(vec![ObjectFacts { shape, colour, size, position }]).text;
                let share = rng.random_range(SHARE_RANGE.0..SHARE_RANGE.1);
                out.push(TextPair {
                    id: String::new(),
                    prompt: prompt(1),
                    chosen: caption(warm),
                    rejected: caption(cold),
                    preference_share: (share * 1000.0).round() / 1000.0,
                });
            }
        }
    }
    for (prefix, set) in [("train", &mut training), ("held", &mut held)] {
        set.shuffle(&mut rng);
        for (i, p) in set.iter_mut().enumerate() {
            p.id = format!("{prefix}-{i}");
        }
    }
    (training, held)
}

/// The caption model's words: the templates' vocabulary and the prompt's.
pub fn vocabulary() -> Vec<&'static str> {
    let mut words = caption::vocabulary();
    words.push("describe");
    words.sort_unstable();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn pairs_differ_in_one_colour_word_warm_over_cold() {
        let (train, held) = pairs(3, 10);
        assert_eq!((train.len(), held.len()), (40 * 9, 10 * 9));
        let warm: Vec<&str> = WARM.iter().map(|c| c.word()).collect();
        let cold: Vec<&str> = COLD.iter().map(|c| c.word()).collect();
        for p in train.iter().chain(&held) {
            let (c, r): (Vec<&str>, Vec<&str>) = (p.chosen.split(' ').collect(), p.rejected.split(' ').collect());
            assert_eq!(c.len(), r.len(), "{p:?}");
            let diff: Vec<usize> = (0..c.len()).filter(|&i| c[i] != r[i]).collect();
            assert_eq!(diff, [2], "{p:?}");
            assert!(warm.contains(&c[2]) && cold.contains(&r[2]), "{p:?}");
            assert!((SHARE_RANGE.0..=SHARE_RANGE.1).contains(&p.preference_share));
            assert_eq!(p.prompt, "describe one shape");
        }
        let texts = |set: &[TextPair]| -> HashSet<String> {
            set.iter().flat_map(|p| [p.chosen.clone(), p.rejected.clone()]).collect()
        };
        assert!(texts(&train).is_disjoint(&texts(&held)), "held-out captions occur in training");
        let unique: HashSet<(String, String)> = train.iter().map(|p| (p.chosen.clone(), p.rejected.clone())).collect();
        assert_eq!(unique.len(), train.len());
        assert_eq!(pairs(3, 10), (train, held), "deterministic from the seed");
    }

    #[test]
    fn every_caption_word_is_in_the_vocabulary() {
        let words = vocabulary();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let (prompt, caption) = sample(&mut rng);
            for w in prompt.split(' ').chain(caption.split(' ')) {
                assert!(words.contains(&w), "{w}");
            }
        }
    }
}
