//! Numerically stable scalar functions shared by every formula.
//!
//! Everything is `f64`: exported log-probabilities are sums over hundreds of tokens and the
//! losses subtract nearly equal numbers, so single precision would lose digits TRL keeps.

/// `log(1 + e^x)` without overflow for large `x` or loss of digits for very negative `x`.
#[inline]
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `log σ(x) = −softplus(−x)`; finite for every finite `x` (≈ `x` for `x ≪ 0`).
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// The logistic function, evaluated on the side where `exp` cannot overflow.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `log(1 − e^x)` for `x < 0` (Mächler's split at −ln 2); ORPO's odds use it on average log-probs.
#[inline]
pub fn log1mexp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
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

/// Arithmetic mean; `NaN` for an empty slice, as torch's `mean` gives.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    kahan_sum(xs.iter().copied()) / xs.len() as f64
}

/// Compensated sum: the metrics average a million values and should not depend on their order.
pub fn kahan_sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0;
    let mut c = 0.0;
    for x in xs {
        let t = sum + x;
        if sum.abs() >= x.abs() {
            c += (sum - t) + x;
        } else {
            c += (x - t) + sum;
        }
        sum = t;
    }
    sum + c
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
    fn kahan_sum_recovers_small_terms() {
        let xs = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(kahan_sum(xs), 2.0);
        assert!(mean(&[]).is_nan());
    }
}
