//! What is read off a fit: the distinct items of the pairs, each item's worst-off group
//! (MaxMin-RLHF's egalitarian view), and the adjusted Rand index against a known grouping.

use super::{dot, first_max, AnnotatedPairs};

/// The distinct items of the pairs, as `(pair, side)` of their first appearance (items are
/// equal when their features are equal bit for bit).
pub fn distinct_items(pairs: &AnnotatedPairs<'_>) -> Vec<(usize, usize)> {
    let d = pairs.dim;
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for i in 0..pairs.users.len() {
        for (side, features) in [pairs.features_0, pairs.features_1].into_iter().enumerate() {
            if seen.insert(features[i * d..(i + 1) * d].iter().map(|v| v.to_bits()).collect::<Vec<u64>>()) {
                items.push((i, side));
            }
        }
    }
    items
}

/// Each item's worst-off group (MaxMin-RLHF's egalitarian view): `min_g r_g(x)` with each
/// group's rewards centred on the items' mean (Bradley–Terry rewards are defined up to a shift
/// per group, so uncentred minima would compare arbitrary offsets). Returns `(group, reward)`
/// per item; `items` is row-major with `dim` columns.
pub fn worst_group(items: &[f64], dim: usize, weights: &[Vec<f64>]) -> Vec<(usize, f64)> {
    let n = items.len() / dim.max(1);
    let rewards: Vec<Vec<f64>> = weights
        .iter()
        .map(|w| {
            let r: Vec<f64> = (0..n).map(|i| dot(w, &items[i * dim..(i + 1) * dim])).collect();
            let mean = r.iter().sum::<f64>() / n.max(1) as f64;
            r.into_iter().map(|v| v - mean).collect()
        })
        .collect();
    (0..n)
        .map(|i| {
            let values: Vec<f64> = rewards.iter().map(|r| -r[i]).collect();
            let g = first_max(&values);
            (g, rewards[g][i])
        })
        .collect()
}

/// The adjusted Rand index of two partitions (Hubert and Arabie): 1 for the same grouping up
/// to names, about 0 for chance.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len();
    let choose2 = |x: f64| x * (x - 1.0) / 2.0;
    let (ka, kb) = (a.iter().max().map_or(0, |m| m + 1), b.iter().max().map_or(0, |m| m + 1));
    let mut table = vec![vec![0.0f64; kb]; ka];
    for (&i, &j) in a.iter().zip(b) {
        table[i][j] += 1.0;
    }
    let index: f64 = table.iter().flatten().map(|&c| choose2(c)).sum();
    let rows: f64 = table.iter().map(|r| choose2(r.iter().sum())).sum();
    let cols: f64 = (0..kb).map(|j| choose2(table.iter().map(|r| r[j]).sum())).sum();
    let expected = rows * cols / choose2(n as f64);
    let max = 0.5 * (rows + cols);
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adjusted_rand_index_of_known_partitions() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
        // Pairs together in both: 1; rows C(2,2)·2 = 2; columns 1; expected 2·1/C(4,2) = 1/3;
        // maximum (2 + 1)/2: (1 − 1/3)/(3/2 − 1/3) = 4/7.
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 4.0 / 7.0).abs() < 1e-15);
        // No pair together in both; rows 3 + 3, columns 1·3, expected 6·3/15 = 6/5, maximum
        // 9/2: (0 − 6/5)/(9/2 − 6/5) = −4/11 (below chance).
        assert!((adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 1, 2, 0, 1, 2]) + 4.0 / 11.0).abs() < 1e-15);
    }
}
