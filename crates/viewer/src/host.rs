//! The element the application is mounted in, and the DOM events it fires for the embedding
//! page (`prefscope-ready`, `prefscope-scored`).

use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit, HtmlElement};

/// The host element; compared by identity.
#[derive(Clone, Debug)]
pub struct Host(HtmlElement);

impl PartialEq for Host {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Host {
    pub fn new(element: HtmlElement) -> Self {
        Host(element)
    }

    /// Fires `name` on the element, bubbling and composed, with `detail` as a plain object.
    pub fn emit(&self, name: &str, detail: &serde_json::Value) {
        let detail = js_sys::JSON::parse(&detail.to_string()).unwrap_or(JsValue::NULL);
        let init = CustomEventInit::new();
        init.set_bubbles(true);
        init.set_composed(true);
        init.set_detail(&detail);
        match CustomEvent::new_with_event_init_dict(name, &init) {
            Ok(event) => {
                let _ = self.0.dispatch_event(&event);
            }
            Err(e) => web_sys::console::warn_2(&format!("prefscope: cannot create {name}").into(), &e),
        }
    }
}
