//! Calibration of the win probability a preference model implies (for DPO, σ(margin) via
//! [`crate::numeric::sigmoid`]): the expected calibration error over equal-width bins, the
//! Brier score, and the bins of the reliability diagram.
//!
//! Every pair is counted in both orders, (p, y) and (1 − p, 1 − y), where y is 1 (the label)
//! or the pair's soft target (`preference_share`, 0.5 for a tie). With one order only every
//! hard target is 1 and the ECE would collapse to the mean of 1 − p; both orders make the
//! diagram symmetric about ½, as reward-model calibration is measured over all ordered pairs
//! (MORE, "On Diversified Preferences of Large Language Model Alignment", arXiv 2312.07401).
//!
//! Binning is scikit-learn's `calibration_curve(strategy="uniform")` to the last bit: edges
//! `np.linspace(0, 1, N + 1)` (k · (1/N), which is not always the decimal k/N: 3 · 0.1 =
//! 0.30000000000000004) and `np.searchsorted(edges[1:-1], p)`, so a point exactly on an inner
//! edge falls in the lower bin: [e₀, e₁], (e₁, e₂], …, (e_{N−1}, 1].

use std::collections::BTreeMap;

use crate::error::ConfigError;

/// Ten bins, scikit-learn's and most papers' default.
pub const DEFAULT_BINS: usize = 10;

/// More bins than this are almost all empty on any real evaluation set; the cap also keeps a
/// typo from allocating gigabytes.
pub const MAX_BINS: usize = 10_000;

/// One bin of the reliability diagram. `confidence` and `accuracy` are NaN (null in JSON) when
/// the bin is empty, so every bin can be drawn at its place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    /// Points in the bin, counting both orders of each pair.
    pub count: usize,
    /// Mean predicted probability.
    pub confidence: f64,
    /// Mean target: the share of points whose answer won (soft targets averaged).
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Σ_b (n_b / n) · |accuracy_b − confidence_b| over the 2 · pairs points; NaN for no pairs.
    pub ece: f64,
    /// Mean (p − y)² over pairs (the same in either order); NaN for no pairs.
    pub brier: f64,
    /// Every bin, empty ones included.
    pub bins: Vec<Bin>,
    /// Per bin: points, Σ p, Σ target (flattened): what the shards of a set add up.
    pub sums: Vec<f64>,
}

/// Edge `k` of `np.linspace(0, 1, bins + 1)`: numpy multiplies k by the step 1/bins and sets the
/// last edge to exactly 1 (checked against numpy for every allowed `bins` by
/// tests/fixtures/calibration.py).
fn edge(k: usize, bins: usize) -> f64 {
    if k == bins {
        1.0
    } else {
        k as f64 * (1.0 / bins as f64)
    }
}

/// The bin of `x` ∈ [0, 1]: the number of inner edges strictly below it (`searchsorted`,
/// side "left"). The first guess, ⌊x · bins⌋, is at most one bin off; the edges settle it.
fn bin_of(x: f64, bins: usize) -> usize {
    let mut b = ((x * bins as f64) as usize).min(bins - 1);
    while b > 0 && x <= edge(b, bins) {
        b -= 1;
    }
    while b + 1 < bins && x > edge(b + 1, bins) {
        b += 1;
    }
    b
}

/// Calibration of `p[i]`, the probability that pair i's chosen answer wins, against `target`
/// (soft targets in [0, 1]; `None` = every chosen answer won) over `bins` equal-width bins.
/// One pass over the pairs; memory is proportional to `bins` only.
pub fn calibration(p: &[f64], target: Option<&[f64]>, bins: usize) -> Result<Calibration, ConfigError> {
    if bins == 0 || bins > MAX_BINS {
        return Err(ConfigError::Invalid(format!("`--bins` must be between 1 and {MAX_BINS}, got {bins}")));
    }
    if let Some(t) = target {
        if t.len() != p.len() {
            return Err(ConfigError::Invalid(format!(
                "{} win probabilities but {} `preference_share` targets",
                p.len(),
                t.len()
            )));
        }
    }
    // Per bin: count, Σ p, Σ y.
    let mut sums = vec![(0usize, 0.0f64, 0.0f64); bins];
    let mut squared_error = 0.0;
    for (i, &pi) in p.iter().enumerate() {
        if !(0.0..=1.0).contains(&pi) {
            return Err(ConfigError::Invalid(format!(
                "row {}: the win probability `p` is {pi}, outside [0, 1]",
                i + 1
            )));
        }
        let y = match target {
            Some(t) if !(0.0..=1.0).contains(&t[i]) => {
                return Err(ConfigError::Invalid(format!(
                    "row {}: `preference_share` is {}, outside [0, 1]",
                    i + 1,
                    t[i]
                )));
            }
            Some(t) => t[i],
            None => 1.0,
        };
        squared_error += (pi - y) * (pi - y);
        for (x, y) in [(pi, y), (1.0 - pi, 1.0 - y)] {
            let s = &mut sums[bin_of(x, bins)];
            s.0 += 1;
            s.1 += x;
            s.2 += y;
        }
    }
    let brier = squared_error / p.len() as f64;
    Ok(from_bin_sums(&sums, brier))
}

/// The calibration whose bins hold `sums` (points, Σ p, Σ target per bin).
fn from_bin_sums(sums: &[(usize, f64, f64)], brier: f64) -> Calibration {
    let n = sums.len();
    let bins: Vec<Bin> = sums
        .iter()
        .enumerate()
        .map(|(k, &(count, sum_p, sum_y))| Bin {
            lo: edge(k, n),
            hi: edge(k + 1, n),
            count,
            confidence: sum_p / count as f64,
            accuracy: sum_y / count as f64,
        })
        .collect();
    let points: usize = sums.iter().map(|s| s.0).sum();
    let ece = (sums.iter().filter(|s| s.0 > 0)).map(|s| (s.2 - s.1).abs()).sum::<f64>() / points as f64;
    let ece = if points == 0 { f64::NAN } else { ece };
    Calibration { ece, brier, bins, sums: sums.iter().flat_map(|&(c, p, y)| [c as f64, p, y]).collect() }
}

impl Calibration {
    /// The calibration of a set from its shards' [`Calibration::sums`] added up and its Brier
    /// score (a mean over pairs, combined as one).
    pub fn from_sums(sums: &[f64], brier: f64) -> Result<Self, ConfigError> {
        if sums.is_empty() || !sums.len().is_multiple_of(3) || sums.len() / 3 > MAX_BINS {
            return Err(ConfigError::Invalid(format!(
                "calibration sums hold {} numbers, not three per bin for 1 to {MAX_BINS} bins",
                sums.len()
            )));
        }
        let bins: Vec<(usize, f64, f64)> = sums.chunks_exact(3).map(|s| (s[0] as usize, s[1], s[2])).collect();
        Ok(from_bin_sums(&bins, brier))
    }

    /// `calibration/ece` and `calibration/brier`, beside the objective's own metrics.
    pub fn insert_metrics(&self, m: &mut BTreeMap<String, f64>) {
        m.insert("calibration/ece".into(), self.ece);
        m.insert("calibration/brier".into(), self.brier);
    }

    /// `{"bins": [{"lo", "hi", "count", "confidence", "accuracy"}, …]}`, an empty bin's
    /// confidence and accuracy null: what a reliability diagram is drawn from.
    pub fn json(&self) -> serde_json::Value {
        let number = |x: f64| serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into);
        let bins = self.bins.iter().map(|b| {
            serde_json::json!({
                "lo": number(b.lo),
                "hi": number(b.hi),
                "count": b.count,
                "confidence": number(b.confidence),
                "accuracy": number(b.accuracy),
            })
        });
        serde_json::json!({ "bins": bins.collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_values_fall_in_the_lower_bin() {
        assert_eq!(bin_of(0.0, 10), 0);
        assert_eq!(bin_of(0.1, 10), 0);
        assert_eq!(bin_of(0.3, 10), 2);
        assert_eq!(bin_of(0.30000000000000004, 10), 2);
        assert_eq!(bin_of(f64::from_bits(0.30000000000000004f64.to_bits() + 1), 10), 3);
        assert_eq!(bin_of(0.5, 10), 4);
        assert_eq!(bin_of(1.0, 10), 9);
        assert_eq!(bin_of(1.0, 1), 0);
    }

    #[test]
    fn no_pairs_give_nan_and_empty_bins() {
        let c = calibration(&[], None, 4).unwrap();
        assert!(c.ece.is_nan() && c.brier.is_nan());
        assert_eq!(c.bins.len(), 4);
        assert!(c.bins.iter().all(|b| b.count == 0 && b.confidence.is_nan() && b.accuracy.is_nan()));
        assert_eq!(c.json()["bins"][0]["confidence"], serde_json::Value::Null);
        assert_eq!(c.json()["bins"][3]["hi"], 1.0);
    }

    #[test]
    fn a_perfectly_calibrated_tie_has_no_error() {
        let c = calibration(&[0.5, 0.5], Some(&[0.5, 0.5]), DEFAULT_BINS).unwrap();
        assert_eq!((c.ece, c.brier), (0.0, 0.0));
        assert_eq!(c.bins[4].count, 4);
        let mut m = BTreeMap::new();
        c.insert_metrics(&mut m);
        assert_eq!(m["calibration/ece"], 0.0);
    }
}
