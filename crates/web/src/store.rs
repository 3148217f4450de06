//! The page's one state store (DESIGN.md "View"): views read it, actions change it. Results
//! that took the towers to compute are kept here so sliders only re-run the kernels after them.

use std::collections::BTreeMap;
use std::rc::Rc;

use prefscope_clip::scorer::Scorer;
use prefscope_core::longalign::DEFAULT_REWEIGHT;
use prefscope_core::read::Preferences;
use yew::Reducible;

use crate::compute::{Model, Runtime};
use crate::options::{Options, View};

/// Long work under way: a label and, when known, how far it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub label: String,
    pub fraction: Option<f64>,
}

/// Where the scored images and prompts came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The embedded demo gallery (with the shapes world's ground truth).
    Demo,
    /// The user's images and prompts (typed, dropped, fetched or from a manifest).
    User,
}

/// One scored image × prompt row, as the Score view lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub id: String,
    /// Rows of a group compete in the softmax and the ranking.
    pub group: String,
    pub prompt: String,
    /// Index into the scored images and prompts (the split's matrix).
    pub image: usize,
    pub text: usize,
    pub rank: u32,
    pub score: f32,
    pub relevant: f32,
    pub irrelevant: f32,
    pub probability: f32,
    /// The shapes world's ground truth (alignment, quality), for the demo gallery.
    pub truth: Option<(f32, f32)>,
}

/// A scored set with everything the Score and Decompose views show.
pub struct Scored {
    pub scorer: Scorer,
    pub source: Source,
    pub rows: Vec<Row>,
    /// Names of the scored images and texts of the scored prompts (the matrix's axes).
    pub image_names: Vec<String>,
    pub prompts: Vec<String>,
    /// LongAlign segments each prompt was encoded in.
    pub segments: Vec<usize>,
    /// Thumbnails, one per image (data or object URLs).
    pub thumbnails: Vec<Option<String>>,
    /// What the common direction is the mean of.
    pub reference: String,
    /// Relevant and irrelevant parts of every image × prompt (images × prompts, row-major).
    pub relevant: Vec<f32>,
    pub irrelevant: Vec<f32>,
    /// The split kept on the GPU, when the towers ran there: the slider re-runs one kernel.
    pub resident: Option<prefscope_gpu::Decomposed>,
    /// Milliseconds from navigation to this result.
    pub millis: f64,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Scored {
    /// The index of row `r`'s pair in the split's matrix.
    pub fn cell(&self, r: &Row) -> usize {
        r.image * self.prompts.len() + r.text
    }
}

/// A decoded image the user gave.
pub struct UserImage {
    pub name: String,
    pub rgba: prefscope_clip::Rgba,
    pub thumbnail: Option<String>,
}

/// The user's inputs to the Score view.
#[derive(Clone, Default)]
pub struct Inputs {
    pub images: Vec<Rc<UserImage>>,
    /// Prompts typed or pasted, one per line; every image is ranked against each.
    pub prompts: Vec<String>,
    /// A manifest's rows (prompt, image, group, id): each row scores its image, by name.
    pub manifest: Option<(String, Vec<prefscope_core::record::ManifestRow>)>,
    /// Use the bundled reference prompts (else the user's prompts) for the common direction.
    pub bundled_reference: bool,
}

impl PartialEq for Inputs {
    fn eq(&self, other: &Self) -> bool {
        self.images.len() == other.images.len()
            && self.images.iter().zip(&other.images).all(|(a, b)| Rc::ptr_eq(a, b))
            && self.prompts == other.prompts
            && self.manifest == other.manifest
            && self.bundled_reference == other.bundled_reference
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
    /// A second file shown beside the first (the bundled run's other checkpoint).
    pub compare: Option<(String, Rc<Preferences>)>,
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

/// Labelled pairs with the model's probabilities (the towers ran once; the threshold is free).
pub struct Pairs {
    pub source: String,
    pub pairs: Vec<prefscope_clip::pairs::PairProbabilities>,
    /// Thumbnails of images 0 and 1 of each pair.
    pub thumbnails: Vec<(Option<String>, Option<String>)>,
}

impl PartialEq for Pairs {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

#[derive(Clone, PartialEq)]
pub struct State {
    pub options: Rc<Options>,
    pub view: View,
    /// The view the page's `data` URL is for (the element's `view` attribute).
    pub data_view: View,
    pub runtime: Option<Runtime>,
    pub model: Option<Rc<Model>>,
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
    pub dpo: Dpo,
    pub pairs: Option<Rc<Pairs>>,
    /// PickScore's tie threshold on |p1 − p0|.
    pub tie_threshold: f32,
}

impl State {
    pub fn new(options: Rc<Options>) -> Self {
        State {
            view: options.view,
            data_view: options.view,
            runtime: None,
            model: None,
            progress: None,
            errors: options.problems.clone(),
            scorer: Scorer::PickScore,
            reweight: options.reweight.unwrap_or(DEFAULT_REWEIGHT),
            scored: None,
            source: Source::Demo,
            inputs: Inputs { bundled_reference: true, ..Inputs::default() },
            score_requests: 0,
            reweighted: None,
            dpo: Dpo {
                source: None,
                data: None,
                losses: vec!["sigmoid".into()],
                beta: options.beta.unwrap_or(0.1),
                label_smoothing: 0.0,
                result: None,
                selected: None,
                compare: None,
            },
            pairs: None,
            tie_threshold: 0.0,
            options,
        }
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
    Scorer(Scorer),
    Scored(Rc<Scored>),
    /// Add decoded images, replace the prompts or the manifest, then score them.
    AddImages(Vec<Rc<UserImage>>),
    ClearImages,
    Prompts(Vec<String>),
    Manifest(Option<(String, Vec<prefscope_core::record::ManifestRow>)>),
    BundledReference(bool),
    ScoreSource(Source),
    Reweight(f32),
    Reweighted(f32, Vec<f32>),
    DpoData(String, Rc<Preferences>),
    DpoCompare(String, Rc<Preferences>),
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
            Action::ElementView(v) => {
                s.view = v;
                s.data_view = v;
            }
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
            Action::Reweight(w) => s.reweight = w,
            Action::Reweighted(w, values) => s.reweighted = Some(Rc::new((w, values))),
            Action::DpoData(source, data) => {
                s.dpo.source = Some(source);
                s.dpo.data = Some(data);
                s.dpo.result = None;
                s.dpo.selected = None;
                s.dpo.compare = None;
            }
            Action::DpoCompare(source, data) => s.dpo.compare = Some((source, data)),
            Action::DpoLosses(l) => s.dpo.losses = l,
            Action::DpoBeta(b) => s.dpo.beta = b,
            Action::DpoLabelSmoothing(e) => s.dpo.label_smoothing = e,
            Action::DpoResult(r) => {
                if r.key == s.dpo.key() {
                    s.dpo.result = Some(r);
                }
            }
            Action::DpoSelect(i) => s.dpo.selected = i,
            Action::Pairs(p) => s.pairs = Some(p),
            Action::TieThreshold(t) => s.tie_threshold = t,
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
