//! Pairs a block at a time, as columns: what every pairwise loss type reads (log-ratios, their
//! f-divergence scores, lengths) and the logistic terms several types share, each computed
//! once per block. Loops over a block's columns vectorise inside a [`crate::lanes::Kernel`].

use std::ops::Range;

use super::divergence::FDivergence;
use super::PairLogps;
use crate::numeric::Logistic;

/// Pairs per block: the columns of one block (about 20 of them) stay in the L1 cache.
pub(crate) const BLOCK: usize = 128;

/// `log σ(±x)` and `σ(±x)` for a column of `x`.
pub(crate) struct LogisticColumn {
    pub log_sig: [f64; BLOCK],
    pub log_sig_neg: [f64; BLOCK],
    pub sig: [f64; BLOCK],
    pub sig_neg: [f64; BLOCK],
}

impl LogisticColumn {
    #[inline(always)]
    fn fill(&mut self, x: impl Fn(usize) -> f64) {
        for j in 0..BLOCK {
            let l = Logistic::of(x(j));
            self.log_sig[j] = l.log_sig;
            self.log_sig_neg[j] = l.log_sig_neg;
            self.sig[j] = l.sig;
            self.sig_neg[j] = l.sig_neg;
        }
    }
}

/// Which of a block's shared logistic columns a computation reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Needs {
    /// `x = β(score_w − score_l)`.
    pub margin: bool,
    /// `β·Δw`.
    pub chosen: bool,
    /// `β·Δl`.
    pub rejected: bool,
}

impl Needs {
    pub fn or(self, other: Needs) -> Needs {
        Needs {
            margin: self.margin || other.margin,
            chosen: self.chosen || other.chosen,
            rejected: self.rejected || other.rejected,
        }
    }
}

/// Up to [`BLOCK`] consecutive pairs. Entries past `len` are padding (zeros, length 1) that
/// loops may compute on but sums must not include.
pub(crate) struct PairBlock {
    pub len: usize,
    pub policy_chosen: [f64; BLOCK],
    pub policy_rejected: [f64; BLOCK],
    /// Log-ratios `Δw`, `Δl`.
    pub chosen: [f64; BLOCK],
    pub rejected: [f64; BLOCK],
    /// `f'` of the log-ratios (the log-ratios themselves under reverse KL).
    pub chosen_score: [f64; BLOCK],
    pub rejected_score: [f64; BLOCK],
    /// Completion lengths; `NaN` when the input has none.
    pub chosen_length: [f64; BLOCK],
    pub rejected_length: [f64; BLOCK],
    /// Filled when the computation's [`Needs`] ask for them.
    pub margin: LogisticColumn,
    pub chosen_logistic: LogisticColumn,
    pub rejected_logistic: LogisticColumn,
}

/// `range` cut into blocks.
pub(crate) fn blocks(range: Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let end = range.end;
    range.step_by(BLOCK).map(move |start| start..(start + BLOCK).min(end))
}

/// Copies `src` into `dst`, padding with `pad`.
#[inline(always)]
fn load(dst: &mut [f64; BLOCK], src: &[f64], pad: f64) {
    dst[..src.len()].copy_from_slice(src);
    dst[src.len()..].fill(pad);
}

impl PairBlock {
    /// A block on the heap (it is about 20 KB).
    pub fn new() -> Box<Self> {
        let column = || LogisticColumn {
            log_sig: [0.0; BLOCK],
            log_sig_neg: [0.0; BLOCK],
            sig: [0.0; BLOCK],
            sig_neg: [0.0; BLOCK],
        };
        Box::new(Self {
            len: 0,
            policy_chosen: [0.0; BLOCK],
            policy_rejected: [0.0; BLOCK],
            chosen: [0.0; BLOCK],
            rejected: [0.0; BLOCK],
            chosen_score: [0.0; BLOCK],
            rejected_score: [0.0; BLOCK],
            chosen_length: [1.0; BLOCK],
            rejected_length: [1.0; BLOCK],
            margin: column(),
            chosen_logistic: column(),
            rejected_logistic: column(),
        })
    }

    /// Loads the pairs `rows` (at most [`BLOCK`] of them) and the shared columns `needs` asks for.
    #[inline(always)]
    pub fn load(&mut self, p: &PairLogps<'_>, rows: Range<usize>, f: FDivergence, beta: f64, needs: Needs) {
        assert!(rows.len() <= BLOCK);
        self.len = rows.len();
        load(&mut self.policy_chosen, &p.policy_chosen[rows.clone()], 0.0);
        load(&mut self.policy_rejected, &p.policy_rejected[rows.clone()], 0.0);
        for j in 0..BLOCK {
            self.chosen[j] = self.policy_chosen[j];
            self.rejected[j] = self.policy_rejected[j];
        }
        let (rc, rr) = (&p.reference_chosen[rows.clone()], &p.reference_rejected[rows.clone()]);
        for j in 0..self.len {
            self.chosen[j] -= rc[j];
            self.rejected[j] -= rr[j];
        }
        if f == FDivergence::ReverseKl {
            self.chosen_score = self.chosen;
            self.rejected_score = self.rejected;
        } else {
            for j in 0..BLOCK {
                self.chosen_score[j] = f.score(self.chosen[j]);
                self.rejected_score[j] = f.score(self.rejected[j]);
            }
        }
        match (p.chosen_length, p.rejected_length) {
            (Some(c), Some(r)) => {
                load(&mut self.chosen_length, &c[rows.clone()], 1.0);
                load(&mut self.rejected_length, &r[rows], 1.0);
            }
            _ => {
                self.chosen_length = [f64::NAN; BLOCK];
                self.rejected_length = [f64::NAN; BLOCK];
            }
        }
        if needs.margin {
            let (cs, rs) = (&self.chosen_score, &self.rejected_score);
            self.margin.fill(
                #[inline(always)]
                |j| beta * (cs[j] - rs[j]),
            );
        }
        if needs.chosen {
            let c = &self.chosen;
            self.chosen_logistic.fill(
                #[inline(always)]
                |j| beta * c[j],
            );
        }
        if needs.rejected {
            let r = &self.rejected;
            self.rejected_logistic.fill(
                #[inline(always)]
                |j| beta * r[j],
            );
        }
    }

    /// `score_w − score_l` of pair `j`.
    #[inline(always)]
    pub fn margin(&self, j: usize) -> f64 {
        self.chosen_score[j] - self.rejected_score[j]
    }

    /// The margin of token-averaged scores (lengths below 1 count as 1, as TRL clamps them).
    #[inline(always)]
    pub fn average_margin(&self, j: usize) -> f64 {
        self.chosen_score[j] / self.chosen_length[j].max(1.0)
            - self.rejected_score[j] / self.rejected_length[j].max(1.0)
    }

    /// The sum of a column over the block's pairs (padding excluded).
    #[inline(always)]
    pub fn sum(&self, column: &[f64; BLOCK]) -> f64 {
        crate::lanes::sum_of(self.len, |j| column[j])
    }
}

/// Fills a column with `f(j)`. Computing a column in a loop of its own, then summing it, is
/// what lets the compiler vectorise `f` (a sum over a heavy `f` does not vectorise).
#[inline(always)]
pub(crate) fn each(out: &mut [f64; BLOCK], f: impl Fn(usize) -> f64) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = f(j);
    }
}
