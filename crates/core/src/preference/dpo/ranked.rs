//! Objectives over ranked lists of n candidates per prompt.
//!
//! PRO (Song et al. 2023, arXiv
//! 2306.17492) as AlibabaResearch/DAMO-ConvAI's `PRO/train/utils/process_manager.py`
//! `compute_loss` computes it: candidates sorted by reward, best first; each scored by its mean
//! token log-prob s_j = Σ log π / |y_j|; for each position k a softmax over the candidates from
//! k on, candidate j's score scaled by the reward gap r_k − r_j (candidate k's own by the largest
//! gap, r_k − r_last), with an ε of 1e-10 in the denominator; plus an SFT term λ·(n−1)² times the
//! best candidate's negative summed log-prob. No reference model.
//!
//! SmPO (Lu et al. 2025, arXiv 2506.02698) as JaydenLyh/SmPO's `train.py` computes it, on lists
//! of two images: the reward model's scores (PickScore's cosine, no logit scale) min-max
//! normalised with the authors' constants, p = σ(ŝ_w − ŝ_l) for the higher-scored image w, and
//! the Diffusion-DPO loss −log σ(−0.5·β·10·(2p − 1)·((m_w − m_l) − (r_w − r_l))) on the model's
//! and the reference's denoising errors.
//!
//! RankDPO (Karthik et al. 2024, arXiv 2410.18013, Eqs. 5–7; no code is published): each image
//! scored s_i = m_i − r_i; for every pair i ≻ j (higher soft preference ψ, the reward column) a
//! weight Δ_ij = |2^ψ_i − 2^ψ_j|·|1/log₂(1 + τ_i) − 1/log₂(1 + τ_j)| with τ the 1-based rank by
//! ψ (the labels' ranking, Algorithm 2; LambdaLoss's base-2 discount); the list's loss is
//! −Σ Δ_ij·log σ(−β(s_i − s_j)).

use std::collections::BTreeMap;

use super::{Evaluation, PairValues};
use crate::error::ConfigError;

/// The ε PRO's code adds inside the log.
const EPS: f64 = 1e-10;

/// What is known of each candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidates {
    /// A language model's summed log-probs and token counts.
    Language { policy_logps: Vec<f64>, lengths: Vec<f64> },
    /// A diffusion model's and its reference's denoising errors (mean squared, one timestep).
    Diffusion { model_mse: Vec<f64>, reference_mse: Vec<f64> },
}

/// One prompt's candidates and their rewards (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct RankedList {
    pub id: String,
    pub rewards: Vec<f64>,
    /// The rewards are negated ranks (the file gave `ranks`).
    pub from_ranks: bool,
    pub candidates: Candidates,
}

/// Checks what the readers check, for callers that build lists themselves: at least two
/// candidates, every column as long as the rewards, positive lengths.
fn check_lists(lists: &[RankedList]) -> Result<(), ConfigError> {
    for (k, l) in lists.iter().enumerate() {
        let n = l.rewards.len();
        let (a, b) = match &l.candidates {
            Candidates::Language { policy_logps, lengths } => (policy_logps, lengths),
            Candidates::Diffusion { model_mse, reference_mse } => (model_mse, reference_mse),
        };
        let lengths_ok = match &l.candidates {
            Candidates::Language { lengths, .. } => lengths.iter().all(|x| *x > 0.0),
            Candidates::Diffusion { .. } => true,
        };
        if n < 2 || a.len() != n || b.len() != n || !lengths_ok {
            return Err(ConfigError::Invalid(format!(
                "list {} (`{}`): needs at least two candidates, every column as long as the rewards, positive lengths",
                k + 1,
                l.id
            )));
        }
    }
    Ok(())
}

/// The language-model columns of list `k`, or an error naming the objective.
fn language<'a>(list: &'a RankedList, k: usize, objective: &str) -> Result<(&'a [f64], &'a [f64]), ConfigError> {
    match &list.candidates {
        Candidates::Language { policy_logps, lengths } => Ok((policy_logps, lengths)),
        Candidates::Diffusion { .. } => Err(ConfigError::Invalid(format!(
            "list {} (`{}`): {objective} needs policy_logps and lengths, this list has diffusion errors",
            k + 1,
            list.id
        ))),
    }
}

/// The diffusion columns of list `k`, or an error naming the objective.
fn diffusion<'a>(list: &'a RankedList, k: usize, objective: &str) -> Result<(&'a [f64], &'a [f64]), ConfigError> {
    match &list.candidates {
        Candidates::Diffusion { model_mse, reference_mse } => Ok((model_mse, reference_mse)),
        Candidates::Language { .. } => Err(ConfigError::Invalid(format!(
            "list {} (`{}`): {objective} needs model_mse and reference_mse, this list has log-probs",
            k + 1,
            list.id
        ))),
    }
}

/// The objectives over ranked lists, by the names `--loss` takes.
pub const RANKED_OBJECTIVES: [&str; 3] = ["pro", "smpo", "rankdpo"];

/// `objective` (one of [`RANKED_OBJECTIVES`]) on `lists`: β (default Diffusion-DPO's 5000)
/// for the image objectives, the SFT weight for PRO.
pub fn evaluate_lists(
    objective: &str,
    lists: &[RankedList],
    beta: Option<f64>,
    sft_weight: f64,
) -> Result<Evaluation, ConfigError> {
    let beta = beta.unwrap_or(crate::preference::diffusion::DIFFUSION_DPO_BETA);
    check_lists(lists)?;
    if RANKED_OBJECTIVES.contains(&objective) && objective != "pro" {
        for (k, l) in lists.iter().enumerate() {
            diffusion(l, k, objective)?;
        }
        if let Some((k, l)) = lists.iter().enumerate().find(|(_, l)| l.from_ranks) {
            return Err(ConfigError::Invalid(format!(
                "list {} (`{}`): {objective} takes scores as rewards (PickScore cosines for smpo, soft preferences ψ for \
                 rankdpo), not ranks",
                k + 1,
                l.id
            )));
        }
    }
    match objective {
        "pro" => pro(lists, &ProParams { sft_weight }),
        "smpo" => smpo(lists, beta),
        "rankdpo" => rankdpo(lists, beta),
        other => Err(ConfigError::Invalid(format!(
            "`{other}` is not an objective over ranked lists ({})",
            RANKED_OBJECTIVES.join(", ")
        ))),
    }
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
    // Shifting by at least ln ε keeps ε·e^(−m) ≤ 1 when every term is far below it.
    let m = xs.iter().copied().fold(EPS.ln(), f64::max);
    m + (EPS * (-m).exp() + xs.iter().map(|x| (x - m).exp()).sum::<f64>()).ln()
}

/// One list's ranking and SFT losses.
fn pro_list(list: &RankedList, logps: &[f64], lengths: &[f64], params: &ProParams) -> (f64, f64) {
    let mut order: Vec<usize> = (0..list.rewards.len()).collect();
    // Best first; ties keep the file's order (a stable sort; numpy's argsort(-r), which the
    // authors' preprocessing uses, keeps it too for short lists). The order of tied candidates
    // does change the loss and which one the SFT term takes.
    order.sort_by(|&a, &b| list.rewards[b].total_cmp(&list.rewards[a]));
    let r: Vec<f64> = order.iter().map(|&i| list.rewards[i]).collect();
    let s: Vec<f64> = order.iter().map(|&i| logps[i] / lengths[i]).collect();
    let n = r.len();
    let mut ranking = 0.0;
    for k in 0..n - 1 {
        let gaps: Vec<f64> = r[k + 1..].iter().map(|rj| r[k] - rj).collect();
        let own = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut terms = vec![s[k] * own];
        terms.extend(s[k + 1..].iter().zip(&gaps).map(|(sj, g)| sj * g));
        ranking += log_eps_sum_exp(&terms) - s[k] * own;
    }
    let sft = params.sft_weight * ((n - 1) as f64).powi(2) * -logps[order[0]];
    (ranking, sft)
}

/// PRO over ranked lists (each at least two candidates, lengths positive; the reader checks).
/// Per list, `loss` is its ranking loss plus its SFT term; the metrics are their means over
/// lists (`loss` equals PRO's batch loss when every list has the same n).
pub fn pro(lists: &[RankedList], params: &ProParams) -> Result<Evaluation, ConfigError> {
    if !params.sft_weight.is_finite() || params.sft_weight < 0.0 {
        return Err(ConfigError::Invalid(format!("sft_weight must be a finite number ≥ 0, got {}", params.sft_weight)));
    }
    let mut ranking = Vec::with_capacity(lists.len());
    let mut sft = Vec::with_capacity(lists.len());
    let mut top = 0.0;
    for (k, list) in lists.iter().enumerate() {
        let (logps, lengths) = language(list, k, "pro")?;
        let (r, f) = pro_list(list, logps, lengths, params);
        ranking.push(r);
        sft.push(f);
        // Whether the best-rewarded candidate also has the highest mean log-prob.
        let first_max =
            |v: &dyn Fn(usize) -> f64| (1..list.rewards.len()).fold(0, |b, i| if v(i) > v(b) { i } else { b });
        let best = first_max(&|i| list.rewards[i]);
        let first = first_max(&|i| logps[i] / lengths[i]);
        top += f64::from(u8::from(best == first));
    }
    let n = lists.len().max(1) as f64;
    let loss: Vec<f64> = ranking.iter().zip(&sft).map(|(a, b)| a + b).collect();
    let mut metrics = BTreeMap::new();
    metrics.insert("loss".to_string(), loss.iter().sum::<f64>() / n);
    metrics.insert("pro/ranking_loss".to_string(), ranking.iter().sum::<f64>() / n);
    metrics.insert("pro/sft_loss".to_string(), sft.iter().sum::<f64>() / n);
    metrics.insert("pro/top1_accuracy".to_string(), top / n);
    Ok(list_evaluation(loss, metrics))
}

/// Per-list losses as an [`Evaluation`] (lists have no chosen and rejected rewards).
fn list_evaluation(loss: Vec<f64>, metrics: BTreeMap<String, f64>) -> Evaluation {
    let nan = vec![f64::NAN; loss.len()];
    Evaluation {
        pairs: PairValues { chosen_reward: nan.clone(), rejected_reward: nan.clone(), margin: nan, loss },
        metrics,
    }
}

/// SmPO's range of PickScore cosines (`train.py`'s `min_val`, `max_val`: the dataset's).
pub const SMPO_SCORE_RANGE: (f64, f64) = (0.11543526500463486, 0.28201571106910706);

/// SmPO on lists of two images whose rewards are PickScore cosines; `beta` as Diffusion-DPO's.
pub fn smpo(lists: &[RankedList], beta: f64) -> Result<Evaluation, ConfigError> {
    super::check_beta(beta)?;
    let (lo, hi) = SMPO_SCORE_RANGE;
    let mut loss = Vec::with_capacity(lists.len());
    let mut correct = 0.0;
    for (k, list) in lists.iter().enumerate() {
        let (m, r) = diffusion(list, k, "smpo")?;
        if list.rewards.len() != 2 {
            return Err(ConfigError::Invalid(format!(
                "list {} (`{}`): smpo compares two images, this list has {}",
                k + 1,
                list.id,
                list.rewards.len()
            )));
        }
        // The higher-scored image wins; a tie goes to the second (the authors' `s0 > s1`).
        let (w, l) = if list.rewards[0] > list.rewards[1] { (0, 1) } else { (1, 0) };
        let norm = |s: f64| (s - lo) / (hi - lo);
        let p = 1.0 / (1.0 + (norm(list.rewards[l]) - norm(list.rewards[w])).exp());
        let inside = -0.5 * beta * (2.0 * p - 1.0) * 10.0 * ((m[w] - m[l]) - (r[w] - r[l]));
        correct += f64::from(u8::from(inside > 0.0));
        loss.push(-crate::numeric::log_sigmoid(inside));
    }
    let n = lists.len().max(1) as f64;
    let mut metrics = BTreeMap::new();
    metrics.insert("loss".to_string(), loss.iter().sum::<f64>() / n);
    metrics.insert("smpo/implicit_accuracy".to_string(), correct / n);
    Ok(list_evaluation(loss, metrics))
}

/// RankDPO on lists of k images whose rewards are soft preferences ψ in [0, 1].
pub fn rankdpo(lists: &[RankedList], beta: f64) -> Result<Evaluation, ConfigError> {
    super::check_beta(beta)?;
    let mut loss = Vec::with_capacity(lists.len());
    for (k, list) in lists.iter().enumerate() {
        let (m, r) = diffusion(list, k, "rankdpo")?;
        let psi = &list.rewards;
        let n = psi.len();
        let s: Vec<f64> = (0..n).map(|i| m[i] - r[i]).collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| psi[b].total_cmp(&psi[a]));
        let mut rank = vec![0.0; n];
        for (position, &i) in order.iter().enumerate() {
            rank[i] = (position + 1) as f64;
        }
        let discount = |t: f64| 1.0 / (1.0 + t).log2();
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..n {
                if psi[i] > psi[j] {
                    let weight = (psi[i].exp2() - psi[j].exp2()).abs() * (discount(rank[i]) - discount(rank[j])).abs();
                    total -= weight * crate::numeric::log_sigmoid(-beta * (s[i] - s[j]));
                }
            }
        }
        loss.push(total);
    }
    let n = lists.len().max(1) as f64;
    let mut metrics = BTreeMap::new();
    metrics.insert("loss".to_string(), loss.iter().sum::<f64>() / n);
    Ok(list_evaluation(loss, metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_candidates_reduce_to_a_logistic_loss_on_the_gap() {
        // n = 2: loss = log(ε + e^{s0·g} + e^{s1·g}) − s0·g with g = r0 − r1, plus λ·(−sum0).
        let candidates = Candidates::Language { policy_logps: vec![-4.0, -3.0], lengths: vec![2.0, 3.0] };
        let list = RankedList { id: "a".into(), rewards: vec![0.0, 2.0], from_ranks: false, candidates };
        let p = ProParams { sft_weight: 0.5 };
        let e = pro(&[list], &p).unwrap();
        let (s0, s1, g) = (-1.0f64, -2.0f64, 2.0f64); // the best is candidate 1 (reward 2)
        let want = (EPS + (s0 * g).exp() + (s1 * g).exp()).ln() - s0 * g + 0.5 * 3.0;
        assert!((e.metrics["loss"] - want).abs() < 1e-12, "{} vs {want}", e.metrics["loss"]);
        assert_eq!(e.metrics["pro/top1_accuracy"], 1.0);
    }

    #[test]
    fn smpo_at_equal_scores_is_log_two_and_rankdpo_weights_pairs_by_gain_and_discount() {
        let diffusion = |rewards: Vec<f64>, m: Vec<f64>, r: Vec<f64>| RankedList {
            id: "d".into(),
            rewards,
            from_ranks: false,
            candidates: Candidates::Diffusion { model_mse: m, reference_mse: r },
        };
        // p = 1/2: the loss is log 2 whatever the errors.
        let tie = smpo(&[diffusion(vec![0.2, 0.2], vec![0.1, 0.3], vec![0.2, 0.2])], 5000.0).unwrap();
        assert!((tie.metrics["loss"] - std::f64::consts::LN_2).abs() < 1e-15);
        // Two images, ψ = (1, 0): one pair, weight (2 − 1)·(1/log2(2) − 1/log2(3)).
        let (m, r) = (vec![0.10, 0.20], vec![0.15, 0.15]);
        let e = rankdpo(&[diffusion(vec![1.0, 0.0], m, r)], 2.0).unwrap();
        let weight = 1.0 - 1.0 / 3f64.log2();
        let want = -weight * crate::numeric::log_sigmoid(-2.0 * ((0.10 - 0.15) - (0.20 - 0.15)));
        assert!((e.metrics["loss"] - want).abs() < 1e-15);
        assert!(pro(&[diffusion(vec![1.0, 0.0], vec![0.1, 0.2], vec![0.1, 0.1])], &ProParams::default()).is_err());
    }

    #[test]
    fn pro_stays_finite_far_below_epsilon() {
        // A term of −8·100 = −800: the authors' log(1e-10 + …) gives ln ε + 800.
        let candidates = Candidates::Language { policy_logps: vec![-8.0, -9.0], lengths: vec![1.0, 1.0] };
        let list = RankedList { id: "far".into(), rewards: vec![100.0, 0.0], from_ranks: false, candidates };
        let e = pro(&[list], &ProParams { sft_weight: 0.0 }).unwrap();
        assert!((e.metrics["loss"] - ((1e-10f64).ln() + 800.0)).abs() < 1e-9, "{}", e.metrics["loss"]);
    }
}
