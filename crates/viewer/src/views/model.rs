//! Model: the loaded CLIP-style model, loading another from local files or from a URL prefix
//! laid out like a Hugging Face repository (`…/resolve/main/`), and the browser's model cache.

use std::rc::Rc;

use prefscope_clip::{Dtype, DtypeChoice};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::compute::Model;
use crate::fetch::wasm_memory_bytes;
use crate::store::{Action, Request};

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The selector's words for each dtype.
fn dtype_label(name: &str) -> &'static str {
    match name {
        "f32" => "f32 (exact, as the reference implementations)",
        "f16" => "f16 (half the memory)",
        "q8" => "q8 (int8, a quarter of the memory)",
        _ => "auto (as stored)",
    }
}

/// Which dtype runs on which device, in words.
fn weights_in(m: &Model) -> String {
    let on_gpu = m.encoder.gpu().is_some();
    match (m.encoder.dtype(), on_gpu, m.dtype) {
        (Dtype::F32, _, _) => "f32 (activations f32)".into(),
        (Dtype::F16, true, DtypeChoice::Exactly(Dtype::Q8)) => {
            "f16 on WebGPU: q8 was asked for, and the GPU kernels take f16 weights (activations f32)".into()
        }
        (Dtype::F16, true, _) => "f16 on WebGPU (activations f32)".into(),
        (Dtype::F16, false, _) => "f16, widened to f32 a panel at a time on the CPU (activations f32)".into(),
        (Dtype::Q8, _, _) => {
            "q8 on the CPU: int8 weights per output channel, activations quantized per row, int32 sums".into()
        }
    }
}

/// What the Model view shows and changes.
#[derive(Properties, PartialEq)]
pub struct ModelProps {
    pub model: Option<Rc<Model>>,
    /// The dtype asked for (the selector's value).
    pub dtype: DtypeChoice,
    /// Files and bytes in the model cache, when counted.
    pub usage: Option<crate::fetch::CacheUsage>,
    pub dispatch: Callback<Action>,
}

#[function_component(ModelView)]
pub fn model_view(props: &ModelProps) -> Html {
    let url = use_state(String::new);
    let ModelProps { model, dtype, usage, dispatch } = props;
    let on_dtype = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            let value = e.target_unchecked_into::<HtmlSelectElement>().value();
            dispatch.emit(DtypeChoice::parse(&value).map_or_else(Action::Error, Action::Dtype));
        })
    };
    let on_files = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let Some(list) = input.files() else { return };
            let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            dispatch.emit(Action::Request(Request::ModelFiles(files)));
        })
    };
    let on_url = {
        let url = url.clone();
        Callback::from(move |e: InputEvent| url.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let on_load = {
        let dispatch = dispatch.clone();
        let url = url.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let u = url.trim();
            if !u.is_empty() {
                // Relative to the page, as a link would be.
                dispatch.emit(crate::scope::resolve(u).map_or_else(Action::Error, Action::ModelUrl));
            }
        })
    };
    let on_clear = {
        let dispatch = dispatch.clone();
        Callback::from(move |_| dispatch.emit(Action::Request(Request::ClearCache)))
    };
    let current = match &model {
        Some(m) => {
            let c = m.encoder.config();
            html! {
                <dl class="ps-facts" data-testid="model-facts">
                    <dt>{ "model" }</dt><dd>{ m.name.clone() }</dd>
                    <dt>{ "embedding" }</dt><dd>{ c.projection }</dd>
                    <dt>{ "text" }</dt><dd>{ format!("{} layers × {} wide, context {}", c.text.tower.layers, c.text.tower.width, c.text.context) }</dd>
                    <dt>{ "vision" }</dt><dd>{ format!("{} layers × {} wide, {}px images in {}px patches", c.vision.tower.layers, c.vision.tower.width, c.vision.image_size, c.vision.patch_size) }</dd>
                    <dt>{ "weights" }</dt><dd data-testid="model-dtype" data-dtype={m.encoder.dtype().name()}>{ weights_in(m) }</dd>
                    <dt>{ "wasm memory" }</dt><dd data-testid="wasm-memory" data-bytes={wasm_memory_bytes().to_string()}>{ megabytes(wasm_memory_bytes()) }</dd>
                    <dt>{ "towers" }</dt><dd data-testid="model-towers">{ match m.encoder.gpu() {
                        Some(gpu) => format!(
                            "prefscope's WGSL kernels on {}: {} compute pipelines for the towers, {} on the device in all",
                            if gpu.adapter().name.is_empty() { "WebGPU" } else { gpu.adapter().name.as_str() },
                            m.encoder.tower_pipelines().unwrap_or(0),
                            gpu.pipelines_created()
                        ),
                        None => format!(
                            "prefscope's CPU kernels (gemm's matrix products; int8 products on {})",
                            prefscope_clip::qgemm::Isa::best().name()
                        ),
                    } }</dd>
                </dl>
            }
        }
        None => html! { <p class="ps-muted">{ "No model loaded yet." }</p> },
    };
    html! {
        <section class="ps-view">
            { current }
            <div class="ps-controls">
                <label class="ps-control">{ "Weights in " }
                    <select onchange={on_dtype} data-testid="dtype-select">
                        { for ["auto", "f32", "f16", "q8"].into_iter().map(|name| html! {
                            <option value={name} selected={dtype.name() == name}>{ dtype_label(name) }</option>
                        }) }
                    </select>
                </label>
                <label class="ps-control">{ "Local files (config.json, model.safetensors, tokenizer.json, …) " }
                    <input type="file" multiple=true accept=".json,.safetensors" onchange={on_files} data-testid="model-files" />
                </label>
                <form class="ps-control" onsubmit={on_load}>
                    <label>{ "URL prefix " }
                        <input type="url" placeholder="https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/" value={(*url).clone()} oninput={on_url} data-testid="model-url" />
                    </label>
                    <button type="submit">{ "Load" }</button>
                </form>
            </div>
            <p data-testid="cache">
                { match *usage {
                    Some(u) if u.weights_kept => format!("Model cache: {} files, {}", u.files, megabytes(u.bytes)),
                    Some(u) => format!("Model cache: {} files, {}; weights are not kept (this browser gives the page no private file system), so a model's weights are fetched again on each visit",
                        u.files, megabytes(u.bytes)),
                    None => "Model cache: not available in this context".to_string(),
                } }
                { " " }<button type="button" onclick={on_clear}>{ "Clear cache" }</button>
            </p>
        </section>
    }
}
