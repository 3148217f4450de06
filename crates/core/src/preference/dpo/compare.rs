//! Every objective at once: the batch loss of each named objective from one fused pass over
//! the pairs (plus the sorts of the AOT types), and the shared reward and ranking metrics.
//! This is what the "compare objectives" table shows and what `cargo xtask bench` times; each
//! value equals [`Objective::evaluate`]'s `loss` for the same objective (tested).

use std::collections::BTreeMap;
use std::ops::Range;

use super::block::{blocks, each, Needs, PairBlock, BLOCK};
use super::pairwise::{coupled_losses, sft_nll};
use super::reference_free::{chosen_nll, cpo_averages, cpo_pair_loss, orpo_log_odds};
use super::unpaired::{bco_delta, bco_terms, kl_from_table, kto_terms};
use super::{reward_metrics_of, LossType, Objective, PairLogps, PairwiseParams, TableLogps};
use crate::error::ConfigError;
use crate::io::record::DpoTable;
use crate::lanes::{self, Kernel};
use crate::numeric::{log_sigmoid, mean, par_chunks};
use crate::preference::ranking;

/// Batch losses by objective name, and metrics shared by the reference-based objectives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    pub losses: BTreeMap<String, f64>,
    pub metrics: BTreeMap<String, f64>,
}

/// One per-pair term the fused pass accumulates.
enum Term {
    Pairwise(LossType, PairwiseParams),
    Cpo(super::CpoParams),
    /// ORPO's `logσ(log_odds)`, with its β.
    OrpoRatio(f64),
    Kto(super::KtoParams, f64),
    Bco(f64, f64),
}

impl Term {
    /// The shared columns of a block this term reads.
    fn needs(&self) -> Needs {
        match self {
            Term::Pairwise(loss, params) => loss.needs(params.f_divergence),
            _ => Needs::default(),
        }
    }

    /// The term summed over a block's pairs; `out` is scratch.
    #[inline(always)]
    fn block_sum(&self, b: &PairBlock, out: &mut [f64; BLOCK]) -> f64 {
        let (pc, pr) = (&b.policy_chosen, &b.policy_rejected);
        let (cl, rl) = (&b.chosen_length, &b.rejected_length);
        match self {
            Term::Pairwise(loss, params) => loss.block_losses(b, params, out),
            Term::Cpo(params) if cpo_averages(params) => each(
                out,
                #[inline(always)]
                |j| cpo_pair_loss(params, pc[j] / cl[j], pr[j] / rl[j]),
            ),
            Term::Cpo(params) => each(
                out,
                #[inline(always)]
                |j| cpo_pair_loss(params, pc[j], pr[j]),
            ),
            Term::OrpoRatio(_) => each(
                out,
                #[inline(always)]
                |j| log_sigmoid(orpo_log_odds(pc[j] / cl[j], pr[j] / rl[j])),
            ),
            Term::Kto(params, kl) => each(
                out,
                #[inline(always)]
                |j| {
                    let (d, u) = kto_terms(params, b.chosen[j], b.rejected[j], *kl);
                    0.5 * (d + u)
                },
            ),
            Term::Bco(beta, delta) => each(
                out,
                #[inline(always)]
                |j| {
                    let (d, u) = bco_terms(*beta, b.chosen[j], b.rejected[j], *delta);
                    0.5 * (d + u)
                },
            ),
        }
        b.sum(out)
    }
}

#[inline]
fn logratios(p: &super::PairLogps<'_>, i: usize) -> (f64, f64) {
    (p.policy_chosen[i] - p.reference_chosen[i], p.policy_rejected[i] - p.reference_rejected[i])
}

/// The fused pass over a range of pairs: each term's sum, a block at a time.
struct Fused<'a, 'p> {
    p: &'a PairLogps<'p>,
    terms: &'a [(usize, Term)],
    params: &'a PairwiseParams,
    rows: Range<usize>,
}

impl Kernel for Fused<'_, '_> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run(self) -> Vec<f64> {
        let needs = self.terms.iter().fold(Needs::default(), |n, (_, t)| n.or(t.needs()));
        let mut sums = vec![0.0f64; self.terms.len()];
        let mut block = PairBlock::new();
        let mut out = [0.0; BLOCK];
        for rows in blocks(self.rows) {
            block.load(self.p, rows, self.params.f_divergence, self.params.beta, needs);
            for (sum, (_, term)) in sums.iter_mut().zip(self.terms) {
                *sum += term.block_sum(&block, &mut out);
            }
        }
        sums
    }
}

/// Evaluates the named objectives (any of [`Objective::names`]) with one β and label
/// smoothing. Parameters invalid for an objective (`exo_pair` without smoothing) are errors.
pub fn compare(table: &DpoTable, names: &[&str], params: PairwiseParams) -> Result<Comparison, ConfigError> {
    let objectives: Vec<(String, Objective)> = names
        .iter()
        .map(|n| Ok((n.to_string(), Objective::parse(n, None, params)?)))
        .collect::<Result<_, ConfigError>>()?;
    let needs = objectives.iter().find_map(|(_, o)| o.needs_lengths());
    let resolved = TableLogps::new(table, needs)?;
    let p = resolved.logps();
    let n = p.len();

    let mut terms: Vec<(usize, Term)> = Vec::new();
    let mut coupled: Vec<(usize, LossType, PairwiseParams)> = Vec::new();
    for (k, (_, objective)) in objectives.iter().enumerate() {
        match objective {
            Objective::Pairwise { losses, params } => {
                params.validate(losses)?;
                for &(loss, _) in losses {
                    if loss.is_batch_coupled() {
                        coupled.push((k, loss, *params));
                    } else {
                        terms.push((k, Term::Pairwise(loss, *params)));
                    }
                }
            }
            Objective::Cpo(c) => {
                super::check_beta(c.beta)?;
                terms.push((k, Term::Cpo(*c)));
            }
            Objective::Orpo(o) => {
                super::check_beta(o.beta)?;
                terms.push((k, Term::OrpoRatio(o.beta)));
            }
            Objective::Kto(t) => {
                super::check_beta(t.beta)?;
                terms.push((k, Term::Kto(*t, kl_from_table(table)?)));
            }
            Objective::Bco(b) => {
                super::check_beta(b.beta)?;
                let chosen_lr: Vec<f64> = (0..n).map(|i| logratios(&p, i).0).collect();
                let rejected_lr: Vec<f64> = (0..n).map(|i| logratios(&p, i).1).collect();
                terms.push((k, Term::Bco(b.beta, bco_delta(b.beta, &chosen_lr, &rejected_lr))));
            }
        }
    }

    // The fused pass: each chunk of pairs accumulates every term.
    let partial = par_chunks(n, |rows| lanes::dispatch(Fused { p: &p, terms: &terms, params: &params, rows }));
    let mut sums = vec![0.0f64; terms.len()];
    for chunk in partial {
        for (s, v) in sums.iter_mut().zip(chunk) {
            *s += v;
        }
    }

    let mut losses = vec![0.0f64; objectives.len()];
    for ((k, term), total) in terms.iter().zip(&sums) {
        let m = total / n as f64;
        losses[*k] += match term {
            Term::Pairwise(..) | Term::Kto(..) | Term::Bco(..) => m,
            Term::Cpo(c) => {
                let (cl, _) = p.lengths("cpo")?;
                m + c.cpo_alpha * chosen_nll(&p, cl)
            }
            Term::OrpoRatio(beta) => {
                let (cl, _) = p.lengths("orpo")?;
                chosen_nll(&p, cl) - beta * m
            }
        };
    }
    for (k, loss, params) in coupled {
        losses[k] += match loss {
            LossType::Sft => sft_nll(&p)?,
            _ => mean(&coupled_losses(loss, &p, &params)?),
        };
    }

    let mut metrics = BTreeMap::new();
    reward_metrics_of(&mut metrics, params.beta, &p);
    metrics.insert("ranking/accuracy".into(), ranking::ranking_accuracy(p.policy_chosen, p.policy_rejected));
    Ok(Comparison { losses: objectives.into_iter().map(|(n, _)| n).zip(losses).collect(), metrics })
}
