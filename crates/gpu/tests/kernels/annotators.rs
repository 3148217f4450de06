//! Annotator groups: the `annotators` kernels against core's `pair_terms` and `moments`, and
//! core's EM run on them against the same EM on the CPU. Shared with the browser suite.
//! Tolerances: terms 1e-5 (+1e-5 relative); moments 1e-4 absolute per pair summed (f32 sums);
//! a fit's assignments and iterations exactly, its rewards 1e-4 relative to their size, its
//! likelihoods 1e-4.

use crate::common::{assert_close, Rng};
use prefscope_core::preference::groups::{
    adjusted_rand_index, fit_groups, fit_prepared, moments, pair_terms, prepare, AnnotatedPairs, GroupOptions,
};
use prefscope_gpu::{Gpu, GpuError};

/// Random differences, labels (ties included) and rewards for `pairs × dim`, `k` groups.
fn random_problem(rng: &mut Rng, pairs: usize, dim: usize, k: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let z: Vec<f64> = (0..pairs * dim).map(|_| 0.5 * rng.normal()).collect();
    let y: Vec<f64> = (0..pairs).map(|_| [0.0, 1.0, 0.5][rng.below(3) as usize]).collect();
    let w: Vec<f64> = (0..k * dim).map(|_| rng.normal()).collect();
    // Weights in [0, 1], a quarter of them 0 (held-out pairs, other groups' users).
    let c: Vec<f64> = (0..pairs * k).map(|_| if rng.below(4) == 0 { 0.0 } else { rng.uniform(0.0, 1.0) }).collect();
    (z, y, w, c)
}

pub async fn check_terms_and_moments(g: &Gpu, pairs: usize, dim: usize, k: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let (z, y, w, c) = random_problem(&mut rng, pairs, dim, k);
    let what = format!("{pairs} pairs × {dim}, {k} groups");
    let device = g.upload_pairs(&z, dim, &y).unwrap();
    let want = pair_terms(&z, dim, &y, &w, &c);
    let got = device.pair_terms(&w, k, &c).await.unwrap();
    assert_close(&format!("terms, {what}"), &got, &want, 1e-5, 1e-5);
    let want = moments(&z, dim, &want, k);
    let got = device.pair_moments(&w, k, &c).await.unwrap();
    assert_close(&format!("moments, {what}"), &got, &want, 1e-4 * pairs as f64 / 16.0 + 1e-5, 1e-5);
}

/// Pairs of users from two populations, and each user's population.
struct Raters {
    users: Vec<String>,
    f0: Vec<f64>,
    f1: Vec<f64>,
    labels: Vec<f64>,
    truth: Vec<usize>,
}

/// Two populations of users who weigh two features oppositely, three distractor features.
fn two_populations(seed: u64, users: usize, per_user: usize) -> Raters {
    let mut rng = Rng::new(seed);
    let dim = 5;
    let (mut ids, mut f0, mut f1, mut labels, mut truth) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for u in 0..users {
        let population = (u * 7 + 3) % 2;
        truth.push(population);
        for _ in 0..per_user {
            let a: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let b: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let utility = |x: &[f64]| if population == 0 { 2.0 * x[0] - x[1] } else { -x[0] + 2.0 * x[1] };
            let p = 1.0 / (1.0 + (utility(&b) - utility(&a)).exp());
            ids.push(format!("user-{u}"));
            labels.push(if rng.uniform(0.0, 1.0) < p { 1.0 } else { 0.0 });
            f0.extend(a);
            f1.extend(b);
        }
    }
    Raters { users: ids, f0, f1, labels, truth }
}

/// Core's EM on the GPU's kernels against the same EM on the CPU: hard (K given and chosen)
/// and soft.
pub async fn check_em(g: &Gpu, users: usize, per_user: usize, seed: u64) {
    let r = two_populations(seed, users, per_user);
    let pairs = AnnotatedPairs { users: &r.users, dim: 5, features_0: &r.f0, features_1: &r.f1, label_0: &r.labels };
    let prepared = prepare(&pairs).unwrap();
    let device = g.annotated_pairs(&prepared).unwrap();
    for options in [
        GroupOptions { k: Some(2), ..GroupOptions::default() },
        GroupOptions { k: None, max_k: 3, ..GroupOptions::default() },
        GroupOptions { k: Some(2), soft: true, ..GroupOptions::default() },
    ] {
        let want = fit_groups(&pairs, &options).unwrap();
        let got = fit_prepared(&prepared, &options, &device).await.unwrap();
        let what = format!("{options:?}");
        assert_eq!(got.k, want.k, "{what}: K");
        // The soft fit stops once responsibilities move less than the kernels resolve (1e-4
        // on the GPU, 1e-9 on the CPU); the hard fit when no user moves.
        if options.soft {
            assert!(got.iterations <= want.iterations, "{what}: {} EM iterations", got.iterations);
        } else {
            assert_eq!(got.iterations, want.iterations, "{what}: EM iterations");
        }
        assert_eq!(got.users, want.users, "{what}: assignments");
        let found: Vec<usize> = want.users.iter().map(|u| u.1).collect();
        assert!(adjusted_rand_index(&found, &r.truth) > 0.5, "{what}: the CPU fit itself found no groups");
        for (a, b) in got.groups.iter().zip(&want.groups) {
            let size = b.weights.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert_close(&format!("{what}: rewards"), &a.weights, &b.weights, 1e-4 * size, 0.0);
            assert_eq!((a.users, a.pairs), (b.users, b.pairs), "{what}: group sizes");
            assert_close(&format!("{what}: group accuracy"), &[a.accuracy], &[b.accuracy], 1e-12, 0.0);
        }
        let r: Vec<f64> = got.responsibilities.concat();
        let settled = if options.soft { 1e-3 } else { 1e-12 };
        assert_close(&format!("{what}: responsibilities"), &r, &want.responsibilities.concat(), settled, 0.0);
        assert_close(&format!("{what}: log-likelihood"), &[got.log_likelihood], &[want.log_likelihood], 1e-4, 1e-4);
        let acc = [got.accuracy_single, got.accuracy_groups];
        assert_close(&format!("{what}: accuracies"), &acc, &[want.accuracy_single, want.accuracy_groups], 1e-12, 0.0);
        let cand: Vec<f64> = got.candidates.iter().map(|c| c.1).collect();
        let want_cand: Vec<f64> = want.candidates.iter().map(|c| c.1).collect();
        assert_close(&format!("{what}: candidates"), &cand, &want_cand, 1e-4, 1e-4);
    }
}

/// Features beyond f32 and a Hessian larger than a binding are refused with their reasons.
pub async fn check_refusals(g: &Gpu) {
    let err = g.upload_pairs(&[1.0, 1e16], 1, &[1.0, 0.0]).err().unwrap();
    assert!(err.to_string().contains("pair 2") && err.to_string().contains("f32 sums"), "{err}");
    let err = g.upload_pairs(&[1.0; 3], 2, &[1.0, 0.0]).err().unwrap();
    assert!(matches!(err, GpuError::Shape(_)), "{err}");
    let small = g.clone().with_binding_limit(1024);
    let err = small.upload_pairs(&[0.0; 40], 20, &[1.0, 0.0]).err().unwrap();
    assert!(matches!(err, GpuError::TooLarge { .. }) && err.to_string().contains("Hessian"), "{err}");
}
