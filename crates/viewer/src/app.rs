//! The root component: holds the store, starts the side effects the state asks for
//! (effects.rs), and lays out the header and the current view.

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use crate::effects::{self, Effect};
use crate::host::Host;
use crate::options::{Options, View};
use crate::store::{Action, State};
use crate::{export, views};

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

#[function_component(App)]
pub fn app(props: &AppProps) -> Html {
    let store = use_reducer(|| State::new(props.options.clone()));
    let dispatch: Callback<Action> = {
        let d = store.dispatcher();
        Callback::from(move |a| d.dispatch(a))
    };
    *props.dispatch.borrow_mut() = Some(dispatch.clone());
    let state: Rc<State> = Rc::new((*store).clone());

    // Side effects: each one the state asks for starts when it enters the list (effects.rs).
    {
        let previous = use_mut_ref(Vec::<Effect>::new);
        let (state, dispatch, host) = (state.clone(), dispatch.clone(), props.host.clone());
        use_effect_with(effects::wanted(&state), move |wanted| {
            let mut previous = previous.borrow_mut();
            for effect in wanted.iter().filter(|e| !previous.contains(e)) {
                effects::run(effect.clone(), &state, &dispatch, &host);
            }
            *previous = wanted.clone();
        });
    }

    let on_export = {
        let (state, dispatch) = (state.clone(), dispatch.clone());
        Callback::from(move |format| {
            if let Err(e) = export::download_view(&state, format) {
                dispatch.emit(Action::Error(e));
            }
        })
    };
    let s = &state;
    let d = || dispatch.clone();
    html! {
        <div class="ps-app" data-view={s.view.name()}>
            <views::Header full={s.options.full} view={s.view} device={s.options.device} runtime={s.runtime.clone()}
                           progress={s.progress.clone()} errors={s.errors.clone()} can_export={export::available(s)}
                           {on_export} dispatch={d()} />
            <main class="ps-main">
                { match s.view {
                    View::Score => html! {
                        <views::score::ScoreView scored={s.scored.clone()} scorer={s.scorer} source={s.source.clone()}
                            inputs={s.inputs.clone()} model={s.model.as_ref().map(|m| m.name.clone())}
                            reweight={s.reweight} reweighted={s.reweighted.clone()} diversity={s.diversity()} dispatch={d()} />
                    },
                    View::Decompose => html! {
                        <views::decompose::DecomposeView scored={s.scored.clone()} source={s.source.clone()}
                            bundled_reference={s.inputs.bundled_reference} reweight={s.reweight}
                            reweighted={s.reweighted.clone()} dispatch={d()} />
                    },
                    View::Pairs => html! {
                        <views::pairs::PairsView tie_threshold={s.tie_threshold} pairs={s.pairs.clone()} dispatch={d()} />
                    },
                    View::Dpo => html! { <views::dpo::DpoView dpo={s.dpo.clone()} dispatch={d()} /> },
                    View::Model => html! { <views::model::ModelView model={s.model.clone()} dtype={s.options.dtype} usage={s.cache_usage} dispatch={d()} /> },
                } }
            </main>
        </div>
    }
}
