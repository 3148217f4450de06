//! Per-token implicit rewards `β(logπ_t − logπref_t)` and segmented sums over the
//! compressed-row token layout of [`TokenColumn`].

use crate::io::record::TokenColumn;

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

/// A pair's summed absolute per-token reward, both sides together, and the part of it on the
/// positions where the chosen and rejected tokens differ (positions past the shorter side
/// count as differing): how much of what training moved sits on the tokens the preference is
/// about.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DifferingReward {
    pub differing: f64,
    pub total: f64,
}

impl DifferingReward {
    pub fn of(chosen_tokens: &[String], rejected_tokens: &[String], chosen: &[f64], rejected: &[f64]) -> Self {
        let differs = |t: usize| chosen_tokens.get(t) != rejected_tokens.get(t);
        let mut split = DifferingReward::default();
        for (t, r) in chosen.iter().enumerate().chain(rejected.iter().enumerate()) {
            split.total += r.abs();
            if differs(t) {
                split.differing += r.abs();
            }
        }
        split
    }

    /// `differing / total`; `None` when nothing moved.
    pub fn share(self) -> Option<f64> {
        (self.total > 0.0).then(|| self.differing / self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::record::{DpoRecord, DpoTable};

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

    #[test]
    fn differing_share_counts_both_sides_at_differing_positions() {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let (c, r) = (words("a red circle <eos>"), words("a blue circle <eos>"));
        // |0.1| + |2| + |0.3| + 0 on the chosen side, |0.1| + |1| + |0.5| + 0 on the rejected.
        let share = DifferingReward::of(&c, &r, &[0.1, 2.0, -0.3, 0.0], &[0.1, -1.0, 0.5, 0.0]).share().unwrap();
        assert!((share - 3.0 / 4.0).abs() < 1e-12, "{share}");
        // A longer rejected side: its extra token differs.
        let long = words("a blue circle on <eos>");
        let split = DifferingReward::of(&c, &long, &[0.0, 1.0, 0.0, 0.0], &[0.0, 1.0, 0.0, 2.0, 0.0]);
        assert_eq!(split, DifferingReward { differing: 4.0, total: 4.0 });
        let share = split.share().unwrap();
        assert!((share - 1.0).abs() < 1e-12, "{share}");
        assert_eq!(DifferingReward::of(&c, &r, &[0.0; 4], &[0.0; 4]).share(), None);
    }
}
