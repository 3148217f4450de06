//! KTO (TRL 1.16 `KTOTrainer`) and BCO (TRL 0.28 `BCOTrainer`), which learn from unpaired
//! desirable/undesirable examples. On pairs, a pair contributes its chosen completion as
//! desirable and its rejected one as undesirable; the batch loss is the mean over all `2N`
//! examples, and a pair's `loss` is the mean of its two terms so that pair losses still average
//! to it. On unpaired rows (TRL's own layout, [`kto_rows`]) KTO is computed per evaluation
//! batch, as `KTOTrainer` evaluates.

use std::collections::{BTreeMap, HashMap};

use super::{check_beta, Evaluation, Objective, PairLogps, PairValues};
use crate::error::{ConfigError, ErrorKind, InputError, Location};
use crate::io::record::{DpoTable, UnpairedTable};
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

/// The rows of each batch (by the `batch` column, in order of first appearance; the whole
/// table is one batch without it).
pub fn batches(table: &UnpairedTable) -> Vec<Vec<usize>> {
    if !table.batch.any() {
        return if table.is_empty() { Vec::new() } else { vec![(0..table.len()).collect()] };
    }
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, b) in table.batch.iter().enumerate() {
        let b = b.copied().unwrap_or_default();
        let k = *index.entry(b).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[k].push(i);
    }
    groups
}

/// The objective on unpaired rows: KTO, or an error naming the file and the losses that apply
/// (every other loss compares a chosen with a rejected completion of one prompt).
pub fn evaluate_rows(table: &UnpairedTable, objective: &Objective, name: &str) -> Result<Evaluation, ConfigError> {
    match objective {
        Objective::Kto(params) => kto_rows(table, params),
        _ => Err(InputError::new(
            Location::file(&table.source),
            ErrorKind::InvalidValue(format!(
                "this file holds unpaired rows (`completion`, `label`, `policy_logps`), which only `--loss kto` \
                 takes; `{}` needs pairs (`policy_chosen_logps`, `policy_rejected_logps`, …)",
                name.trim()
            )),
        )
        .into()),
    }
}

/// KTO on unpaired rows as TRL 1.16's `KTOTrainer._compute_loss` evaluates a batch, and as its
/// `log` and `Trainer.evaluation_loop` combine the batches:
///
/// * per batch `b`: `KL_b = max(0, mean_{i∈b}(kl_policy_logps_i − kl_reference_logps_i))` (0
///   without those columns); a desirable row's term `w_d·(1 − σ(β(Δ_i − KL_b)))`, an undesirable
///   row's `w_u·(1 − σ(β(KL_b − Δ_i)))`, with `Δ_i = policy_logps_i − reference_logps_i`;
///   `rewards/chosen` the mean of `βΔ` over the batch's desirable rows, `logps/chosen` the mean of
///   their `policy_logps` (both only when the batch has one), the same for `rejected`, and
///   `rewards/margins` their difference when the batch has both kinds;
/// * `kl`, `rewards/*`, `logps/*`: the mean over the batches that logged them; `loss`: the mean
///   of the batch losses weighted by batch size, that is the mean of every row's term.
///
/// Per row: `margin = β(Δ − KL_b)` (σ(margin) is KTO's probability that the row is desirable:
/// a desirable row's term is `w_d·σ(−margin)`, an undesirable one's `w_u·σ(margin)`),
/// `chosen_reward = βΔ` for desirable rows and `rejected_reward = βΔ` for undesirable ones (NaN
/// on the other side), `loss` its weighted term.
pub fn kto_rows(table: &UnpairedTable, params: &KtoParams) -> Result<Evaluation, ConfigError> {
    check_beta(params.beta)?;
    table.check()?;
    let beta = params.beta;
    let n = table.len();
    let delta: Vec<f64> = table.policy_logps.iter().zip(&table.reference_logps).map(|(p, r)| p - r).collect();
    let with_kl = table.kl_policy_logps.any();
    let mut pairs = PairValues {
        chosen_reward: vec![f64::NAN; n],
        rejected_reward: vec![f64::NAN; n],
        margin: vec![0.0; n],
        loss: vec![0.0; n],
    };
    let mut logged: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for rows in batches(table) {
        let kl = if with_kl {
            let diffs: Vec<f64> = rows
                .iter()
                .map(|&i| {
                    table.kl_policy_logps.get(i).copied().unwrap_or(f64::NAN)
                        - table.kl_reference_logps.get(i).copied().unwrap_or(f64::NAN)
                })
                .collect();
            mean(&diffs).max(0.0)
        } else {
            0.0
        };
        logged.entry("kl").or_default().push(kl);
        let (mut chosen, mut rejected) = (Vec::new(), Vec::new());
        for &i in &rows {
            let margin = beta * (delta[i] - kl);
            pairs.margin[i] = margin;
            if table.label[i] {
                pairs.chosen_reward[i] = beta * delta[i];
                pairs.loss[i] = params.desirable_weight * sigmoid(-margin);
                chosen.push(i);
            } else {
                pairs.rejected_reward[i] = beta * delta[i];
                pairs.loss[i] = params.undesirable_weight * sigmoid(margin);
                rejected.push(i);
            }
        }
        let side_means = |side: &[usize], rewards: &[f64]| {
            let reward: Vec<f64> = side.iter().map(|&i| rewards[i]).collect();
            let logps: Vec<f64> = side.iter().map(|&i| table.policy_logps[i]).collect();
            (mean(&reward), mean(&logps))
        };
        let (mut chosen_reward, mut rejected_reward) = (None, None);
        if !chosen.is_empty() {
            let (r, l) = side_means(&chosen, &pairs.chosen_reward);
            logged.entry("rewards/chosen").or_default().push(r);
            logged.entry("logps/chosen").or_default().push(l);
            chosen_reward = Some(r);
        }
        if !rejected.is_empty() {
            let (r, l) = side_means(&rejected, &pairs.rejected_reward);
            logged.entry("rewards/rejected").or_default().push(r);
            logged.entry("logps/rejected").or_default().push(l);
            rejected_reward = Some(r);
        }
        if let (Some(c), Some(r)) = (chosen_reward, rejected_reward) {
            logged.entry("rewards/margins").or_default().push(c - r);
        }
    }
    let mut metrics: BTreeMap<String, f64> = logged.iter().map(|(k, v)| (k.to_string(), mean(v))).collect();
    metrics.insert("loss".into(), mean(&pairs.loss));
    Ok(Evaluation { pairs, metrics })
}
