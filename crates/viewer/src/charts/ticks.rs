//! Axis ticks chosen for their data: round steps (1, 2, 2.5 or 5 times a power of ten), whole
//! numbers for counts, as many decimals as the step needs, thousands and millions shortened,
//! and a true minus sign.

/// Ticks of one axis: the values (inside `domain`) and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    /// The axis' extent: the data's range widened to whole steps.
    pub domain: (f64, f64),
    pub values: Vec<f64>,
    pub labels: Vec<String>,
}

/// The round step nearest above `raw`, and its decimals when printed.
fn round_step(raw: f64) -> (f64, usize) {
    let power = raw.log10().floor();
    let base = 10f64.powf(power);
    // 2.5 × 10^p needs one decimal more than 10^p.
    for (m, extra) in [(1.0, 0.0), (2.0, 0.0), (2.5, 1.0), (5.0, 0.0), (10.0, -1.0)] {
        if m * base >= raw * (1.0 - 1e-9) {
            return (m * base, (extra - power).max(0.0) as usize);
        }
    }
    (10.0 * base, 0)
}

/// At most `max` ticks over `lo..hi` (counts: whole-number steps only).
pub fn ticks(lo: f64, hi: f64, max: usize, counts: bool) -> Ticks {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
    // A range across zero always keeps zero and a tick on each side.
    let max = max.max(if lo < 0.0 && hi > 0.0 { 3 } else { 2 });
    let (mut step, mut decimals) = round_step((hi - lo) / (max - 1) as f64);
    if counts && step < 1.0 {
        (step, decimals) = (1.0, 0);
    }
    // Widening to whole steps can add one tick at each end: step up until they fit.
    let mut domain = (lo, hi);
    for _ in 0..64 {
        domain = ((lo / step).floor() * step, (hi / step).ceil() * step);
        if ((domain.1 - domain.0) / step).round() + 1.0 <= max as f64 {
            break;
        }
        (step, decimals) = round_step(step * 1.0001);
        if counts {
            decimals = 0;
        }
    }
    let n = (((domain.1 - domain.0) / step).round() as usize).min(max - 1) + 1;
    let values: Vec<f64> =
        (0..n).map(|k| domain.0 + k as f64 * step).map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v }).collect();
    let largest = values.iter().fold(0f64, |m, v| m.max(v.abs()));
    let (scale, suffix) = if largest >= 1e6 {
        (1e6, "M")
    } else if largest >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let decimals = if scale > 1.0 { (-(step / scale).log10().floor()).max(0.0) as usize } else { decimals };
    let labels = values.iter().map(|v| label(v / scale, decimals, suffix)).collect();
    Ticks { domain, values, labels }
}

fn label(v: f64, decimals: usize, suffix: &str) -> String {
    let digits = format!("{:.*}", decimals, v.abs());
    let zero = digits.chars().all(|c| c == '0' || c == '.');
    if zero && !suffix.is_empty() {
        return "0".into();
    }
    let text = format!("{digits}{suffix}");
    if v < 0.0 && !zero {
        format!("\u{2212}{text}")
    } else {
        text
    }
}

/// A value for a tooltip: four significant digits, the same minus sign.
pub fn value(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "undefined".into()
        } else if v > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    let digits = if v == 0.0 { 0 } else { (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize };
    label(v, digits, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_numbers() {
        let t = ticks(0.0, 3.0, 6, true);
        assert_eq!(t.labels, ["0", "1", "2", "3"]);
        let t = ticks(0.0, 1.0, 6, true);
        assert_eq!(t.labels, ["0", "1"]);
        let t = ticks(0.0, 57.0, 6, true);
        assert_eq!(t.labels, ["0", "20", "40", "60"]);
    }

    #[test]
    fn steps_are_round_and_cover_the_data() {
        let t = ticks(-0.37, 1.52, 6, false);
        assert_eq!(t.labels, ["\u{2212}0.5", "0.0", "0.5", "1.0", "1.5", "2.0"]);
        assert!(t.domain.0 <= -0.37 && t.domain.1 >= 1.52);
        let t = ticks(0.0, 0.9, 5, false);
        assert_eq!(t.labels, ["0.00", "0.25", "0.50", "0.75", "1.00"]);
        let t = ticks(12_000.0, 61_000.0, 6, false);
        assert_eq!(t.labels, ["0", "20k", "40k", "60k", "80k"]);
        let t = ticks(0.0, 70.0, 4, false);
        assert_eq!(t.labels, ["0", "25", "50", "75"]);
    }

    #[test]
    fn never_more_than_asked() {
        for (lo, hi) in [(0.0, 1.0), (-3.3, 7.1), (1e-4, 3e-4), (-2e6, 5e6), (0.0, 999.0)] {
            for max in 2..9 {
                let t = ticks(lo, hi, max, false);
                let most = if lo < 0.0 { max.max(3) } else { max };
                assert!(t.values.len() <= most && t.values.len() >= 2, "{lo}..{hi} max {max}: {:?}", t.labels);
                assert!(t.domain.0 <= lo && t.domain.1 >= hi);
            }
        }
    }

    #[test]
    fn values_keep_four_digits() {
        assert_eq!(value(0.123456), "0.1235");
        assert_eq!(value(-12.5), "\u{2212}12.50");
        assert_eq!(value(0.0), "0");
        assert_eq!(value(f64::NAN), "undefined");
    }
}
