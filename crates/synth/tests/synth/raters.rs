//! Annotator groups in the shapes world: two populations of raters (one weighs alignment, one
//! quality) label pairs; the groups are recovered from the labels and the pictures' features,
//! and each rater is predicted better by their group's reward than by one for everyone.
//!
//! One draw of 40 raters holds out 160 pairs, so a draw's accuracies move by a few points from
//! draw to draw: the goals are checked on the mean over ten draws where a fit is cheap.

use prefscope_clip::{Backend, Encoder};
use prefscope_core::preference::groups::{GroupFit, GroupOptions};
use prefscope_synth::demo::{bundled_reference_direction, model_files};
use prefscope_synth::raters::{self, pair_features, rated_pairs, true_features, RatedPair};

/// The draws the goals are measured on.
const DRAWS: std::ops::RangeInclusive<u64> = 7..=16;

fn fit(pairs: &[RatedPair], dim: usize, f0: &[f64], f1: &[f64], options: &GroupOptions) -> GroupFit {
    raters::fit(pairs, dim, f0, f1, options).unwrap()
}

fn ari(fit: &GroupFit, population: &[usize]) -> f64 {
    raters::population_ari(&fit.users, population)
}

/// With the world's own alignment and quality as features, the fit meets the goals on
/// the mean of ten draws: ARI ≥ 0.8 and held-out accuracy at least 0.1 above one model for
/// everyone. Measured: K chosen, ARI 0.970 and +0.102 (draws range from +0.062 to +0.156).
#[test]
fn raters_are_grouped_from_true_alignment_and_quality() {
    for options in [GroupOptions::default(), GroupOptions { k: Some(2), ..GroupOptions::default() }] {
        let (mut aris, mut gains) = (Vec::new(), Vec::new());
        for seed in DRAWS {
            let (pairs, population) = rated_pairs(seed, 40, 20);
            let (f0, f1) = true_features(&pairs);
            let fit = fit(&pairs, 2, &f0, &f1, &options);
            aris.push(ari(&fit, &population));
            gains.push(fit.accuracy_groups - fit.accuracy_single);
        }
        let (a, g) = (mean(&aris), mean(&gains));
        println!("true features, k {:?}: mean ARI {a:.3}, mean accuracy gain {g:+.3} ({gains:.3?})", options.k);
        assert!(a >= 0.8, "ARI {aris:?}");
        assert!(g >= 0.1, "accuracy gains {gains:?}");
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Through the demo model (the LongAlign split of each picture's score), one draw, as a
/// regression bar for the model and the fit: K = 2, ARI 0.900, held-out accuracy 0.728 single
/// against 0.784 groups (+0.056). This draw is a kind one: over the ten draws the model gives
/// a mean ARI of 0.724 and a mean gain of +0.021 against the goals' 0.8 and +0.1, because its
/// relevant part orders a picture and its one-edit variant by alignment only when the edit is
/// a colour (0.98) or a size (0.83), near chance for shape and position
/// (`cargo run -p prefscope-synth --example raters` measures both).
#[test]
fn raters_through_the_demo_models_split() {
    let encoder = Encoder::load(&model_files(), Backend::Cpu).unwrap();
    let (pairs, population) = rated_pairs(7, 40, 20);
    let u = bundled_reference_direction();
    let (dim, f0, f1) = pollster::block_on(pair_features(&encoder, &pairs, &u)).unwrap();
    let fit = fit(&pairs, dim, &f0, &f1, &GroupOptions::default());
    let a = ari(&fit, &population);
    println!(
        "demo model, K chosen {}: ARI {a:.3}, accuracy {:.3} single, {:.3} groups",
        fit.k, fit.accuracy_single, fit.accuracy_groups
    );
    assert_eq!(fit.k, 2);
    assert!(a >= 0.8, "ARI {a}");
    assert!(fit.accuracy_groups >= fit.accuracy_single + 0.04, "{} vs {}", fit.accuracy_groups, fit.accuracy_single);
}
