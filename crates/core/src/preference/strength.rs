//! Preference strength from an ensemble of reward models (Wang et al. 2024, "Secrets of RLHF
//! in Large Language Models Part II: Reward Modeling", arXiv 2401.06080, Eq. 4): for each pair
//! the differences d_m = r_m(chosen) − r_m(rejected) over M reward models, their mean μ̂ (the
//! strength) and standard deviation σ̂ (divisor M, the paper's). Pairs are banded by the
//! percentile of μ̂ among all pairs: the lowest `likely_wrong` (the label is probably flipped),
//! then `ambiguous`, `clear`, and the top `strongest`.

use std::collections::BTreeMap;

use crate::error::ConfigError;
use crate::io::read::EnsembleRow;
use crate::preference::calibration::{calibration, Calibration};

/// Percentiles of μ̂ that separate the four bands (the defaults: 20, 40, 90).
pub const DEFAULT_BANDS: [f64; 3] = [20.0, 40.0, 90.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Band {
    LikelyWrong,
    Ambiguous,
    Clear,
    Strongest,
}

impl Band {
    pub const ALL: [Band; 4] = [Band::LikelyWrong, Band::Ambiguous, Band::Clear, Band::Strongest];

    pub fn name(self) -> &'static str {
        match self {
            Band::LikelyWrong => "likely_wrong",
            Band::Ambiguous => "ambiguous",
            Band::Clear => "clear",
            Band::Strongest => "strongest",
        }
    }
}

/// μ̂ and σ̂ (divisor M) of `chosen[m] − rejected[m]`.
pub fn pair_strength(chosen: &[f64], rejected: &[f64]) -> (f64, f64) {
    let m = chosen.len().min(rejected.len()).max(1) as f64;
    let d: Vec<f64> = chosen.iter().zip(rejected).map(|(c, r)| c - r).collect();
    let mean = d.iter().sum::<f64>() / m;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m;
    (mean, var.sqrt())
}

/// numpy's default percentile (linear interpolation between the closest ranks) of sorted,
/// finite values; `q` in [0, 100].
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

/// Three percentiles, non-decreasing within [0, 100].
pub fn check_bands(edges: &[f64]) -> Result<[f64; 3], ConfigError> {
    match edges {
        &[a, b, c] if (0.0..=100.0).contains(&a) && a <= b && b <= c && c <= 100.0 => Ok([a, b, c]),
        _ => Err(ConfigError::Invalid(format!(
            "bands must be three percentiles a ≤ b ≤ c in [0, 100] (likely_wrong up to a, ambiguous up to b, \
             strongest above c), got {edges:?}"
        ))),
    }
}

/// Each pair's band: μ̂ at or below the `edges[0]` percentile of all μ̂ is `likely_wrong`,
/// at or below `edges[1]` `ambiguous`, above `edges[2]` `strongest`, otherwise `clear`.
pub fn bands(means: &[f64], edges: [f64; 3]) -> Vec<Band> {
    let mut sorted = means.to_vec();
    sorted.sort_by(f64::total_cmp);
    let [a, b, c] = edges.map(|q| percentile(&sorted, q));
    means
        .iter()
        .map(|&m| {
            if m <= a {
                Band::LikelyWrong
            } else if m <= b {
                Band::Ambiguous
            } else if m > c {
                Band::Strongest
            } else {
                Band::Clear
            }
        })
        .collect()
}

/// What `prefscope strength` reports of ensemble rows: each pair's μ̂, σ̂ and band, and the
/// summary — pairs, pairs per band, and the calibration of σ(μ̂) as the probability that the
/// chosen answer wins (against `preference_share` when every row has one).
#[derive(Debug, Clone, PartialEq)]
pub struct StrengthReport {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub band: Vec<Band>,
    pub calibration: Calibration,
}

impl StrengthReport {
    pub fn new(rows: &[EnsembleRow], edges: [f64; 3], bins: usize) -> Result<Self, ConfigError> {
        let (mean, std): (Vec<f64>, Vec<f64>) = rows.iter().map(|r| pair_strength(&r.chosen, &r.rejected)).unzip();
        let band = bands(&mean, edges);
        let p: Vec<f64> = mean.iter().map(|&m| crate::numeric::sigmoid(m)).collect();
        let share: Option<Vec<f64>> = rows.iter().map(|r| r.preference_share).collect();
        let calibration = calibration(&p, share.as_deref(), bins)?;
        Ok(Self { mean, std, band, calibration })
    }

    /// `pairs`, one count per band, `calibration/ece` and `calibration/brier`.
    pub fn summary(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::from([("pairs".to_string(), self.mean.len() as f64)]);
        for b in Band::ALL {
            m.insert(b.name().into(), self.band.iter().filter(|x| **x == b).count() as f64);
        }
        self.calibration.insert_metrics(&mut m);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_is_the_mean_difference_and_its_population_deviation() {
        let (mean, std) = pair_strength(&[1.0, 2.0, 6.0], &[0.0, 0.0, 0.0]);
        assert_eq!(mean, 3.0);
        assert!((std - (14.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn percentiles_interpolate_as_numpy_does() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
        let s = [1.0, 2.0, 3.0, 4.0];
        for (q, want) in [(0.0, 1.0), (25.0, 1.75), (50.0, 2.5), (90.0, 3.7), (100.0, 4.0)] {
            assert!((percentile(&s, q) - want).abs() < 1e-12, "{q}");
        }
    }

    #[test]
    fn a_hundred_distinct_strengths_fill_the_bands_in_proportion() {
        let means: Vec<f64> = (0..100).rev().map(f64::from).collect();
        let b = bands(&means, DEFAULT_BANDS);
        let count = |band| b.iter().filter(|x| **x == band).count();
        assert_eq!(Band::ALL.map(count), [20, 20, 50, 10]);
        assert_eq!(b[99], Band::LikelyWrong, "the smallest strength");
        assert!(check_bands(&[40.0, 20.0, 90.0]).is_err() && check_bands(&[20.0, 40.0]).is_err());
    }
}
