//! The page's one state store (docs/DESIGN.md "View"): views read it, actions change it. Results
//! that took the towers to compute are kept here so sliders only re-run the kernels after them.
//! This module holds the state, its actions and the reducer; the views' data types and the
//! requests for work live in its submodules, re-exported here.

mod dpo;
mod pairs;
mod request;
mod score;

pub use crate::diversity::Diversity;
pub use dpo::{Dpo, DpoResult, DpoRun};
pub use pairs::{AnnotatorGroups, Pairs};
pub use request::Request;
pub use score::{Inputs, Row, Scored, Source, UserImage};

use std::rc::Rc;

use prefscope_clip::scorer::Scorer;
use prefscope_core::io::read::Preferences;
use prefscope_core::scoring::longalign::DEFAULT_REWEIGHT;
use yew::Reducible;

use crate::compute::{Model, Runtime};
use crate::options::{Options, View};

/// Long work under way: a label and, when known, how far it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub label: String,
    pub fraction: Option<f64>,
}

#[derive(Clone, PartialEq)]
pub struct State {
    pub options: Rc<Options>,
    pub view: View,
    /// The view the page's `data` URL is for (the element's `view` attribute).
    pub data_view: View,
    pub runtime: Option<Runtime>,
    /// Bumped when the runtime changes (the GPU lost, the CPU path taken): work that depends
    /// on the device is started again.
    pub runtime_epoch: u32,
    pub model: Option<Rc<Model>>,
    /// The files of a model the user picked (the page's model until a `model` URL is set):
    /// loaded again if the device changes.
    pub picked_model: Option<Rc<Vec<web_sys::File>>>,
    pub progress: Option<Progress>,
    pub errors: Vec<String>,
    pub scorer: Scorer,
    pub reweight: f32,
    pub scored: Option<Rc<Scored>>,
    /// Score the user's inputs rather than the demo gallery.
    pub source: Source,
    pub inputs: Inputs,
    /// Bumped by "Score" so the same inputs can be scored again.
    pub score_requests: u32,
    /// Reweighted parts (images × prompts) for the current weight, from the GPU when resident.
    pub reweighted: Option<Rc<(f32, Vec<f32>)>>,
    /// How much of the scored images' diversity their prompts explain, over all rows and per
    /// group, and the result it is for (computed after the rankings are shown).
    pub diversity: Option<(Rc<Scored>, Rc<Diversity>)>,
    pub dpo: Dpo,
    pub pairs: Option<Rc<Pairs>>,
    /// PickScore's tie threshold on |p1 − p0|.
    pub tie_threshold: f32,
    /// Requests not yet answered, by number.
    pub requests: Vec<(u64, Rc<Request>)>,
    pub next_request: u64,
    /// Files and bytes in the model cache (the Model view), when last counted.
    pub cache_usage: Option<crate::fetch::CacheUsage>,
}

impl State {
    pub fn new(options: Rc<Options>) -> Self {
        State {
            view: options.view,
            data_view: options.view,
            runtime: None,
            runtime_epoch: 0,
            model: None,
            picked_model: None,
            progress: None,
            errors: options.problems.clone(),
            scorer: Scorer::PickScore,
            reweight: options.reweight.unwrap_or(DEFAULT_REWEIGHT),
            scored: None,
            source: Source::Demo,
            inputs: Inputs { bundled_reference: true, ..Inputs::default() },
            score_requests: 0,
            reweighted: None,
            diversity: None,
            dpo: Dpo {
                source: None,
                data: None,
                losses: vec!["sigmoid".into()],
                beta: options.beta.unwrap_or(0.1),
                label_smoothing: 0.0,
                result: None,
                selected: None,
                run: None,
                step: 0,
                ranked: None,
                ranked_objective: "pro".into(),
                ranked_result: None,
            },
            pairs: None,
            tie_threshold: 0.0,
            requests: Vec::new(),
            next_request: 0,
            cache_usage: None,
            options,
        }
    }
}

impl State {
    /// The diversity split of the result on show, once it is computed.
    pub fn diversity(&self) -> Option<Rc<Diversity>> {
        let (scored, split) = self.diversity.as_ref()?;
        self.scored.as_ref().filter(|s| Rc::ptr_eq(s, scored)).map(|_| split.clone())
    }
}

pub enum Action {
    View(View),
    /// The element's `view` attribute: the view shown and the one its `data` is for.
    ElementView(View),
    Runtime(Runtime),
    Model(Rc<Model>),
    Progress(Option<Progress>),
    Error(String),
    DismissError(usize),
    DismissErrors,
    Scorer(Scorer),
    Scored(Rc<Scored>),
    /// The diversity split of a scored result.
    Diversity(Rc<Scored>, Rc<Diversity>),
    /// Add decoded images, replace the prompts or the manifest, then score them.
    AddImages(Vec<Rc<UserImage>>),
    ClearImages,
    Prompts(Vec<String>),
    Manifest(Option<(String, Vec<prefscope_core::io::record::ManifestRow>)>),
    BundledReference(bool),
    ScoreSource(Source),
    Reweight(f32),
    Reweighted(f32, Vec<f32>),
    DpoData(String, Rc<Preferences>),
    /// Several evaluations of one run; the last one is shown.
    DpoRun(Rc<DpoRun>),
    /// Show the run's evaluation at this index.
    DpoStep(usize),
    /// Ranked lists from a file, and the objective to compute on them.
    DpoRanked(String, Rc<Vec<prefscope_core::preference::dpo::ranked::RankedList>>),
    DpoRankedObjective(String),
    DpoLosses(Vec<String>),
    DpoBeta(f64),
    DpoLabelSmoothing(f64),
    DpoResult(Rc<DpoResult>),
    DpoSelect(Option<usize>),
    Pairs(Rc<Pairs>),
    TieThreshold(f32),
    /// The embedding element's `data` or `model` attribute changed.
    DataUrl(String),
    ModelUrl(String),
    /// Another dtype for the towers (the Model view's selector, the element's `dtype`): the
    /// model is loaded again in it.
    Dtype(prefscope_clip::DtypeChoice),
    /// A control asks for work (queued; see [`Request`]), and the answer to request `n` is in.
    Request(Request),
    RequestDone(u64),
    CacheUsage(Option<crate::fetch::CacheUsage>),
}

impl Action {
    /// An attribute change of `<prefscope-viewer>` as an action (`None` when it changes nothing).
    pub fn from_attribute(name: &str, value: Option<&str>) -> Option<Action> {
        let value = value.unwrap_or("").trim();
        match name {
            "view" => Some(View::parse(value).map(Action::ElementView).unwrap_or_else(Action::Error)),
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
            "dtype" => Some(
                prefscope_clip::DtypeChoice::parse(if value.is_empty() { "auto" } else { value })
                    .map(Action::Dtype)
                    .unwrap_or_else(Action::Error),
            ),
            _ => None,
        }
    }
}

/// Whether an error is prefscope-gpu's `GpuError::DeviceLost`, as every task reports it.
pub fn device_lost(error: &str) -> bool {
    error.contains("the GPU device was lost")
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::View(v) => s.view = v,
            Action::ElementView(v) => {
                s.view = v;
                s.data_view = v;
            }
            Action::Runtime(r) => s.runtime = Some(r),
            // A model loaded on a device the page has since left (the GPU, lost), or in a dtype
            // no longer asked for, is dropped.
            Action::Model(m) if m.encoder.gpu().is_some() != s.runtime.as_ref().is_some_and(|r| r.gpu.is_some()) => {}
            Action::Model(m) if m.dtype != s.options.dtype => {}
            Action::Model(m) => {
                s.model = Some(m);
                s.scored = None;
                s.reweighted = None;
            }
            Action::Progress(p) => s.progress = p,
            Action::Error(e) if device_lost(&e) => {
                #[cfg(target_arch = "wasm32")]
                web_sys::console::warn_1(&format!("prefscope: {e}").into());
                // The first task to hear of it moves the page to the CPU path; the model is
                // loaded there and every result is computed again. Later reports of the same
                // loss (other tasks that were in flight) add nothing.
                if s.runtime.as_ref().is_some_and(|r| r.gpu.is_some()) {
                    s.runtime = Some(crate::compute::cpu(format!(
                        "the GPU device was lost, so the page moved to the CPU path ({e})"
                    )));
                    s.runtime_epoch += 1;
                    s.model = None;
                    s.scored = None;
                    s.reweighted = None;
                    s.dpo.result = None;
                    // A model from picked files is loaded from them again (a URL or the demo
                    // model is, by the model effect).
                    if let Some(files) = s.picked_model.clone() {
                        s.requests.push((s.next_request, Rc::new(Request::ModelFiles((*files).clone()))));
                        s.next_request += 1;
                    }
                    s.errors.push(format!("{e}. prefscope continues on the CPU path: the model is loaded there and the results computed again."));
                }
                s.progress = None;
            }
            Action::Error(e) => {
                #[cfg(target_arch = "wasm32")]
                web_sys::console::warn_1(&format!("prefscope: {e}").into());
                s.errors.push(e);
                s.progress = None;
            }
            Action::DismissErrors => s.errors.clear(),
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
            Action::AddImages(images) => s.inputs.images.extend(images),
            Action::ClearImages => s.inputs.images.clear(),
            Action::Prompts(p) => s.inputs.prompts = p,
            Action::Manifest(m) => s.inputs.manifest = m,
            Action::BundledReference(b) => {
                s.inputs.bundled_reference = b;
                if s.source == Source::User {
                    s.scored = None;
                    s.reweighted = None;
                }
            }
            Action::ScoreSource(source) => {
                s.source = source;
                s.scored = None;
                s.reweighted = None;
                s.score_requests += 1;
            }
            Action::Scored(scored) => {
                if scored.scorer == s.scorer && scored.source == s.source {
                    s.scored = Some(scored);
                    s.reweighted = None;
                }
            }
            Action::Diversity(scored, split) => s.diversity = Some((scored, split)),
            Action::Reweight(w) => s.reweight = w,
            Action::Reweighted(w, values) => s.reweighted = Some(Rc::new((w, values))),
            Action::DpoData(source, data) => {
                // Unpaired rows take KTO only (TRL's KTOTrainer); pairs keep the chosen losses.
                if matches!(*data, Preferences::Unpaired(_)) {
                    s.dpo.losses = vec!["kto".into()];
                }
                s.dpo.ranked = None;
                s.dpo.source = Some(source);
                s.dpo.data = Some(data);
                s.dpo.result = None;
                s.dpo.selected = None;
                s.dpo.run = None;
            }
            Action::DpoRun(run) => {
                let last = run.data.len().saturating_sub(1);
                s.dpo.ranked = None;
                s.dpo.selected = None;
                s.dpo.source = run.names.get(last).cloned();
                s.dpo.data = run.data.get(last).cloned();
                s.dpo.result = None;
                s.dpo.step = last;
                s.dpo.run = Some(run);
            }
            Action::DpoStep(i) => {
                if let Some(run) = s.dpo.run.clone().filter(|r| i < r.data.len()) {
                    // The selected pair stays selected: found by id in the other evaluation.
                    let id = |data: &Preferences, k: usize| match data {
                        Preferences::Dpo(t) => t.id.get(k).cloned(),
                        _ => None,
                    };
                    let selected = s.dpo.selected.zip(s.dpo.data.as_deref()).and_then(|(k, d)| id(d, k));
                    s.dpo.step = i;
                    s.dpo.source = Some(run.names[i].clone());
                    s.dpo.data = Some(run.data[i].clone());
                    s.dpo.result = None;
                    s.dpo.selected = selected.and_then(|want| match &*run.data[i] {
                        Preferences::Dpo(t) => t.id.iter().position(|x| *x == want),
                        _ => None,
                    });
                }
            }
            Action::DpoRanked(source, lists) => {
                // An objective the lists can take: PRO for log-probs; for images SmPO when every
                // list is a pair (unless RankDPO was chosen), RankDPO otherwise.
                use prefscope_core::preference::dpo::ranked::Candidates;
                let images = lists.iter().all(|l| matches!(l.candidates, Candidates::Diffusion { .. }));
                let pairs = lists.iter().all(|l| l.rewards.len() == 2);
                s.dpo.ranked_objective = match (images, pairs, s.dpo.ranked_objective.as_str()) {
                    (false, _, _) => "pro",
                    (true, true, "rankdpo") => "rankdpo",
                    (true, true, _) => "smpo",
                    (true, false, _) => "rankdpo",
                }
                .into();
                s.dpo.ranked = Some((source, lists));
                s.dpo.evaluate_ranked();
            }
            Action::DpoRankedObjective(o) => {
                s.dpo.ranked_objective = o;
                s.dpo.evaluate_ranked();
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
            // The bundled set arriving after a file was picked: the file stays.
            Action::Pairs(p) if p.flipped.is_some() && s.pairs.is_some() => {}
            Action::Pairs(p) => s.pairs = Some(p),
            Action::TieThreshold(t) => s.tie_threshold = t,
            Action::DataUrl(url) => {
                let mut o = (*s.options).clone();
                o.data = Some(url);
                s.options = Rc::new(o);
            }
            Action::Dtype(d) if d == s.options.dtype => {}
            Action::Dtype(d) => {
                let mut o = (*s.options).clone();
                o.dtype = d;
                s.options = Rc::new(o);
                s.model = None;
                s.scored = None;
                s.reweighted = None;
                // Picked files are read again; a URL or the demo model is loaded again by the
                // model effect, whose key holds the dtype.
                if let Some(files) = s.picked_model.clone() {
                    s.requests.push((s.next_request, Rc::new(Request::ModelFiles((*files).clone()))));
                    s.next_request += 1;
                }
            }
            Action::ModelUrl(url) => {
                s.picked_model = None;
                let mut o = (*s.options).clone();
                o.model = Some(url);
                s.options = Rc::new(o);
            }
            Action::Request(r) => {
                if let Request::ModelFiles(files) = &r {
                    s.picked_model = Some(Rc::new(files.clone()));
                }
                s.requests.push((s.next_request, Rc::new(r)));
                s.next_request += 1;
            }
            Action::RequestDone(n) => s.requests.retain(|(k, _)| *k != n),
            Action::CacheUsage(u) => s.cache_usage = u,
        }
        Rc::new(s)
    }
}

/// The reducer natively: what each action changes, and the stale results it drops.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn state() -> Rc<State> {
        Rc::new(State::new(Rc::new(Options::parse(r#"{"base":"/"}"#).unwrap())))
    }

    fn scored(scorer: Scorer, source: Source) -> Rc<Scored> {
        Rc::new(Scored {
            scorer,
            source,
            rows: Vec::new(),
            image_names: Vec::new(),
            prompts: Vec::new(),
            segments: Vec::new(),
            thumbnails: Vec::new(),
            reference: String::new(),
            split: Default::default(),
            diversity_input: None,
            millis: 0.0,
        })
    }

    #[test]
    fn a_result_for_another_preset_or_source_is_dropped() {
        let s = state().reduce(Action::Scored(scored(Scorer::PickScore, Source::Demo)));
        assert!(s.scored.is_some());
        let s = s.reduce(Action::Reweighted(0.5, vec![1.0]));
        // A new preset clears the scores and their reweighting; its stale answer is dropped.
        let s = s.reduce(Action::Scorer(Scorer::Clip));
        assert!(s.scored.is_none() && s.reweighted.is_none());
        let s = s.reduce(Action::Scored(scored(Scorer::PickScore, Source::Demo)));
        assert!(s.scored.is_none(), "a PickScore result arriving after the switch to clip");
        let s = s.reduce(Action::Scored(scored(Scorer::Clip, Source::User)));
        assert!(s.scored.is_none(), "a result for the other source");
        let s = s.reduce(Action::Scored(scored(Scorer::Clip, Source::Demo)));
        assert!(s.scored.is_some());
        // The same preset again keeps them.
        let s = s.reduce(Action::Scorer(Scorer::Clip));
        assert!(s.scored.is_some());
    }

    #[test]
    fn asking_to_score_again_clears_and_counts() {
        let s = state().reduce(Action::Scored(scored(Scorer::PickScore, Source::Demo)));
        let s = s.reduce(Action::ScoreSource(Source::User));
        assert_eq!((s.source.clone(), s.score_requests), (Source::User, 1));
        assert!(s.scored.is_none());
        let s = s.reduce(Action::ScoreSource(Source::User));
        assert_eq!(s.score_requests, 2, "the same source scored again (new inputs)");
        // The reference set matters only for the user's inputs.
        let s = s.reduce(Action::Scored(scored(Scorer::PickScore, Source::User)));
        let s = s.reduce(Action::BundledReference(false));
        assert!(s.scored.is_none() && !s.inputs.bundled_reference);
    }

    #[test]
    fn a_dpo_result_for_other_settings_is_dropped() {
        let s = state().reduce(Action::DpoBeta(0.2));
        let result = |key: String| {
            Rc::new(DpoResult {
                key,
                metrics: BTreeMap::new(),
                ids: Vec::new(),
                chosen_reward: Vec::new(),
                rejected_reward: Vec::new(),
                margin: Vec::new(),
                loss: Vec::new(),
                calibration: prefscope_core::preference::calibration::calibration(&[], None, 10).unwrap(),
            })
        };
        let stale = s.dpo.key();
        let s = s.reduce(Action::DpoBeta(0.3));
        let s = s.reduce(Action::DpoResult(result(stale)));
        assert!(s.dpo.result.is_none());
        let key = s.dpo.key();
        let s = s.reduce(Action::DpoResult(result(key)));
        assert!(s.dpo.result.is_some());
        // New data drops the result, the selection and the comparison.
        let s = s.reduce(Action::DpoSelect(Some(3)));
        let s = s.reduce(Action::DpoData("b.jsonl".into(), Rc::new(Preferences::Dpo(Default::default()))));
        assert!(s.dpo.result.is_none() && s.dpo.selected.is_none() && s.dpo.run.is_none());
        assert_eq!(s.dpo.source.as_deref(), Some("b.jsonl"));
    }

    #[test]
    fn a_run_shows_its_last_step_and_keeps_the_selected_pair_across_steps() {
        let table = |ids: &[&str]| {
            let records = ids.iter().map(|id| prefscope_core::DpoRecord { id: id.to_string(), ..Default::default() });
            Rc::new(Preferences::Dpo(prefscope_core::DpoTable::from_records("t", records)))
        };
        let run = Rc::new(DpoRun {
            steps: vec![10, 20],
            names: vec!["eval-10.jsonl".into(), "eval-20.jsonl".into()],
            data: vec![table(&["a", "b"]), table(&["b", "a"])],
        });
        let s = state().reduce(Action::DpoRun(run));
        assert_eq!((s.dpo.step, s.dpo.source.as_deref()), (1, Some("eval-20.jsonl")));
        let s = s.reduce(Action::DpoSelect(Some(1))).reduce(Action::DpoStep(0));
        assert_eq!(
            (s.dpo.source.as_deref(), s.dpo.selected),
            (Some("eval-10.jsonl"), Some(0)),
            "pair `a` at both steps"
        );
        let s = s.reduce(Action::DpoStep(5));
        assert_eq!(s.dpo.step, 0, "a step the run does not have changes nothing");
        assert!(s.reduce(Action::DpoData("x.jsonl".into(), table(&["a"]))).dpo.run.is_none());
        let unpaired = Rc::new(Preferences::Unpaired(Default::default()));
        assert_eq!(state().reduce(Action::DpoData("k.jsonl".into(), unpaired)).dpo.losses, ["kto"]);
    }

    #[test]
    fn requests_queue_by_number_until_answered() {
        let s = state().reduce(Action::Request(Request::ClearCache));
        let s = s.reduce(Action::Request(Request::BundledDpo));
        assert_eq!(s.requests.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 1]);
        let s = s.reduce(Action::RequestDone(0));
        assert_eq!(s.requests.len(), 1);
        assert!(matches!(*s.requests[0].1, Request::BundledDpo));
        let s = s.reduce(Action::RequestDone(7));
        assert_eq!(s.requests.len(), 1, "an unknown number changes nothing");
    }

    #[test]
    fn errors_accumulate_and_are_dismissed_by_index() {
        let s = state().reduce(Action::Progress(Some(Progress { label: "x".into(), fraction: None })));
        let s = s.reduce(Action::Error("a".into())).reduce(Action::Error("b".into()));
        assert_eq!(s.errors, ["a", "b"]);
        assert!(s.progress.is_none(), "an error ends the progress bar");
        let s = s.reduce(Action::DismissError(5)).reduce(Action::DismissError(0));
        assert_eq!(s.errors, ["b"]);
        assert!(s.reduce(Action::DismissErrors).errors.is_empty());
    }

    #[test]
    fn element_attributes_become_actions() {
        assert!(matches!(Action::from_attribute("beta", Some("0.25")), Some(Action::DpoBeta(b)) if b == 0.25));
        assert!(matches!(Action::from_attribute("beta", Some("-1")), Some(Action::Error(e)) if e.contains("beta")));
        assert!(
            matches!(Action::from_attribute("reweight", Some("x")), Some(Action::Error(e)) if e.contains("reweight"))
        );
        assert!(Action::from_attribute("data", Some("")).is_none());
        let s = state().reduce(Action::from_attribute("data", Some("https://x/m.csv")).unwrap());
        assert_eq!(s.options.data.as_deref(), Some("https://x/m.csv"));
        let s = s.reduce(Action::from_attribute("view", Some("dpo")).unwrap());
        assert_eq!((s.view, s.data_view), (View::Dpo, View::Dpo));
    }
}
