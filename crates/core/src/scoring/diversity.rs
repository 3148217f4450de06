//! How much of an image set's diversity its prompts explain: the Schur-complement split of
//! "Dissecting CLIP" (Ospanov et al., arXiv 2412.18645), as the authors' code computes it
//! (aziksh-ospanov/CLIP-DISSECTION, `SCE/metric/algorithm_utils.py`; golden values in
//! `tests/fixtures/diversity.json`).
//!
//! With text features `x` and image features `y` of the same rows, and their (uncentred)
//! covariances `C_xx`, `C_xy`, `C_yy`, the image covariance splits into the part the prompts
//! explain, `E = C_xyᵀ pinv(C_xx + εI) C_xy`, and the Schur complement `S = C_yy − E`, the
//! part they do not. Each is summarised by `exp(−Σ λ ln(λ/Σλ))` over its eigenvalues: the
//! Schur complement entropy score (SCE) of `S`, and the same score of `E` (the text part).
//!
//! The reference's conventions are kept: embeddings are used as given (no normalisation, no
//! centring); the Gaussian kernel's features are `[cos(xΩ) | sin(xΩ)]/√D` with `Ω = W/σ`;
//! the cosine kernel compares embedding *dimensions* across the set (`d × d` matrices, divided
//! by `d`); the pseudo-inverse drops singular values at or below `size·ε_machine·s_max`; the
//! eigenvalues are clamped at 1e-10 before the score. When the texts span as many directions
//! as there are rows (more features than rows, distinct prompts), `S` is zero up to rounding
//! and the split says nothing: the set needs more rows than features.

use faer::{Mat, Side};

use crate::error::ConfigError;
use crate::numeric::standard_normals;

/// The diagonal the reference adds to `C_xx` before its pseudo-inverse.
const RIDGE: f64 = 1e-12;
/// Eigenvalues below this count as this in the score (the reference's clamp).
const CLAMP: f64 = 1e-10;
/// Random features at most (`D`; the matrices are `2D × 2D`, about 200 MB each at the limit):
/// the reference's own setting.
pub const MAX_RFF_DIM: usize = 2500;
/// Embedding width at most for the cosine kernel (`d × d` matrices).
pub const MAX_DIM: usize = 4096;

/// Paired embeddings, row-major: row `i` of `image` was generated from the prompt whose
/// embedding is row `i` of `text`.
#[derive(Debug, Clone, Copy)]
pub struct Paired<'a> {
    pub rows: usize,
    pub dim: usize,
    pub text: &'a [f64],
    pub image: &'a [f64],
}

impl Paired<'_> {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.rows < 2 {
            return invalid(format!("the diversity split needs at least 2 rows, got {}", self.rows));
        }
        if self.dim == 0 || self.dim > MAX_DIM {
            return invalid(format!("embedding width must be between 1 and {MAX_DIM}, got {}", self.dim));
        }
        for (name, values) in [("text_embedding", self.text), ("image_embedding", self.image)] {
            if values.len() != self.rows * self.dim {
                return invalid(format!(
                    "{name}: {} values for {} rows of width {}",
                    values.len(),
                    self.rows,
                    self.dim
                ));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return invalid(format!("row {}: `{name}` has a non-finite value", i / self.dim + 1));
            }
        }
        Ok(())
    }
}

/// The kernel whose covariances are split.
#[derive(Debug, Clone, PartialEq)]
pub enum Kernel {
    /// Cosine similarities between embedding dimensions across the set, divided by `d`.
    Cosine,
    /// The Gaussian kernel `exp(−‖a − b‖²/2σ²)` through `features` random Fourier features:
    /// `standard` holds the `d × D` standard-normal draws (row-major), divided by `sigma`.
    Gaussian { sigma: f64, features: usize, standard: Vec<f64> },
}

impl Kernel {
    /// The Gaussian kernel with its frequencies drawn from `seed` ([`standard_normals`]: the
    /// same draw on every platform, so a `--seed` reproduces a number anywhere).
    pub fn gaussian(sigma: f64, dim: usize, features: usize, seed: u64) -> Result<Self, ConfigError> {
        let count = dim.checked_mul(features).filter(|_| features <= MAX_RFF_DIM && dim <= MAX_DIM);
        let count = count.ok_or_else(|| {
            ConfigError::Invalid(format!(
                "rff_dim must be at most {MAX_RFF_DIM} and the width at most {MAX_DIM}, got {features} and {dim}"
            ))
        })?;
        Self::with_draws(sigma, features, standard_normals(count, seed))
    }

    /// The Gaussian kernel with given standard-normal draws (`d × features`, row-major).
    pub fn with_draws(sigma: f64, features: usize, standard: Vec<f64>) -> Result<Self, ConfigError> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(ConfigError::Invalid(format!("sigma must be a positive number, got {sigma}")));
        }
        if features == 0 || features > MAX_RFF_DIM {
            return Err(ConfigError::Invalid(format!("rff_dim must be between 1 and {MAX_RFF_DIM}, got {features}")));
        }
        Ok(Kernel::Gaussian { sigma, features, standard })
    }
}

/// The split of one set.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// SCE: the score of `S`, the diversity the prompts do not explain.
    pub sce: f64,
    /// The same score of `E`, the diversity the prompts explain.
    pub text_part: f64,
    /// Eigenvalues of `S` and of `E` (ascending, except that with fewer rows than features the
    /// `F − n` exact zeros come first); their sums split the trace of `C_yy`.
    pub unexplained: Vec<f64>,
    pub explained: Vec<f64>,
}

/// Splits the image diversity of `p` under `kernel`.
pub fn split(p: &Paired<'_>, kernel: &Kernel) -> Result<Split, ConfigError> {
    p.check()?;
    let (x, y) = (matrix(p.rows, p.dim, p.text), matrix(p.rows, p.dim, p.image));
    // Feature maps scaled so that C_xx = AᵀA, C_xy = AᵀB, C_yy = BᵀB.
    let (a, b) = match kernel {
        Kernel::Cosine => {
            let scale = 1.0 / (p.dim as f64).sqrt();
            (unit_columns(&x) * scale, unit_columns(&y) * scale)
        }
        Kernel::Gaussian { sigma, features, standard } => {
            if standard.len() != p.dim * features {
                return Err(ConfigError::Invalid(format!(
                    "{} frequency draws for embeddings of width {} and rff_dim {features}",
                    standard.len(),
                    p.dim
                )));
            }
            let omega = Mat::from_fn(p.dim, *features, |i, j| standard[i * features + j] * (1.0 / sigma));
            let scale = 1.0 / (p.rows as f64).sqrt();
            (fourier_features(&x, &omega) * scale, fourier_features(&y, &omega) * scale)
        }
    };
    let (unexplained, explained) = if p.rows >= a.ncols() { feature_space(&a, &b)? } else { sample_space(&a, &b)? };
    Ok(Split { sce: score(&unexplained), text_part: score(&explained), unexplained, explained })
}

/// The split as the reference computes it, with `F × F` matrices (`F` features).
fn feature_space(a: &Mat<f64>, b: &Mat<f64>) -> Result<(Vec<f64>, Vec<f64>), ConfigError> {
    let cxy = a.transpose() * b;
    let explained = cxy.transpose() * ridge_pinv(a.transpose() * a)? * &cxy;
    let unexplained = b.transpose() * b - &explained;
    Ok((eigenvalues(&unexplained)?, eigenvalues(&explained)?))
}

/// The same eigenvalues from `n × n` matrices when there are fewer rows `n` than features
/// (a prompt group of a few images under a 768-wide model): `E = Bᵀ H B` with
/// `H = AAᵀ(AAᵀ + εI)⁻¹` (the push-through identity for `A(AᵀA + εI)⁻¹Aᵀ`; the reference's
/// pseudo-inverse keeps every eigenvalue of `C_xx + εI` here, whose trace is 1), and
/// `S = Bᵀ(I − H)B`. Their nonzero eigenvalues are those of `H½ BBᵀ H½` and
/// `(I − H)½ BBᵀ (I − H)½`; the other `F − n` are zeros (clamped by the score, as the
/// reference's rounding-level ones are).
fn sample_space(a: &Mat<f64>, b: &Mat<f64>) -> Result<(Vec<f64>, Vec<f64>), ConfigError> {
    let (n, features) = (a.nrows(), a.ncols());
    let evd = (a * a.transpose()).self_adjoint_eigen(Side::Lower).map_err(|e| eigen_error(&e))?;
    let (values, q) = (evd.S().column_vector(), evd.U());
    // Eigenvalues at the rounding level of AAᵀ are zeros of the exact matrix (divided by the
    // ridge they would turn noise into weight); the rest are weighted as the ridge weights them.
    // Rounding in AAᵀ grows with the length of its inner products (F) and its size (n).
    let largest = (0..n).map(|i| values[i]).fold(0.0, f64::max);
    let noise = n.max(features) as f64 * f64::EPSILON * largest;
    let h: Vec<f64> =
        (0..n).map(|i| if values[i] > noise { (values[i] / (values[i] + RIDGE)).min(1.0) } else { 0.0 }).collect();
    let k = q.transpose() * (b * b.transpose()) * q;
    let part = |w: &dyn Fn(usize) -> f64| -> Result<Vec<f64>, ConfigError> {
        let m = Mat::from_fn(n, n, |i, j| w(i).sqrt() * k[(i, j)] * w(j).sqrt());
        let mut values = eigenvalues(&m)?;
        values.splice(0..0, std::iter::repeat_n(0.0, features - n));
        Ok(values)
    };
    Ok((part(&|i| 1.0 - h[i])?, part(&|i| h[i])?))
}

/// One set's split: its rows (`images`), its distinct prompt embeddings (`prompts`), and the
/// split itself (`None` for a set of one row, which has no diversity to split).
#[derive(Debug, Clone, PartialEq)]
pub struct SetSplit {
    pub group: Option<String>,
    pub images: usize,
    pub prompts: usize,
    pub split: Option<Split>,
}

/// The split of the whole set and of each group (in order of first appearance; rows without a
/// group belong to the whole set only). `groups` has one entry per row, or is empty.
pub fn split_by_group(
    p: &Paired<'_>,
    groups: &[Option<String>],
    kernel: &Kernel,
) -> Result<(SetSplit, Vec<SetSplit>), ConfigError> {
    p.check()?;
    if !groups.is_empty() && groups.len() != p.rows {
        return Err(ConfigError::Invalid(format!("{} groups for {} rows", groups.len(), p.rows)));
    }
    let set = |group: Option<String>, rows: &[usize]| -> Result<SetSplit, ConfigError> {
        let take = |values: &[f64]| -> Vec<f64> {
            rows.iter().flat_map(|&i| values[i * p.dim..(i + 1) * p.dim].iter().copied()).collect()
        };
        let (text, image) = (take(p.text), take(p.image));
        let mut distinct: Vec<&[f64]> = text.chunks(p.dim).collect();
        distinct.sort_by(|a, b| a.iter().map(|v| v.to_bits()).cmp(b.iter().map(|v| v.to_bits())));
        distinct.dedup();
        let prompts = distinct.len();
        let sub = Paired { rows: rows.len(), dim: p.dim, text: &text, image: &image };
        let split = if rows.len() >= 2 { Some(split(&sub, kernel)?) } else { None };
        Ok(SetSplit { group, images: rows.len(), prompts, split })
    };
    let all: Vec<usize> = (0..p.rows).collect();
    let overall = set(None, &all)?;
    let mut order: Vec<(&String, Vec<usize>)> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let Some(g) = g else { continue };
        match order.iter_mut().find(|(name, _)| *name == g) {
            Some((_, rows)) => rows.push(i),
            None => order.push((g, vec![i])),
        }
    }
    let per_group = order.into_iter().map(|(g, rows)| set(Some(g.clone()), &rows)).collect::<Result<_, _>>()?;
    Ok((overall, per_group))
}

/// The prompt-independent image embeddings of "Dissecting CLIP" (cosine kernel, as the
/// reference's default): `ê = e_image − e_text·Γ*` with `Γ* = pinv(C_xx + εI)·C_xy` from the
/// `reference` set. `text` and `image` hold the rows to correct, row-major, of the same width.
pub fn corrected_embeddings(reference: &Paired<'_>, text: &[f64], image: &[f64]) -> Result<Vec<f64>, ConfigError> {
    reference.check()?;
    let d = reference.dim;
    if text.len() != image.len() || !text.len().is_multiple_of(d) {
        return Err(ConfigError::Invalid(format!(
            "{} text and {} image values to correct, for embeddings of width {d}",
            text.len(),
            image.len()
        )));
    }
    let (x, y) = (matrix(reference.rows, d, reference.text), matrix(reference.rows, d, reference.image));
    let (xn, yn) = (unit_columns(&x), unit_columns(&y));
    let gamma = ridge_pinv(xn.transpose() * &xn / d as f64)? * (xn.transpose() * &yn / d as f64);
    let rows = text.len() / d;
    let corrected = matrix(rows, d, image) - matrix(rows, d, text) * gamma;
    Ok((0..rows).flat_map(|i| (0..d).map(move |j| (i, j))).map(|(i, j)| corrected[(i, j)]).collect())
}

/// `exp(−Σ λ ln(λ/Σλ))` over eigenvalues clamped at 1e-10: the reference's score. Only the
/// logarithm's argument is normalised, so it is `exp(t·H(λ/t))` for the trace `t`.
pub fn score(eigenvalues: &[f64]) -> f64 {
    let clamped: Vec<f64> = eigenvalues.iter().map(|&l| l.max(CLAMP)).collect();
    let total: f64 = clamped.iter().sum();
    (-clamped.iter().map(|&l| l * (l / total).ln()).sum::<f64>()).exp()
}

fn matrix(rows: usize, cols: usize, values: &[f64]) -> Mat<f64> {
    Mat::from_fn(rows, cols, |i, j| values[i * cols + j])
}

/// Columns divided by their norms (at least 1e-8, as torch's cosine similarity clamps them).
fn unit_columns(a: &Mat<f64>) -> Mat<f64> {
    let norms: Vec<f64> =
        (0..a.ncols()).map(|j| (0..a.nrows()).map(|i| a[(i, j)] * a[(i, j)]).sum::<f64>().sqrt().max(1e-8)).collect();
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] / norms[j])
}

/// `[cos(aΩ) | sin(aΩ)] / √D`.
fn fourier_features(a: &Mat<f64>, omega: &Mat<f64>) -> Mat<f64> {
    let product = a * omega;
    let features = omega.ncols();
    let scale = 1.0 / (features as f64).sqrt();
    Mat::from_fn(a.nrows(), 2 * features, |i, j| {
        let t = product[(i, j % features)];
        scale * if j < features { t.cos() } else { t.sin() }
    })
}

/// `pinv(a + εI)` for a symmetric positive semi-definite `a`, as the reference's
/// `torch.linalg.pinv(C_xx + 1e-12·I)` in exact arithmetic: eigenvalues of `a` at its rounding
/// level (at most `size·ε_machine·λ_max`) are zeros of the exact matrix and get no weight, the
/// others `1/(λ + ε)`. (The reference, in floating point, keeps the rounding-level ones and
/// divides them by the ridge, which turns rounding into weight when the prompts span fewer
/// directions than there are features: a group that shares one prompt moved by 1e-4.)
fn ridge_pinv(a: Mat<f64>) -> Result<Mat<f64>, ConfigError> {
    let n = a.nrows();
    let evd = a.self_adjoint_eigen(Side::Lower).map_err(|e| eigen_error(&e))?;
    let (values, vectors) = (evd.S().column_vector(), evd.U());
    let largest = (0..n).map(|i| values[i].abs()).fold(0.0, f64::max);
    let noise = n as f64 * f64::EPSILON * largest;
    let inverse: Vec<f64> = (0..n).map(|i| if values[i] > noise { 1.0 / (values[i] + RIDGE) } else { 0.0 }).collect();
    let scaled = Mat::from_fn(n, n, |i, k| vectors[(i, k)] * inverse[k]);
    Ok(scaled * vectors.transpose())
}

/// Eigenvalues of a symmetric matrix from its lower triangle (as `torch.linalg.eigh`), ascending.
fn eigenvalues(a: &Mat<f64>) -> Result<Vec<f64>, ConfigError> {
    a.self_adjoint_eigenvalues(Side::Lower).map_err(|e| eigen_error(&e))
}

fn eigen_error(e: &dyn std::fmt::Debug) -> ConfigError {
    ConfigError::Invalid(format!("the eigendecomposition did not converge ({e:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_of_equal_eigenvalues_is_their_count_to_the_power_of_the_trace() {
        // t·H(uniform over k) = t·ln k.
        let k = 8;
        let s = score(&vec![0.5 / k as f64; k]);
        assert!((s - (k as f64).powf(0.5)).abs() < 1e-12, "{s}");
        assert!((score(&[1.0]) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn a_seeded_draw_is_standard_normal_and_repeatable() {
        let Kernel::Gaussian { standard, .. } = Kernel::gaussian(1.0, 50, 400, 7).unwrap() else { unreachable!() };
        let again = Kernel::gaussian(1.0, 50, 400, 7).unwrap();
        assert_eq!(again, Kernel::Gaussian { sigma: 1.0, features: 400, standard: standard.clone() });
        let n = standard.len() as f64;
        let mean = standard.iter().sum::<f64>() / n;
        let var = standard.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {mean} var {var}");
    }

    #[test]
    fn groups_are_split_on_their_own_rows() {
        // Six rows in two groups, interleaved; each group's split is that of its rows alone.
        let text: Vec<f64> = (0..18).map(|i| ((i * 7) % 5) as f64 - 2.0 + (i % 3) as f64 * 0.1).collect();
        let image: Vec<f64> = (0..18).map(|i| ((i * 3) % 7) as f64 * 0.5 - 1.0).collect();
        let p = Paired { rows: 6, dim: 3, text: &text, image: &image };
        let groups: Vec<Option<String>> = ["a", "b", "a", "b", "a", "b"].iter().map(|g| Some(g.to_string())).collect();
        let (all, per) = split_by_group(&p, &groups, &Kernel::Cosine).unwrap();
        assert_eq!((all.images, per.len()), (6, 2));
        assert_eq!(all.split, Some(split(&p, &Kernel::Cosine).unwrap()));
        let rows_a: Vec<f64> = [0, 2, 4].iter().flat_map(|&i| text[i * 3..i * 3 + 3].to_vec()).collect();
        let img_a: Vec<f64> = [0, 2, 4].iter().flat_map(|&i| image[i * 3..i * 3 + 3].to_vec()).collect();
        let a = Paired { rows: 3, dim: 3, text: &rows_a, image: &img_a };
        assert_eq!(per[0].group.as_deref(), Some("a"));
        assert_eq!(per[0].split, Some(split(&a, &Kernel::Cosine).unwrap()));
        // One prompt repeated counts once; a group of one row has no split.
        let same = vec![1.0, 2.0, 1.0, 2.0];
        let q = Paired { rows: 2, dim: 2, text: &same, image: &[0.0, 1.0, 1.0, 0.0] };
        let (all, per) = split_by_group(&q, &[Some("x".into()), Some("y".into())], &Kernel::Cosine).unwrap();
        assert_eq!((all.prompts, per[0].images, per[0].split.is_none()), (1, 1, true));
    }

    #[test]
    fn fewer_rows_than_features_give_the_feature_space_numbers() {
        // 24 rows, 4 distinct prompts (the texts span 4 directions, not 24): well defined with
        // either kernel, computed in sample space (n < F) and in feature space.
        let (n, d) = (24, 30);
        let text: Vec<f64> = (0..n * d).map(|k| (((k % d) * 7 + (k / d % 4) * 13) % 11) as f64 - 5.0).collect();
        let image: Vec<f64> = (0..n * d).map(|k| ((k * 37 % 101) as f64 * 0.07).sin() + text[k] * 0.3).collect();
        let p = Paired { rows: n, dim: d, text: &text, image: &image };
        for kernel in [Kernel::Cosine, Kernel::gaussian(4.0, d, 20, 3).unwrap()] {
            let s = split(&p, &kernel).unwrap();
            // Feature space by hand.
            let (x, y) = (matrix(n, d, &text), matrix(n, d, &image));
            let (a, b) = match &kernel {
                Kernel::Cosine => {
                    let scale = 1.0 / (d as f64).sqrt();
                    (unit_columns(&x) * scale, unit_columns(&y) * scale)
                }
                Kernel::Gaussian { sigma, features, standard } => {
                    let omega = Mat::from_fn(d, *features, |i, j| standard[i * features + j] / sigma);
                    let scale = 1.0 / (n as f64).sqrt();
                    (fourier_features(&x, &omega) * scale, fourier_features(&y, &omega) * scale)
                }
            };
            assert!(n < a.ncols());
            let (unexplained, explained) = feature_space(&a, &b).unwrap();
            for (ours, full) in [(s.sce, score(&unexplained)), (s.text_part, score(&explained))] {
                assert!((ours - full).abs() <= 1e-9 * full, "{kernel:?}: {ours} vs {full}");
            }
            assert_eq!(s.unexplained.len(), a.ncols());
        }
    }

    #[test]
    fn bad_input_is_named() {
        let v = [0.0, 1.0, f64::NAN, 1.0];
        let p = Paired { rows: 2, dim: 2, text: &v, image: &v };
        let e = split(&p, &Kernel::Cosine).unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("text_embedding"), "{e}");
        let one = Paired { rows: 1, dim: 2, text: &v[..2], image: &v[..2] };
        assert!(split(&one, &Kernel::Cosine).unwrap_err().to_string().contains("at least 2 rows"));
        assert!(Kernel::gaussian(0.0, 2, 4, 1).is_err());
        assert!(Kernel::gaussian(1.0, 2, MAX_RFF_DIM + 1, 1).is_err());
        assert!(Kernel::gaussian(1.0, usize::MAX, 2, 1).is_err());
    }
}
