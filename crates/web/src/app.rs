//! The root component: holds the store, starts the side effects the state asks for
//! (effects.rs), and lays out the header and the current view.

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use crate::effects::{self, Effect};
use crate::host::Host;
use crate::options::{Options, View};
use crate::store::{Action, State};
use crate::views;

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
