//! One call from loaded preference data to what `prefscope dpo` and the DPO view show:
//! per-pair rows and metrics, with the ranking accuracies of Chen et al. alongside.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::error::ConfigError;
use crate::io::read::Preferences;
use crate::io::record::{DpoTable, Side};
use crate::io::write::{Column, OutputTable};
use crate::preference::calibration::{self, Calibration};
use crate::preference::diffusion::{self, MapoParams, DIFFUSION_DPO_BETA};
use crate::preference::dpo::{Evaluation, FDivergence, Objective, PairwiseParams};
use crate::preference::ranking;
use crate::preference::subsets::{self, By};

/// What to compute. `objective` is the comma list `prefscope dpo --loss` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub objective: String,
    pub weights: Option<Vec<f64>>,
    /// β; `None` means each objective's default (0.1, or 5000 for Diffusion-DPO).
    pub beta: Option<f64>,
    pub params: PairwiseParams,
    /// Equal-width bins of the calibration metrics (`--bins`).
    pub bins: usize,
    /// KTO's weights of the desirable and the undesirable terms (`KTOConfig`'s
    /// `desirable_weight`, `undesirable_weight`; 1 each).
    pub kto_weights: (f64, f64),
}

impl Default for ReportRequest {
    fn default() -> Self {
        Self {
            objective: "sigmoid".into(),
            weights: None,
            beta: None,
            params: PairwiseParams::default(),
            bins: calibration::DEFAULT_BINS,
            kto_weights: (1.0, 1.0),
        }
    }
}

/// What every entry point takes, named as the command's flags (`--loss`, `--weights`,
/// `--beta`, `--label-smoothing`, `--f-divergence`, `--f-alpha`, `--bins`, `--desirable-weight`,
/// `--undesirable-weight`), `None` for the command's
/// default: the one place they become a [`ReportRequest`], so that the command, the JavaScript
/// API and the Python package agree on defaults and refusals.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub loss: Option<String>,
    pub weights: Option<Vec<f64>>,
    pub beta: Option<f64>,
    pub label_smoothing: Option<f64>,
    pub f_divergence: Option<String>,
    pub f_alpha: Option<f64>,
    pub bins: Option<usize>,
    pub desirable_weight: Option<f64>,
    pub undesirable_weight: Option<f64>,
}

impl ReportOptions {
    pub fn request(self) -> Result<ReportRequest, ConfigError> {
        let defaults = ReportRequest::default();
        let f_divergence = match &self.f_divergence {
            Some(name) => FDivergence::parse(name, self.f_alpha.unwrap_or(0.5))?,
            None => defaults.params.f_divergence,
        };
        Ok(ReportRequest {
            objective: self.loss.unwrap_or(defaults.objective),
            weights: self.weights,
            beta: self.beta,
            params: PairwiseParams {
                label_smoothing: self.label_smoothing.unwrap_or(defaults.params.label_smoothing),
                f_divergence,
                ..defaults.params
            },
            bins: self.bins.unwrap_or(defaults.bins),
            kto_weights: (
                kto_weight("--desirable-weight", self.desirable_weight)?,
                kto_weight("--undesirable-weight", self.undesirable_weight)?,
            ),
        })
    }
}

/// A KTO weight: positive and finite (TRL scales the terms by it), 1 when not given.
fn kto_weight(flag: &str, value: Option<f64>) -> Result<f64, ConfigError> {
    match value {
        None => Ok(1.0),
        Some(w) if w.is_finite() && w > 0.0 => Ok(w),
        Some(w) => Err(ConfigError::Invalid(format!("{flag} must be a positive number, got {w}"))),
    }
}

/// The per-pair value columns after `id`, in the contract's order (docs/DESIGN.md "prefscope dpo").
const PAIR_VALUES: [&str; 4] = ["chosen_reward", "rejected_reward", "margin", "loss"];

/// Metrics and per-pair values.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// Pair ids: the table's own for DPO data (borrowed: a million ids are not copied per
    /// objective), the grouped ids for Diffusion-DPO rows.
    pub ids: Cow<'a, [String]>,
    pub evaluation: Evaluation,
    /// How well σ(margin) predicts the labels (its ECE and Brier score are in the metrics too).
    pub calibration: Calibration,
}

impl<'a> Report<'a> {
    /// A report of `evaluation`, with the calibration of its margins against `data`'s labels
    /// (`preference_share` as a soft target when every pair has one) added.
    pub fn new(
        ids: Cow<'a, [String]>,
        mut evaluation: Evaluation,
        data: &Preferences,
        bins: usize,
    ) -> Result<Self, ConfigError> {
        let p: Vec<f64> = evaluation.pairs.margin.iter().map(|&m| crate::numeric::sigmoid(m)).collect();
        let share: Option<Vec<f64>> = match data {
            Preferences::Dpo(t) if t.preference_share.all() => {
                Some(t.preference_share.iter().map(|s| s.copied().unwrap_or_default()).collect())
            }
            // Unpaired rows: σ(margin) is KTO's probability that the row is desirable.
            Preferences::Unpaired(t) => Some(t.label.iter().map(|&l| f64::from(u8::from(l))).collect()),
            _ => None,
        };
        let calibration = calibration::calibration(&p, share.as_deref(), bins)?;
        calibration.insert_metrics(&mut evaluation.metrics);
        Ok(Report { ids, evaluation, calibration })
    }

    pub fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.evaluation.metrics
    }

    /// The document `prefscope dpo --format json` prints (and the JavaScript API returns):
    /// `{"metrics": {TRL's names: value}, "pairs": [rows], "calibration": {"bins": […]}}`, a
    /// non-finite metric as null.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "metrics": crate::io::write::metrics_json(self.metrics()),
            "pairs": self.pairs_table().json_rows(),
            "calibration": self.calibration.json(),
        })
    }

    /// The metrics, and the per-pair rows as an Arrow batch that takes over the value columns
    /// (no copy of a million floats; the Python package hands it to pyarrow as it is).
    pub fn into_parts(self) -> Result<(BTreeMap<String, f64>, arrow_array::RecordBatch), arrow_schema::ArrowError> {
        use arrow_array::{ArrayRef, Float64Array, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        use std::sync::Arc;
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(self.ids.iter()));
        let Evaluation { pairs, metrics } = self.evaluation;
        let values = [pairs.chosen_reward, pairs.rejected_reward, pairs.margin, pairs.loss];
        let mut fields = vec![Field::new("id", DataType::Utf8, false)];
        let mut arrays = vec![ids];
        for (name, v) in PAIR_VALUES.into_iter().zip(values) {
            fields.push(Field::new(name, DataType::Float64, false));
            arrays.push(Arc::new(Float64Array::from(v)));
        }
        Ok((metrics, arrow_array::RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?))
    }

    /// The per-pair rows with the contract's column names.
    pub fn pairs_table(&self) -> OutputTable {
        let p = &self.evaluation.pairs;
        let values = [&p.chosen_reward, &p.rejected_reward, &p.margin, &p.loss];
        let mut columns = vec![("id".to_string(), Column::Text(self.ids.to_vec()))];
        columns.extend(PAIR_VALUES.into_iter().zip(values).map(|(n, v)| (n.to_string(), Column::Float(v.clone()))));
        OutputTable::new(columns)
    }
}

/// What a request asks of Diffusion-DPO rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiffusionObjective {
    /// Diffusion-DPO with its β.
    Dpo(f64),
    Mapo(MapoParams),
}

impl ReportRequest {
    /// β for DPO data (the idealized ranking accuracy uses it too).
    pub fn pairwise_beta(&self) -> f64 {
        self.beta.unwrap_or(self.params.beta)
    }

    /// The DPO objective this request names.
    pub fn dpo_objective(&self) -> Result<Objective, ConfigError> {
        let params = PairwiseParams { beta: self.pairwise_beta(), ..self.params };
        match Objective::parse(&self.objective, self.weights.as_deref(), params)? {
            Objective::Kto(k) => Ok(Objective::Kto(crate::preference::dpo::KtoParams {
                desirable_weight: self.kto_weights.0,
                undesirable_weight: self.kto_weights.1,
                ..k
            })),
            other => Ok(other),
        }
    }

    /// The objective this request names for Diffusion-DPO rows.
    pub fn diffusion_objective(&self) -> Result<DiffusionObjective, ConfigError> {
        match self.objective.trim() {
            "diffusion_dpo" | "sigmoid" => Ok(DiffusionObjective::Dpo(self.beta.unwrap_or(DIFFUSION_DPO_BETA))),
            "mapo" => Ok(DiffusionObjective::Mapo(MapoParams {
                beta: self.beta.unwrap_or(MapoParams::default().beta),
                ..MapoParams::default()
            })),
            other => Err(ConfigError::Invalid(format!(
                "`{other}` does not apply to Diffusion-DPO rows; use `diffusion_dpo` or `mapo`"
            ))),
        }
    }
}

/// Both sides' completion lengths, when the table has them for every pair.
pub fn table_lengths(table: &DpoTable) -> Option<(Vec<f64>, Vec<f64>)> {
    match (table.lengths(Side::Chosen, ""), table.lengths(Side::Rejected, "")) {
        (Ok(c), Ok(r)) => Some((c, r)),
        _ => None,
    }
}

/// Adds Chen et al.'s ranking accuracies (`accuracy` = plain and length-normalised, computed by
/// the caller's engine) and, with `preference_share`, the idealized accuracy at `beta`.
pub fn add_ranking_metrics(table: &DpoTable, beta: f64, accuracy: (f64, Option<f64>), m: &mut BTreeMap<String, f64>) {
    m.insert("ranking/accuracy".into(), accuracy.0);
    if let Some(normalized) = accuracy.1 {
        m.insert("ranking/accuracy_normalized".into(), normalized);
    }
    if table.preference_share.all() {
        let share: Vec<f64> = table.preference_share.iter().map(|s| s.copied().unwrap_or_default()).collect();
        m.insert(
            "ranking/idealized_accuracy".into(),
            ranking::idealized_ranking_accuracy(
                &table.reference_chosen_logps,
                &table.reference_rejected_logps,
                &share,
                beta,
            ),
        );
    }
}

/// Likelihood-displacement and length diagnostics (Razin et al. 2024; Park et al. 2024):
/// `diagnostics/chosen_logratio_negative`, the share of pairs whose chosen completion lost
/// likelihood against the reference (log πθ(y_w) − log π_ref(y_w) < 0, while the margin may
/// still grow); `diagnostics/both_logratios_negative`, the share where both completions did;
/// and, when lengths are known, `diagnostics/margin_length_spearman`, Spearman's ρ between
/// each pair's `margin` and chosen_length − rejected_length (NaN, null in JSON, when either
/// is constant).
pub fn add_diagnostics(table: &DpoTable, margin: &[f64], m: &mut BTreeMap<String, f64>) {
    let n = table.len().max(1) as f64;
    let chosen = |i: usize| table.policy_chosen_logps[i] - table.reference_chosen_logps[i];
    let rejected = |i: usize| table.policy_rejected_logps[i] - table.reference_rejected_logps[i];
    let count = |keep: &dyn Fn(usize) -> bool| (0..table.len()).filter(|&i| keep(i)).count() as f64 / n;
    m.insert("diagnostics/chosen_logratio_negative".into(), count(&|i| chosen(i) < 0.0));
    m.insert("diagnostics/both_logratios_negative".into(), count(&|i| chosen(i) < 0.0 && rejected(i) < 0.0));
    if let Some((cl, rl)) = table_lengths(table) {
        let difference: Vec<f64> = cl.iter().zip(&rl).map(|(c, r)| c - r).collect();
        let rho = crate::correlation::spearman(margin, &difference).unwrap_or(f64::NAN);
        m.insert("diagnostics/margin_length_spearman".into(), rho);
    }
}

/// Computes the requested objective on DPO or Diffusion-DPO data.
pub fn report<'a>(data: &'a Preferences, request: &ReportRequest) -> Result<Report<'a>, ConfigError> {
    match data {
        Preferences::Dpo(table) => {
            let objective = request.dpo_objective()?;
            let mut evaluation = objective.evaluate(table)?;
            let (pc, pr) = (&table.policy_chosen_logps, &table.policy_rejected_logps);
            let normalized =
                table_lengths(table).map(|(cl, rl)| ranking::ranking_accuracy_normalized(pc, pr, &cl, &rl));
            add_ranking_metrics(
                table,
                request.pairwise_beta(),
                (ranking::ranking_accuracy(pc, pr), normalized),
                &mut evaluation.metrics,
            );
            add_diagnostics(table, &evaluation.pairs.margin, &mut evaluation.metrics);
            Ok(Report::new(Cow::Borrowed(&table.id), evaluation, data, request.bins)?)
        }
        Preferences::Unpaired(table) => {
            let evaluation =
                crate::preference::dpo::unpaired::evaluate_rows(table, &request.dpo_objective()?, &request.objective)?;
            Ok(Report::new(Cow::Borrowed(&table.id), evaluation, data, request.bins)?)
        }
        Preferences::Diffusion(table) => {
            let (ids, evaluation) = match request.diffusion_objective()? {
                DiffusionObjective::Dpo(beta) => diffusion::diffusion_dpo(table, beta)?,
                DiffusionObjective::Mapo(params) => diffusion::mapo(table, &params)?,
            };
            Ok(Report::new(Cow::Owned(ids), evaluation, data, request.bins)?)
        }
    }
}

/// Metrics per subset name, and their unweighted mean over subsets.
pub type SubsetMetrics = (BTreeMap<String, BTreeMap<String, f64>>, BTreeMap<String, f64>);

/// Every metric per subset of DPO pairs (each subset's rows reported alone, so a subset's
/// numbers are what its rows give as a file of their own) and their unweighted mean.
pub fn subset_reports(data: &Preferences, by: By, request: &ReportRequest) -> Result<SubsetMetrics, ConfigError> {
    let Preferences::Dpo(table) = data else {
        let what = match data {
            Preferences::Diffusion(_) => "Diffusion-DPO rows",
            _ => "unpaired (KTO) rows",
        };
        return Err(ConfigError::Invalid(format!(
            "`--by {}` splits DPO log-probabilities (pairs); {what} are reported whole",
            by.column()
        )));
    };
    let labels = match by {
        By::Subset => &table.subset,
        By::Category => &table.category,
    };
    let mut subsets = BTreeMap::new();
    for (name, rows) in subsets::group_rows(&table.source, by, labels)? {
        let part = Preferences::Dpo(table.select(&rows));
        subsets.insert(name, report(&part, request)?.evaluation.metrics);
    }
    let mean = subsets::mean_over_subsets(&subsets);
    Ok((subsets, mean))
}
