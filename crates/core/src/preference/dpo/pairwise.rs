//! `DPOTrainer`'s loss types (TRL 1.16 `_compute_loss`), plus TRL ≤ 0.28's label-smoothed
//! sigmoid ("cDPO") under its own name.

use std::collections::BTreeMap;

use super::block::{blocks, each, Needs, PairBlock, BLOCK};
use super::divergence::FDivergence;
use super::{rewarded, Evaluation, PairLogps};
use crate::error::ConfigError;
use crate::lanes::{self, Kernel};
use crate::numeric::{log_sigmoid, mean, par_chunks, par_map, sigmoid, sum, Logistic};

/// A `DPOTrainer` loss type, by TRL's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossType {
    Sigmoid,
    Hinge,
    Ipo,
    ExoPair,
    NcaPair,
    Robust,
    BcoPair,
    SppoHard,
    Aot,
    AotUnpaired,
    ApoZero,
    ApoDown,
    Discopop,
    Sft,
    SigmoidNorm,
    /// TRL ≤ 0.28's sigmoid with label smoothing: `−(1−ε)logσ(βδ) − ε·logσ(−βδ)`.
    Cdpo,
}

impl LossType {
    pub const ALL: &'static [LossType] = &[
        LossType::Sigmoid,
        LossType::Hinge,
        LossType::Ipo,
        LossType::ExoPair,
        LossType::NcaPair,
        LossType::Robust,
        LossType::BcoPair,
        LossType::SppoHard,
        LossType::Aot,
        LossType::AotUnpaired,
        LossType::ApoZero,
        LossType::ApoDown,
        LossType::Discopop,
        LossType::Sft,
        LossType::SigmoidNorm,
        LossType::Cdpo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LossType::Sigmoid => "sigmoid",
            LossType::Hinge => "hinge",
            LossType::Ipo => "ipo",
            LossType::ExoPair => "exo_pair",
            LossType::NcaPair => "nca_pair",
            LossType::Robust => "robust",
            LossType::BcoPair => "bco_pair",
            LossType::SppoHard => "sppo_hard",
            LossType::Aot => "aot",
            LossType::AotUnpaired => "aot_unpaired",
            LossType::ApoZero => "apo_zero",
            LossType::ApoDown => "apo_down",
            LossType::Discopop => "discopop",
            LossType::Sft => "sft",
            LossType::SigmoidNorm => "sigmoid_norm",
            LossType::Cdpo => "cdpo",
        }
    }

    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        LossType::ALL
            .iter()
            .copied()
            .find(|l| l.name() == name)
            .ok_or_else(|| ConfigError::UnknownLoss(name.to_string()))
    }

    /// Loss types that divide by completion lengths (TRL reads them from the completion mask).
    pub fn needs_lengths(self) -> bool {
        matches!(self, LossType::Ipo | LossType::SigmoidNorm | LossType::Sft)
    }

    /// Loss types whose per-pair term depends on the whole batch.
    pub fn is_batch_coupled(self) -> bool {
        matches!(self, LossType::Aot | LossType::AotUnpaired | LossType::Sft)
    }

    /// Loss types TRL allows with an f-divergence other than reverse KL.
    fn allows_f_divergence(self) -> bool {
        matches!(
            self,
            LossType::Sigmoid
                | LossType::SigmoidNorm
                | LossType::Hinge
                | LossType::Ipo
                | LossType::ExoPair
                | LossType::Robust
                | LossType::Discopop
                | LossType::Sft
                | LossType::Cdpo
        )
    }
}

/// Parameters shared by the pairwise loss types (TRL's `DPOConfig` defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairwiseParams {
    pub beta: f64,
    pub label_smoothing: f64,
    pub f_divergence: FDivergence,
    pub discopop_tau: f64,
}

impl Default for PairwiseParams {
    fn default() -> Self {
        Self { beta: 0.1, label_smoothing: 0.0, f_divergence: FDivergence::ReverseKl, discopop_tau: 0.05 }
    }
}

impl PairwiseParams {
    pub(crate) fn validate(&self, losses: &[(LossType, f64)]) -> Result<(), ConfigError> {
        let eps = self.label_smoothing;
        super::check_beta(self.beta)?;
        super::check_label_smoothing(eps)?;
        if !self.discopop_tau.is_finite() || self.discopop_tau <= 0.0 {
            return Err(ConfigError::Invalid(format!(
                "discopop_tau must be a positive number, got {}",
                self.discopop_tau
            )));
        }
        for &(loss, weight) in losses {
            if !weight.is_finite() {
                return Err(ConfigError::Invalid(format!("weight of `{}` is not finite", loss.name())));
            }
            if self.f_divergence != FDivergence::ReverseKl && !loss.allows_f_divergence() {
                return Err(ConfigError::Invalid(format!(
                    "`{}` supports only the reverse-KL f-divergence (as in TRL)",
                    loss.name()
                )));
            }
            if loss == LossType::ExoPair && eps == 0.0 {
                return Err(ConfigError::Invalid("`exo_pair` needs label_smoothing > 0 (TRL uses 1e-3)".into()));
            }
        }
        Ok(())
    }
}

impl LossType {
    /// The shared logistic columns of a [`PairBlock`] this type reads.
    pub(crate) fn needs(self, f: FDivergence) -> Needs {
        let (margin, chosen, rejected) = match self {
            LossType::Sigmoid | LossType::Cdpo | LossType::Robust | LossType::ExoPair | LossType::Discopop => {
                (true, false, false)
            }
            LossType::NcaPair | LossType::BcoPair | LossType::ApoZero => (false, true, true),
            LossType::ApoDown => (f == FDivergence::ReverseKl, true, false),
            _ => (false, false, false),
        };
        Needs { margin, chosen, rejected }
    }

    /// The loss of each pair of a block (padding included), loaded with [`LossType::needs`],
    /// for types whose value depends on that pair alone; `NaN` for the batch-coupled `aot`,
    /// `aot_unpaired` and `sft`.
    #[inline(always)]
    pub(crate) fn block_losses(self, b: &PairBlock, params: &PairwiseParams, out: &mut [f64; BLOCK]) {
        let (beta, eps) = (params.beta, params.label_smoothing);
        let (m, c, r) = (&b.margin, &b.chosen_logistic, &b.rejected_logistic);
        match self {
            LossType::Sigmoid => each(
                out,
                #[inline(always)]
                |j| -m.log_sig[j],
            ),
            LossType::Cdpo => each(
                out,
                #[inline(always)]
                |j| -(1.0 - eps) * m.log_sig[j] - eps * m.log_sig_neg[j],
            ),
            LossType::Hinge => each(
                out,
                #[inline(always)]
                |j| (1.0 - beta * b.margin(j)).max(0.0),
            ),
            LossType::Robust => each(
                out,
                #[inline(always)]
                |j| (-(1.0 - eps) * m.log_sig[j] + eps * m.log_sig_neg[j]) / (1.0 - 2.0 * eps),
            ),
            LossType::ExoPair => {
                let (keep, flip) = ((-eps).ln_1p(), eps.ln());
                each(
                    out,
                    #[inline(always)]
                    |j| m.sig[j] * (m.log_sig[j] - keep) + m.sig_neg[j] * (m.log_sig_neg[j] - flip),
                )
            }
            LossType::Discopop => {
                let tau = params.discopop_tau;
                // (1 − s)·(−logσ z) + s·e^(−z) with s = σ(z/τ); the second term as
                // exp(logσ(z/τ) − z) stays finite where TRL's 0·∞ gives NaN (z ≪ 0).
                each(
                    out,
                    #[inline(always)]
                    |j| {
                        let s = Logistic::of(beta * b.margin(j) / tau);
                        s.sig_neg * -m.log_sig[j] + lanes::exp(s.log_sig - beta * b.margin(j))
                    },
                )
            }
            LossType::NcaPair => each(
                out,
                #[inline(always)]
                |j| -c.log_sig[j] - 0.5 * c.log_sig_neg[j] - 0.5 * r.log_sig_neg[j],
            ),
            LossType::BcoPair => each(
                out,
                #[inline(always)]
                |j| -c.log_sig[j] - r.log_sig_neg[j],
            ),
            LossType::SppoHard => each(
                out,
                #[inline(always)]
                |j| (b.chosen[j] - 0.5 / beta).powi(2) + (b.rejected[j] + 0.5 / beta).powi(2),
            ),
            LossType::ApoZero => each(
                out,
                #[inline(always)]
                |j| c.sig_neg[j] + r.sig[j],
            ),
            // σ(−β(Δw − Δl)) is σ(−x) when scores are the log-ratios themselves.
            LossType::ApoDown if params.f_divergence == FDivergence::ReverseKl => each(
                out,
                #[inline(always)]
                |j| c.sig[j] + m.sig_neg[j],
            ),
            LossType::ApoDown => each(
                out,
                #[inline(always)]
                |j| c.sig[j] + sigmoid(-beta * (b.chosen[j] - b.rejected[j])),
            ),
            LossType::Ipo => each(
                out,
                #[inline(always)]
                |j| (b.average_margin(j) - 1.0 / (2.0 * beta)).powi(2),
            ),
            LossType::SigmoidNorm => each(
                out,
                #[inline(always)]
                |j| -log_sigmoid(beta * b.average_margin(j)),
            ),
            LossType::Aot | LossType::AotUnpaired | LossType::Sft => each(
                out,
                #[inline(always)]
                |_| f64::NAN,
            ),
        }
    }
}

/// `−(1−ε)logσ(x) − ε·logσ(−x)`: the label-smoothed sigmoid (cDPO, AOT).
#[inline(always)]
fn smoothed(x: f64, eps: f64) -> f64 {
    let l = Logistic::of(x);
    -(1.0 - eps) * l.log_sig - eps * l.log_sig_neg
}

/// `smoothed(β(a_i − b_i))` for each position: AOT's losses on its sorted columns.
struct Smoothed<'a> {
    a: &'a [f64],
    b: &'a [f64],
    beta: f64,
    eps: f64,
}

impl Kernel for Smoothed<'_> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run(self) -> Vec<f64> {
        let mut out = vec![0.0; self.a.len()];
        for ((o, a), b) in out.iter_mut().zip(self.a).zip(self.b) {
            *o = smoothed(self.beta * (a - b), self.eps);
        }
        out
    }
}

/// Per-position losses of the batch-coupled types.
pub(crate) fn coupled_losses(
    loss: LossType,
    p: &PairLogps<'_>,
    params: &PairwiseParams,
) -> Result<Vec<f64>, ConfigError> {
    let n = p.len();
    let (beta, eps) = (params.beta, params.label_smoothing);
    Ok(match loss {
        LossType::Aot | LossType::AotUnpaired => {
            let (mut a, mut b): (Vec<f64>, Vec<f64>) = if loss == LossType::Aot {
                (
                    (0..n).map(|i| p.policy_chosen[i] - p.policy_rejected[i]).collect(),
                    (0..n).map(|i| p.reference_chosen[i] - p.reference_rejected[i]).collect(),
                )
            } else {
                (
                    (0..n).map(|i| p.policy_chosen[i] - p.reference_chosen[i]).collect(),
                    (0..n).map(|i| p.policy_rejected[i] - p.reference_rejected[i]).collect(),
                )
            };
            sort_both(&mut a, &mut b);
            let (a, b) = (&a, &b);
            par_chunks(n, |rows| lanes::dispatch(Smoothed { a: &a[rows.clone()], b: &b[rows], beta, eps })).concat()
        }
        LossType::Sft => vec![sft_nll(p)?; n],
        other => return Err(ConfigError::Invalid(format!("`{}` is not batch-coupled", other.name()))),
    })
}

/// TRL's `sft` term: the token mean of the chosen completions' NLL over the batch.
pub(crate) fn sft_nll(p: &PairLogps<'_>) -> Result<f64, ConfigError> {
    let (cl, _) = p.lengths("sft")?;
    let tokens = sum(cl);
    Ok(if tokens > 0.0 { -sum(p.policy_chosen) / tokens } else { f64::NAN })
}

/// Per-pair losses of one type.
fn per_pair(loss: LossType, p: &PairLogps<'_>, params: &PairwiseParams) -> Result<Vec<f64>, ConfigError> {
    if loss.is_batch_coupled() {
        return coupled_losses(loss, p, params);
    }
    if loss.needs_lengths() {
        p.lengths(loss.name())?;
    }
    let parts = par_chunks(p.len(), |rows| lanes::dispatch(PairLosses { loss, p, params, rows }));
    Ok(parts.concat())
}

/// One loss type's per-pair values over a range of pairs, a block at a time.
struct PairLosses<'a, 'p> {
    loss: LossType,
    p: &'a PairLogps<'p>,
    params: &'a PairwiseParams,
    rows: std::ops::Range<usize>,
}

impl Kernel for PairLosses<'_, '_> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run(self) -> Vec<f64> {
        let mut values = Vec::with_capacity(self.rows.len());
        let mut block = PairBlock::new();
        let mut out = [0.0; BLOCK];
        let (f, beta) = (self.params.f_divergence, self.params.beta);
        for rows in blocks(self.rows) {
            block.load(self.p, rows, f, beta, self.loss.needs(f));
            self.loss.block_losses(&block, self.params, &mut out);
            values.extend_from_slice(&out[..block.len]);
        }
        values
    }
}

/// Sorts two columns ascending (as `torch.sort`; the inputs are finite). Natively by radix
/// sort (voracious_radix_sort: 22–37 ms for a million floats here, against 40–60 ms for the
/// standard library's sort), the two on two threads; in the browser with the standard sort.
#[cfg(not(target_arch = "wasm32"))]
fn sort_both(a: &mut [f64], b: &mut [f64]) {
    use voracious_radix_sort::RadixSort;
    if a.len() < 1 << 16 {
        a.voracious_sort();
        b.voracious_sort();
        return;
    }
    std::thread::scope(|s| {
        s.spawn(|| a.voracious_sort());
        b.voracious_sort();
    });
}

#[cfg(target_arch = "wasm32")]
fn sort_both(a: &mut [f64], b: &mut [f64]) {
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
}

/// Evaluates a weighted combination of pairwise loss types: per-pair `Σ_k w_k·loss_k` and
/// the batch loss `Σ_k w_k·mean(loss_k)`, with TRL's reward metrics.
pub fn evaluate(
    p: &PairLogps<'_>,
    losses: &[(LossType, f64)],
    params: &PairwiseParams,
) -> Result<Evaluation, ConfigError> {
    params.validate(losses)?;
    if losses.is_empty() {
        return Err(ConfigError::Invalid("no loss type given".into()));
    }
    let n = p.len();
    let mut pair_loss = vec![0.0; n];
    let mut metrics = BTreeMap::new();
    let mut total = 0.0;
    for &(loss, weight) in losses {
        let values = per_pair(loss, p, params)?;
        let m = mean(&values);
        total += m * weight;
        if losses.len() > 1 {
            metrics.insert(format!("loss/{}", loss.name()), m);
        }
        for (acc, v) in pair_loss.iter_mut().zip(&values) {
            *acc += weight * v;
        }
    }
    let beta = params.beta;
    let chosen_reward = par_map(n, |i| beta * (p.policy_chosen[i] - p.reference_chosen[i]));
    let rejected_reward = par_map(n, |i| beta * (p.policy_rejected[i] - p.reference_rejected[i]));
    metrics.insert("loss".into(), total);
    Ok(rewarded(chosen_reward, rejected_reward, pair_loss, (p.policy_chosen, p.policy_rejected), metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs<'a>(pc: &'a [f64], pr: &'a [f64], rc: &'a [f64], rr: &'a [f64]) -> PairLogps<'a> {
        PairLogps {
            policy_chosen: pc,
            policy_rejected: pr,
            reference_chosen: rc,
            reference_rejected: rr,
            chosen_length: None,
            rejected_length: None,
        }
    }

    #[test]
    fn extreme_margins_stay_finite_for_every_type() {
        // βδ = ±1e4 with β = 0.1.
        let pc = [5e4, -5e4];
        let pr = [-5e4, 5e4];
        let z = [0.0, 0.0];
        let lens = [10.0, 10.0];
        let mut p = pairs(&pc, &pr, &z, &z);
        p.chosen_length = Some(&lens);
        p.rejected_length = Some(&lens);
        let params = PairwiseParams { label_smoothing: 0.1, ..PairwiseParams::default() };
        for &loss in LossType::ALL {
            let e = evaluate(&p, &[(loss, 1.0)], &params).unwrap();
            assert!(e.pairs.loss.iter().all(|v| v.is_finite()), "{loss:?}: {:?}", e.pairs.loss);
        }
        let e = evaluate(&p, &[(LossType::Sigmoid, 1.0)], &params).unwrap();
        assert_eq!(e.pairs.loss, vec![0.0, 1e4]);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let z = [0.0];
        let p = pairs(&z, &z, &z, &z);
        let base = PairwiseParams::default();
        assert!(evaluate(&p, &[(LossType::ExoPair, 1.0)], &base).is_err());
        let half = PairwiseParams { label_smoothing: 0.5, ..base };
        assert!(evaluate(&p, &[(LossType::Robust, 1.0)], &half).is_err());
        let fkl = PairwiseParams { f_divergence: FDivergence::ForwardKl, ..base };
        assert!(evaluate(&p, &[(LossType::NcaPair, 1.0)], &fkl).is_err());
        assert!(evaluate(&p, &[(LossType::Ipo, 1.0)], &base).is_err(), "ipo without lengths");
        let zero_beta = PairwiseParams { beta: 0.0, ..base };
        assert!(evaluate(&p, &[(LossType::Sigmoid, 1.0)], &zero_beta).is_err());
    }

    #[test]
    fn combined_loss_is_weighted_sum_of_means() {
        let pc = [-3.0, -7.5, -1.0];
        let pr = [-4.0, -2.0, -9.0];
        let rc = [-3.5, -7.0, -2.0];
        let rr = [-3.0, -3.0, -8.0];
        let p = pairs(&pc, &pr, &rc, &rr);
        let params = PairwiseParams::default();
        let a = evaluate(&p, &[(LossType::Sigmoid, 1.0)], &params).unwrap().metrics["loss"];
        let b = evaluate(&p, &[(LossType::Hinge, 1.0)], &params).unwrap().metrics["loss"];
        let c = evaluate(&p, &[(LossType::Sigmoid, 0.8), (LossType::Hinge, 0.2)], &params).unwrap();
        assert!((c.metrics["loss"] - (0.8 * a + 0.2 * b)).abs() < 1e-12);
        assert!((mean(&c.pairs.loss) - c.metrics["loss"]).abs() < 1e-12);
    }
}
