//! Numerically stable scalar functions shared by every formula.
//!
//! Everything is `f64`: exported log-probabilities are sums over hundreds of tokens and the
//! losses subtract nearly equal numbers, so single precision would lose digits TRL keeps.

use crate::lanes;

// The logistic functions below are branch-free (built on [`lanes`]' `exp` and `log`), so the
// loops over pairs that call them vectorise inside a [`lanes::Kernel`].

/// `log(1 + e^x)` without overflow for large `x` or loss of digits for very negative `x`.
#[inline(always)]
pub fn softplus(x: f64) -> f64 {
    -log_sigmoid(-x)
}

/// `log σ(±x)` and `σ(±x)` from one `exp` and one `log`: the losses that need several of them
/// for the same argument (label smoothing, EXO, NCA) pay for one.
#[derive(Debug, Clone, Copy)]
pub struct Logistic {
    pub log_sig: f64,
    pub log_sig_neg: f64,
    pub sig: f64,
    pub sig_neg: f64,
}

impl Logistic {
    #[inline(always)]
    pub fn of(x: f64) -> Self {
        // e = e^−|x| in (0, 1]; log(1 + e) is shared by both signs.
        let e = lanes::exp(-x.abs());
        let l = lanes::ln_1p(e);
        let big = 1.0 / (1.0 + e);
        let small = e * big;
        let positive = x >= 0.0;
        Self {
            log_sig: if positive { -l } else { x - l },
            log_sig_neg: if positive { -x - l } else { -l },
            sig: if positive { big } else { small },
            sig_neg: if positive { small } else { big },
        }
    }
}

/// `log σ(x) = −softplus(−x)`; finite for every finite `x` (≈ `x` for `x ≪ 0`).
#[inline(always)]
pub fn log_sigmoid(x: f64) -> f64 {
    x.min(0.0) - lanes::ln_1p(lanes::exp(-x.abs()))
}

/// The logistic function, evaluated on the side where `exp` cannot overflow.
#[inline(always)]
pub fn sigmoid(x: f64) -> f64 {
    let e = lanes::exp(-x.abs());
    let big = 1.0 / (1.0 + e);
    if x >= 0.0 {
        big
    } else {
        e * big
    }
}

/// `log(1 − e^x)` for `x < 0` (Mächler's split at −ln 2); ORPO's odds use it on average log-probs.
#[inline(always)]
pub fn log1mexp(x: f64) -> f64 {
    let (e, m) = lanes::exp_expm1(x);
    let near = x > -std::f64::consts::LN_2;
    // Near 0: log(−(e^x − 1)); below: log1p(−e^x). One logarithm serves both.
    let u = if near { -m } else { 1.0 - e };
    let l = lanes::ln(u);
    let far = if u == 1.0 { -e } else { l * (-e / (u - 1.0)) };
    if near {
        l
    } else {
        far
    }
}

/// `x / (e^x − 1)`, continuous at 0 where it equals 1 (MaPO's odds transform).
#[inline]
pub fn x_over_expm1(x: f64) -> f64 {
    if x.abs() < 1e-8 {
        1.0 - x / 2.0
    } else {
        x / x.exp_m1()
    }
}

/// `count` standard-normal draws from `seed` (SplitMix64 and Box–Muller): the same numbers on
/// every platform, so a seeded random-feature or projection start reproduces anywhere.
pub fn standard_normals(count: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            let (u, v) = (1.0 - uniform(), uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

/// Arithmetic mean; `NaN` for an empty slice, as torch's `mean` gives.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    sum(xs) / xs.len() as f64
}

/// Sum with eight independent accumulators (summed pairwise at the end), as numpy and torch
/// reduce: vectorisable, and its error grows with n/8 rather than n.
pub fn sum(xs: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// Mean of `f(i)` for `i` in `0..n` without materialising the values.
pub fn mean_of(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    par_chunks(n, |range| {
        let mut acc = [0.0f64; 4];
        let mut i = range.start;
        while i + 4 <= range.end {
            for (k, a) in acc.iter_mut().enumerate() {
                *a += f(i + k);
            }
            i += 4;
        }
        let tail: f64 = (i..range.end).map(&f).sum();
        (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
    })
    .into_iter()
    .sum::<f64>()
        / n as f64
}

/// Below this many elements work stays on the calling thread.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MIN: usize = 1 << 16;

/// Runs `f` over contiguous index ranges covering `0..n`, on all cores for large `n`
/// (scoped threads; the browser build stays on one thread), results in range order.
pub fn par_chunks<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(16);
        if threads > 1 && n >= PARALLEL_MIN {
            let step = n.div_ceil(threads);
            return std::thread::scope(|s| {
                let f = &f;
                let handles: Vec<_> =
                    (0..n).step_by(step).map(|start| s.spawn(move || f(start..(start + step).min(n)))).collect();
                handles.into_iter().map(|h| h.join().expect("worker panicked")).collect()
            });
        }
    }
    vec![f(0..n)]
}

/// `(0..n).map(f).collect()`, computed in parallel for large `n`.
pub fn par_map(n: usize, f: impl Fn(usize) -> f64 + Sync) -> Vec<f64> {
    let parts = par_chunks(n, |range| range.map(&f).collect::<Vec<f64>>());
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(n);
    for p in parts {
        out.extend(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sigmoid_is_finite_at_extremes() {
        assert_eq!(log_sigmoid(1e4), -0.0);
        assert_eq!(log_sigmoid(-1e4), -1e4);
        assert!((log_sigmoid(0.0) + std::f64::consts::LN_2).abs() < 1e-15);
        // σ(40) rounds to 1 in f64, but log σ(−40) keeps its digits.
        assert!((log_sigmoid(-40.0) - (-40.0 - (-40f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn logistic_agrees_with_the_c_library() {
        // The C library's functions, each on the side where it cannot overflow.
        let log_sig = |x: f64| if x >= 0.0 { -(-x).exp().ln_1p() } else { x - x.exp().ln_1p() };
        let sig = |x: f64| if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) };
        let mut xs = vec![-1e4, -745.0, -40.0, -7.3, -1e-3, -1e-12, 0.0, 1e-9, 2e-3, 0.9, 33.0, 800.0, 1e4];
        xs.extend((0..4000).map(|i| (i as f64 - 2000.0) * 0.0173));
        for x in xs {
            let l = Logistic::of(x);
            let close = |a: f64, b: f64| (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs()) + 1e-300;
            assert!(close(l.log_sig, log_sig(x)) && close(l.log_sig_neg, log_sig(-x)), "{x}");
            assert!(close(l.sig, sig(x)) && close(l.sig_neg, sig(-x)), "{x}");
            assert!(close(log_sigmoid(x), log_sig(x)) && close(sigmoid(x), sig(x)), "{x}");
            assert!(close(softplus(x), -log_sig(-x)), "{x}");
            if x < 0.0 {
                let want = if x > -std::f64::consts::LN_2 { (-x.exp_m1()).ln() } else { (-x.exp()).ln_1p() };
                assert!(close(log1mexp(x), want), "log1mexp({x}) = {} against {want}", log1mexp(x));
            }
        }
    }

    #[test]
    fn sigmoid_matches_definition_and_saturates() {
        for x in [-30.0, -1.5, 0.0, 0.7, 25.0] {
            let direct = 1.0 / (1.0 + f64::exp(-x));
            assert!((sigmoid(x) - direct).abs() < 1e-15, "{x}");
        }
        assert_eq!(sigmoid(1e4), 1.0);
        assert_eq!(sigmoid(-1e4), 0.0);
    }

    #[test]
    fn log1mexp_agrees_with_naive_where_naive_is_exact() {
        for x in [-5.0, -1.0, -0.5, -0.01] {
            let naive = (1.0 - f64::exp(x)).ln();
            assert!((log1mexp(x) - naive).abs() < 1e-12 * naive.abs().max(1.0), "{x}");
        }
        // Near 0 the naive form cancels; the split keeps relative precision.
        let x = -1e-12;
        assert!((log1mexp(x) - (1e-12f64).ln()).abs() < 1e-9);
    }

    #[test]
    fn x_over_expm1_is_continuous_at_zero() {
        assert_eq!(x_over_expm1(0.0), 1.0);
        let left = x_over_expm1(-1e-7);
        let right = x_over_expm1(1e-7);
        assert!((left - 1.0).abs() < 1e-6 && (right - 1.0).abs() < 1e-6);
        assert!((x_over_expm1(2.0) - 2.0 / (f64::exp(2.0) - 1.0)).abs() < 1e-15);
    }

    #[test]
    fn sums_agree_with_exact_integer_sums_across_the_parallel_threshold() {
        for n in [0usize, 7, 8, 1000, (1 << 16) + 3, 300_000] {
            let xs: Vec<f64> = (0..n).map(|i| (i % 97) as f64 - 48.0).collect();
            let exact: i64 = (0..n as i64).map(|i| i % 97 - 48).sum();
            assert_eq!(sum(&xs), exact as f64, "n={n}");
            if n > 0 {
                assert_eq!(mean_of(n, |i| xs[i]), exact as f64 / n as f64, "n={n}");
                assert_eq!(par_map(n, |i| xs[i] * 2.0), xs.iter().map(|x| x * 2.0).collect::<Vec<_>>());
            }
        }
        assert!(mean(&[]).is_nan());
    }
}
