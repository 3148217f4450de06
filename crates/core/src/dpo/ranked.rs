//! Objectives over ranked lists of n completions per prompt. PRO (Song et al. 2023, arXiv
//! 2306.17492) as AlibabaResearch/DAMO-ConvAI's `PRO/train/utils/process_manager.py`
//! `compute_loss` computes it: candidates sorted by reward, best first; each scored by its mean
//! token log-prob s_j = Σ log π / |y_j|; for each position k a softmax over the candidates from
//! k on, candidate j's score scaled by the reward gap r_k − r_j (candidate k's own by the largest
//! gap, r_k − r_last), with an ε of 1e-10 in the denominator; plus an SFT term λ·(n−1)² times the
//! best candidate's negative summed log-prob. No reference model.

use std::collections::BTreeMap;

use super::{Evaluation, PairValues};
use crate::error::ConfigError;

/// The ε PRO's code adds inside the log.
const EPS: f64 = 1e-10;

/// One prompt's candidates: rewards (higher is better), summed log-probs, lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedList {
    pub id: String,
    pub rewards: Vec<f64>,
    pub policy_logps: Vec<f64>,
    pub lengths: Vec<f64>,
}

/// PRO's settings: `sft_weight` (λ; the authors' scripts use 0.05, their config's default is 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProParams {
    pub sft_weight: f64,
}

impl Default for ProParams {
    fn default() -> Self {
        ProParams { sft_weight: 0.05 }
    }
}

/// `log(ε + Σ e^x)`, computed around the largest exponent so that it neither overflows nor
/// loses the ε where every term underflows.
fn log_eps_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return EPS.ln();
    }
    m + (EPS * (-m).exp() + xs.iter().map(|x| (x - m).exp()).sum::<f64>()).ln()
}

/// One list's ranking and SFT losses.
fn pro_list(list: &RankedList, params: &ProParams) -> (f64, f64) {
    let mut order: Vec<usize> = (0..list.rewards.len()).collect();
    // Best first; ties keep the file's order (a stable sort, as numpy's argsort(-r) on ties
    // would not guarantee: ties give zero gaps, so their order does not change the loss).
    order.sort_by(|&a, &b| list.rewards[b].total_cmp(&list.rewards[a]));
    let r: Vec<f64> = order.iter().map(|&i| list.rewards[i]).collect();
    let s: Vec<f64> = order.iter().map(|&i| list.policy_logps[i] / list.lengths[i]).collect();
    let n = r.len();
    let mut ranking = 0.0;
    for k in 0..n - 1 {
        let gaps: Vec<f64> = r[k + 1..].iter().map(|rj| r[k] - rj).collect();
        let own = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut terms = vec![s[k] * own];
        terms.extend(s[k + 1..].iter().zip(&gaps).map(|(sj, g)| sj * g));
        ranking += log_eps_sum_exp(&terms) - s[k] * own;
    }
    let sft = params.sft_weight * ((n - 1) as f64).powi(2) * -list.policy_logps[order[0]];
    (ranking, sft)
}

/// PRO over ranked lists (each at least two candidates, lengths positive; the reader checks).
/// Per list, `loss` is its ranking loss plus its SFT term; the metrics are their means over
/// lists (`loss` equals PRO's batch loss when every list has the same n).
pub fn pro(lists: &[RankedList], params: &ProParams) -> Result<Evaluation, ConfigError> {
    if !params.sft_weight.is_finite() || params.sft_weight < 0.0 {
        return Err(ConfigError::Invalid(format!("sft_weight must be a finite number ≥ 0, got {}", params.sft_weight)));
    }
    let (ranking, sft): (Vec<f64>, Vec<f64>) = lists.iter().map(|l| pro_list(l, params)).unzip();
    let n = lists.len().max(1) as f64;
    let loss: Vec<f64> = ranking.iter().zip(&sft).map(|(a, b)| a + b).collect();
    let mut metrics = BTreeMap::new();
    metrics.insert("loss".to_string(), loss.iter().sum::<f64>() / n);
    metrics.insert("pro/ranking_loss".to_string(), ranking.iter().sum::<f64>() / n);
    metrics.insert("pro/sft_loss".to_string(), sft.iter().sum::<f64>() / n);
    // The share of lists whose best-rewarded candidate also has the highest mean log-prob.
    let top = lists
        .iter()
        .filter(|l| {
            let best = (0..l.rewards.len()).max_by(|&a, &b| l.rewards[a].total_cmp(&l.rewards[b]));
            let first = (0..l.rewards.len())
                .max_by(|&a, &b| (l.policy_logps[a] / l.lengths[a]).total_cmp(&(l.policy_logps[b] / l.lengths[b])));
            best == first
        })
        .count() as f64;
    metrics.insert("pro/top1_accuracy".to_string(), top / n);
    let nan = vec![f64::NAN; lists.len()];
    Ok(Evaluation {
        pairs: PairValues { chosen_reward: nan.clone(), rejected_reward: nan.clone(), margin: nan, loss },
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_candidates_reduce_to_a_logistic_loss_on_the_gap() {
        // n = 2: loss = log(ε + e^{s0·g} + e^{s1·g}) − s0·g with g = r0 − r1, plus λ·(−sum0).
        let list = RankedList {
            id: "a".into(),
            rewards: vec![0.0, 2.0],
            policy_logps: vec![-4.0, -3.0],
            lengths: vec![2.0, 3.0],
        };
        let p = ProParams { sft_weight: 0.5 };
        let e = pro(&[list], &p).unwrap();
        let (s0, s1, g) = (-1.0f64, -2.0f64, 2.0f64); // the best is candidate 1 (reward 2)
        let want = (EPS + (s0 * g).exp() + (s1 * g).exp()).ln() - s0 * g + 0.5 * 3.0;
        assert!((e.metrics["loss"] - want).abs() < 1e-12, "{} vs {want}", e.metrics["loss"]);
        assert_eq!(e.metrics["pro/top1_accuracy"], 1.0);
    }
}
