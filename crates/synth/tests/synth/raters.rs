//! Annotator groups in the shapes world: two populations of raters (one weighs alignment, one
//! quality) label pairs; the groups are recovered from the labels and the pictures' features,
//! and each rater is predicted better by their group's reward than by one for everyone.
//!
//! One draw of 40 raters holds out 160 pairs, so a draw's accuracies move by a few points from
//! draw to draw: the goals are checked on the mean over ten draws where a fit is cheap.

use std::collections::BTreeMap;

use prefscope_clip::{Backend, Encoder};
use prefscope_core::groups::{adjusted_rand_index, fit_groups, AnnotatedPairs, GroupFit, GroupOptions};
use prefscope_synth::caption;
use prefscope_synth::demo::{bundled_reference_direction, model_files};
use prefscope_synth::raters::{pair_features, rated_pairs, RatedPair};
use prefscope_synth::scene::Scene;

/// The draws the goals are measured on.
const DRAWS: std::ops::RangeInclusive<u64> = 7..=16;

fn fit(pairs: &[RatedPair], dim: usize, f0: &[f64], f1: &[f64], options: &GroupOptions) -> GroupFit {
    let users: Vec<String> = pairs.iter().map(|p| p.user.clone()).collect();
    let labels: Vec<f64> = pairs.iter().map(|p| p.label_0).collect();
    let annotated = AnnotatedPairs { users: &users, dim, features_0: f0, features_1: f1, label_0: &labels };
    fit_groups(&annotated, options).unwrap()
}

fn ari(fit: &GroupFit, population: &[usize]) -> f64 {
    let found: Vec<usize> = fit.users.iter().map(|(_, g)| *g).collect();
    let truth: Vec<usize> =
        fit.users.iter().map(|(u, _)| population[u["rater".len()..].parse::<usize>().unwrap()]).collect();
    adjusted_rand_index(&truth, &found)
}

/// The world's own alignment and quality of each picture, scaled to a unit the ridge hardly
/// touches.
fn true_features(pairs: &[RatedPair]) -> (Vec<f64>, Vec<f64>) {
    let side = |s: usize| -> Vec<f64> {
        pairs.iter().flat_map(|p| [f64::from(p.truth[s].0) * 10.0, f64::from(p.truth[s].1) * 10.0]).collect()
    };
    (side(0), side(1))
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

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
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
/// ([`raters_through_the_demo_model_across_draws`] measures both).
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

/// What a pair's two scenes differ in (`mutate` makes one edit): the object count, else the
/// first of shape, colour, size and position whose addition to the objects' facts tells the
/// scenes apart.
fn edit(x: &Scene, y: &Scene) -> &'static str {
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

/// A measurement, not a check (`cargo test -p prefscope-synth --test synth -- --ignored
/// across_draws --nocapture`, about 3 minutes): the ten draws through the demo model against
/// the world's own features, and, for every pair whose pictures differ in alignment, how often
/// the model's relevant part orders them as alignment does, by the kind of edit between them.
#[test]
#[ignore = "a measurement for the record; prints a table"]
fn raters_through_the_demo_model_across_draws() {
    let encoder = Encoder::load(&model_files(), Backend::Cpu).unwrap();
    let u = bundled_reference_direction();
    let (mut model, mut truth) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    // Per edit: pairs, pairs ordered as alignment orders them, and the summed cosine between
    // the text embeddings of the two pictures' own captions.
    let mut ordered = BTreeMap::<&str, (usize, usize, f64)>::new();
    for seed in DRAWS {
        let (pairs, population) = rated_pairs(seed, 40, 20);
        let (dim, f0, f1) = pollster::block_on(pair_features(&encoder, &pairs, &u)).unwrap();
        let own =
            |s: usize| -> Vec<String> { pairs.iter().map(|p| caption::short(&p.samples[s].scene).text).collect() };
        let own = [own(0), own(1)].map(|captions| pollster::block_on(encoder.embed_texts(&captions)).unwrap());
        for (i, p) in pairs.iter().enumerate() {
            let alignment = p.truth[0].0 - p.truth[1].0;
            if alignment != 0.0 {
                let relevant = f0[i * dim] - f1[i * dim];
                let count = ordered.entry(edit(&p.samples[0].scene, &p.samples[1].scene)).or_default();
                count.0 += 1;
                count.1 += usize::from((relevant > 0.0) == (alignment > 0.0));
                count.2 += f64::from(cosine(&own[0][i].vector, &own[1][i].vector));
            }
        }
        let by_model = fit(&pairs, dim, &f0, &f1, &GroupOptions::default());
        let (t0, t1) = true_features(&pairs);
        let by_truth = fit(&pairs, 2, &t0, &t1, &GroupOptions::default());
        for (fit, into) in [(&by_model, &mut model), (&by_truth, &mut truth)] {
            into[0].push(ari(fit, &population));
            into[1].push(fit.accuracy_groups - fit.accuracy_single);
        }
        println!(
            "draw {seed}: model K {} ARI {:.3} gain {:+.3} | truth K {} ARI {:.3} gain {:+.3}",
            by_model.k,
            model[0][model[0].len() - 1],
            model[1][model[1].len() - 1],
            by_truth.k,
            truth[0][truth[0].len() - 1],
            truth[1][truth[1].len() - 1],
        );
    }
    println!(
        "mean: model ARI {:.3} gain {:+.3} | truth ARI {:.3} gain {:+.3}",
        mean(&model[0]),
        mean(&model[1]),
        mean(&truth[0]),
        mean(&truth[1])
    );
    for (edit, (pairs, right, cosines)) in ordered {
        let n = pairs as f64;
        println!(
            "{edit:<9} {pairs:>5} pairs: the relevant part orders {:.3} as alignment does; captions' text cosine {:.3}",
            right as f64 / n,
            cosines / n
        );
    }
}
