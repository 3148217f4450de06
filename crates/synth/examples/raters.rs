//! A measurement for the record, not a check: `cargo run -p prefscope-synth --example raters`
//! (about 3 minutes). Ten draws of the shapes world's raters, grouped from the demo model's
//! LongAlign split and from the world's own features; then, for every pair whose pictures
//! differ in alignment, how often the model's relevant part orders them as alignment does and
//! how alike the text tower finds the two pictures' own captions, by the edit between them.

use std::collections::BTreeMap;

use prefscope_clip::{Backend, ClipError, Encoder};
use prefscope_core::preference::groups::GroupOptions;
use prefscope_core::scoring::embedding::{dot, normalize};
use prefscope_synth::caption;
use prefscope_synth::demo::{bundled_reference_direction, model_files};
use prefscope_synth::raters::{edit, fit, pair_features, population_ari, rated_pairs, true_features};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let encoder = Encoder::load(&model_files(), Backend::Cpu)?;
    let u = bundled_reference_direction();
    // (ARI, accuracy gain) per draw, through the model and from the truth.
    let (mut model, mut truth) = (Vec::new(), Vec::new());
    // Per edit: pairs, pairs ordered as alignment orders them, summed caption cosine.
    let mut edits = BTreeMap::<&str, (usize, usize, f64)>::new();
    for seed in 7..=16 {
        let (pairs, population) = rated_pairs(seed, 40, 20);
        let (dim, f0, f1) = pollster::block_on(pair_features(&encoder, &pairs, &u))?;
        let own = |s: usize| -> Result<_, ClipError> {
            let captions: Vec<String> = pairs.iter().map(|p| caption::short(&p.samples[s].scene).text).collect();
            pollster::block_on(encoder.embed_texts(&captions))
        };
        let own = [own(0)?, own(1)?];
        for (i, p) in pairs.iter().enumerate() {
            let alignment = p.truth[0].0 - p.truth[1].0;
            if alignment != 0.0 {
                let relevant = f0[i * dim] - f1[i * dim];
                let count = edits.entry(edit(&p.samples[0].scene, &p.samples[1].scene)).or_default();
                count.0 += 1;
                count.1 += usize::from((relevant > 0.0) == (alignment > 0.0));
                count.2 += dot(&normalize(&own[0][i].vector), &normalize(&own[1][i].vector));
            }
        }
        let options = GroupOptions::default();
        let (t0, t1) = true_features(&pairs);
        for (features, into) in [((dim, &f0, &f1), &mut model), ((2, &t0, &t1), &mut truth)] {
            let fit = fit(&pairs, features.0, features.1, features.2, &options)?;
            into.push((fit.k, population_ari(&fit.users, &population), fit.accuracy_groups - fit.accuracy_single));
        }
        let ((mk, ma, mg), (tk, ta, tg)) = (model[model.len() - 1], truth[truth.len() - 1]);
        println!("draw {seed}: model K {mk} ARI {ma:.3} gain {mg:+.3} | truth K {tk} ARI {ta:.3} gain {tg:+.3}");
    }
    let mean =
        |v: &[(usize, f64, f64)], f: fn(&(usize, f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    println!(
        "mean: model ARI {:.3} gain {:+.3} | truth ARI {:.3} gain {:+.3}",
        mean(&model, |r| r.1),
        mean(&model, |r| r.2),
        mean(&truth, |r| r.1),
        mean(&truth, |r| r.2)
    );
    for (edit, (pairs, right, cosines)) in edits {
        let n = pairs as f64;
        println!(
            "{edit:<9} {pairs:>5} pairs: the relevant part orders {:.3} as alignment does; captions' text cosine {:.3}",
            right as f64 / n,
            cosines / n
        );
    }
    Ok(())
}
