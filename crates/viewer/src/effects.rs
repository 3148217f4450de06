//! The page's side effects, in one layer the reducer feeds: [`wanted`] says, from the state
//! alone, which async work the state asks for (a pure function, tested natively), and [`run`]
//! is the one place that starts it. The app starts each effect when it enters the wanted list
//! (an effect is identified by what it depends on, as a hook's dependencies would identify it),
//! and the reducer drops any answer that arrives for settings no longer current.

use std::rc::Rc;

use prefscope_clip::scorer::Scorer;
use serde_json::json;
use wasm_bindgen_futures::spawn_local;
use yew::Callback;

use crate::host::Host;
use crate::options::View;
use crate::store::{Action, Request, Source, State};
use crate::{compute, tasks};

/// What the page's `data` URL holds for a scoring view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    Manifest,
    Pairs,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Open the device (once, at mount).
    OpenDevice,
    /// Load the page's model (`None`: the demo model) onto the opened device (`epoch`: which
    /// device, `State::runtime_epoch`).
    LoadModel { url: Option<String>, epoch: u32, dtype: prefscope_clip::DtypeChoice },
    /// Score the demo gallery or the user's inputs with the loaded model (`model`: its address).
    Score { model: usize, scorer: Scorer, source: Source, requests: u32, bundled_reference: bool },
    /// `relevant + w·irrelevant` for the scored split (`scored`: its address).
    Reweight { scored: usize, weight_bits: u32 },
    /// DPO data for the DPO view: the page's URL, or the bundled run.
    LoadDpo { url: Option<String> },
    /// The page's `data` URL for a scoring view, once a model is there.
    LoadData { url: String, kind: DataKind },
    /// The DPO report for the settings `key` names, on the device of `epoch`.
    DpoReport { key: String, epoch: u32 },
    /// Request `id` from a control (`store::Request`).
    Request { id: u64 },
    /// Count the model cache for the Model view (again when the model changes).
    CacheUsage { model: usize },
    /// The Pairs view's bundled pair set, scored by the loaded model (`model`: its address).
    BundledPairs { model: usize },
    /// The diversity split of the scored set on show (`scored`: its address), after the
    /// rankings are painted.
    Diversity { scored: usize },
}

/// The effects `state` asks for, in the order they should start.
pub fn wanted(state: &State) -> Vec<Effect> {
    let mut out = vec![Effect::OpenDevice];
    let runtime = state.runtime.is_some();
    // The DPO view needs no model: it is loaded when a scoring view is first shown.
    // A model the user picked replaces the page's own (a `model` URL drops it again).
    if runtime && state.picked_model.is_none() && (state.view != View::Dpo || state.model.is_some()) {
        out.push(Effect::LoadModel {
            url: state.options.model.clone(),
            epoch: state.runtime_epoch,
            dtype: state.options.dtype,
        });
    }
    if let (true, Some(model), None) = (runtime, &state.model, &state.scored) {
        out.push(Effect::Score {
            model: Rc::as_ptr(model) as usize,
            scorer: state.scorer,
            source: state.source.clone(),
            requests: state.score_requests,
            bundled_reference: state.inputs.bundled_reference,
        });
    }
    if let (true, Some(scored)) = (runtime, &state.scored) {
        out.push(Effect::Reweight { scored: Rc::as_ptr(scored) as usize, weight_bits: state.reweight.to_bits() });
    }
    if let Some(scored) = state.scored.as_ref().filter(|s| s.diversity_input.is_some() && state.diversity().is_none()) {
        out.push(Effect::Diversity { scored: Rc::as_ptr(scored) as usize });
    }
    if state.view == View::Dpo {
        let url = state.options.data.clone().filter(|_| state.data_view == View::Dpo);
        if url.is_some() || state.dpo.source.is_none() {
            out.push(Effect::LoadDpo { url });
        }
    }
    let kind = match state.data_view {
        View::Score | View::Decompose => Some(DataKind::Manifest),
        View::Pairs => Some(DataKind::Pairs),
        View::Dpo | View::Model => None,
    };
    if let (Some(url), Some(kind), true) = (&state.options.data, kind, state.model.is_some()) {
        out.push(Effect::LoadData { url: url.clone(), kind });
    }
    let key = state.dpo.key();
    let stale = state.dpo.data.is_some() && state.dpo.result.as_ref().is_none_or(|r| r.key != key);
    if stale && runtime {
        out.push(Effect::DpoReport { key, epoch: state.runtime_epoch });
    }
    out.extend(state.requests.iter().map(|(id, _)| Effect::Request { id: *id }));
    let pairs_url = state.options.data.is_some() && state.data_view == View::Pairs;
    if let (View::Pairs, None, Some(model), false) = (state.view, &state.pairs, &state.model, pairs_url) {
        out.push(Effect::BundledPairs { model: Rc::as_ptr(model) as usize });
    }
    if state.view == View::Model {
        out.push(Effect::CacheUsage { model: state.model.as_ref().map_or(0, |m| Rc::as_ptr(m) as usize) });
    }
    out
}

/// Starts `effect` on what `state` holds; its results come back as actions.
pub fn run(effect: Effect, state: &State, dispatch: &Callback<Action>, host: &Host) {
    let dispatch = dispatch.clone();
    let host = host.clone();
    match effect {
        Effect::OpenDevice => {
            let choice = state.options.device;
            let needs_model = state.options.view != View::Dpo;
            spawn_local(async move {
                dispatch.emit(Action::Progress(Some(tasks::progress("opening the device", None))));
                let runtime = compute::open(choice).await;
                crate::scope::mark("device-open");
                // A DPO-only viewer is ready now; the others once their model is.
                if !needs_model {
                    host.emit(
                        "prefscope-ready",
                        &json!({"device": runtime.badge.device, "adapter": runtime.badge.label}),
                    );
                }
                dispatch.emit(Action::Runtime(runtime));
                dispatch.emit(Action::Progress(None));
            });
        }
        Effect::LoadModel { url, dtype, .. } => {
            let Some(runtime) = state.runtime.clone() else { return };
            let base = state.options.base.clone();
            spawn_local(async move {
                match tasks::load_model(&runtime, url.as_deref(), &base, dtype, tasks::report_to(&dispatch)).await {
                    Ok(model) => {
                        let detail = json!({"device": runtime.badge.device, "adapter": runtime.badge.label, "model": model.name});
                        host.emit("prefscope-ready", &detail);
                        dispatch.emit(Action::Model(model));
                    }
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
                dispatch.emit(Action::Progress(None));
            });
        }
        Effect::Score { scorer, source, .. } => {
            // The model runs on the runtime's device: scoring waits for both.
            let (Some(_), Some(model)) = (state.runtime.as_ref(), state.model.clone()) else { return };
            let (inputs, reweight) = (state.inputs.clone(), state.reweight);
            spawn_local(async move {
                let result = match source {
                    Source::Demo => tasks::score_demo(&model, scorer, reweight, &dispatch).await,
                    Source::User => tasks::score_user(&model, &inputs, scorer, reweight, &dispatch).await,
                };
                match result {
                    Ok(scored) => {
                        let detail = json!({"view": "score", "rows": scored.rows.len(), "preset": scorer.name(),
                            "source": if scored.source == Source::Demo { "demo" } else { "user" }, "millis": scored.millis});
                        host.emit("prefscope-scored", &detail);
                        dispatch.emit(Action::Scored(Rc::new(scored)));
                    }
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
                dispatch.emit(Action::Progress(None));
            });
        }
        Effect::Diversity { .. } => {
            let Some(scored) = state.scored.clone() else { return };
            spawn_local(async move {
                // Let the browser paint the rankings first: the split can take a moment.
                gloo::timers::future::TimeoutFuture::new(0).await;
                if let Some(split) = scored.diversity_input.as_ref().and_then(|d| d.split()) {
                    dispatch.emit(Action::Diversity(scored, Rc::new(split)));
                }
            });
        }
        Effect::Reweight { weight_bits, .. } => {
            let (Some(_), Some(scored)) = (state.runtime.as_ref(), state.scored.clone()) else { return };
            let weight = f32::from_bits(weight_bits);
            spawn_local(async move {
                match tasks::reweight(&scored, weight).await {
                    Ok(values) => dispatch.emit(Action::Reweighted(weight, values)),
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
            });
        }
        Effect::LoadDpo { url } => {
            let base = state.options.base.clone();
            spawn_local(async move {
                let loaded = match url.as_deref() {
                    // `data=` may list several URLs: the evaluations of one run.
                    Some(urls) => {
                        let urls: Vec<String> = urls.split_whitespace().map(str::to_string).collect();
                        tasks::load_dpo(&urls, &dispatch).await
                    }
                    None => tasks::load_bundled(&base, &dispatch).await.map(tasks::DpoLoaded::Run),
                };
                match loaded {
                    Ok(loaded) => dispatch.emit(dpo_loaded(urls_name(url.as_deref()), loaded)),
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
                dispatch.emit(Action::Progress(None));
            });
        }
        Effect::LoadData { url, kind } => {
            let Some(model) = state.model.clone() else { return };
            let loaded = state.inputs.images.clone();
            spawn_local(async move {
                match kind {
                    DataKind::Pairs => {
                        let name = url.rsplit('/').next().unwrap_or(&url).to_string();
                        let result = match crate::fetch::fetch_bytes(&url, &|_, _| {}).await {
                            Ok(bytes) => tasks::load_pairs(&model, &name, bytes, Some(&url), &loaded, &dispatch).await,
                            Err(e) => Err(e.into()),
                        };
                        match result {
                            Ok(p) => dispatch.emit(Action::Pairs(Rc::new(p))),
                            Err(e) => dispatch.emit(Action::Error(e)),
                        }
                    }
                    DataKind::Manifest => match tasks::load_manifest_url(&url, &dispatch).await {
                        Ok((name, rows, images)) => {
                            dispatch.emit(Action::ClearImages);
                            dispatch.emit(Action::AddImages(images));
                            dispatch.emit(Action::Manifest(Some((name, rows))));
                            dispatch.emit(Action::ScoreSource(Source::User));
                        }
                        Err(e) => dispatch.emit(Action::Error(e)),
                    },
                }
                dispatch.emit(Action::Progress(None));
            });
        }
        Effect::Request { id } => {
            if let Some((_, request)) = state.requests.iter().find(|(n, _)| *n == id) {
                request_run(id, request.clone(), state, dispatch);
            }
        }
        Effect::BundledPairs { .. } => {
            let Some(model) = state.model.clone() else { return };
            spawn_local(async move {
                match tasks::bundled_pairs(&model, &dispatch).await {
                    Ok(p) => dispatch.emit(Action::Pairs(Rc::new(p))),
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
                dispatch.emit(Action::Progress(None));
            });
        }
        Effect::CacheUsage { .. } => {
            spawn_local(async move { dispatch.emit(Action::CacheUsage(crate::fetch::cache_usage().await.ok())) });
        }
        Effect::DpoReport { .. } => {
            let Some(runtime) = state.runtime.clone() else { return };
            let dpo = state.dpo.clone();
            spawn_local(async move {
                match tasks::dpo_report(&runtime, &dpo).await {
                    Ok(result) => {
                        let detail = json!({"view": "dpo", "pairs": result.ids.len(), "beta": dpo.beta, "loss": dpo.losses.join(","),
                            "wasmMemoryBytes": tasks::wasm_memory_bytes()});
                        host.emit("prefscope-scored", &detail);
                        dispatch.emit(Action::DpoResult(Rc::new(result)));
                    }
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
            });
        }
    }
}

/// The action that shows loaded DPO data (`name`: a single file's).
fn dpo_loaded(name: String, loaded: tasks::DpoLoaded) -> Action {
    match loaded {
        tasks::DpoLoaded::Pairs(data) => Action::DpoData(name, Rc::new(data)),
        tasks::DpoLoaded::Ranked(lists) => Action::DpoRanked(name, Rc::new(lists)),
        tasks::DpoLoaded::Run(run) => Action::DpoRun(Rc::new(run)),
    }
}

/// A URL's file name (what the view calls the data).
fn urls_name(url: Option<&str>) -> String {
    let url = url.and_then(|u| u.split_whitespace().next()).unwrap_or("");
    url.rsplit('/').next().unwrap_or(url).split('?').next().unwrap_or(url).to_string()
}

/// Starts request `id`; `RequestDone(id)` follows its answer.
fn request_run(id: u64, request: Rc<Request>, state: &State, dispatch: Callback<Action>) {
    let (runtime, model) = (state.runtime.clone(), state.model.clone());
    let (loaded, base, dtype) = (state.inputs.images.clone(), state.options.base.clone(), state.options.dtype);
    spawn_local(async move {
        let fail = |e: String| dispatch.emit(Action::Error(e));
        match &*request {
            Request::IngestFiles(files) => tasks::ingest_files(files.clone(), &dispatch).await,
            Request::FetchImages(urls) => tasks::fetch_images(urls.clone(), &dispatch).await,
            Request::PairsFile(file) => match tasks::pairs_file(model, file.clone(), &loaded, &dispatch).await {
                Ok(p) => dispatch.emit(Action::Pairs(Rc::new(p))),
                Err(e) => fail(e),
            },
            Request::DpoFiles(files) => {
                let name = files.first().map(|f| f.name()).unwrap_or_default();
                match tasks::dpo_files(files.clone(), &dispatch).await {
                    Ok(loaded) => dispatch.emit(dpo_loaded(name, loaded)),
                    Err(e) => fail(e),
                }
            }
            Request::BundledDpo => match tasks::load_bundled(&base, &dispatch).await {
                Ok(run) => dispatch.emit(Action::DpoRun(Rc::new(run))),
                Err(e) => fail(e),
            },
            Request::ModelFiles(files) => match runtime {
                Some(runtime) => {
                    let picked = files.iter().map(|f| (f.name(), web_sys::Blob::from(f.clone()))).collect();
                    match tasks::load_model_files(&runtime, picked, dtype, tasks::report_to(&dispatch)).await {
                        Ok(model) => dispatch.emit(Action::Model(model)),
                        Err(e) => fail(e),
                    }
                }
                None => fail("the device is still opening; pick the model files again in a moment".into()),
            },
            Request::ClearCache => {
                if let Err(e) = crate::fetch::clear_cache().await {
                    fail(e);
                }
                dispatch.emit(Action::CacheUsage(crate::fetch::cache_usage().await.ok()));
            }
        }
        dispatch.emit(Action::Progress(None));
        dispatch.emit(Action::RequestDone(id));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{Badge, Model, Runtime};
    use crate::options::Options;
    use yew::Reducible;

    fn state(attributes: &str) -> Rc<State> {
        Rc::new(State::new(Rc::new(Options::parse(attributes).unwrap())))
    }

    const AUTO: prefscope_clip::DtypeChoice = prefscope_clip::DtypeChoice::Auto;

    fn cpu() -> Action {
        Action::Runtime(Runtime {
            gpu: None,
            badge: Badge { device: "cpu", label: "CPU".into(), reason: String::new() },
        })
    }

    fn demo_model() -> Action {
        let encoder =
            prefscope_clip::Encoder::load(&prefscope_synth::demo::model_files(), prefscope_clip::Backend::Cpu).unwrap();
        Action::Model(Rc::new(Model { name: "demo".into(), encoder, key: "demo".into(), bundled: true, dtype: AUTO }))
    }

    fn kinds(effects: &[Effect]) -> Vec<&'static str> {
        effects
            .iter()
            .map(|e| match e {
                Effect::OpenDevice => "device",
                Effect::LoadModel { .. } => "model",
                Effect::Score { .. } => "score",
                Effect::Reweight { .. } => "reweight",
                Effect::LoadDpo { .. } => "dpo data",
                Effect::LoadData { .. } => "data",
                Effect::DpoReport { .. } => "dpo report",
                Effect::Request { .. } => "request",
                Effect::CacheUsage { .. } => "cache usage",
                Effect::BundledPairs { .. } => "bundled pairs",
                Effect::Diversity { .. } => "diversity",
            })
            .collect()
    }

    #[test]
    fn the_score_view_opens_the_device_then_loads_and_scores_then_reweights() {
        let s = state(r#"{"base":"/"}"#);
        assert_eq!(kinds(&wanted(&s)), ["device"]);
        let s = s.reduce(cpu());
        assert_eq!(wanted(&s)[1], Effect::LoadModel { url: None, epoch: 0, dtype: AUTO });
        let s = s.reduce(demo_model());
        assert_eq!(kinds(&wanted(&s)), ["device", "model", "score"]);
        // A new preset is a new scoring (another effect), the old one's answer is dropped.
        let before = wanted(&s);
        let s = s.reduce(Action::Scorer(Scorer::Clip));
        let after = wanted(&s);
        assert_ne!(before[2], after[2]);
        assert!(matches!(&after[2], Effect::Score { scorer: Scorer::Clip, .. }));
    }

    #[test]
    fn a_dpo_viewer_loads_its_data_and_report_without_a_model() {
        let s = state(r#"{"base":"/","view":"dpo","data":"https://x/run.jsonl"}"#).reduce(cpu());
        assert_eq!(kinds(&wanted(&s)), ["device", "dpo data"]);
        assert_eq!(wanted(&s)[1], Effect::LoadDpo { url: Some("https://x/run.jsonl".into()) });
        let s = s.reduce(Action::DpoData(
            "run.jsonl".into(),
            Rc::new(prefscope_core::io::read::Preferences::Dpo(Default::default())),
        ));
        let report = wanted(&s);
        assert!(matches!(report.last(), Some(Effect::DpoReport { .. })));
        // Another β is another report.
        let s = s.reduce(Action::DpoBeta(0.5));
        assert_ne!(report.last(), wanted(&s).last());
    }

    #[test]
    fn a_lost_gpu_moves_the_page_to_the_cpu_and_starts_the_work_again() {
        let gpu = prefscope_gpu::block_on(prefscope_gpu::Gpu::new(true)).expect("an adapter (lavapipe in CI)");
        let on_gpu = Action::Runtime(Runtime {
            gpu: Some(gpu.clone()),
            badge: Badge { device: "webgpu", label: "WebGPU".into(), reason: String::new() },
        });
        let gpu_model = || {
            let files = prefscope_synth::demo::model_files();
            let encoder = prefscope_clip::Encoder::load(&files, prefscope_clip::Backend::Gpu(gpu.clone())).unwrap();
            Action::Model(Rc::new(Model {
                name: "demo".into(),
                encoder,
                key: "demo".into(),
                bundled: true,
                dtype: AUTO,
            }))
        };
        let s = state(r#"{"base":"/"}"#).reduce(on_gpu).reduce(gpu_model());
        assert_eq!(kinds(&wanted(&s)), ["device", "model", "score"]);
        let lost = || Action::Error("scoring: the GPU device was lost: destroyed".into());
        let s = s.reduce(lost());
        let runtime = s.runtime.as_ref().unwrap();
        assert!(runtime.gpu.is_none() && runtime.badge.reason.contains("GPU device was lost"));
        assert!(s.model.is_none() && s.scored.is_none());
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0].contains("continues on the CPU path"), "{}", s.errors[0]);
        // The model is loaded again, as another effect than the first load.
        assert_eq!(wanted(&s)[1], Effect::LoadModel { url: None, epoch: 1, dtype: AUTO });
        // Other tasks that were in flight report the same loss: nothing more happens; a model
        // that finishes loading on the lost GPU is dropped, the CPU's is taken.
        let again = s.reduce(lost()).reduce(gpu_model());
        assert_eq!((again.errors.len(), again.runtime_epoch), (1, 1));
        assert!(again.model.is_none());
        assert!(again.reduce(demo_model()).model.is_some());
    }

    #[test]
    fn another_dtype_loads_the_model_again_and_drops_one_loading_in_the_old() {
        let q8 = prefscope_clip::DtypeChoice::Exactly(prefscope_clip::Dtype::Q8);
        let s = state(r#"{"base":"/"}"#).reduce(cpu()).reduce(demo_model());
        assert!(s.model.is_some());
        let s = s.reduce(Action::Dtype(q8));
        assert!(s.model.is_none() && s.scored.is_none());
        assert_eq!(wanted(&s)[1], Effect::LoadModel { url: None, epoch: 0, dtype: q8 });
        // The auto model finishing its load now is not the one asked for.
        assert!(s.clone().reduce(demo_model()).model.is_none());
        // The same choice again changes nothing; a bad attribute value is an error.
        assert!(Rc::ptr_eq(&s.options, &s.clone().reduce(Action::Dtype(q8)).options));
        let Some(Action::Error(e)) = Action::from_attribute("dtype", Some("int4")) else { panic!("an error") };
        assert!(e.contains("`int4`"), "{e}");
        // Picked files are read again in the new dtype.
        let s = s.reduce(Action::Request(crate::store::Request::ModelFiles(Vec::new()))).reduce(Action::Dtype(AUTO));
        assert_eq!(s.requests.len(), 2);
    }

    #[test]
    fn picked_model_files_replace_the_page_model_until_a_url_is_set() {
        let s = state(r#"{"base":"/"}"#).reduce(cpu());
        assert!(kinds(&wanted(&s)).contains(&"model"));
        let s = s.reduce(Action::Request(crate::store::Request::ModelFiles(Vec::new())));
        assert!(s.picked_model.is_some());
        assert!(!kinds(&wanted(&s)).contains(&"model"), "the picked files load, not the demo model");
        let s = s.reduce(Action::ModelUrl("https://x/m/".into()));
        assert!(s.picked_model.is_none());
        assert!(wanted(&s).contains(&Effect::LoadModel { url: Some("https://x/m/".into()), epoch: 0, dtype: AUTO }));
    }

    #[test]
    fn a_manifest_url_is_loaded_once_a_model_is_there() {
        let s = state(r#"{"base":"/","view":"score","data":"https://x/m.csv"}"#).reduce(cpu());
        assert!(!kinds(&wanted(&s)).contains(&"data"));
        let s = s.reduce(demo_model());
        assert!(wanted(&s).contains(&Effect::LoadData { url: "https://x/m.csv".into(), kind: DataKind::Manifest }));
        let s = s.reduce(Action::ElementView(View::Pairs));
        assert!(wanted(&s).contains(&Effect::LoadData { url: "https://x/m.csv".into(), kind: DataKind::Pairs }));
    }
}
