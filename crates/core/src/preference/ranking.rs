//! Ranking accuracy (Chen et al. 2024, "Preference Learning Algorithms Do Not Learn
//! Preference Rankings"): whether the model's likelihoods order a pair as the label does, and
//! the best any DPO optimum could reach given the reference model.

use crate::numeric::mean_of;

/// `R = mean 1[logπ(yw) ≥ logπ(yl)]` on sequence log-likelihoods.
pub fn ranking_accuracy(policy_chosen: &[f64], policy_rejected: &[f64]) -> f64 {
    mean_of(policy_chosen.len(), |i| f64::from(u8::from(policy_chosen[i] >= policy_rejected[i])))
}

/// The length-normalised variant: compares per-token average log-likelihoods.
pub fn ranking_accuracy_normalized(
    policy_chosen: &[f64],
    policy_rejected: &[f64],
    chosen_length: &[f64],
    rejected_length: &[f64],
) -> f64 {
    mean_of(policy_chosen.len(), |i| {
        let c = policy_chosen[i] / chosen_length[i].max(1.0);
        let r = policy_rejected[i] / rejected_length[i].max(1.0);
        f64::from(u8::from(c >= r))
    })
}

/// Whether the optimal DPO policy ranks one pair correctly:
/// `(πref(yw)/πref(yl)) · (α/(1−α))^(1/β) > 1`, evaluated in log space.
pub fn idealized_correct(reference_chosen: f64, reference_rejected: f64, share: f64, beta: f64) -> bool {
    let log_odds = if share >= 1.0 {
        f64::INFINITY
    } else if share <= 0.0 {
        f64::NEG_INFINITY
    } else {
        (share / (1.0 - share)).ln()
    };
    (reference_chosen - reference_rejected) + log_odds / beta > 0.0
}

/// `R*`: the idealized ranking accuracy over pairs with a known rater share `α`.
pub fn idealized_ranking_accuracy(
    reference_chosen: &[f64],
    reference_rejected: &[f64],
    share: &[f64],
    beta: f64,
) -> f64 {
    mean_of(share.len(), |i| {
        f64::from(u8::from(idealized_correct(reference_chosen[i], reference_rejected[i], share[i], beta)))
    })
}

/// The margin at which a pair flips to correctly ranked: `β·log(πref(yl)/πref(yw))`.
/// A pair is ranked correctly iff its DPO margin `βδ` is at least this.
pub fn flip_threshold(reference_chosen: f64, reference_rejected: f64, beta: f64) -> f64 {
    beta * (reference_rejected - reference_chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_above_threshold_iff_policy_ranks_correctly() {
        let beta = 0.3;
        let cases = [(-5.0, -7.0, -6.0, -4.0), (-5.0, -4.0, -6.0, -7.0), (-2.0, -2.0, -3.0, -1.0)];
        for (pc, pr, rc, rr) in cases {
            let margin = beta * ((pc - rc) - (pr - rr));
            let correct = ranking_accuracy(&[pc], &[pr]) == 1.0;
            assert_eq!(margin >= flip_threshold(rc, rr, beta), correct, "{pc} {pr} {rc} {rr}");
        }
    }

    #[test]
    fn idealized_handles_unanimous_and_split_raters() {
        assert!(idealized_correct(-100.0, -1.0, 1.0, 0.1));
        assert!(!idealized_correct(1.0, -1.0, 0.0, 0.1));
        // An even split leaves the reference's ranking; a tie is not "> 1".
        assert!(!idealized_correct(-3.0, -3.0, 0.5, 0.1));
        assert!(idealized_correct(-3.0, -3.1, 0.5, 0.1));
    }
}
