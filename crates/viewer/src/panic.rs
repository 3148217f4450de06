//! What a panic leaves behind: a message on the console and, on a page, a banner over it.
//! A panic in wasm aborts the module, so nothing after it can run; without this hook the page
//! would freeze silently. Installed when the module starts (page, element, API, Worker).

use std::sync::Once;

/// Installs the hook once (through yew, whose renderer would otherwise put its own in place).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| yew::set_custom_panic_hook(Box::new(|info| report(&info.to_string()))));
}

fn report(what: &str) {
    let message = format!("prefscope stopped on an internal error: {what}");
    web_sys::console::error_1(&message.clone().into());
    // Plain DOM, not the app: the app's state may be what panicked.
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let (Ok(banner), Some(body)) = (document.create_element("div"), document.body()) else { return };
    banner.set_class_name("ps-panic");
    let _ = banner.set_attribute("role", "alert");
    let _ = banner.set_attribute("data-testid", "panic");
    banner.set_text_content(Some(&format!(
        "{message}. This page cannot compute any more: reload it to start again. If it happens again, please \
         report it with the message from the browser's console."
    )));
    let _ = body.append_child(&banner);
}

/// Panics on purpose: the end-to-end test of the banner calls it.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = panicForTests)]
pub fn panic_for_tests() {
    panic!("a panic raised on purpose by panicForTests");
}
