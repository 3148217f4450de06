//! General preference model (GPM): skew-symmetric preference between embeddings, able to
//! represent cyclic preferences that no scalar reward can.

use crate::numeric::sigmoid;
use crate::scoring::embedding::normalize;

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
    fn triads_are_counted_with_and_without_ties_and_not_past_the_limit() {
        let v = |deg: f64| vec![deg.to_radians().cos() as f32, deg.to_radians().sin() as f32];
        // A cycle, with and without a fourth item that ties with everything (zero vector).
        assert_eq!(intransitive_triads(&[v(0.0), v(120.0), v(240.0)]), Some(1));
        assert_eq!(intransitive_triads(&[v(0.0), v(120.0), v(240.0), vec![0.0, 0.0]]), Some(1));
        // Inside a half-plane the order is transitive.
        assert_eq!(intransitive_triads(&[v(0.0), v(30.0), v(60.0), v(90.0)]), Some(0));
        let many: Vec<Vec<f32>> = (0..=MAX_TRIAD_ITEMS).map(|i| v(i as f64 * 0.01)).collect();
        assert_eq!(intransitive_triads(&many), None);
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

/// Fitting a GPM head on item features: `v(x) = normalize(W·φ(x))` with `W` of `dim × p`, and
/// `P(x₀ ≻ x₁) = σ(s(v₀, v₁)/τ)`; the loss of general-preference-model's
/// `HighDimGeneralPreferenceLoss` (`−log σ(s/τ)` of the preferred side over the other, a tie
/// half each way), by full-batch gradient descent from a seeded start, so a fit is the same
/// anywhere. The pairs and their held-out split are those of [`crate::preference::groups`].
#[derive(Debug, Clone, PartialEq)]
pub struct GpmOptions {
    /// Width of the preference embedding (even: `dim/2` rotation blocks).
    pub dim: usize,
    pub tau: f64,
    pub steps: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

impl Default for GpmOptions {
    fn default() -> Self {
        Self { dim: 4, tau: DEFAULT_TAU, steps: 300, learning_rate: 0.05, seed: 0 }
    }
}

/// A fitted head: `W` row-major (`dim × p`), the final training loss, held-out accuracy, and
/// the cyclic triads among the distinct items.
#[derive(Debug, Clone, PartialEq)]
pub struct GpmFit {
    pub projection: Vec<f64>,
    pub loss: f64,
    pub accuracy: f64,
    pub items: usize,
    /// `None` past [`MAX_TRIAD_ITEMS`] items (or past a thousand when two items tie).
    pub intransitive_triads: Option<u64>,
}

/// Items at most for counting triads (the tournament is `items²` bytes).
pub const MAX_TRIAD_ITEMS: usize = 5000;

/// `W` drawn from `seed` (standard normal over `√p`, [`crate::numeric::standard_normals`]).
pub fn initial_projection(dim: usize, features: usize, seed: u64) -> Vec<f64> {
    let scale = 1.0 / (features.max(1) as f64).sqrt();
    crate::numeric::standard_normals(dim * features, seed).into_iter().map(|v| v * scale).collect()
}

/// Fits from the seeded start.
pub fn fit_gpm(
    pairs: &crate::preference::groups::AnnotatedPairs<'_>,
    o: &GpmOptions,
) -> Result<GpmFit, crate::error::ConfigError> {
    fit_gpm_from(pairs, o, initial_projection(o.dim, pairs.dim, o.seed))
}

/// Fits from the start `projection` (`dim × p`, row-major).
pub fn fit_gpm_from(
    pairs: &crate::preference::groups::AnnotatedPairs<'_>,
    o: &GpmOptions,
    mut w: Vec<f64>,
) -> Result<GpmFit, crate::error::ConfigError> {
    use crate::error::ConfigError;
    let (p, d, n) = (pairs.dim, o.dim, pairs.users.len());
    if d == 0 || !d.is_multiple_of(2) || d > 64 {
        return Err(ConfigError::Invalid(format!("the GPM width must be even, 2 to 64, got {d}")));
    }
    if !(o.tau.is_finite() && o.tau > 0.0 && o.learning_rate.is_finite() && o.learning_rate > 0.0) {
        return Err(ConfigError::Invalid("tau and the learning rate must be positive numbers".into()));
    }
    if w.len() != d * p
        || pairs.features_0.len() != n * p
        || pairs.features_1.len() != n * p
        || pairs.label_0.len() != n
    {
        return Err(ConfigError::Invalid(format!("a {d} × {p} projection for {n} pairs of width {p}")));
    }
    let held_out = crate::preference::groups::held_out_pairs(pairs.users);
    let train: Vec<usize> = (0..n).filter(|&i| !held_out[i]).collect();
    let item = |side: usize, i: usize| {
        if side == 0 {
            &pairs.features_0[i * p..(i + 1) * p]
        } else {
            &pairs.features_1[i * p..(i + 1) * p]
        }
    };
    // v = u/‖u‖ with u = W·x, and ‖u‖.
    let embed = |w: &[f64], x: &[f64]| -> (Vec<f64>, f64) {
        let u: Vec<f64> = (0..d).map(|r| w[r * p..(r + 1) * p].iter().zip(x).map(|(a, b)| a * b).sum()).collect();
        let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        (u.iter().map(|v| v / norm).collect(), norm)
    };
    // s = ⟨R a, b⟩ and R·a.
    let rotate = |a: &[f64]| -> Vec<f64> { a.chunks_exact(2).flat_map(|c| [-c[1], c[0]]).collect() };
    let score = |a: &[f64], b: &[f64]| rotate(a).iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let loss_of = |s: f64, y: f64| {
        -(y * crate::numeric::log_sigmoid(s / o.tau) + (1.0 - y) * crate::numeric::log_sigmoid(-s / o.tau))
    };
    let mut loss = f64::NAN;
    for step in 0..=o.steps {
        let mut gradient = vec![0.0; d * p];
        let mut total = 0.0;
        for &i in &train {
            let (x0, x1) = (item(0, i), item(1, i));
            let ((v0, n0), (v1, n1)) = (embed(&w, x0), embed(&w, x1));
            let s = score(&v0, &v1);
            let y = pairs.label_0[i];
            total += loss_of(s, y);
            let ds = -(y - crate::numeric::sigmoid(s / o.tau)) / o.tau;
            // ∂s/∂v0 = −R·v1, ∂s/∂v1 = R·v0; through the normalisation (I − vvᵀ)/‖u‖.
            let g0: Vec<f64> = rotate(&v1).iter().map(|g| -g * ds).collect();
            let g1: Vec<f64> = rotate(&v0).iter().map(|g| g * ds).collect();
            for (v, g, norm, x) in [(&v0, &g0, n0, x0), (&v1, &g1, n1, x1)] {
                let along: f64 = v.iter().zip(g).map(|(a, b)| a * b).sum();
                for r in 0..d {
                    let du = (g[r] - v[r] * along) / norm;
                    for (k, xk) in x.iter().enumerate() {
                        gradient[r * p + k] += du * xk;
                    }
                }
            }
        }
        let count = train.len().max(1) as f64;
        loss = total / count;
        if step == o.steps {
            break;
        }
        for (a, g) in w.iter_mut().zip(&gradient) {
            *a -= o.learning_rate * g / count;
        }
    }
    let score_of = |i: usize| score(&embed(&w, item(0, i)).0, &embed(&w, item(1, i)).0);
    let accuracy = crate::preference::groups::held_out_accuracy(pairs.label_0, &held_out, &|_| true, &score_of);
    // The distinct items' preference embeddings, scored by `gpm_score`.
    let items = crate::preference::groups::distinct_items(pairs);
    let embedded: Vec<Vec<f32>> =
        items.iter().map(|&(i, side)| embed(&w, item(side, i)).0.iter().map(|&v| v as f32).collect()).collect();
    Ok(GpmFit {
        projection: w,
        loss,
        accuracy,
        items: items.len(),
        intransitive_triads: intransitive_triads(&embedded),
    })
}

/// Cyclic triads (`a ≻ b ≻ c ≻ a`) among preference embeddings under [`gpm_score`]: Kendall's
/// count `C(n,3) − Σ C(wᵢ,2)` over each item's wins when no two items tie, every triple
/// checked otherwise (a tie is no edge, so a triple with one is not a cycle). `None` past
/// [`MAX_TRIAD_ITEMS`] items, or past a thousand with a tie (every triple is then visited).
pub fn intransitive_triads(v: &[Vec<f32>]) -> Option<u64> {
    let n = v.len();
    if n > MAX_TRIAD_ITEMS {
        return None;
    }
    let mut beats = vec![vec![0i8; n]; n];
    let mut tie = false;
    for i in 0..n {
        for j in i + 1..n {
            let s = gpm_score(&v[i], &v[j]).unwrap_or(0.0);
            beats[i][j] = s.partial_cmp(&0.0).map_or(0, |o| o as i8);
            beats[j][i] = -beats[i][j];
            tie |= beats[i][j] == 0;
        }
    }
    let c2 = |m: u64| m * m.saturating_sub(1) / 2;
    if !tie {
        let wins: u64 = (0..n).map(|i| c2(beats[i].iter().filter(|&&b| b > 0).count() as u64)).sum();
        let n = n as u64;
        return Some(n * n.saturating_sub(1) * n.saturating_sub(2) / 6 - wins);
    }
    if n > 1000 {
        return None;
    }
    let mut count = 0;
    for a in 0..n {
        for b in a + 1..n {
            for c in b + 1..n {
                let (ab, bc, ca) = (beats[a][b], beats[b][c], beats[c][a]);
                if ab != 0 && ab == bc && bc == ca {
                    count += 1;
                }
            }
        }
    }
    Some(count)
}
