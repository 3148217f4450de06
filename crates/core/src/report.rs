//! One call from loaded preference data to what `prefscope dpo` and the DPO view show:
//! per-pair rows and metrics, with the ranking accuracies of Chen et al. alongside.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::diffusion::{self, MapoParams, DIFFUSION_DPO_BETA};
use crate::dpo::{Evaluation, Objective, PairwiseParams};
use crate::error::ConfigError;
use crate::ranking;
use crate::read::Preferences;
use crate::record::Side;
use crate::write::{Column, OutputTable};

/// What to compute. `objective` is the comma list `prefscope dpo --loss` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub objective: String,
    pub weights: Option<Vec<f64>>,
    /// β; `None` means each objective's default (0.1, or 5000 for Diffusion-DPO).
    pub beta: Option<f64>,
    pub params: PairwiseParams,
}

impl Default for ReportRequest {
    fn default() -> Self {
        Self { objective: "sigmoid".into(), weights: None, beta: None, params: PairwiseParams::default() }
    }
}

/// Metrics and per-pair values.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// Pair ids: the table's own for DPO data (borrowed: a million ids are not copied per
    /// objective), the grouped ids for Diffusion-DPO rows.
    pub ids: Cow<'a, [String]>,
    pub evaluation: Evaluation,
}

impl Report<'_> {
    pub fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.evaluation.metrics
    }

    /// The per-pair rows with the contract's column names.
    pub fn pairs_table(&self) -> OutputTable {
        let p = &self.evaluation.pairs;
        OutputTable::new(vec![
            ("id".into(), Column::Text(self.ids.to_vec())),
            ("chosen_reward".into(), Column::Float(p.chosen_reward.clone())),
            ("rejected_reward".into(), Column::Float(p.rejected_reward.clone())),
            ("margin".into(), Column::Float(p.margin.clone())),
            ("loss".into(), Column::Float(p.loss.clone())),
        ])
    }
}

/// Computes the requested objective on DPO or Diffusion-DPO data.
pub fn report<'a>(data: &'a Preferences, request: &ReportRequest) -> Result<Report<'a>, ConfigError> {
    match data {
        Preferences::Dpo(table) => {
            let params = PairwiseParams { beta: request.beta.unwrap_or(request.params.beta), ..request.params };
            let objective = Objective::parse(&request.objective, request.weights.as_deref(), params)?;
            let mut evaluation = objective.evaluate(table)?;
            let m = &mut evaluation.metrics;
            m.insert(
                "ranking/accuracy".into(),
                ranking::ranking_accuracy(&table.policy_chosen_logps, &table.policy_rejected_logps),
            );
            if let (Ok(cl), Ok(rl)) = (table.lengths(Side::Chosen, ""), table.lengths(Side::Rejected, "")) {
                m.insert(
                    "ranking/accuracy_normalized".into(),
                    ranking::ranking_accuracy_normalized(
                        &table.policy_chosen_logps,
                        &table.policy_rejected_logps,
                        &cl,
                        &rl,
                    ),
                );
            }
            if table.preference_share.all() {
                let share: Vec<f64> = table.preference_share.iter().map(|s| s.copied().unwrap_or_default()).collect();
                m.insert(
                    "ranking/idealized_accuracy".into(),
                    ranking::idealized_ranking_accuracy(
                        &table.reference_chosen_logps,
                        &table.reference_rejected_logps,
                        &share,
                        params.beta,
                    ),
                );
            }
            Ok(Report { ids: Cow::Borrowed(&table.id), evaluation })
        }
        Preferences::Diffusion(table) => {
            let (ids, evaluation) = match request.objective.trim() {
                "diffusion_dpo" | "sigmoid" => {
                    diffusion::diffusion_dpo(table, request.beta.unwrap_or(DIFFUSION_DPO_BETA))?
                }
                "mapo" => diffusion::mapo(
                    table,
                    &MapoParams { beta: request.beta.unwrap_or(MapoParams::default().beta), ..MapoParams::default() },
                )?,
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "`{other}` does not apply to Diffusion-DPO rows; use `diffusion_dpo` or `mapo`"
                    )))
                }
            };
            Ok(Report { ids: Cow::Owned(ids), evaluation })
        }
    }
}
