//! The page's one state store (DESIGN.md "View"): views read it, actions change it. Results
//! that took the towers to compute are kept here so sliders only re-run the kernels after them.

use std::collections::BTreeMap;
use std::rc::Rc;

use prefscope_clip::scorer::Scorer;
use prefscope_core::longalign::DEFAULT_REWEIGHT;
use prefscope_core::read::Preferences;
use prefscope_synth::demo::{GalleryEmbeddings, GalleryRow};
use yew::Reducible;

use crate::compute::{Model, Runtime};
use crate::options::{Options, View};

/// Long work under way: a label and, when known, how far it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub label: String,
    pub fraction: Option<f64>,
}

/// A scored gallery with everything the Score and Decompose views show.
pub struct Scored {
    pub scorer: Scorer,
    pub rows: Vec<GalleryRow>,
    pub embedded: GalleryEmbeddings,
    /// Thumbnails by candidate id (data URLs).
    pub thumbnails: BTreeMap<String, String>,
    /// Relevant and irrelevant parts of every image × prompt (images × prompts, row-major).
    pub relevant: Vec<f32>,
    pub irrelevant: Vec<f32>,
    /// The split kept on the GPU, when the towers ran there: the slider re-runs one kernel.
    pub resident: Option<prefscope_gpu::Decomposed>,
    /// Milliseconds from navigation to the first ranking on screen.
    pub millis: f64,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

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

#[derive(Clone, PartialEq)]
pub struct State {
    pub options: Rc<Options>,
    pub view: View,
    pub runtime: Option<Runtime>,
    pub model: Option<Rc<Model>>,
    pub progress: Option<Progress>,
    pub errors: Vec<String>,
    pub scorer: Scorer,
    pub reweight: f32,
    pub scored: Option<Rc<Scored>>,
    /// Reweighted parts (images × prompts) for the current weight, from the GPU when resident.
    pub reweighted: Option<Rc<(f32, Vec<f32>)>>,
    pub dpo: Dpo,
}

impl State {
    pub fn new(options: Rc<Options>) -> Self {
        State {
            view: options.view,
            runtime: None,
            model: None,
            progress: None,
            errors: options.problems.clone(),
            scorer: Scorer::PickScore,
            reweight: options.reweight.unwrap_or(DEFAULT_REWEIGHT),
            scored: None,
            reweighted: None,
            dpo: Dpo {
                source: None,
                data: None,
                losses: vec!["sigmoid".into()],
                beta: options.beta.unwrap_or(0.1),
                label_smoothing: 0.0,
                result: None,
                selected: None,
            },
            options,
        }
    }
}

pub enum Action {
    View(View),
    Runtime(Runtime),
    Model(Rc<Model>),
    Progress(Option<Progress>),
    Error(String),
    DismissError(usize),
    Scorer(Scorer),
    Scored(Rc<Scored>),
    Reweight(f32),
    Reweighted(f32, Vec<f32>),
    DpoData(String, Rc<Preferences>),
    DpoLosses(Vec<String>),
    DpoBeta(f64),
    DpoLabelSmoothing(f64),
    DpoResult(Rc<DpoResult>),
    DpoSelect(Option<usize>),
    /// The embedding element's `data` or `model` attribute changed.
    DataUrl(String),
    ModelUrl(String),
}

impl Action {
    /// An attribute change of `<prefscope-viewer>` as an action (`None` when it changes nothing).
    pub fn from_attribute(name: &str, value: Option<&str>) -> Option<Action> {
        let value = value.unwrap_or("").trim();
        match name {
            "view" => Some(View::parse(value).map(Action::View).unwrap_or_else(Action::Error)),
            "beta" => Some(match value.parse::<f64>() {
                Ok(b) if b > 0.0 && b.is_finite() => Action::DpoBeta(b),
                _ => Action::Error(format!("beta must be a positive number, got `{value}`")),
            }),
            "reweight" => Some(match value.parse::<f32>() {
                Ok(w) if w.is_finite() => Action::Reweight(w),
                _ => Action::Error(format!("reweight must be a number, got `{value}`")),
            }),
            "data" if !value.is_empty() => Some(Action::DataUrl(value.to_string())),
            "model" if !value.is_empty() => Some(Action::ModelUrl(value.to_string())),
            _ => None,
        }
    }
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::View(v) => s.view = v,
            Action::Runtime(r) => s.runtime = Some(r),
            Action::Model(m) => {
                s.model = Some(m);
                s.scored = None;
                s.reweighted = None;
            }
            Action::Progress(p) => s.progress = p,
            Action::Error(e) => {
                web_sys::console::warn_1(&format!("prefscope: {e}").into());
                s.errors.push(e);
                s.progress = None;
            }
            Action::DismissError(i) => {
                if i < s.errors.len() {
                    s.errors.remove(i);
                }
            }
            Action::Scorer(scorer) => {
                if scorer != s.scorer {
                    s.scorer = scorer;
                    s.scored = None;
                    s.reweighted = None;
                }
            }
            Action::Scored(scored) => {
                if scored.scorer == s.scorer {
                    s.scored = Some(scored);
                    s.reweighted = None;
                }
            }
            Action::Reweight(w) => s.reweight = w,
            Action::Reweighted(w, values) => s.reweighted = Some(Rc::new((w, values))),
            Action::DpoData(source, data) => {
                s.dpo.source = Some(source);
                s.dpo.data = Some(data);
                s.dpo.result = None;
                s.dpo.selected = None;
            }
            Action::DpoLosses(l) => s.dpo.losses = l,
            Action::DpoBeta(b) => s.dpo.beta = b,
            Action::DpoLabelSmoothing(e) => s.dpo.label_smoothing = e,
            Action::DpoResult(r) => {
                if r.key == s.dpo.key() {
                    s.dpo.result = Some(r);
                }
            }
            Action::DpoSelect(i) => s.dpo.selected = i,
            Action::DataUrl(url) => {
                let mut o = (*s.options).clone();
                o.data = Some(url);
                s.options = Rc::new(o);
            }
            Action::ModelUrl(url) => {
                let mut o = (*s.options).clone();
                o.model = Some(url);
                s.options = Rc::new(o);
            }
        }
        Rc::new(s)
    }
}
