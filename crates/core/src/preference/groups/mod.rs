//! Whose preference: a mixture of Bradley–Terry models over annotators. One reward model for
//! everyone hides groups of annotators who want different things (MaxMin-RLHF, PAL, GPM);
//! pairs that carry a user id let those groups be found.
//!
//! Each group `g` has a linear reward `r_g(x) = w_g·φ(x)` over item features, and
//! `P(0 ≻ 1) = σ(r_g(x₀) − r_g(x₁))`. Fitting follows MaxMin-RLHF's EM
//! (josephxu1234/MaxMinRLHF, `test_data_multiple.py`): users start in group `index % K`; the
//! M-step refits each group's reward on its users' pairs; the E-step moves each user to the
//! group under which their pairs are most likely (the first of equal maxima). Where the
//! reference trains a language model's score head for a few epochs, the M-step here solves its
//! L2-regularised logistic regression to the optimum (Newton's method), so a fit is
//! reproducible anywhere; EM stops when no user moves. The soft variant weighs every pair by
//! its user's responsibility `γ_hg ∝ π_g·exp(LL_hg)` instead of moving users.
//!
//! Every user's pairs are split: every fifth pair from the second on is held out. Accuracies
//! and the held-out log-likelihood that chooses `K` (when it is not given) are on held-out
//! pairs only.

mod kernels;
mod measures;

use faer::{Mat, Side};

pub use kernels::{moments, moments_len, pair_terms, CpuKernels, GroupKernels, TERMS};
pub use measures::{adjusted_rand_index, distinct_items, worst_group};

use crate::error::ConfigError;

/// Pairs with the user who labelled each, the two items' features (row-major) and the label.
#[derive(Debug, Clone, Copy)]
pub struct AnnotatedPairs<'a> {
    /// The user of each pair.
    pub users: &'a [String],
    pub dim: usize,
    pub features_0: &'a [f64],
    pub features_1: &'a [f64],
    /// `P(item 0 preferred)`: 1, 0, or 0.5 for a tie.
    pub label_0: &'a [f64],
}

/// How to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOptions {
    /// The number of groups; chosen by held-out log-likelihood among `1..=max_k` when `None`.
    pub k: Option<usize>,
    pub max_k: usize,
    /// Soft responsibilities instead of MaxMin-RLHF's hard assignment.
    pub soft: bool,
    /// L2 penalty `λ/2·‖w‖²` of each group's logistic regression.
    pub ridge: f64,
    pub max_iterations: usize,
}

impl GroupOptions {
    /// The `K`s a fit of `p` tries; refuses a ridge that is not positive and a `K` outside
    /// `1..=users`.
    pub fn candidates(&self, p: &Prepared) -> Result<Vec<usize>, ConfigError> {
        let users = p.users.len();
        if !(self.ridge.is_finite() && self.ridge > 0.0) {
            return Err(ConfigError::Invalid(format!("ridge must be a positive number, got {}", self.ridge)));
        }
        match self.k {
            Some(k) if k == 0 || k > users => {
                Err(ConfigError::Invalid(format!("k must be between 1 and the number of users ({users}), got {k}")))
            }
            Some(k) => Ok(vec![k]),
            None => Ok((1..=self.max_k.clamp(1, users)).collect()),
        }
    }
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self { k: None, max_k: 6, soft: false, ridge: 1.0, max_iterations: 100 }
    }
}

/// One group of a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub users: usize,
    /// Pairs of its users (training and held-out).
    pub pairs: usize,
    /// Held-out accuracy of its users' pairs under its reward.
    pub accuracy: f64,
    /// `w_g`, the reward's direction in feature space (not normalised).
    pub weights: Vec<f64>,
}

/// A fit: each user's group (the most responsible one for the soft variant), the groups, and
/// how well the mixture predicts held-out pairs against one model for everyone.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFit {
    pub k: usize,
    /// Users in order of first appearance, with their group.
    pub users: Vec<(String, usize)>,
    /// `γ_hg` per user (one-hot for the hard fit).
    pub responsibilities: Vec<Vec<f64>>,
    pub groups: Vec<Group>,
    /// Mean held-out log-likelihood per pair under the mixture.
    pub log_likelihood: f64,
    /// Held-out accuracy of one model fitted to everyone's training pairs, and of the groups.
    pub accuracy_single: f64,
    pub accuracy_groups: f64,
    /// Held-out log-likelihood per pair of each `K` tried (when `K` was chosen).
    pub candidates: Vec<(usize, f64)>,
    pub iterations: usize,
}

/// The pairs as the fit uses them: feature differences, labels, users, the split. A GPU
/// holds the differences and labels once ([`GroupKernels`]) for every step of every fit.
#[derive(Debug, Clone)]
pub struct Prepared {
    dim: usize,
    /// `φ(x₀) − φ(x₁)`, row-major `pairs × dim`.
    z: Vec<f64>,
    y: Vec<f64>,
    user_of: Vec<usize>,
    held_out: Vec<bool>,
    users: Vec<String>,
}

impl Prepared {
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The pairs' feature differences, row-major `pairs × dim`.
    pub fn differences(&self) -> &[f64] {
        &self.z
    }

    /// `P(item 0 preferred)` per pair.
    pub fn labels(&self) -> &[f64] {
        &self.y
    }

    /// The kernels on the CPU for these pairs.
    pub fn cpu(&self) -> CpuKernels<'_> {
        CpuKernels { z: &self.z, dim: self.dim, y: &self.y }
    }

    fn pairs(&self) -> usize {
        self.y.len()
    }
}

/// Feature width at most: each Newton step factors a `dim × dim` matrix.
pub const MAX_FEATURES: usize = 4096;

/// Checks the pairs and computes what every fit reads; errors name the row and column.
pub fn prepare(p: &AnnotatedPairs<'_>) -> Result<Prepared, ConfigError> {
    let n = p.users.len();
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if n == 0 {
        return invalid("no pairs to fit".into());
    }
    if p.dim == 0 || p.dim > MAX_FEATURES {
        return invalid(format!("features must have 1 to {MAX_FEATURES} values, got {}", p.dim));
    }
    for (name, values) in [("features_0", p.features_0), ("features_1", p.features_1)] {
        if values.len() != n * p.dim {
            return invalid(format!("{name}: {} values for {n} pairs of width {}", values.len(), p.dim));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return invalid(format!("row {}: `{name}` has a non-finite value", i / p.dim + 1));
        }
    }
    if p.label_0.len() != n {
        return invalid(format!("{} labels for {n} pairs", p.label_0.len()));
    }
    if let Some(i) = p.label_0.iter().position(|l| !(0.0..=1.0).contains(l)) {
        return invalid(format!("row {}: `label_0` must be between 0 and 1, got {}", i + 1, p.label_0[i]));
    }
    let mut users: Vec<String> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut count: Vec<usize> = Vec::new();
    let mut user_of = Vec::with_capacity(n);
    for u in p.users {
        let h = *index.entry(u.clone()).or_insert_with(|| {
            users.push(u.clone());
            count.push(0);
            users.len() - 1
        });
        count[h] += 1;
        user_of.push(h);
    }
    let held_out = held_out_pairs(p.users);
    if let Some(h) = count.iter().position(|&c| c < 2) {
        return invalid(format!(
            "user `{}` has {} pair: each user needs at least 2 (one to fit, one to check)",
            users[h], count[h]
        ));
    }
    let z = p.features_0.iter().zip(p.features_1).map(|(a, b)| a - b).collect();
    Ok(Prepared { dim: p.dim, z, y: p.label_0.to_vec(), user_of, held_out, users })
}

/// Which pairs are held out: every fifth pair of each user, from the user's second on.
pub(crate) fn held_out_pairs(users: &[String]) -> Vec<bool> {
    let mut seen = std::collections::HashMap::new();
    users
        .iter()
        .map(|u| {
            let c = seen.entry(u.as_str()).or_insert(0usize);
            *c += 1;
            *c % 5 == 2
        })
        .collect()
}

/// The minimisers of `−Σ c_ig·ℓ(w_g·z_i, y_i) + λ/2·‖w_g‖²` over the training pairs for the
/// groups in `fit` (their pair weights `c`, `pairs × fit.len()`), by Newton's method from their
/// current weights, the groups' steps together in [`GroupKernels::moments`] calls of at most
/// 256 MiB of blocks. Each problem is strictly convex, so its optimum does not depend on the
/// start.
async fn fit_rewards<K: GroupKernels>(
    kernels: &K,
    p: &Prepared,
    weights: &mut [Vec<f64>],
    fit: &[usize],
    pair_weights: &[f64],
    ridge: f64,
) -> Result<(), K::Error> {
    let (d, n) = (p.dim, fit.len());
    let pairs = pair_weights.len() / n.max(1);
    // A step is measured by what it moves the margins `w·z` by (the features' scale times the
    // step) against the margins' own size, so features in any unit converge alike.
    let scale = p.z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let per_call = ((256usize << 20) / (moments_len(d) * 8).max(1)).max(1);
    let mut active: Vec<usize> = (0..n).collect();
    for iteration in 0.. {
        if active.is_empty() {
            break;
        }
        if iteration == 100 {
            return Err(ConfigError::Invalid(
                "a group's reward did not converge in 100 Newton steps (features of very different scales? try a larger ridge)".into(),
            )
            .into());
        }
        let mut still = Vec::new();
        for batch in active.chunks(per_call) {
            let w: Vec<f64> = batch.iter().flat_map(|&j| weights[fit[j]].iter().copied()).collect();
            let c: Vec<f64> = (0..pairs).flat_map(|i| batch.iter().map(move |&j| pair_weights[i * n + j])).collect();
            let m = kernels.moments(&w, batch.len(), &c).await?;
            for (slot, &j) in batch.iter().enumerate() {
                let w = &mut weights[fit[j]];
                let size = newton_step(w, &m[slot * moments_len(d)..][..moments_len(d)], ridge)?;
                let largest = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                if size * scale >= kernels.tolerance() * (1.0 + largest * scale) {
                    still.push(j);
                }
            }
        }
        active = still;
    }
    Ok(())
}

/// Applies one Newton step to `w` from its [`moments`] block (plus the ridge's terms) and
/// returns the step's largest component.
fn newton_step(w: &mut [f64], block: &[f64], ridge: f64) -> Result<f64, ConfigError> {
    let d = w.len();
    let hessian = Mat::from_fn(d, d, |a, b| {
        if b > a {
            0.0
        } else if a == b {
            block[a * d + b] + ridge
        } else {
            block[a * d + b]
        }
    });
    let llt = hessian.llt(Side::Lower).map_err(|e| ConfigError::Invalid(format!("Newton step failed: {e:?}")))?;
    let rhs = Mat::from_fn(d, 1, |a, _| block[d * d + a] + ridge * w[a]);
    let step = faer::linalg::solvers::Solve::solve(&llt, &rhs);
    let mut size = 0.0f64;
    for (a, v) in w.iter_mut().enumerate() {
        *v -= step[(a, 0)];
        size = size.max(step[(a, 0)].abs());
    }
    if !w.iter().all(|v| v.is_finite()) {
        return Err(ConfigError::Invalid(
            "a Newton step for a group's reward is not finite (features too large? scale them down)".into(),
        ));
    }
    Ok(size)
}

/// Each user's log-likelihood of their training (or held-out) pairs under each of the `k`
/// groups of a [`pair_terms`] table.
fn user_log_likelihoods(p: &Prepared, terms: &[f64], k: usize, held_out: bool) -> Vec<Vec<f64>> {
    let mut ll = vec![vec![0.0; k]; p.users.len()];
    for i in (0..p.pairs()).filter(|&i| p.held_out[i] == held_out) {
        for (g, v) in ll[p.user_of[i]].iter_mut().enumerate() {
            *v += terms[(i * k + g) * TERMS + 1];
        }
    }
    ll
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The first index of the largest value (Python's `list.index(max(list))`).
fn first_max(values: &[f64]) -> usize {
    let mut best = 0;
    for (g, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = g;
        }
    }
    best
}

/// Held-out accuracy of `margin(i)` (item 0's reward minus item 1's) on the untied held-out
/// pairs that `keep`; a zero margin counts one half.
pub(crate) fn held_out_accuracy(
    labels: &[f64],
    held_out: &[bool],
    keep: &dyn Fn(usize) -> bool,
    margin: &dyn Fn(usize) -> f64,
) -> f64 {
    let (mut correct, mut total) = (0.0, 0usize);
    for i in (0..labels.len()).filter(|&i| held_out[i] && labels[i] != 0.5 && keep(i)) {
        let m = margin(i);
        total += 1;
        correct += if m == 0.0 {
            0.5
        } else if (m > 0.0) == (labels[i] > 0.5) {
            1.0
        } else {
            0.0
        };
    }
    if total == 0 {
        f64::NAN
    } else {
        correct / total as f64
    }
}

/// What EM ends with for one `K`.
struct Em {
    /// Responsibilities per user.
    gamma: Vec<Vec<f64>>,
    /// Each group's reward.
    weights: Vec<Vec<f64>>,
    iterations: usize,
}

/// Each pair's weight in each group's fit (`pairs × k`): its user's responsibility on training
/// pairs, 0 on held-out ones.
fn pair_weights(p: &Prepared, gamma: &[Vec<f64>], k: usize) -> Vec<f64> {
    (0..p.pairs()).flat_map(|i| (0..k).map(move |g| if p.held_out[i] { 0.0 } else { gamma[p.user_of[i]][g] })).collect()
}

/// EM for one `K`.
async fn em<K: GroupKernels>(p: &Prepared, k: usize, o: &GroupOptions, kernels: &K) -> Result<Em, K::Error> {
    let users = p.users.len();
    let one_hot = |g: usize| (0..k).map(|j| if j == g { 1.0 } else { 0.0 }).collect::<Vec<f64>>();
    let mut gamma: Vec<Vec<f64>> = (0..users).map(|h| one_hot(h % k)).collect();
    let mut weights = vec![vec![0.0; p.dim]; k];
    let mut iterations = 0;
    while iterations < o.max_iterations {
        iterations += 1;
        // M-step: each group on its users' pairs (an empty group keeps its reward).
        let fit: Vec<usize> = (0..k).filter(|&g| gamma.iter().map(|r| r[g]).sum::<f64>() > 0.0).collect();
        let all = pair_weights(p, &gamma, k);
        let c: Vec<f64> = all.chunks_exact(k).flat_map(|row| fit.iter().map(|&g| row[g])).collect();
        fit_rewards(kernels, p, &mut weights, &fit, &c, o.ridge).await?;
        // E-step.
        let terms = kernels.terms(&weights.concat(), k, &all).await?;
        let ll = user_log_likelihoods(p, &terms, k, false);
        let next: Vec<Vec<f64>> = if o.soft {
            let prior: Vec<f64> = (0..k).map(|g| gamma.iter().map(|r| r[g]).sum::<f64>() / users as f64).collect();
            ll.iter()
                .map(|l| {
                    let logs: Vec<f64> = (0..k).map(|g| prior[g].ln() + l[g]).collect();
                    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = logs.iter().map(|v| (v - top).exp()).collect();
                    let total: f64 = e.iter().sum();
                    e.iter().map(|v| v / total).collect()
                })
                .collect()
        } else {
            ll.iter().map(|l| one_hot(first_max(l))).collect()
        };
        let moved =
            next.iter().zip(&gamma).flat_map(|(a, b)| a.iter().zip(b)).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        gamma = next;
        // No finer than the kernels' arithmetic can settle responsibilities.
        if moved < kernels.tolerance().max(1e-9) {
            break;
        }
    }
    Ok(Em { gamma, weights, iterations })
}

/// Fits the groups (and one model for everyone, for comparison) on the CPU.
pub fn fit_groups(pairs: &AnnotatedPairs<'_>, o: &GroupOptions) -> Result<GroupFit, ConfigError> {
    let p = prepare(pairs)?;
    kernels::ready(fit_prepared(&p, o, &p.cpu()))
}

/// [`fit_groups`] on prepared pairs with the given kernels (the CPU's, or a GPU's holding the
/// same pairs).
pub async fn fit_prepared<K: GroupKernels>(p: &Prepared, o: &GroupOptions, kernels: &K) -> Result<GroupFit, K::Error> {
    let tried = o.candidates(p)?;
    let held_out_pairs = p.held_out.iter().filter(|h| **h).count() as f64;
    let mut best: Option<(f64, usize, Em, Vec<f64>)> = None;
    let mut candidates = Vec::new();
    for &k in &tried {
        let fit = em(p, k, o, kernels).await?;
        // The mixture's held-out likelihood: each user's held-out pairs under its groups.
        let terms = kernels.terms(&fit.weights.concat(), k, &vec![0.0; p.pairs() * k]).await?;
        let ll = user_log_likelihoods(p, &terms, k, true);
        let total: f64 = ll
            .iter()
            .zip(&fit.gamma)
            .map(|(l, r)| {
                let logs: Vec<f64> = (0..k).filter(|&g| r[g] > 0.0).map(|g| r[g].ln() + l[g]).collect();
                let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                top + logs.iter().map(|v| (v - top).exp()).sum::<f64>().ln()
            })
            .sum();
        let per_pair = total / held_out_pairs;
        candidates.push((k, per_pair));
        if best.as_ref().is_none_or(|b| per_pair > b.0) {
            best = Some((per_pair, k, fit, terms));
        }
    }
    let Some((log_likelihood, k, Em { gamma, weights, iterations }, terms)) = best else {
        return Err(ConfigError::Invalid("no K to try".into()).into());
    };
    let mut single = vec![vec![0.0; p.dim]];
    let everyone: Vec<f64> = p.held_out.iter().map(|&h| if h { 0.0 } else { 1.0 }).collect();
    fit_rewards(kernels, p, &mut single, &[0], &everyone, o.ridge).await?;
    let single_terms = kernels.terms(&single[0], 1, &vec![0.0; p.pairs()]).await?;
    let accuracy_single = held_out_accuracy(&p.y, &p.held_out, &|_| true, &|i| single_terms[i * TERMS]);
    let assigned: Vec<usize> = gamma.iter().map(|r| first_max(r)).collect();
    let margin = |i: usize, g: usize| terms[(i * k + g) * TERMS];
    let accuracy_groups = held_out_accuracy(&p.y, &p.held_out, &|_| true, &|i| margin(i, assigned[p.user_of[i]]));
    let groups = (0..k)
        .map(|g| {
            let member = |i: usize| assigned[p.user_of[i]] == g;
            Group {
                users: assigned.iter().filter(|&&a| a == g).count(),
                pairs: (0..p.pairs()).filter(|&i| member(i)).count(),
                accuracy: held_out_accuracy(&p.y, &p.held_out, &member, &|i| margin(i, g)),
                weights: weights[g].clone(),
            }
        })
        .collect();
    Ok(GroupFit {
        k,
        users: p.users.iter().cloned().zip(assigned).collect(),
        responsibilities: gamma,
        groups,
        log_likelihood,
        accuracy_single,
        accuracy_groups,
        candidates: if o.k.is_none() { candidates } else { Vec::new() },
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pairs_or_over_wide_features_are_refused() {
        let none = AnnotatedPairs { users: &[], dim: 3, features_0: &[], features_1: &[], label_0: &[] };
        assert!(fit_groups(&none, &GroupOptions::default()).unwrap_err().to_string().contains("no pairs"));
        let users = vec!["a".to_string(); 2];
        let wide = vec![0.0; 2 * (MAX_FEATURES + 1)];
        let p = AnnotatedPairs {
            users: &users,
            dim: MAX_FEATURES + 1,
            features_0: &wide,
            features_1: &wide,
            label_0: &[1.0, 0.0],
        };
        assert!(fit_groups(&p, &GroupOptions::default()).unwrap_err().to_string().contains("features must have 1 to"));
    }
}
