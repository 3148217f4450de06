//! Per-token implicit rewards `β(logπ_t − logπref_t)` and segmented sums over the
//! compressed-row token layout of [`TokenColumn`].

use crate::record::TokenColumn;

/// Per-token rewards of one side, aligned with `column.policy` (same offsets).
pub fn token_rewards(column: &TokenColumn, beta: f64) -> Vec<f64> {
    column.policy.iter().zip(&column.reference).map(|(p, r)| beta * (p - r)).collect()
}

/// Per-token rewards of pair `i` only (what a heatmap of one pair needs, without the rest).
pub fn pair_token_rewards(column: &TokenColumn, i: usize, beta: f64) -> Vec<f64> {
    let range = column.range(i);
    column.policy[range.clone()].iter().zip(&column.reference[range]).map(|(p, r)| beta * (p - r)).collect()
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
    use crate::record::{DpoRecord, DpoTable};

    #[test]
    fn rewards_and_sums_follow_offsets() {
        let table = DpoTable::from_records(
            "t",
            [(vec![-1.0, -2.0], vec![-1.5, -1.0]), (vec![], vec![]), (vec![-0.5, -0.5, -3.0], vec![-0.5, -1.0, -2.0])]
                .into_iter()
                .enumerate()
                .map(|(i, (p, r))| DpoRecord {
                    id: i.to_string(),
                    policy_chosen_logps: p.iter().sum(),
                    reference_chosen_logps: r.iter().sum(),
                    policy_chosen_token_logps: (!p.is_empty()).then_some(p),
                    reference_chosen_token_logps: (!r.is_empty()).then_some(r),
                    ..Default::default()
                }),
        );
        let col = &table.chosen_tokens;
        let r = token_rewards(col, 0.5);
        assert_eq!(r, vec![0.25, -0.5, 0.0, 0.25, -0.5]);
        assert_eq!(segment_sums(&r, &col.offsets()), vec![-0.25, 0.0, -0.25]);
        assert!(col.present(0) && !col.present(1) && col.present(2));
        assert_eq!(pair_token_rewards(col, 2, 0.5), r[2..5].to_vec());
        assert_eq!(pair_token_rewards(col, 1, 0.5), Vec::<f64>::new());
        assert_eq!(reward_shares(&[1.0, -3.0]), vec![0.25, 0.75]);
    }
}
