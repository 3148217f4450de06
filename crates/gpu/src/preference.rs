//! Preference math on the GPU: per-pair rewards, margins and losses for every objective in
//! `prefscope_core::preference::dpo` (each `DPOTrainer` loss type, combinable; CPO/SimPO; ORPO; KTO; BCO),
//! TRL's metrics as column reductions, and AOT's batch-wide sort. Twin of
//! `prefscope_core::preference::dpo::Objective::evaluate`.
//!
//! Log-probabilities arrive as f64 and travel as two f32 (hi + lo), so log-ratios of
//! sequence sums in the hundreds keep the digits a single f32 would lose; everything after
//! the subtraction is f32, within about 1e-5 relative of the f64 CPU path.

use std::collections::BTreeMap;

use prefscope_core::error::ConfigError;
use prefscope_core::io::record::DpoTable;
use prefscope_core::preference::dpo::{
    CpoLoss, Evaluation, FDivergence, LossType, Objective, PairLogps, PairValues, TableLogps,
};
use thiserror::Error;

use crate::kernel::{cast, chunks, groups_for, shader, Shader};
use crate::params::{cpo_loss, fdiv, kind, PreferenceParams, ReduceParams, SortParams};
use crate::{Gpu, GpuError};

pub(crate) const PREFERENCE: Shader = shader!("preference");
pub(crate) const REDUCE: Shader = shader!("reduce");
const SORT: Shader = shader!("sort");

/// Columns every pair writes before the per-loss values (see preference.wgsl).
const BASE: usize = 11;
const ROWS_PER_GROUP: u64 = 1024;
const MAX_LOSSES: usize = 16;

/// A refused input or setting (same messages as the CPU path), or a GPU failure.
#[derive(Debug, Error)]
pub enum DpoError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// A batch constant that needs a first pass over the data.
#[derive(Clone, Copy, PartialEq)]
enum Constant {
    None,
    /// `−Σ logπ(yw) / Σ |yw|` scaled by a factor (SFT: 1, CPO: α, ORPO: 1).
    Nll(f64),
    /// BCO's `δ = ½(mean βΔw + mean βΔl)`.
    Delta,
}

/// An objective as preference.wgsl takes it, with what the host does around the kernel.
pub(crate) struct Setup {
    kind: u32,
    sub: u32,
    losses: Vec<(u32, f64)>,
    beta: f64,
    eps: f64,
    fdiv: u32,
    alpha: f64,
    tau: f64,
    /// KTO's KL; replaced by the first pass's value for the [`Constant`] kinds.
    batch_constant: f64,
    gamma_or_desirable: f64,
    undesirable: f64,
    constant: Constant,
    aot: bool,
}

impl Setup {
    pub(crate) fn of(objective: &Objective, kl: f64) -> Self {
        let base = Setup {
            kind: kind::PAIRWISE,
            sub: cpo_loss::SIGMOID,
            losses: Vec::new(),
            beta: 0.1,
            eps: 0.0,
            fdiv: fdiv::REVERSE_KL,
            alpha: 0.5,
            tau: 0.05,
            batch_constant: 0.0,
            gamma_or_desirable: 0.0,
            undesirable: 0.0,
            constant: Constant::None,
            aot: false,
        };
        match objective {
            Objective::Pairwise { losses, params } => {
                let (fdiv, alpha) = match params.f_divergence {
                    FDivergence::ReverseKl => (fdiv::REVERSE_KL, 0.5),
                    FDivergence::ForwardKl => (fdiv::FORWARD_KL, 0.5),
                    FDivergence::JsDivergence => (fdiv::JS, 0.5),
                    FDivergence::AlphaDivergence(a) => (fdiv::ALPHA, a),
                };
                let id = |l: LossType| LossType::ALL.iter().position(|&x| x == l).unwrap_or(0) as u32;
                Setup {
                    losses: losses.iter().map(|&(l, w)| (id(l), w)).collect(),
                    beta: params.beta,
                    eps: params.label_smoothing,
                    fdiv,
                    alpha,
                    tau: params.discopop_tau,
                    constant: if losses.iter().any(|(l, _)| *l == LossType::Sft) {
                        Constant::Nll(1.0)
                    } else {
                        Constant::None
                    },
                    aot: losses.iter().any(|(l, _)| matches!(l, LossType::Aot | LossType::AotUnpaired)),
                    ..base
                }
            }
            Objective::Cpo(c) => Setup {
                kind: kind::CPO,
                sub: match c.loss {
                    CpoLoss::Sigmoid => cpo_loss::SIGMOID,
                    CpoLoss::Hinge => cpo_loss::HINGE,
                    CpoLoss::Ipo => cpo_loss::IPO,
                    CpoLoss::Simpo => cpo_loss::SIMPO,
                },
                beta: c.beta,
                eps: c.label_smoothing,
                gamma_or_desirable: c.simpo_gamma,
                constant: Constant::Nll(c.cpo_alpha),
                ..base
            },
            Objective::Orpo(o) => Setup { kind: kind::ORPO, beta: o.beta, constant: Constant::Nll(1.0), ..base },
            Objective::Kto(k) => Setup {
                kind: kind::KTO,
                beta: k.beta,
                batch_constant: kl,
                gamma_or_desirable: k.desirable_weight,
                undesirable: k.undesirable_weight,
                ..base
            },
            Objective::Bco(b) => Setup { kind: kind::BCO, beta: b.beta, constant: Constant::Delta, ..base },
        }
    }

    pub(crate) fn stride(&self) -> usize {
        BASE + if self.losses.len() > 1 { self.losses.len() } else { 0 }
    }

    pub(crate) fn params(&self, n: usize) -> PreferenceParams {
        let mut p = PreferenceParams {
            n: n as u32,
            kind: self.kind,
            n_losses: self.losses.len() as u32,
            fdiv: self.fdiv,
            beta: self.beta as f32,
            eps: self.eps as f32,
            alpha: self.alpha as f32,
            tau: self.tau as f32,
            batch_constant: self.batch_constant as f32,
            gamma_or_desirable: self.gamma_or_desirable as f32,
            undesirable: self.undesirable as f32,
            sub: self.sub,
            ..Default::default()
        };
        for (k, &(id, weight)) in self.losses.iter().take(MAX_LOSSES).enumerate() {
            p.losses[k / 4][k % 4] = id;
            p.weights[k / 4][k % 4] = weight as f32;
        }
        p
    }
}

/// f64 values as (hi, lo) f32 pairs.
pub(crate) fn split(v: &[f64]) -> Vec<[f32; 2]> {
    v.iter()
        .map(|&x| {
            let hi = x as f32;
            [hi, (x - hi as f64) as f32]
        })
        .collect()
}

/// The per-pair inputs of one chunk, on the device.
struct ChunkInputs {
    pc: wgpu::Buffer,
    pr: wgpu::Buffer,
    rc: wgpu::Buffer,
    rr: wgpu::Buffer,
    lens: wgpu::Buffer,
}

impl Gpu {
    /// Evaluates `objective` on a table: lengths and KTO's KL columns come from the table and
    /// are checked exactly as the CPU path checks them.
    pub async fn evaluate_dpo(&self, objective: &Objective, table: &DpoTable) -> Result<Evaluation, DpoError> {
        let resolved =
            TableLogps::new(table, objective.needs_lengths()).map_err(|e| ConfigError::Input(Box::new(e)))?;
        let kl = match objective {
            Objective::Kto(_) => prefscope_core::preference::dpo::unpaired::kl_from_table(table)
                .map_err(|e| ConfigError::Input(Box::new(e)))?,
            _ => 0.0,
        };
        self.evaluate_pairs(objective, &resolved.logps(), kl).await
    }

    /// Evaluates `objective` on log-probability columns (`kl` is KTO's KL estimate).
    pub async fn evaluate_pairs(
        &self,
        objective: &Objective,
        p: &PairLogps<'_>,
        kl: f64,
    ) -> Result<Evaluation, DpoError> {
        objective.check(p)?;
        let mut setup = Setup::of(objective, kl);
        if setup.losses.len() > MAX_LOSSES {
            return Err(ConfigError::Invalid(format!("at most {MAX_LOSSES} loss types can be combined")).into());
        }
        let n = p.len();
        let stride = setup.stride();
        let chunk = self.items_per_binding((stride as u64 * 4).max(16));
        // AOT's sort: on the device when the whole padded batch fits one binding, else on the host.
        let on_device = n <= chunk && (n.next_power_of_two() as u64) * 16 <= self.binding_limit();
        let host_sorted = (setup.aot && !on_device).then(|| host_sort(p));
        let (sums, rows) = match setup.constant {
            Constant::None => self.preference_pass(&setup, p, chunk, host_sorted.as_deref(), true).await?,
            constant => {
                let (first, _) = self.preference_pass(&setup, p, chunk, host_sorted.as_deref(), false).await?;
                setup.batch_constant = match constant {
                    Constant::Nll(scale) => scale * nll(&first),
                    _ => 0.5 * (first[0] + first[1]) / n as f64,
                };
                self.preference_pass(&setup, p, chunk, host_sorted.as_deref(), true).await?
            }
        };
        Ok(assemble(objective, &setup, n, &sums, rows))
    }

    /// One pass of `pair_values` over all chunks: column sums, and the per-pair rows
    /// (reward_c, reward_r, margin, loss) when `read_rows`.
    async fn preference_pass(
        &self,
        setup: &Setup,
        p: &PairLogps<'_>,
        chunk: usize,
        host_sorted: Option<&[[f32; 4]]>,
        read_rows: bool,
    ) -> Result<(Vec<f64>, Vec<[f32; 4]>), GpuError> {
        let stride = setup.stride();
        let mut sums = vec![0f64; stride];
        let mut rows = Vec::with_capacity(if read_rows { p.len() } else { 0 });
        for r in chunks(p.len(), chunk) {
            let m = r.len();
            let scope = self.scope("preference metrics")?;
            let inputs = self.chunk_inputs(p, r.clone());
            let mut enc = self.encoder();
            let sorted = match host_sorted {
                Some(s) => self.upload("sorted", &s[r.clone()]),
                None if setup.aot => self.sort_on_device(&mut enc, &inputs, m),
                None => self.scratch("unused", 16),
            };
            let out = self.scratch("pair values", (m * stride * 4) as u64);
            let ins = [&inputs.pc, &inputs.pr, &inputs.rc, &inputs.rr, &inputs.lens, &sorted, &out];
            self.dispatch(&mut enc, &PREFERENCE, "pair_values", &setup.params(m), &ins, groups_for(m as u64));
            let groups = (m as u64).div_ceil(ROWS_PER_GROUP);
            let partials = self.scratch("partials", groups * stride as u64 * 4);
            let rp = ReduceParams { rows: m as u32, stride: stride as u32 };
            self.dispatch(
                &mut enc,
                &REDUCE,
                "column_sums",
                &rp,
                &[&out, &partials],
                crate::kernel::groups_per_item(groups),
            );
            let mut reads = vec![(&partials, groups * stride as u64 * 4)];
            if read_rows {
                reads.push((&out, (m * stride * 4) as u64));
            }
            let bytes = self.finish(scope, enc, &reads).await?;
            for part in cast::<f32>(&bytes[0]).chunks(stride) {
                for (s, v) in sums.iter_mut().zip(part) {
                    *s += *v as f64;
                }
            }
            if read_rows {
                rows.extend(cast::<f32>(&bytes[1]).chunks(stride).map(|v| [v[0], v[1], v[2], v[3]]));
            }
        }
        Ok((sums, rows))
    }

    fn chunk_inputs(&self, p: &PairLogps<'_>, r: std::ops::Range<usize>) -> ChunkInputs {
        let lens: Vec<[f32; 2]> = match (p.chosen_length, p.rejected_length) {
            (Some(c), Some(l)) => r.clone().map(|i| [c[i] as f32, l[i] as f32]).collect(),
            _ => vec![[0.0, 0.0]],
        };
        ChunkInputs {
            pc: self.upload("policy chosen", &split(&p.policy_chosen[r.clone()])),
            pr: self.upload("policy rejected", &split(&p.policy_rejected[r.clone()])),
            rc: self.upload("reference chosen", &split(&p.reference_chosen[r.clone()])),
            rr: self.upload("reference rejected", &split(&p.reference_rejected[r])),
            lens: self.upload("lengths", &lens),
        }
    }

    /// Records AOT's keys and their bitonic sort (four columns at once); returns the keys.
    fn sort_on_device(&self, enc: &mut wgpu::CommandEncoder, inputs: &ChunkInputs, n: usize) -> wgpu::Buffer {
        let padded = n.next_power_of_two().max(1);
        let keys = self.scratch("aot keys", padded as u64 * 16);
        let kp = SortParams { n: n as u32, j: 0, k: 0 };
        let ins = [&keys, &inputs.pc, &inputs.pr, &inputs.rc, &inputs.rr];
        self.dispatch(enc, &SORT, "aot_keys", &kp, &ins, groups_for(padded as u64));
        let mut k = 2;
        while k <= padded {
            let mut j = k / 2;
            while j > 0 {
                let sp = SortParams { n: padded as u32, j: j as u32, k: k as u32 };
                self.dispatch(enc, &SORT, "bitonic_step", &sp, &[&keys], groups_for(padded as u64));
                j /= 2;
            }
            k *= 2;
        }
        keys
    }
}

/// AOT's keys sorted on the host, for batches larger than one binding.
fn host_sort(p: &PairLogps<'_>) -> Vec<[f32; 4]> {
    let n = p.len();
    let mut cols: [Vec<f64>; 4] = [
        (0..n).map(|i| p.policy_chosen[i] - p.policy_rejected[i]).collect(),
        (0..n).map(|i| p.reference_chosen[i] - p.reference_rejected[i]).collect(),
        (0..n).map(|i| p.policy_chosen[i] - p.reference_chosen[i]).collect(),
        (0..n).map(|i| p.policy_rejected[i] - p.reference_rejected[i]).collect(),
    ];
    for c in &mut cols {
        c.sort_unstable_by(f64::total_cmp);
    }
    (0..n).map(|i| [cols[0][i] as f32, cols[1][i] as f32, cols[2][i] as f32, cols[3][i] as f32]).collect()
}

/// Builds core's `Evaluation` (same metric names) from column sums and per-pair rows.
fn assemble(objective: &Objective, setup: &Setup, n: usize, sums: &[f64], rows: Vec<[f32; 4]>) -> Evaluation {
    let mean = |k: usize| sums[k] / n as f64;
    let mut metrics = BTreeMap::new();
    let mut put = |name: &str, v: f64| {
        metrics.insert(name.to_string(), v);
    };
    put("rewards/chosen", mean(0));
    put("rewards/rejected", mean(1));
    put("rewards/margins", mean(2));
    put("loss", mean(3));
    put("logps/chosen", mean(4));
    put("logps/rejected", mean(5));
    match objective {
        Objective::Pairwise { losses, .. } => {
            put("rewards/accuracies", mean(6));
            if losses.len() > 1 {
                for (k, (l, _)) in losses.iter().enumerate() {
                    put(&format!("loss/{}", l.name()), mean(BASE + k));
                }
            }
        }
        Objective::Cpo(_) => {
            put("rewards/accuracies", mean(6));
            put("nll_loss", nll(sums));
        }
        Objective::Orpo(_) => {
            put("rewards/accuracies", mean(6));
            put("nll_loss", nll(sums));
            put("log_odds_chosen", mean(7));
            put("log_odds_ratio", mean(8));
        }
        Objective::Kto(_) => put("kl", setup.batch_constant),
        Objective::Bco(_) => put("delta", setup.batch_constant),
    }
    let col = |k: usize| rows.iter().map(|r| r[k] as f64).collect::<Vec<_>>();
    Evaluation {
        pairs: PairValues { chosen_reward: col(0), rejected_reward: col(1), margin: col(2), loss: col(3) },
        metrics,
    }
}

fn nll(sums: &[f64]) -> f64 {
    if sums[10] > 0.0 {
        -sums[9] / sums[10]
    } else {
        f64::NAN
    }
}
