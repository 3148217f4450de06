//! DPO-family objectives on exported log-probabilities, as TRL computes them.
//!
//! [`pairwise`] holds `DPOTrainer`'s loss types (combinable with weights); [`reference_free`]
//! holds CPO/SimPO and ORPO; [`unpaired`] holds KTO and BCO, which TRL trains on unpaired
//! examples and which prefscope feeds with each pair's chosen and rejected completions.
//! Every objective returns an [`Evaluation`]: per-pair values plus TRL-named metrics.

mod block;
pub mod compare;
mod divergence;
pub mod pairwise;
pub mod ranked;
pub mod reference_free;
pub mod unpaired;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{ConfigError, InputError};
use crate::io::record::{DpoTable, Side};

pub use compare::{compare, Comparison};
pub use divergence::FDivergence;
pub use pairwise::{LossType, PairwiseParams};
pub use reference_free::{CpoLoss, CpoParams, OrpoParams};
pub use unpaired::{BcoParams, KtoParams};

/// The sequence log-probabilities of a batch of pairs, as slices (the CPU twin of the GPU
/// buffers). Lengths are completion token counts, needed by the length-normalised losses.
#[derive(Debug, Clone, Copy)]
pub struct PairLogps<'a> {
    pub policy_chosen: &'a [f64],
    pub policy_rejected: &'a [f64],
    pub reference_chosen: &'a [f64],
    pub reference_rejected: &'a [f64],
    pub chosen_length: Option<&'a [f64]>,
    pub rejected_length: Option<&'a [f64]>,
}

impl PairLogps<'_> {
    pub fn len(&self) -> usize {
        self.policy_chosen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policy_chosen.is_empty()
    }

    fn lengths(&self, needed_by: &str) -> Result<(&[f64], &[f64]), ConfigError> {
        match (self.chosen_length, self.rejected_length) {
            (Some(c), Some(r)) => Ok((c, r)),
            _ => Err(ConfigError::Invalid(format!(
                "{needed_by} needs completion lengths (`chosen_length`/`rejected_length` or per-token arrays)"
            ))),
        }
    }
}

/// Lengths resolved from a table, kept alive beside the [`PairLogps`] that borrows them.
pub struct TableLogps<'a> {
    table: &'a DpoTable,
    chosen_length: Option<Vec<f64>>,
    rejected_length: Option<Vec<f64>>,
}

impl<'a> TableLogps<'a> {
    /// Resolves lengths when `needs_lengths` names a computation that uses them; an error
    /// then names the first row without one.
    pub fn new(table: &'a DpoTable, needs_lengths: Option<&str>) -> Result<Self, InputError> {
        let (chosen_length, rejected_length) = match needs_lengths {
            Some(by) => (Some(table.lengths(Side::Chosen, by)?), Some(table.lengths(Side::Rejected, by)?)),
            None => (None, None),
        };
        Ok(Self { table, chosen_length, rejected_length })
    }

    pub fn logps(&self) -> PairLogps<'_> {
        PairLogps {
            policy_chosen: &self.table.policy_chosen_logps,
            policy_rejected: &self.table.policy_rejected_logps,
            reference_chosen: &self.table.reference_chosen_logps,
            reference_rejected: &self.table.reference_rejected_logps,
            chosen_length: self.chosen_length.as_deref(),
            rejected_length: self.rejected_length.as_deref(),
        }
    }
}

/// Per-pair values, column-wise. `loss` is the pair's share of the batch loss: its mean over
/// pairs equals the `loss` metric (for batch-coupled losses such as AOT it is TRL's
/// per-position term, not attributable to one pair).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PairValues {
    pub chosen_reward: Vec<f64>,
    pub rejected_reward: Vec<f64>,
    pub margin: Vec<f64>,
    pub loss: Vec<f64>,
}

/// Result of one objective over a batch.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Evaluation {
    pub pairs: PairValues,
    /// TRL's metric names (`rewards/chosen`, …, `loss`) plus the objective's own.
    pub metrics: BTreeMap<String, f64>,
}

/// Any objective prefscope computes on DPO log-probabilities.
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    /// `DPOTrainer` loss types with weights: `Σ_k w_k · mean(loss_k)`.
    Pairwise {
        losses: Vec<(LossType, f64)>,
        params: PairwiseParams,
    },
    Cpo(CpoParams),
    Orpo(OrpoParams),
    Kto(KtoParams),
    Bco(BcoParams),
}

impl Objective {
    /// Names accepted by [`Objective::parse`], for help texts and selectors.
    pub fn names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = LossType::ALL.iter().map(|l| l.name()).collect();
        names.extend(["simpo", "cpo", "orpo", "kto", "bco"]);
        names
    }

    /// Parses a comma list of loss names with optional weights. Reference-free and unpaired
    /// objectives stand alone; `DPOTrainer` types combine.
    pub fn parse(list: &str, weights: Option<&[f64]>, params: PairwiseParams) -> Result<Self, ConfigError> {
        let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if names.is_empty() {
            return Err(ConfigError::Invalid("no loss type given".into()));
        }
        if let Some(w) = weights {
            if w.len() != names.len() {
                return Err(ConfigError::Invalid(format!("{} weights given for {} loss types", w.len(), names.len())));
            }
        }
        let standalone = |name: &str| -> Option<Objective> {
            let beta = params.beta;
            let label_smoothing = params.label_smoothing;
            Some(match name {
                "simpo" => Objective::Cpo(CpoParams { beta, label_smoothing, ..CpoParams::simpo() }),
                "cpo" => Objective::Cpo(CpoParams { beta, label_smoothing, ..CpoParams::default() }),
                "orpo" => Objective::Orpo(OrpoParams { beta }),
                "kto" => Objective::Kto(KtoParams { beta, ..KtoParams::default() }),
                "bco" => Objective::Bco(BcoParams { beta }),
                _ => return None,
            })
        };
        if let Some(first) = names.iter().find_map(|n| standalone(n)) {
            if names.len() > 1 {
                return Err(ConfigError::Invalid(format!(
                    "`{}` is its own trainer's objective and cannot be combined with other loss types",
                    names.iter().find(|n| standalone(n).is_some()).copied().unwrap_or_default()
                )));
            }
            return Ok(first);
        }
        let losses = names
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((LossType::parse(n)?, weights.map_or(1.0, |w| w[i]))))
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Objective::Pairwise { losses, params })
    }

    /// Which computation needs completion lengths, if any (for error messages).
    pub fn needs_lengths(&self) -> Option<&'static str> {
        match self {
            Objective::Pairwise { losses, .. } => losses.iter().find(|(l, _)| l.needs_lengths()).map(|(l, _)| l.name()),
            Objective::Cpo(p) => Some(if p.loss == CpoLoss::Simpo { "simpo" } else { "cpo" }),
            Objective::Orpo(_) => Some("orpo"),
            Objective::Kto(_) | Objective::Bco(_) => None,
        }
    }

    /// Checks settings and inputs as [`Objective::evaluate`] does, without computing; the GPU
    /// path runs the same checks so both refuse the same inputs with the same message.
    pub fn check(&self, p: &PairLogps<'_>) -> Result<(), ConfigError> {
        match self {
            Objective::Pairwise { losses, params } => {
                params.validate(losses)?;
                if losses.is_empty() {
                    return Err(ConfigError::Invalid("no loss type given".into()));
                }
                for (loss, _) in losses.iter().filter(|(l, _)| l.needs_lengths()) {
                    p.lengths(loss.name())?;
                }
                Ok(())
            }
            Objective::Cpo(c) => {
                check_label_smoothing(c.label_smoothing)?;
                reference_free::check_reference_free(
                    p,
                    c.beta,
                    if c.loss == CpoLoss::Simpo { "simpo" } else { "cpo" },
                    false,
                )
            }
            Objective::Orpo(o) => reference_free::check_reference_free(p, o.beta, "orpo", true),
            Objective::Kto(k) => check_beta(k.beta),
            Objective::Bco(b) => check_beta(b.beta),
        }
    }

    /// Evaluates the objective on a table (lengths and KTO's KL columns are taken from it).
    pub fn evaluate(&self, table: &DpoTable) -> Result<Evaluation, ConfigError> {
        let resolved = TableLogps::new(table, self.needs_lengths())?;
        let kl = match self {
            Objective::Kto(_) => unpaired::kl_from_table(table)?,
            _ => 0.0,
        };
        self.evaluate_pairs(&resolved.logps(), kl)
    }

    /// Evaluates the objective on log-probability columns; `kl` is KTO's KL estimate (unused
    /// by the other objectives).
    pub fn evaluate_pairs(&self, pairs: &PairLogps<'_>, kl: f64) -> Result<Evaluation, ConfigError> {
        match self {
            Objective::Pairwise { losses, params } => pairwise::evaluate(pairs, losses, params),
            Objective::Cpo(p) => reference_free::cpo(pairs, p),
            Objective::Orpo(p) => reference_free::orpo(pairs, p),
            Objective::Kto(p) => unpaired::kto(pairs, kl, p),
            Objective::Bco(p) => unpaired::bco(pairs, p),
        }
    }
}

/// Refuses a β that is not a positive number (every objective divides by or scales with it).
pub fn check_beta(beta: f64) -> Result<(), ConfigError> {
    if beta.is_finite() && beta > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!("beta must be a positive number, got {beta}")))
    }
}

/// TRL's domain of `label_smoothing` ("should be between 0.0 and 0.5"): the robust loss
/// divides by 1 − 2ε, and past 0.5 the smoothed losses prefer the rejected completion.
pub fn check_label_smoothing(eps: f64) -> Result<(), ConfigError> {
    if (0.0..0.5).contains(&eps) {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!("label_smoothing must lie in [0, 0.5) (TRL divides by 1 − 2ε), got {eps}")))
    }
}

/// Per-pair rewards and losses plus TRL's reward metrics (with `loss` and any extra metrics
/// already in `metrics`), as every reward-based objective reports them.
pub(crate) fn rewarded(
    chosen_reward: Vec<f64>,
    rejected_reward: Vec<f64>,
    loss: Vec<f64>,
    logps: (&[f64], &[f64]),
    mut metrics: BTreeMap<String, f64>,
) -> Evaluation {
    reward_metrics(&mut metrics, &chosen_reward, &rejected_reward, logps.0, logps.1);
    let margin = chosen_reward.iter().zip(&rejected_reward).map(|(c, r)| c - r).collect();
    Evaluation { pairs: PairValues { chosen_reward, rejected_reward, margin, loss }, metrics }
}

/// The TRL metrics every reward-based objective logs, from per-pair rewards and log-probs.
pub(crate) fn reward_metrics(
    metrics: &mut BTreeMap<String, f64>,
    chosen_reward: &[f64],
    rejected_reward: &[f64],
    logps_chosen: &[f64],
    logps_rejected: &[f64],
) {
    use crate::numeric::{mean, mean_of};
    let n = chosen_reward.len();
    let correct = mean_of(n, |i| f64::from(u8::from(chosen_reward[i] > rejected_reward[i])));
    metrics.insert("rewards/chosen".into(), mean(chosen_reward));
    metrics.insert("rewards/rejected".into(), mean(rejected_reward));
    metrics.insert("rewards/accuracies".into(), correct);
    metrics.insert("rewards/margins".into(), mean_of(n, |i| chosen_reward[i] - rejected_reward[i]));
    metrics.insert("logps/chosen".into(), mean(logps_chosen));
    metrics.insert("logps/rejected".into(), mean(logps_rejected));
}

/// [`reward_metrics`] straight from log-probs (rewards `β·Δ`), without materialising rewards.
pub(crate) fn reward_metrics_of(metrics: &mut BTreeMap<String, f64>, beta: f64, p: &PairLogps<'_>) {
    use crate::numeric::{mean, mean_of};
    let n = p.len();
    let c = |i: usize| beta * (p.policy_chosen[i] - p.reference_chosen[i]);
    let r = |i: usize| beta * (p.policy_rejected[i] - p.reference_rejected[i]);
    metrics.insert("rewards/chosen".into(), mean_of(n, c));
    metrics.insert("rewards/rejected".into(), mean_of(n, r));
    metrics.insert("rewards/accuracies".into(), mean_of(n, |i| f64::from(u8::from(c(i) > r(i)))));
    metrics.insert("rewards/margins".into(), mean_of(n, |i| c(i) - r(i)));
    metrics.insert("logps/chosen".into(), mean(p.policy_chosen));
    metrics.insert("logps/rejected".into(), mean(p.policy_rejected));
}
