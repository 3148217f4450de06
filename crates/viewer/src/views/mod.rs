//! The page's views and its header. Each takes typed props: the parts of the state it shows
//! and the dispatcher its controls send actions to.

pub mod decompose;
pub mod dpo;
pub mod model;
pub mod pairs;
pub mod score;

use yew::prelude::*;

use prefscope_gpu::DeviceChoice;

use crate::compute::Runtime;
use crate::export::Format;
use crate::options::View;
use crate::store::{Action, Progress};

/// Messages shown unfolded in the header; older ones fold into a "n earlier messages" list.
const MAX_SHOWN_ERRORS: usize = 3;

/// The files of a picker or a drop, in order.
pub(crate) fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    list.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default()
}

/// Numbers as the tables show them.
pub fn fmt(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// What the header shows and changes.
#[derive(Properties, PartialEq)]
pub struct HeaderProps {
    /// The whole application (navigation between views), not one embedded view.
    pub full: bool,
    pub view: View,
    pub device: DeviceChoice,
    pub runtime: Option<Runtime>,
    pub progress: Option<Progress>,
    pub errors: Vec<String>,
    /// Whether the current view has a table to export, and what exports it.
    pub can_export: bool,
    pub on_export: Callback<Format>,
    pub dispatch: Callback<Action>,
}

/// Title, navigation, device badge, progress, export and the user-facing errors.
#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let HeaderProps { full, view, device, runtime, progress, errors, can_export, on_export, dispatch } = props;
    let nav = full.then(|| {
        html! {
            <nav class="ps-nav" aria-label="views">
                { for View::ALL.iter().map(|&v| {
                    let dispatch = dispatch.clone();
                    let current = v == *view;
                    html! {
                        <button type="button" class={classes!("ps-tab", current.then_some("ps-current"))}
                                aria-pressed={current.to_string()} data-view={v.name()}
                                onclick={Callback::from(move |_| dispatch.emit(Action::View(v)))}>
                            { v.title() }
                        </button>
                    }
                }) }
            </nav>
        }
    });
    // The user's override: reloads the page with ?device= (the device is chosen once).
    let on_device = Callback::from(|e: Event| {
        let choice = e.target_unchecked_into::<web_sys::HtmlSelectElement>().value();
        if let Some(location) = web_sys::window().map(|w| w.location()) {
            let _ = location.set_search(&format!("device={choice}"));
        }
    });
    let current = match device {
        DeviceChoice::Auto => "auto",
        DeviceChoice::Gpu => "webgpu",
        DeviceChoice::Cpu => "cpu",
    };
    let device_select = full.then(|| {
        html! {
            <label class="ps-control ps-muted">{ "device " }
                <select onchange={on_device} data-testid="device-choice">
                    { for [("auto", "auto"), ("webgpu", "WebGPU"), ("cpu", "CPU")].iter().map(|(v, t)| html! {
                        <option value={*v} selected={*v == current}>{ *t }</option>
                    }) }
                </select>
            </label>
        }
    });
    let badge = match runtime {
        Some(r) => html! {
            <span class="ps-badge" data-testid="device-badge" data-device={r.badge.device} title={r.badge.reason.clone()}>
                { r.badge.label.clone() }
                <small class="ps-why">{ r.badge.reason.clone() }</small>
            </span>
        },
        None => {
            html! { <span class="ps-badge" data-testid="device-badge" data-device="pending">{ "choosing a device…" }</span> }
        }
    };
    let progress = progress.as_ref().map(|p| {
        html! {
            <div class="ps-progress" role="status" data-testid="progress">
                <span>{ p.label.clone() }</span>
                { match p.fraction {
                    Some(f) => html! { <progress max="1" value={f.to_string()} aria-label={p.label.clone()} /> },
                    None => html! { <progress aria-label={p.label.clone()} /> },
                } }
            </div>
        }
    });
    let exports = Format::ALL.iter().map(|&format| {
        let onclick = on_export.reform(move |_| format);
        html! {
            <button type="button" class="ps-export" disabled={!can_export} {onclick} data-format={format.extension()}>
                { format.extension().to_uppercase() }
            </button>
        }
    });
    let error = |(i, e): (usize, &String)| {
        let dispatch = dispatch.clone();
        // A GPU that ran out of memory leaves the CPU path: offer it rather than a page that
        // can no longer compute. (A lost device moves the page there by itself.)
        let gpu_gone = e.contains("the GPU ran out of memory");
        let use_cpu = gpu_gone.then(|| {
            let onclick = Callback::from(|_| {
                if let Some(location) = web_sys::window().map(|w| w.location()) {
                    let _ = location.set_search("device=cpu");
                }
            });
            html! { <button type="button" {onclick} data-testid="use-cpu">{ "Continue on the CPU" }</button> }
        });
        html! {
            <div class="ps-error" role="alert" data-testid="error">
                <span>{ e.clone() }</span>
                { for use_cpu }
                <button type="button" aria-label="dismiss" onclick={Callback::from(move |_| dispatch.emit(Action::DismissError(i)))}>{ "×" }</button>
            </div>
        }
    };
    // The newest few stay in view; older ones fold away so that a pile of errors (a folder of
    // bad files) never pushes the page down.
    let shown = errors.len().saturating_sub(MAX_SHOWN_ERRORS);
    let folded = (shown > 0).then(|| {
        html! {
            <details class="ps-errors-older" data-testid="older-errors">
                <summary>{ format!("{shown} earlier message{}", if shown == 1 { "" } else { "s" }) }</summary>
                { for errors.iter().enumerate().take(shown).map(error) }
            </details>
        }
    });
    let dismiss_all = (errors.len() > 1).then(|| {
        let onclick = dispatch.reform(|_| Action::DismissErrors);
        html! { <button type="button" class="ps-dismiss-all" {onclick} data-testid="dismiss-all">{ format!("Dismiss all {} messages", errors.len()) }</button> }
    });
    let errors = html! { <>{ folded }{ for errors.iter().enumerate().skip(shown).map(error) }{ dismiss_all }</> };
    html! {
        <header class="ps-header">
            <div class="ps-bar-top">
                // The page's heading when the element is the whole page; a label inside someone else's.
                { if *full { html! { <h1 class="ps-title">{ "prefscope" }</h1> } } else { html! { <strong class="ps-title">{ "prefscope" }</strong> } } }
                { nav }
                <span class="ps-spacer"></span>
                <span class="ps-exports" aria-label="export the current view">{ "Export " }{ for exports }</span>
                { badge }
                { device_select }
            </div>
            { progress }
            { errors }
        </header>
    }
}
