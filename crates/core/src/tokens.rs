//! Per-token implicit rewards `β(logπ_t − logπref_t)` and segmented sums over the
//! compressed-row token layout of [`TokenColumn`].

use crate::record::TokenColumn;

/// Per-token rewards of one side, aligned with `column.policy` (same offsets).
pub fn token_rewards(column: &TokenColumn, beta: f64) -> Vec<f64> {
    column.policy.iter().zip(&column.reference).map(|(p, r)| beta * (p - r)).collect()
}

/// Sum of `values` over each pair's token range: the segmented reduction behind sequence
/// log-probs and per-pair reward totals.
pub fn segment_sums(values: &[f64], offsets: &[usize]) -> Vec<f64> {
    offsets.windows(2).map(|w| values[w[0]..w[1]].iter().sum()).collect()
}

/// Share of a pair's summed absolute per-token reward carried by each token, for heatmaps.
pub fn reward_shares(rewards: &[f64]) -> Vec<f64> {
    let total: f64 = rewards.iter().map(|r| r.abs()).sum();
    rewards.iter().map(|r| if total > 0.0 { r.abs() / total } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_and_sums_follow_offsets() {
        let col = TokenColumn {
            offsets: vec![0, 2, 2, 5],
            present: vec![true, false, true],
            policy: vec![-1.0, -2.0, -0.5, -0.5, -3.0],
            reference: vec![-1.5, -1.0, -0.5, -1.0, -2.0],
            tokens: vec![None, None, None],
        };
        let r = token_rewards(&col, 0.5);
        assert_eq!(r, vec![0.25, -0.5, 0.0, 0.25, -0.5]);
        assert_eq!(segment_sums(&r, &col.offsets), vec![-0.25, 0.0, -0.25]);
        assert_eq!(reward_shares(&[1.0, -3.0]), vec![0.25, 0.75]);
    }
}
