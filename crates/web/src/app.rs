//! The root component: opens the device, loads the model, runs the scoring and DPO work the
//! state asks for, and lays out the header and the current view.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::json;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::host::Host;
use crate::options::{Options, View};
use crate::store::{Action, Source, State};
use crate::{compute, tasks, views};

#[derive(Properties)]
pub struct AppProps {
    pub options: Rc<Options>,
    pub host: Host,
    /// Filled with the store's dispatcher so the custom element can forward attributes.
    pub dispatch: Rc<RefCell<Option<Callback<Action>>>>,
}

impl PartialEq for AppProps {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options && self.host == other.host && Rc::ptr_eq(&self.dispatch, &other.dispatch)
    }
}

/// What views receive: the state and a way to change it.
#[derive(Clone, PartialEq)]
pub struct Ctx {
    pub state: Rc<State>,
    pub dispatch: Callback<Action>,
}

#[function_component(App)]
pub fn app(props: &AppProps) -> Html {
    let store = use_reducer(|| State::new(props.options.clone()));
    let dispatch: Callback<Action> = {
        let d = store.dispatcher();
        Callback::from(move |a| d.dispatch(a))
    };
    *props.dispatch.borrow_mut() = Some(dispatch.clone());
    let state: Rc<State> = Rc::new((*store).clone());

    // The device, once. A DPO-only viewer is ready now; the others once their model is.
    {
        let dispatch = dispatch.clone();
        let host = props.host.clone();
        let choice = props.options.device;
        let needs_model = props.options.view != View::Dpo;
        use_effect_with((), move |_| {
            spawn_local(async move {
                dispatch.emit(Action::Progress(Some(tasks::progress("opening the device", None))));
                let runtime = compute::open(choice).await;
                crate::scope::mark("device-open");
                if !needs_model {
                    host.emit(
                        "prefscope-ready",
                        &json!({"device": runtime.badge.device, "adapter": runtime.badge.label}),
                    );
                }
                dispatch.emit(Action::Runtime(runtime));
                dispatch.emit(Action::Progress(None));
            });
        });
    }

    // The model, when the device is there (the demo model unless the page names one).
    {
        let dispatch = dispatch.clone();
        let host = props.host.clone();
        // The DPO view needs no model: it is loaded when a scoring view is first shown.
        let wanted = state.view != View::Dpo || state.model.is_some();
        let runtime = state.runtime.clone().filter(|_| wanted);
        let url = state.options.model.clone();
        let base = state.options.base.clone();
        use_effect_with((runtime, url), move |(runtime, url)| {
            if let Some(runtime) = runtime.clone() {
                let url = url.clone();
                spawn_local(async move {
                    match tasks::load_model(&runtime, url.as_deref(), &base, tasks::report_to(&dispatch)).await {
                        Ok(model) => {
                            host.emit(
                                "prefscope-ready",
                                &json!({"device": runtime.badge.device, "adapter": runtime.badge.label, "model": model.name}),
                            );
                            dispatch.emit(Action::Model(model));
                        }
                        Err(e) => dispatch.emit(Action::Error(e)),
                    }
                    dispatch.emit(Action::Progress(None));
                });
            }
        });
    }

    // Scores, when a model is loaded and nothing is scored for the preset and source: the demo
    // gallery, or the user's inputs when they asked.
    {
        let dispatch = dispatch.clone();
        let host = props.host.clone();
        let needs = state.model.is_some() && state.scored.is_none();
        let (runtime, model, scorer, reweight) =
            (state.runtime.clone(), state.model.clone(), state.scorer, state.reweight);
        let (source, inputs) = (state.source.clone(), state.inputs.clone());
        let deps = (
            needs,
            model.clone().map(|m| Rc::as_ptr(&m) as usize),
            scorer,
            source.clone(),
            state.score_requests,
            inputs.bundled_reference,
        );
        use_effect_with(deps, move |_| {
            if let (true, Some(runtime), Some(model)) = (needs, runtime, model) {
                spawn_local(async move {
                    let result = match source {
                        Source::Demo => tasks::score_demo(&runtime, &model, scorer, reweight, &dispatch).await,
                        Source::User => tasks::score_user(&runtime, &model, &inputs, scorer, reweight, &dispatch).await,
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
        });
    }

    // The reweighted scores, when the slider moves: one kernel, never the towers.
    {
        let dispatch = dispatch.clone();
        let scored = state.scored.clone();
        let runtime = state.runtime.clone();
        let weight = state.reweight;
        use_effect_with((scored.clone().map(|s| Rc::as_ptr(&s) as usize), weight.to_bits()), move |_| {
            if let (Some(scored), Some(runtime)) = (scored, runtime) {
                spawn_local(async move {
                    match tasks::reweight(&runtime, &scored, weight).await {
                        Ok(values) => dispatch.emit(Action::Reweighted(weight, values)),
                        Err(e) => dispatch.emit(Action::Error(e)),
                    }
                });
            }
        });
    }

    // DPO data: the page's `data` URL in the DPO view, else the bundled export.
    {
        let dispatch = dispatch.clone();
        let data = state.options.data.clone().filter(|_| state.data_view == View::Dpo);
        let wanted = (state.view == View::Dpo).then_some(data);
        let loaded = state.dpo.source.is_some();
        let base = state.options.base.clone();
        use_effect_with(wanted.clone(), move |wanted| {
            if let Some(url) = wanted.clone() {
                if url.is_some() || !loaded {
                    spawn_local(async move {
                        let loaded = match url.as_deref() {
                            Some(url) => tasks::load_dpo(Some(url), &base, &dispatch)
                                .await
                                .map(|(name, data)| dispatch.emit(Action::DpoData(name, Rc::new(data)))),
                            None => tasks::load_bundled(&base, false, &dispatch).await,
                        };
                        if let Err(e) = loaded {
                            dispatch.emit(Action::Error(e));
                        }
                        dispatch.emit(Action::Progress(None));
                    });
                }
            }
        });
    }

    // The page's `data` URL for the scoring views: a manifest (Score, Decompose) or labelled
    // pairs (Pairs), once the model is there.
    {
        let dispatch = dispatch.clone();
        let data = state.options.data.clone();
        let model = state.model.clone();
        let view = state.data_view;
        let kind = match view {
            View::Score | View::Decompose => Some("manifest"),
            View::Pairs => Some("pairs"),
            _ => None,
        };
        let loaded = state.inputs.images.clone();
        use_effect_with((data.clone(), kind, model.is_some()), move |_| {
            if let (Some(url), Some(kind), Some(model)) = (data, kind, model) {
                spawn_local(async move {
                    if kind == "pairs" {
                        let name = url.rsplit('/').next().unwrap_or(&url).to_string();
                        let result = match crate::fetch::fetch_bytes(&url, &|_, _| {}).await {
                            Ok(bytes) => tasks::load_pairs(&model, &name, bytes, Some(&url), &loaded, &dispatch).await,
                            Err(e) => Err(e.into()),
                        };
                        match result {
                            Ok(p) => dispatch.emit(Action::Pairs(Rc::new(p))),
                            Err(e) => dispatch.emit(Action::Error(e)),
                        }
                    } else {
                        match tasks::load_manifest_url(&url, &dispatch).await {
                            Ok((name, rows, images)) => {
                                dispatch.emit(Action::ClearImages);
                                dispatch.emit(Action::AddImages(images));
                                dispatch.emit(Action::Manifest(Some((name, rows))));
                                dispatch.emit(Action::ScoreSource(Source::User));
                            }
                            Err(e) => dispatch.emit(Action::Error(e)),
                        }
                    }
                    dispatch.emit(Action::Progress(None));
                });
            }
        });
    }

    // The DPO report for the current settings.
    {
        let dispatch = dispatch.clone();
        let host = props.host.clone();
        let dpo = state.dpo.clone();
        let runtime = state.runtime.clone();
        let key = dpo.key();
        let stale = dpo.data.is_some() && dpo.result.as_ref().is_none_or(|r| r.key != key);
        use_effect_with((key, stale, runtime.is_some()), move |_| {
            if let (true, Some(runtime)) = (stale, runtime) {
                spawn_local(async move {
                    match tasks::dpo_report(&runtime, &dpo).await {
                        Ok(result) => {
                            host.emit(
                                "prefscope-scored",
                                &json!({"view": "dpo", "pairs": result.ids.len(), "beta": dpo.beta, "loss": dpo.losses.join(",")}),
                            );
                            dispatch.emit(Action::DpoResult(Rc::new(result)));
                        }
                        Err(e) => dispatch.emit(Action::Error(e)),
                    }
                });
            }
        });
    }

    let ctx = Ctx { state: state.clone(), dispatch: dispatch.clone() };
    html! {
        <ContextProvider<Ctx> context={ctx}>
            <div class="ps-app" data-view={state.view.name()}>
                <views::Header />
                <main class="ps-main">
                    { match state.view {
                        View::Score => html! { <views::score::ScoreView /> },
                        View::Decompose => html! { <views::decompose::DecomposeView /> },
                        View::Pairs => html! { <views::pairs::PairsView /> },
                        View::Dpo => html! { <views::dpo::DpoView /> },
                        View::Model => html! { <views::model::ModelView /> },
                    } }
                </main>
            </div>
        </ContextProvider<Ctx>>
    }
}
