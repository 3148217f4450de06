//! Diffusion-DPO (SalesforceAIResearch/DiffusionDPO) and MaPO on per-timestep denoising errors.
//! Each row is one pair at one sampled timestep; the batch loss averages rows, and a pair's
//! values average its rows (a pair may be sampled at several timesteps).

use std::collections::{BTreeMap, HashMap};

use crate::error::ConfigError;
use crate::io::record::DiffusionTable;
use crate::numeric::{log_sigmoid, mean, x_over_expm1};
use crate::preference::dpo::{check_beta, Evaluation, PairValues};

/// Diffusion-DPO's default β.
pub const DIFFUSION_DPO_BETA: f64 = 5000.0;

/// MaPO's constants: β 0.1, T = 1000 training timesteps, the odds transform's s = 0.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapoParams {
    pub beta: f64,
    pub timesteps: f64,
    pub s: f64,
}

impl Default for MapoParams {
    fn default() -> Self {
        Self { beta: 0.1, timesteps: 1000.0, s: 0.5 }
    }
}

/// Per-row Diffusion-DPO values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiffusionRows {
    pub chosen_reward: Vec<f64>,
    pub rejected_reward: Vec<f64>,
    /// `inside = −½β((m_w − m_l) − (r_w − r_l))`, equal to chosen − rejected reward.
    pub inside: Vec<f64>,
    pub loss: Vec<f64>,
}

/// Per-row rewards `−½β(m − r)`, `inside` and loss `−logσ(inside)`.
pub fn diffusion_dpo_rows(t: &DiffusionTable, beta: f64) -> DiffusionRows {
    let scale = -0.5 * beta;
    let mut rows = DiffusionRows::default();
    for i in 0..t.len() {
        let (mw, ml, rw, rl) =
            (t.model_mse_chosen[i], t.model_mse_rejected[i], t.reference_mse_chosen[i], t.reference_mse_rejected[i]);
        let inside = scale * ((mw - ml) - (rw - rl));
        rows.chosen_reward.push(scale * (mw - rw));
        rows.rejected_reward.push(scale * (ml - rl));
        rows.inside.push(inside);
        rows.loss.push(-log_sigmoid(inside));
    }
    rows
}

/// Diffusion-DPO over a table: metrics over rows (`implicit_acc` is the fraction of rows with
/// `inside > 0`), pair values averaged per `id` in order of first appearance.
pub fn diffusion_dpo(t: &DiffusionTable, beta: f64) -> Result<(Vec<String>, Evaluation), ConfigError> {
    check_beta(beta)?;
    let rows = diffusion_dpo_rows(t, beta);
    let acc: Vec<f64> = rows.inside.iter().map(|&x| if x > 0.0 { 1.0 } else { 0.0 }).collect();
    let mut metrics = BTreeMap::new();
    metrics.insert("loss".into(), mean(&rows.loss));
    metrics.insert("implicit_acc".into(), mean(&acc));
    metrics.insert("rewards/chosen".into(), mean(&rows.chosen_reward));
    metrics.insert("rewards/rejected".into(), mean(&rows.rejected_reward));
    metrics.insert("rewards/margins".into(), mean(&rows.inside));
    metrics.insert("rewards/accuracies".into(), mean(&acc));
    let model: Vec<f64> = (0..t.len()).map(|i| 0.5 * (t.model_mse_chosen[i] + t.model_mse_rejected[i])).collect();
    let reference: Vec<f64> =
        (0..t.len()).map(|i| 0.5 * (t.reference_mse_chosen[i] + t.reference_mse_rejected[i])).collect();
    metrics.insert("raw_model_loss".into(), mean(&model));
    metrics.insert("raw_ref_loss".into(), mean(&reference));
    let (ids, pairs) = group(&t.id, [&rows.chosen_reward, &rows.rejected_reward, &rows.inside, &rows.loss]);
    Ok((ids, Evaluation { pairs, metrics }))
}

/// MaPO (reference-free): `f(m) = s·m/(e^(s·m) − 1)`, per row
/// `m_w − β·logσ(T·(f(m_w) − f(m_l)))`, averaged. Rewards are `f(m)`, the margin their difference.
pub fn mapo(t: &DiffusionTable, params: &MapoParams) -> Result<(Vec<String>, Evaluation), ConfigError> {
    check_beta(params.beta)?;
    let f = |m: f64| x_over_expm1(params.s * m);
    let chosen: Vec<f64> = t.model_mse_chosen.iter().map(|&m| f(m)).collect();
    let rejected: Vec<f64> = t.model_mse_rejected.iter().map(|&m| f(m)).collect();
    let margin: Vec<f64> = chosen.iter().zip(&rejected).map(|(c, r)| c - r).collect();
    let ratio: Vec<f64> = margin.iter().map(|&d| log_sigmoid(params.timesteps * d)).collect();
    let loss: Vec<f64> = t.model_mse_chosen.iter().zip(&ratio).map(|(mw, r)| mw - params.beta * r).collect();
    let acc: Vec<f64> = margin.iter().map(|&d| if d > 0.0 { 1.0 } else { 0.0 }).collect();
    let mut metrics = BTreeMap::new();
    metrics.insert("loss".into(), mean(&loss));
    metrics.insert("ratio_loss".into(), mean(&ratio));
    metrics.insert("rewards/chosen".into(), mean(&chosen));
    metrics.insert("rewards/rejected".into(), mean(&rejected));
    metrics.insert("rewards/margins".into(), mean(&margin));
    metrics.insert("rewards/accuracies".into(), mean(&acc));
    metrics.insert("raw_model_loss".into(), mean(&t.model_mse_chosen));
    let (ids, pairs) = group(&t.id, [&chosen, &rejected, &margin, &loss]);
    Ok((ids, Evaluation { pairs, metrics }))
}

/// Averages per-row columns over rows sharing an id, ids in order of first appearance.
pub fn group(ids: &[String], cols: [&Vec<f64>; 4]) -> (Vec<String>, PairValues) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut sums: Vec<[f64; 4]> = Vec::new();
    let mut counts: Vec<f64> = Vec::new();
    for (row, id) in ids.iter().enumerate() {
        let k = *index.entry(id.as_str()).or_insert_with(|| {
            order.push(id.clone());
            sums.push([0.0; 4]);
            counts.push(0.0);
            order.len() - 1
        });
        for (j, col) in cols.iter().enumerate() {
            sums[k][j] += col[row];
        }
        counts[k] += 1.0;
    }
    let column = |j: usize| sums.iter().zip(&counts).map(|(s, c)| s[j] / c).collect();
    let pairs = PairValues { chosen_reward: column(0), rejected_reward: column(1), margin: column(2), loss: column(3) };
    (order, pairs)
}
