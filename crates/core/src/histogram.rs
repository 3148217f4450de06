//! Fixed-width histograms with numpy's conventions (half-open bins, the last one closed).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// `bins + 1` edges, evenly spaced from the low to the high end.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// Counts `values` into `bins` equal bins over `range` (default: the values' min and max; a
/// zero-width range is widened by ±0.5 as numpy does). Values outside the range are skipped,
/// like `numpy.histogram`; non-finite values are never counted.
pub fn histogram(values: &[f64], bins: usize, range: Option<(f64, f64)>) -> Histogram {
    let bins = bins.max(1);
    let (mut lo, mut hi) = range.unwrap_or_else(|| {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        if lo > hi {
            (0.0, 1.0)
        } else {
            (lo, hi)
        }
    });
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let edges: Vec<f64> = (0..=bins).map(|i| lo + (hi - lo) * i as f64 / bins as f64).collect();
    let mut counts = vec![0u64; bins];
    let norm = bins as f64 / (hi - lo);
    for &v in values {
        if !(v >= lo && v <= hi) {
            continue;
        }
        let mut k = (((v - lo) * norm) as usize).min(bins - 1);
        // Floating rounding can put a value one bin off its edges; numpy corrects the same way.
        if v < edges[k] {
            k -= 1;
        } else if k + 1 < bins && v >= edges[k + 1] {
            k += 1;
        }
        counts[k] += 1;
    }
    Histogram { edges, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_bin_is_closed_and_outliers_skipped() {
        let h = histogram(&[0.0, 0.5, 1.0, 1.0, 2.0, f64::NAN], 2, Some((0.0, 1.0)));
        assert_eq!(h.counts, vec![1, 3]);
        assert_eq!(h.edges, vec![0.0, 0.5, 1.0]);
        let flat = histogram(&[3.0, 3.0], 4, None);
        assert_eq!(flat.edges.first(), Some(&2.5));
        assert_eq!(flat.counts.iter().sum::<u64>(), 2);
    }
}
