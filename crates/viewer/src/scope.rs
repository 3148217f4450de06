//! The global scope prefscope runs in: a page's `window`, or a Web Worker's scope when the
//! JavaScript API runs off the main thread. Everything that touches the network, the caches,
//! the clock or `navigator` goes through here, so the same code runs in both.

use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CacheStorage, Window, WorkerGlobalScope};

enum Global {
    Window(Window),
    Worker(WorkerGlobalScope),
}

fn global() -> Result<Global, String> {
    let g = js_sys::global();
    if let Some(w) = g.dyn_ref::<Window>() {
        return Ok(Global::Window(w.clone()));
    }
    g.dyn_into::<WorkerGlobalScope>()
        .map(Global::Worker)
        .map_err(|_| "prefscope runs in a page or a Web Worker, and this is neither".to_string())
}

/// `fetch(url)`.
pub fn fetch(url: &str) -> Result<Promise, String> {
    Ok(match global()? {
        Global::Window(w) => w.fetch_with_str(url),
        Global::Worker(w) => w.fetch_with_str(url),
    })
}

/// The Cache API, where the scope has one (secure contexts only).
pub fn caches() -> Option<CacheStorage> {
    match global().ok()? {
        Global::Window(w) => w.caches().ok(),
        Global::Worker(w) => w.caches().ok(),
    }
}

/// The URL relative URLs are resolved against, as the browser resolves a link: the
/// document's base URL in a page, the script's URL in a worker.
pub fn base_url() -> Option<String> {
    match global().ok()? {
        Global::Window(w) => w.document()?.base_uri().ok().flatten(),
        Global::Worker(w) => Some(w.location().href()),
    }
}

/// `url` made absolute against [`base_url`]; absolute URLs (and `data:`/`blob:` ones) are
/// returned as they are. An unparsable URL is an error naming it.
pub fn resolve(url: &str) -> Result<String, String> {
    let parsed = match base_url() {
        Some(base) => web_sys::Url::new_with_base(url, &base),
        None => web_sys::Url::new(url),
    };
    parsed.map(|u| u.href()).map_err(|_| format!("`{url}` is not a URL"))
}

/// Whether `navigator.gpu` exists here (workers have it where the browser has WebGPU).
pub fn has_webgpu() -> bool {
    Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"gpu".into()))
        .is_ok_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

/// Milliseconds since the scope started (`performance.now()`), 0 where there is no clock.
pub fn now() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map_or(0.0, |p| p.now())
}

/// A JavaScript exception's message (or the value as text).
pub fn js_error(context: &str, e: JsValue) -> String {
    let text = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    format!("{context}: {text}")
}

/// `performance.mark("prefscope:{stage}")`: where the time to a first result goes, in the
/// browser's performance timeline (and in the breakdown the end-to-end tests print).
pub fn mark(stage: &str) {
    if let Some(p) = Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
    {
        let _ = p.mark(&format!("prefscope:{stage}"));
    }
}
