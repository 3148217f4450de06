//! The page's long-running work, each an async function from inputs to a result or a
//! message for the user: loading a model, scoring the gallery, reweighting, the DPO report.
//! This module holds the helpers the tasks share (progress reports, yielding to the browser,
//! thumbnails); the tasks live in its submodules, re-exported here.

mod dpo;
mod files;
mod model;
mod pairs;
mod score;

pub use dpo::{
    dpo_file, dpo_files, dpo_report, dpo_request, load_bundled, load_dpo, parse_preferences, run_of, run_summary,
    DpoLoaded, RunSummary, Trajectory, BUNDLED_RUN,
};
pub use files::{decode_image, dropped_files, fetch_images, ingest_files, load_manifest_url};
pub use model::{load_model, load_model_files, reference_direction};
pub use pairs::{bundled_pairs, load_pairs, pairs_file, BUNDLED_PAIRS, MAX_STRENGTH_PAIRS};
pub use score::{reweight, score_demo, score_user};

use std::rc::Rc;

use wasm_bindgen::{Clamped, JsCast};
use yew::Callback;

use crate::store::{Action, Progress};

pub fn progress(label: &str, fraction: Option<f64>) -> Progress {
    Progress { label: label.to_string(), fraction }
}

/// Lets the browser paint (the progress bar) between long synchronous steps.
async fn yield_now() {
    gloo::timers::future::TimeoutFuture::new(0).await;
}

/// Where a long task reports progress: a label and, when known, the fraction done.
pub type Report = Rc<dyn Fn(&str, Option<f64>)>;

/// A [`Report`] that feeds the page's progress bar.
pub fn report_to(dispatch: &Callback<Action>) -> Report {
    let dispatch = dispatch.clone();
    Rc::new(move |label: &str, fraction: Option<f64>| dispatch.emit(Action::Progress(Some(progress(label, fraction)))))
}

/// An RGBA image as a data URL (through a canvas), for thumbnails.
fn data_url(width: u32, height: u32, rgba: &[u8]) -> Option<String> {
    let document = web_sys::window()?.document()?;
    let canvas: web_sys::HtmlCanvasElement = document.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(width);
    canvas.set_height(height);
    let context: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    let image = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), width, height).ok()?;
    context.put_image_data(&image, 0.0, 0.0).ok()?;
    canvas.to_data_url().ok()
}

fn now() -> f64 {
    crate::scope::now()
}

fn is_url(s: &str) -> bool {
    ["http://", "https://", "data:", "blob:"].iter().any(|p| s.starts_with(p))
}

/// The wasm module's memory in bytes: it only grows, so after a load it is the load's peak.
pub fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|m| m.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
        .map_or(0.0, |b| b.byte_length() as f64)
}
