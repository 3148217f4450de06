//! The page's views and its header. Each view reads the store through [`crate::app::Ctx`].

pub mod decompose;
pub mod dpo;
pub mod model;
pub mod pairs;
pub mod score;

use yew::prelude::*;

use crate::app::Ctx;
use crate::export::{self, Format};
use crate::options::View;
use crate::store::Action;

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

/// The context every view reads; absent only if a view is rendered outside [`crate::App`].
#[hook]
pub fn use_ctx() -> Option<Ctx> {
    use_context::<Ctx>()
}

/// Title, navigation, device badge, progress, export and the user-facing errors.
#[function_component(Header)]
pub fn header() -> Html {
    let Some(Ctx { state, dispatch }) = use_ctx() else { return html! {} };
    let nav = state.options.full.then(|| {
        html! {
            <nav class="ps-nav" aria-label="views">
                { for View::ALL.iter().map(|&v| {
                    let dispatch = dispatch.clone();
                    let current = v == state.view;
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
    let current = match state.options.device {
        prefscope_gpu::DeviceChoice::Auto => "auto",
        prefscope_gpu::DeviceChoice::Gpu => "webgpu",
        prefscope_gpu::DeviceChoice::Cpu => "cpu",
    };
    let device_select = state.options.full.then(|| {
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
    let badge = match &state.runtime {
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
    let progress = state.progress.as_ref().map(|p| {
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
    let available = export::available(&state);
    let exports = Format::ALL.iter().map(|&format| {
        let state = state.clone();
        let dispatch = dispatch.clone();
        let onclick = Callback::from(move |_| {
            if let Some((stem, table)) = export::table(&state) {
                let name = format!("{stem}.{}", format.extension());
                if let Err(e) = export::encode(&table, format).and_then(|b| export::download(&name, &b, format)) {
                    dispatch.emit(Action::Error(e));
                }
            }
        });
        html! {
            <button type="button" class="ps-export" disabled={!available} {onclick} data-format={format.extension()}>
                { format.extension().to_uppercase() }
            </button>
        }
    });
    let errors = state.errors.iter().enumerate().map(|(i, e)| {
        let dispatch = dispatch.clone();
        // A GPU that went away (or ran out of memory) leaves the CPU path: offer it rather
        // than a page that can no longer compute.
        let gpu_gone = e.contains("the GPU device was lost") || e.contains("the GPU ran out of memory");
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
    });
    html! {
        <header class="ps-header">
            <div class="ps-bar-top">
                <strong class="ps-title">{ "prefscope" }</strong>
                { nav }
                <span class="ps-spacer"></span>
                <span class="ps-exports" aria-label="export the current view">{ "Export " }{ for exports }</span>
                { badge }
                { device_select }
            </div>
            { progress }
            { for errors }
        </header>
    }
}
