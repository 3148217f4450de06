//! KTO (TRL 1.16 `KTOTrainer`) and BCO (TRL 0.28 `BCOTrainer`), which learn from unpaired
//! desirable/undesirable examples. A pair contributes its chosen completion as desirable and
//! its rejected one as undesirable; the batch loss is the mean over all `2N` examples, and a
//! pair's `loss` is the mean of its two terms so that pair losses still average to it.

use std::collections::BTreeMap;

use super::{check_beta, Evaluation, PairLogps, PairValues};
use crate::error::{ConfigError, ErrorKind, InputError, Location};
use crate::io::record::DpoTable;
use crate::numeric::{log_sigmoid, mean, par_map, sigmoid};

/// `KTOConfig` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KtoParams {
    pub beta: f64,
    pub desirable_weight: f64,
    pub undesirable_weight: f64,
}

impl Default for KtoParams {
    fn default() -> Self {
        Self { beta: 0.1, desirable_weight: 1.0, undesirable_weight: 1.0 }
    }
}

/// `BCOConfig` default β.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BcoParams {
    pub beta: f64,
}

impl Default for BcoParams {
    fn default() -> Self {
        Self { beta: 0.1 }
    }
}

/// KTO's KL estimate `max(0, mean(logπ(KL) − logπref(KL)))` from the optional
/// `policy_kl_logps`/`reference_kl_logps` columns; 0 when the input has neither (TRL's
/// behaviour without a KL pass). A row with only one of the two is an error.
pub fn kl_from_table(table: &DpoTable) -> Result<f64, InputError> {
    let mut diffs = Vec::new();
    for (i, (p, r)) in table.policy_kl_logps.iter().zip(table.reference_kl_logps.iter()).enumerate() {
        match (p, r) {
            (Some(p), Some(r)) => diffs.push(p - r),
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                let missing = if p.is_none() { "policy_kl_logps" } else { "reference_kl_logps" };
                return Err(InputError::new(
                    Location::file(&table.source).row(i as u64 + 1).column(missing),
                    ErrorKind::MissingValue,
                ));
            }
        }
    }
    if diffs.is_empty() {
        return Ok(0.0);
    }
    if diffs.len() != table.len() {
        let row = table.policy_kl_logps.iter().position(|v| v.is_none()).unwrap_or(0);
        return Err(InputError::new(
            Location::file(&table.source).row(row as u64 + 1).column("policy_kl_logps"),
            ErrorKind::MissingValue,
        ));
    }
    Ok(mean(&diffs).max(0.0))
}

fn logratios(p: &PairLogps<'_>) -> (Vec<f64>, Vec<f64>) {
    (
        p.policy_chosen.iter().zip(p.reference_chosen).map(|(a, b)| a - b).collect(),
        p.policy_rejected.iter().zip(p.reference_rejected).map(|(a, b)| a - b).collect(),
    )
}

fn finish(
    beta: f64,
    p: &PairLogps<'_>,
    chosen_lr: &[f64],
    rejected_lr: &[f64],
    chosen_losses: &[f64],
    rejected_losses: &[f64],
    mut metrics: BTreeMap<String, f64>,
) -> Evaluation {
    let chosen_reward: Vec<f64> = chosen_lr.iter().map(|x| beta * x).collect();
    let rejected_reward: Vec<f64> = rejected_lr.iter().map(|x| beta * x).collect();
    let loss: Vec<f64> = chosen_losses.iter().zip(rejected_losses).map(|(c, r)| 0.5 * (c + r)).collect();
    let (mc, mr) = (mean(&chosen_reward), mean(&rejected_reward));
    metrics.insert("rewards/chosen".into(), mc);
    metrics.insert("rewards/rejected".into(), mr);
    metrics.insert("rewards/margins".into(), mc - mr);
    metrics.insert("logps/chosen".into(), mean(p.policy_chosen));
    metrics.insert("logps/rejected".into(), mean(p.policy_rejected));
    // Mean over all 2N examples (N each side).
    metrics.insert("loss".into(), 0.5 * (mean(chosen_losses) + mean(rejected_losses)));
    let margin = chosen_reward.iter().zip(&rejected_reward).map(|(c, r)| c - r).collect();
    Evaluation { pairs: PairValues { chosen_reward, rejected_reward, margin, loss }, metrics }
}

/// KTO's desirable and undesirable terms for one pair's log-ratios.
#[inline(always)]
pub(crate) fn kto_terms(params: &KtoParams, chosen: f64, rejected: f64, kl: f64) -> (f64, f64) {
    let beta = params.beta;
    (
        params.desirable_weight * sigmoid(-beta * (chosen - kl)),
        params.undesirable_weight * sigmoid(-beta * (kl - rejected)),
    )
}

/// BCO's reward shift: the mean of all chosen and rejected rewards.
pub(crate) fn bco_delta(beta: f64, chosen: &[f64], rejected: &[f64]) -> f64 {
    0.5 * beta * (mean(chosen) + mean(rejected))
}

/// BCO's two terms for one pair's log-ratios.
#[inline(always)]
pub(crate) fn bco_terms(beta: f64, chosen: f64, rejected: f64, delta: f64) -> (f64, f64) {
    (-log_sigmoid(beta * chosen - delta), -log_sigmoid(-(beta * rejected - delta)))
}

/// KTO: desirable `1 − σ(β(Δ − z0))`, undesirable `1 − σ(β(z0 − Δ))`, weighted.
pub fn kto(p: &PairLogps<'_>, kl: f64, params: &KtoParams) -> Result<Evaluation, ConfigError> {
    check_beta(params.beta)?;
    let beta = params.beta;
    let (c, r) = logratios(p);
    let chosen_losses = par_map(c.len(), |i| kto_terms(params, c[i], r[i], kl).0);
    let rejected_losses = par_map(r.len(), |i| kto_terms(params, c[i], r[i], kl).1);
    let mut metrics = BTreeMap::new();
    metrics.insert("kl".into(), kl);
    Ok(finish(beta, p, &c, &r, &chosen_losses, &rejected_losses, metrics))
}

/// BCO with the reward shift `μ` = mean of all chosen and rejected rewards in the batch (the
/// running mean after its first update): `−logσ(βΔw − μ)` and `−logσ(−(βΔl − μ))`.
pub fn bco(p: &PairLogps<'_>, params: &BcoParams) -> Result<Evaluation, ConfigError> {
    check_beta(params.beta)?;
    let beta = params.beta;
    let (c, r) = logratios(p);
    let delta = bco_delta(beta, &c, &r);
    let chosen_losses = par_map(c.len(), |i| bco_terms(beta, c[i], r[i], delta).0);
    let rejected_losses = par_map(r.len(), |i| bco_terms(beta, c[i], r[i], delta).1);
    let mut metrics = BTreeMap::new();
    metrics.insert("delta".into(), delta);
    Ok(finish(beta, p, &c, &r, &chosen_losses, &rejected_losses, metrics))
}
