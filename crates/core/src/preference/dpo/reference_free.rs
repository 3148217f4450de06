//! Reference-free objectives: CPO (with SimPO as its `simpo` loss) and ORPO, as TRL's
//! `CPOTrainer.cpo_loss` and `ORPOTrainer.odds_ratio_loss` compute them from policy log-probs.
//! Both train with an NLL term on the chosen completion: the token mean over the batch,
//! `−Σ logπ(yw) / Σ |yw|`.

use std::collections::BTreeMap;

use super::{check_beta, rewarded, Evaluation, PairLogps};
use crate::error::ConfigError;
use crate::numeric::{log1mexp, log_sigmoid, mean, par_map, sum, Logistic};

/// `CPOTrainer`'s loss types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpoLoss {
    Sigmoid,
    Hinge,
    Ipo,
    Simpo,
}

/// `CPOConfig` defaults: β 0.1, `cpo_alpha` 1, SimPO's γ 0.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpoParams {
    pub beta: f64,
    pub label_smoothing: f64,
    pub loss: CpoLoss,
    pub cpo_alpha: f64,
    pub simpo_gamma: f64,
}

impl Default for CpoParams {
    fn default() -> Self {
        Self { beta: 0.1, label_smoothing: 0.0, loss: CpoLoss::Sigmoid, cpo_alpha: 1.0, simpo_gamma: 0.5 }
    }
}

impl CpoParams {
    /// Pure SimPO: the `simpo` loss without the NLL term.
    pub fn simpo() -> Self {
        Self { loss: CpoLoss::Simpo, cpo_alpha: 0.0, ..Self::default() }
    }
}

/// `ORPOConfig` default: β 0.1 (λ in the paper).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrpoParams {
    pub beta: f64,
}

impl Default for OrpoParams {
    fn default() -> Self {
        Self { beta: 0.1 }
    }
}

/// Token-mean NLL of the chosen completions over the batch.
pub(crate) fn chosen_nll(p: &PairLogps<'_>, lengths: &[f64]) -> f64 {
    -sum(p.policy_chosen) / sum(lengths)
}

fn averaged(sums: &[f64], lengths: &[f64]) -> Vec<f64> {
    sums.iter().zip(lengths).map(|(s, l)| s / l).collect()
}

pub(crate) fn positive_lengths(lengths: &[f64], side: &str) -> Result<(), ConfigError> {
    match lengths.iter().position(|&l| l <= 0.0) {
        Some(i) => Err(ConfigError::Invalid(format!(
            "row {}: `{side}_length` is 0, but this objective averages log-probs over completion tokens",
            i + 1
        ))),
        None => Ok(()),
    }
}

/// `cpo_loss` for one pair, on sums or (SimPO, IPO) token averages; the NLL term is separate.
#[inline(always)]
pub(crate) fn cpo_pair_loss(params: &CpoParams, chosen: f64, rejected: f64) -> f64 {
    let (beta, eps) = (params.beta, params.label_smoothing);
    let logits = chosen - rejected;
    match params.loss {
        CpoLoss::Simpo | CpoLoss::Sigmoid => {
            let shift = if params.loss == CpoLoss::Simpo { params.simpo_gamma / beta } else { 0.0 };
            let l = Logistic::of(beta * (logits - shift));
            -l.log_sig * (1.0 - eps) - l.log_sig_neg * eps
        }
        CpoLoss::Hinge => (1.0 - beta * logits).max(0.0),
        CpoLoss::Ipo => (logits - 1.0 / (2.0 * beta)).powi(2),
    }
}

/// Whether CPO's loss type works on token-averaged log-probs (TRL's `average_log_prob`).
pub(crate) fn cpo_averages(params: &CpoParams) -> bool {
    matches!(params.loss, CpoLoss::Simpo | CpoLoss::Ipo)
}

/// ORPO's log odds ratio of one pair, on token-averaged log-probs.
#[inline(always)]
pub(crate) fn orpo_log_odds(chosen: f64, rejected: f64) -> f64 {
    (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
}

/// CPO and SimPO. SimPO and IPO average log-probs over tokens (TRL's `average_log_prob`).
pub fn cpo(p: &PairLogps<'_>, params: &CpoParams) -> Result<Evaluation, ConfigError> {
    check_beta(params.beta)?;
    super::check_label_smoothing(params.label_smoothing)?;
    let (cl, rl) = p.lengths("cpo")?;
    positive_lengths(cl, "chosen")?;
    positive_lengths(rl, "rejected")?;
    let (chosen, rejected) = if cpo_averages(params) {
        (averaged(p.policy_chosen, cl), averaged(p.policy_rejected, rl))
    } else {
        (p.policy_chosen.to_vec(), p.policy_rejected.to_vec())
    };
    let beta = params.beta;
    let losses = par_map(chosen.len(), |i| cpo_pair_loss(params, chosen[i], rejected[i]));
    let nll = chosen_nll(p, cl);
    let mut metrics = BTreeMap::new();
    metrics.insert("nll_loss".into(), nll);
    metrics.insert("loss".into(), mean(&losses) + params.cpo_alpha * nll);
    let loss = losses.iter().map(|l| l + params.cpo_alpha * nll).collect();
    let rewards = |v: &[f64]| v.iter().map(|x| beta * x).collect();
    Ok(rewarded(rewards(&chosen), rewards(&rejected), loss, (&chosen, &rejected), metrics))
}

/// ORPO's odds exist only for average log-probabilities ≤ 0.
fn orpo_odds_defined(chosen: &[f64], rejected: &[f64]) -> Result<(), ConfigError> {
    match chosen.iter().zip(rejected).position(|(c, r)| *c > 0.0 || *r > 0.0) {
        Some(i) => Err(ConfigError::Invalid(format!(
            "row {}: ORPO needs log-probabilities ≤ 0 (odds are undefined above probability 1)",
            i + 1
        ))),
        None => Ok(()),
    }
}

/// The checks [`cpo`] and [`orpo`] make before computing (the GPU path runs them too).
pub(crate) fn check_reference_free(
    p: &PairLogps<'_>,
    beta: f64,
    needed_by: &str,
    orpo: bool,
) -> Result<(), ConfigError> {
    check_beta(beta)?;
    let (cl, rl) = p.lengths(needed_by)?;
    positive_lengths(cl, "chosen")?;
    positive_lengths(rl, "rejected")?;
    if orpo {
        orpo_odds_defined(&averaged(p.policy_chosen, cl), &averaged(p.policy_rejected, rl))?;
    }
    Ok(())
}

/// ORPO on token-averaged log-probs `lw, ll`: `log_odds = (lw − ll) − (log(1−e^lw) − log(1−e^ll))`,
/// loss `NLL(yw) − β·mean(logσ(log_odds))`.
pub fn orpo(p: &PairLogps<'_>, params: &OrpoParams) -> Result<Evaluation, ConfigError> {
    check_beta(params.beta)?;
    let (cl, rl) = p.lengths("orpo")?;
    positive_lengths(cl, "chosen")?;
    positive_lengths(rl, "rejected")?;
    let chosen = averaged(p.policy_chosen, cl);
    let rejected = averaged(p.policy_rejected, rl);
    orpo_odds_defined(&chosen, &rejected)?;
    let log_odds = par_map(chosen.len(), |i| orpo_log_odds(chosen[i], rejected[i]));
    let ratio = par_map(log_odds.len(), |i| log_sigmoid(log_odds[i]));
    let beta = params.beta;
    let nll = chosen_nll(p, cl);
    let mut metrics = BTreeMap::new();
    metrics.insert("nll_loss".into(), nll);
    metrics.insert("log_odds_ratio".into(), mean(&ratio));
    metrics.insert("log_odds_chosen".into(), mean(&log_odds));
    metrics.insert("loss".into(), nll - beta * mean(&ratio));
    let loss = ratio.iter().map(|r| nll - beta * r).collect();
    let rewards = |v: &[f64]| v.iter().map(|x| beta * x).collect();
    Ok(rewarded(rewards(&chosen), rewards(&rejected), loss, (&chosen, &rejected), metrics))
}
