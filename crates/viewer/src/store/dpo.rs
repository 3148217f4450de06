//! The DPO view's data: its inputs, settings and last result.

use std::collections::BTreeMap;
use std::rc::Rc;

use prefscope_core::io::read::Preferences;

/// The DPO view's inputs and last result.
#[derive(Clone, PartialEq)]
pub struct Dpo {
    pub source: Option<String>,
    pub data: Option<Rc<Preferences>>,
    /// Selected loss types (TRL names); several are summed with weight 1.
    pub losses: Vec<String>,
    pub beta: f64,
    pub label_smoothing: f64,
    pub result: Option<Rc<DpoResult>>,
    /// Selected pair (for the per-token heatmap).
    pub selected: Option<usize>,
    /// Several evaluations of one run (files picked or dropped together, a folder, several
    /// `data=` URLs, the bundled run); `data` is then the evaluation at `step`.
    pub run: Option<Rc<DpoRun>>,
    /// The shown evaluation of `run`.
    pub step: usize,
    /// Ranked lists (one prompt, n candidates per row) in place of pairs, with their objective
    /// (`pro`, `smpo`, `rankdpo`): the view computes them on the CPU.
    pub ranked: Option<(String, Rc<Vec<prefscope_core::preference::dpo::ranked::RankedList>>)>,
    pub ranked_objective: String,
    /// The objective on the lists, computed when either changes (not on every render).
    pub ranked_result: Option<Rc<Result<prefscope_core::preference::dpo::Evaluation, String>>>,
}

impl Dpo {
    /// The ranked lists' objective with the command's defaults (β 5000, SFT weight 0.05).
    pub(super) fn evaluate_ranked(&mut self) {
        self.ranked_result = self.ranked.as_ref().map(|(_, lists)| {
            let result =
                prefscope_core::preference::dpo::ranked::evaluate_lists(&self.ranked_objective, lists, None, 0.05);
            Rc::new(result.map_err(|e| e.to_string()))
        });
    }
}

/// The evaluations of a run, in step order (steps distinct, ids present: checked on load).
#[derive(Clone, Debug, PartialEq)]
pub struct DpoRun {
    pub steps: Vec<i64>,
    pub names: Vec<String>,
    pub data: Vec<Rc<Preferences>>,
}

/// What one computation of the DPO report gave.
#[derive(Clone, Debug, PartialEq)]
pub struct DpoResult {
    /// The request it answers (so stale answers are dropped).
    pub key: String,
    pub metrics: BTreeMap<String, f64>,
    pub ids: Vec<String>,
    pub chosen_reward: Vec<f64>,
    pub rejected_reward: Vec<f64>,
    pub margin: Vec<f64>,
    pub loss: Vec<f64>,
    /// The reliability diagram of σ(margin).
    pub calibration: prefscope_core::preference::calibration::Calibration,
}

impl Dpo {
    /// Identifies the request the current settings make.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.source.as_deref().unwrap_or(""),
            self.losses.join(","),
            self.beta,
            self.label_smoothing
        )
    }
}
