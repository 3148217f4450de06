//! Diffusion-DPO and MaPO on the GPU: per-row rewards, margins and losses, metrics as column
//! reductions, rows averaged per pair id on the host. Twins of
//! `prefscope_core::preference::diffusion::{diffusion_dpo, mapo}`.

use std::collections::BTreeMap;

use prefscope_core::io::record::DiffusionTable;
use prefscope_core::preference::diffusion::group;
use prefscope_core::preference::dpo::{check_beta, Evaluation};
use prefscope_core::preference::report::DiffusionObjective;

use crate::kernel::{cast, chunks, groups_for, groups_per_item};
use crate::params::{kind, PreferenceParams, ReduceParams};
use crate::preference::{split, DpoError, PREFERENCE, REDUCE};
use crate::Gpu;

const STRIDE: usize = 8;

impl Gpu {
    /// Evaluates Diffusion-DPO or MaPO; returns pair ids (first appearance) and the evaluation.
    pub async fn diffusion(
        &self,
        t: &DiffusionTable,
        objective: DiffusionObjective,
    ) -> Result<(Vec<String>, Evaluation), DpoError> {
        let (kind, beta, timesteps, s) = match objective {
            DiffusionObjective::Dpo(beta) => (kind::DIFFUSION_DPO, beta, 0.0, 0.0),
            DiffusionObjective::Mapo(m) => (kind::MAPO, m.beta, m.timesteps, m.s),
        };
        check_beta(beta)?;
        let n = t.len();
        let mut sums = [0f64; STRIDE];
        let mut cols: [Vec<f64>; 4] = Default::default();
        for r in chunks(n, self.items_per_binding(STRIDE as u64 * 4)) {
            let m = r.len();
            let scope = self.scope("diffusion rows")?;
            let up = |label, v: &[f64]| self.upload(label, &split(&v[r.clone()]));
            let mw = up("model chosen", &t.model_mse_chosen);
            let ml = up("model rejected", &t.model_mse_rejected);
            let rw = up("reference chosen", &t.reference_mse_chosen);
            let rl = up("reference rejected", &t.reference_mse_rejected);
            let out = self.scratch("rows", (m * STRIDE * 4) as u64);
            let groups = (m as u64).div_ceil(1024);
            let partials = self.scratch("partials", groups * STRIDE as u64 * 4);
            let params = PreferenceParams {
                n: m as u32,
                kind,
                beta: beta as f32,
                mapo_timesteps: timesteps as f32,
                mapo_s: s as f32,
                ..Default::default()
            };
            let mut enc = self.encoder();
            let b = [(1, &mw), (2, &ml), (3, &rw), (4, &rl), (7, &out)];
            self.dispatch_at(&mut enc, &PREFERENCE, "diffusion_rows", &params, &b, groups_for(m as u64));
            let rp = ReduceParams { rows: m as u32, stride: STRIDE as u32 };
            self.dispatch(&mut enc, &REDUCE, "column_sums", &rp, &[&out, &partials], groups_per_item(groups));
            let bytes = self
                .finish(scope, enc, &[(&partials, groups * STRIDE as u64 * 4), (&out, (m * STRIDE * 4) as u64)])
                .await?;
            for part in cast::<f32>(&bytes[0]).chunks(STRIDE) {
                for (acc, v) in sums.iter_mut().zip(part) {
                    *acc += *v as f64;
                }
            }
            for row in cast::<f32>(&bytes[1]).chunks(STRIDE) {
                for (c, col) in cols.iter_mut().enumerate() {
                    col.push(row[c] as f64);
                }
            }
        }
        let mean = |k: usize| sums[k] / n as f64;
        let mut metrics = BTreeMap::new();
        let names: &[(&str, usize)] = if kind == kind::DIFFUSION_DPO {
            &[
                ("loss", 3),
                ("implicit_acc", 4),
                ("rewards/chosen", 0),
                ("rewards/rejected", 1),
                ("rewards/margins", 2),
                ("rewards/accuracies", 4),
                ("raw_model_loss", 5),
                ("raw_ref_loss", 6),
            ]
        } else {
            &[
                ("loss", 3),
                ("ratio_loss", 7),
                ("rewards/chosen", 0),
                ("rewards/rejected", 1),
                ("rewards/margins", 2),
                ("rewards/accuracies", 4),
                ("raw_model_loss", 5),
            ]
        };
        for &(name, k) in names {
            metrics.insert(name.to_string(), mean(k));
        }
        let (ids, pairs) = group(&t.id, [&cols[0], &cols[1], &cols[2], &cols[3]]);
        Ok((ids, Evaluation { pairs, metrics }))
    }
}
