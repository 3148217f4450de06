//! Spearman's rank correlation (scipy.stats.spearmanr): Pearson's correlation of the ranks,
//! ties sharing their average rank. The demo model's evaluation checks the LongAlign parts
//! against ground-truth alignment and quality with it.

/// 1-based ranks, ties given the mean of the ranks they span.
pub fn average_ranks(xs: &[f64]) -> Vec<f64> {
    // Values sorted with their positions beside them: an index sort comparing through `xs`
    // would miss the cache on every comparison of a large input.
    let mut keyed: Vec<Keyed> = xs.iter().enumerate().map(|(index, &value)| Keyed { value, index }).collect();
    sort_keyed(&mut keyed);
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < keyed.len() {
        let mut j = i;
        while j + 1 < keyed.len() && keyed[j + 1].value == keyed[i].value {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &keyed[i..=j] {
            ranks[k.index] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// A value and where it came from, ordered by value.
#[derive(Clone, Copy, Debug)]
struct Keyed {
    value: f64,
    index: usize,
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

/// Natively by radix sort on the f64 key (voracious_radix_sort, as the AOT losses' sorts);
/// in the browser by the standard library's. Callers have refused NaN.
#[cfg(not(target_arch = "wasm32"))]
fn sort_keyed(keyed: &mut [Keyed]) {
    use voracious_radix_sort::RadixSort;
    keyed.voracious_sort();
}

#[cfg(not(target_arch = "wasm32"))]
impl voracious_radix_sort::Radixable<f64> for Keyed {
    type Key = f64;
    fn key(&self) -> f64 {
        self.value
    }
}

#[cfg(target_arch = "wasm32")]
fn sort_keyed(keyed: &mut [Keyed]) {
    keyed.sort_unstable_by(|a, b| a.value.total_cmp(&b.value));
}

/// Pearson's correlation; `None` when either side is constant or the lengths differ.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman's ρ; `None` when either side is constant, the lengths differ, or a value is NaN.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    // The two rankings on two threads natively (each is a sort of the whole input).
    #[cfg(not(target_arch = "wasm32"))]
    let (rx, ry) = std::thread::scope(|s| {
        let rx = s.spawn(|| average_ranks(x));
        let ry = average_ranks(y);
        (rx.join(), ry)
    });
    #[cfg(not(target_arch = "wasm32"))]
    let rx = rx.ok()?;
    #[cfg(target_arch = "wasm32")]
    let (rx, ry) = (average_ranks(x), average_ranks(y));
    pearson(&rx, &ry)
}

/// Kendall's τ-b of two equally long samples (ties counted as scipy's `kendalltau` counts
/// them), by comparing every pair: for the few candidates one prompt has. `None` when either
/// sample is constant, holds a NaN, or has fewer than two values.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => tied_x += 1,
                (false, true) => tied_y += 1,
                (false, false) if (dx > 0.0) == (dy > 0.0) => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let (n1, n2) = ((concordant + discordant + tied_x) as f64, (concordant + discordant + tied_y) as f64);
    (n1 > 0.0 && n2 > 0.0).then(|| (concordant - discordant) as f64 / (n1 * n2).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy() {
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) (scipy's documentation example).
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((rho - 0.8207826816681233).abs() < 1e-12, "{rho}");
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), None);
        assert_eq!(average_ranks(&[0.0, -0.0, -1.5, f64::INFINITY, -0.0]), vec![3.0, 3.0, 1.0, 5.0, 3.0]);
    }

    #[test]
    fn kendall_tau_b_matches_scipys_documented_example() {
        // scipy.stats.kendalltau's docstring: x = [12, 2, 1, 12, 2], y = [1, 4, 7, 1, 0].
        let tau = kendall_tau_b(&[12.0, 2.0, 1.0, 12.0, 2.0], &[1.0, 4.0, 7.0, 1.0, 0.0]).unwrap();
        assert!((tau - -0.47140452079103173).abs() < 1e-15, "{tau}");
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(kendall_tau_b(&[1.0], &[1.0]), None);
    }
}
