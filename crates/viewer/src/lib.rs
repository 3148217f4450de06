//! prefscope in the browser: the yew application behind `index.html` and the
//! `<prefscope-viewer>` custom element (web/prefscope-viewer.js defines the element and calls
//! [`mount`]). It holds no math: scoring comes from prefscope-clip and prefscope-synth, the
//! DPO numbers from prefscope-core's report (prefscope-gpu's kernels on WebGPU).

pub mod api;
pub mod charts;
pub mod compute;
pub mod diversity;
pub mod effects;
pub mod export;
pub mod fetch;
pub mod host;
pub mod opfs;
pub mod options;
pub mod panic;
pub mod scope;
pub mod store;
pub mod tasks;
pub mod views;

mod app;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use yew::Callback;

pub use app::{App, AppProps};
pub use options::{Options, View};
pub use store::Action;

/// Runs when the module is instantiated, before anything else.
#[wasm_bindgen(start)]
pub fn start() {
    panic::install();
}

/// The handle the custom element keeps: attribute changes after mounting go through it.
#[wasm_bindgen]
pub struct Viewer {
    dispatch: Rc<RefCell<Option<Callback<Action>>>>,
    _app: yew::AppHandle<App>,
}

#[wasm_bindgen]
impl Viewer {
    /// An attribute of the element changed (`view`, `beta`, `reweight`, `data`, `model`).
    pub fn attribute_changed(&self, name: &str, value: Option<String>) {
        let Some(action) = Action::from_attribute(name, value.as_deref()) else { return };
        if let Some(dispatch) = self.dispatch.borrow().as_ref() {
            dispatch.emit(action);
        }
    }
}

/// Renders the application into `host`. `options` is a JSON object (see [`Options`]): the
/// element's attributes and the URL of the folder the page was built into.
#[wasm_bindgen]
pub fn mount(host: web_sys::HtmlElement, options: &str) -> Result<Viewer, JsError> {
    let options = Options::parse(options).map_err(|e| JsError::new(&e))?;
    let dispatch = Rc::new(RefCell::new(None));
    let props = AppProps { options: Rc::new(options), host: host::Host::new(host.clone()), dispatch: dispatch.clone() };
    let app = yew::Renderer::<App>::with_root_and_props(host.into(), props).render();
    Ok(Viewer { dispatch, _app: app })
}
