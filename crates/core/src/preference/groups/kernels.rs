//! EM's two heavy steps as kernels with fixed inputs and outputs, so that one EM runs them on
//! the CPU (here, in f64) or on a GPU (prefscope-gpu's `annotators` kernels, in f32):
//!
//! - [`pair_terms`] scores every pair under every group's reward: the margin, the pair's
//!   log-likelihood (the E-step and every accuracy read these), and the two coefficients of
//!   the pair's contribution to a Newton step;
//! - [`moments`] sums those contributions into each group's gradient and Hessian (the M-step's
//!   `pairs × features²` work).
//!
//! Both work on the pairs' feature differences `z = φ(x₀) − φ(x₁)`, row-major `pairs × dim`.

use std::future::Future;

use crate::error::ConfigError;
use crate::numeric::{log_sigmoid, sigmoid};

/// Values per (pair, group) in a [`pair_terms`] table.
pub const TERMS: usize = 4;

/// For each pair `i` and group `g` (row-major, `TERMS` values each):
/// `[m, ℓ, c·(σ(m) − y), c·σ(m)·(1 − σ(m))]`, with `m = w_g·z_i`,
/// `ℓ = y·log σ(m) + (1 − y)·log σ(−m)` and `c = pair_weights[i·k + g]`, the pair's weight in
/// group `g`'s fit. `weights` holds the `k` rewards row-major (`k × dim`).
pub fn pair_terms(z: &[f64], dim: usize, y: &[f64], weights: &[f64], pair_weights: &[f64]) -> Vec<f64> {
    let k = weights.len() / dim.max(1);
    let mut out = Vec::with_capacity(y.len() * k * TERMS);
    for (i, zi) in z.chunks_exact(dim.max(1)).enumerate().take(y.len()) {
        for (g, w) in weights.chunks_exact(dim.max(1)).enumerate() {
            let m: f64 = w.iter().zip(zi).map(|(a, b)| a * b).sum();
            let s = sigmoid(m);
            let c = pair_weights[i * k + g];
            out.extend([m, y[i] * log_sigmoid(m) + (1.0 - y[i]) * log_sigmoid(-m), c * (s - y[i]), c * s * (1.0 - s)]);
        }
    }
    out
}

/// Width of one group's block in a [`moments`] table: `(dim + 1) × dim`.
pub fn moments_len(dim: usize) -> usize {
    (dim + 1) * dim
}

/// For each of the `k` groups of a [`pair_terms`] table, a `(dim + 1) × dim` block: row
/// `a < dim` holds the Hessian's lower triangle `Σ_i h_ig·z_ia·z_ib` for `b ≤ a` (zeros above
/// the diagonal), row `dim` the gradient `Σ_i g_ig·z_ib`, where `g` and `h` are the table's two
/// coefficients. (The ridge is the caller's.)
pub fn moments(z: &[f64], dim: usize, terms: &[f64], k: usize) -> Vec<f64> {
    let block = moments_len(dim);
    let mut out = vec![0.0; k * block];
    let pairs = terms.len() / (k * TERMS).max(1);
    for (i, zi) in z.chunks_exact(dim.max(1)).enumerate().take(pairs) {
        for (g, m) in out.chunks_exact_mut(block).enumerate() {
            let t = &terms[(i * k + g) * TERMS..][..TERMS];
            let (gc, hc) = (t[2], t[3]);
            if hc != 0.0 {
                for a in 0..dim {
                    let s = hc * zi[a];
                    for (r, zb) in m[a * dim..a * dim + a + 1].iter_mut().zip(zi) {
                        *r += s * zb;
                    }
                }
            }
            if gc != 0.0 {
                for (r, zb) in m[dim * dim..].iter_mut().zip(zi) {
                    *r += gc * zb;
                }
            }
        }
    }
    out
}

/// Where EM's kernels run: [`CpuKernels`] here, or a GPU holding the same pairs.
pub trait GroupKernels {
    type Error: From<ConfigError>;

    /// Newton stops once a step is below this share of `1 + max|w|`: what the kernels'
    /// arithmetic can resolve (f64 here; f32 on a GPU).
    fn tolerance(&self) -> f64;

    /// [`pair_terms`] of the pairs for `k` rewards (`k × dim`) and pair weights (`pairs × k`).
    fn terms(
        &self,
        weights: &[f64],
        k: usize,
        pair_weights: &[f64],
    ) -> impl Future<Output = Result<Vec<f64>, Self::Error>>;

    /// [`moments`] of the [`pair_terms`] for the same arguments.
    fn moments(
        &self,
        weights: &[f64],
        k: usize,
        pair_weights: &[f64],
    ) -> impl Future<Output = Result<Vec<f64>, Self::Error>>;
}

/// The kernels on the CPU, in f64: this module's functions over the pairs' differences.
pub struct CpuKernels<'a> {
    pub z: &'a [f64],
    pub dim: usize,
    pub y: &'a [f64],
}

impl GroupKernels for CpuKernels<'_> {
    type Error = ConfigError;

    fn tolerance(&self) -> f64 {
        1e-12
    }

    async fn terms(&self, weights: &[f64], _k: usize, pair_weights: &[f64]) -> Result<Vec<f64>, ConfigError> {
        Ok(pair_terms(self.z, self.dim, self.y, weights, pair_weights))
    }

    async fn moments(&self, weights: &[f64], k: usize, pair_weights: &[f64]) -> Result<Vec<f64>, ConfigError> {
        let terms = pair_terms(self.z, self.dim, self.y, weights, pair_weights);
        Ok(moments(self.z, self.dim, &terms, k))
    }
}

/// Runs a future whose every await is ready at once (the CPU kernels') on this thread.
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_moments_by_hand() {
        // Two pairs of width 2, one group w = (1, −1).
        let z = [1.0, 0.0, 0.5, 2.0];
        let y = [1.0, 0.0];
        let t = pair_terms(&z, 2, &y, &[1.0, -1.0], &[1.0, 0.5]);
        let (s0, s1) = (sigmoid(1.0), sigmoid(-1.5));
        assert_eq!(t[0], 1.0);
        assert!((t[1] - log_sigmoid(1.0)).abs() < 1e-15);
        assert!((t[2] - (s0 - 1.0)).abs() < 1e-15 && (t[3] - s0 * (1.0 - s0)).abs() < 1e-15);
        assert_eq!(t[4], -1.5);
        assert!((t[5] - log_sigmoid(1.5)).abs() < 1e-15);
        assert!((t[6] - 0.5 * s1).abs() < 1e-15 && (t[7] - 0.5 * s1 * (1.0 - s1)).abs() < 1e-15);
        let m = moments(&z, 2, &t, 1);
        let (h0, h1) = (t[3], t[7]);
        let expected = [h0 + 0.25 * h1, 0.0, h1 * 0.5 * 2.0, h1 * 4.0, t[2] + 0.5 * t[6], 2.0 * t[6]];
        for (a, b) in m.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{m:?} against {expected:?}");
        }
    }
}
