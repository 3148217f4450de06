//! General preference model (GPM): skew-symmetric preference between embeddings, able to
//! represent cyclic preferences that no scalar reward can.

use crate::embedding::normalize;
use crate::numeric::sigmoid;

/// GPM's default temperature.
pub const DEFAULT_TAU: f64 = 0.1;

/// `s(y1, y2) = (R v1)·v2` with `R` block-diagonal of `[[0, −1], [1, 0]]` blocks, on
/// L2-normalised `v1`, `v2`. `None` when the widths differ or are odd.
pub fn gpm_score(v1: &[f32], v2: &[f32]) -> Option<f64> {
    if v1.len() != v2.len() || !v1.len().is_multiple_of(2) {
        return None;
    }
    let (a, b) = (normalize(v1), normalize(v2));
    Some(
        a.chunks_exact(2)
            .zip(b.chunks_exact(2))
            .map(|(x, y)| -(x[1] as f64) * y[0] as f64 + x[0] as f64 * y[1] as f64)
            .sum(),
    )
}

/// `P(y1 ≻ y2) = σ(s/τ)`.
pub fn gpm_probability(v1: &[f32], v2: &[f32], tau: f64) -> Option<f64> {
    gpm_score(v1, v2).map(|s| sigmoid(s / tau))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_skew_symmetric() {
        let a = [0.3, -0.4, 0.8, 0.1];
        let b = [-0.5, 0.2, 0.1, 0.9];
        let s = gpm_score(&a, &b).unwrap();
        assert!((s + gpm_score(&b, &a).unwrap()).abs() < 1e-12);
        assert_eq!(gpm_score(&a, &a).unwrap(), 0.0);
        assert!(gpm_score(&a[..3], &b[..3]).is_none());
    }

    #[test]
    fn represents_a_cycle() {
        // Three unit vectors 120° apart in one plane: each beats the next.
        let v = |deg: f64| [deg.to_radians().cos() as f32, deg.to_radians().sin() as f32];
        let (x, y, z) = (v(0.0), v(120.0), v(240.0));
        let p = |a: &[f32], b: &[f32]| gpm_probability(a, b, DEFAULT_TAU).unwrap();
        assert!(p(&x, &y) > 0.5 && p(&y, &z) > 0.5 && p(&z, &x) > 0.5);
    }
}
