//! The JavaScript API's wasm side; web/prefscope.js wraps it into `prefscope.load`,
//! `scorer.embedTexts`, `scorer.embedImages`, `scorer.score` and `prefscope.dpo`.
//!
//! It runs the code paths `prefscope embed`, `score` and `dpo` run (the same crates, the same
//! row builders), so the numbers, the names and the error messages are the command's. Requests
//! and results cross as JSON text (rows, metrics) and typed arrays (embeddings, pixels): the
//! JSON is the very document the command prints. Nothing here touches the DOM, so it runs in
//! a Web Worker as on the main thread.

use std::rc::Rc;

use bytes::Bytes;
use js_sys::{Array, Float32Array, Function, Promise, Reflect, Uint8Array};
use prefscope_clip::pipeline::{manifest_items, match_images};
use prefscope_clip::scorer::{rows_table, Item, Reference, Scorer};
use prefscope_clip::session::{Direction, Session};
use prefscope_clip::{ImageLimits, Rgba};
use prefscope_core::io::read::{read_manifest, read_preferences, read_ranked, Input};
use prefscope_core::io::record::ManifestRow;
use prefscope_core::preference::dpo::ranked::{evaluate_lists, RANKED_OBJECTIVES};
use prefscope_core::preference::report::{report, ReportOptions};
use prefscope_core::preference::run;
use prefscope_core::preference::subsets::By;
use prefscope_core::scoring::embedding::normalize;
use prefscope_core::scoring::longalign::DEFAULT_REWEIGHT;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::compute::{self, Model, Runtime};
use crate::tasks::{self, Report};

fn fail(message: impl std::fmt::Display) -> JsValue {
    JsError::new(&message.to_string()).into()
}

/// `onProgress({label, fraction})`, when the caller gave one.
fn report_to(callback: Option<Function>) -> Report {
    Rc::new(move |label: &str, fraction: Option<f64>| {
        if let Some(f) = &callback {
            let event = js_sys::Object::new();
            let _ = Reflect::set(&event, &"label".into(), &label.into());
            let _ = Reflect::set(&event, &"fraction".into(), &fraction.map_or(JsValue::UNDEFINED, JsValue::from));
            let _ = f.call1(&JsValue::NULL, &event);
        }
    })
}

/// A loaded model on its device: what `prefscope.load` resolves to.
#[wasm_bindgen]
pub struct ApiScorer {
    runtime: Runtime,
    model: Rc<Model>,
    limits: ImageLimits,
}

/// `maxImagePixels` as given (a JavaScript number), or the default.
fn limits_arg(max_pixels: Option<f64>) -> Result<ImageLimits, JsValue> {
    match max_pixels {
        None => Ok(ImageLimits::default()),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u64::MAX as f64 => {
            Ok(ImageLimits { max_pixels: n as u64 })
        }
        Some(n) => Err(fail(format!("maxImagePixels must be a whole number of at least 1, got {n}"))),
    }
}

/// The error an image of `width × height` gets under `maxPixels` (the default when absent),
/// if any: the wrapper asks before it draws an `ImageBitmap` into pixels.
#[wasm_bindgen(js_name = imageSizeError)]
pub fn image_size_error(name: &str, width: u32, height: u32, max_pixels: Option<f64>) -> Option<String> {
    let limits = limits_arg(max_pixels).ok()?;
    limits.check(name, width, height).err().map(|e| e.to_string())
}

/// The int8 products of this wasm build against their integer twin (`qgemm::self_check`): the
/// instruction sets checked, or what differs. The browser suites call it in each build.
#[wasm_bindgen(js_name = int8SelfCheck)]
pub fn int8_self_check() -> Result<Vec<String>, JsValue> {
    prefscope_clip::qgemm::self_check().map(|isas| isas.into_iter().map(String::from).collect()).map_err(fail)
}

/// Loads a model: from `url` (a prefix laid out like a Hugging Face repository, absolute or
/// relative to the page), from `files` (an array of `File`s), or the demo model beside `base`
/// when both are absent.
#[wasm_bindgen(js_name = loadScorer)]
pub async fn load_scorer(
    url: Option<String>,
    files: Option<Array>,
    base: String,
    device: String,
    on_progress: Option<Function>,
    max_image_pixels: Option<f64>,
    dtype: Option<String>,
) -> Result<ApiScorer, JsValue> {
    let limits = limits_arg(max_image_pixels)?;
    let choice = crate::options::device_choice(&device).map_err(fail)?;
    let dtype = prefscope_clip::DtypeChoice::parse(dtype.as_deref().unwrap_or("auto").trim()).map_err(fail)?;
    let report = report_to(on_progress);
    report("opening the device", None);
    let runtime = compute::open(choice).await;
    let model = match (url, files) {
        (Some(_), Some(_)) => return Err(fail("give the model as a URL or as files, not both")),
        (Some(url), None) => {
            let url = crate::scope::resolve(url.trim()).map_err(fail)?;
            tasks::load_model(&runtime, Some(&url), &base, dtype, report).await
        }
        (None, Some(files)) => {
            let mut picked = Vec::new();
            for (i, f) in files.iter().enumerate() {
                let file: web_sys::File =
                    f.dyn_into().map_err(|_| fail(format!("model file {}: not a File", i + 1)))?;
                picked.push((file.name(), file.into()));
            }
            tasks::load_model_files(&runtime, picked, dtype, report).await
        }
        (None, None) => tasks::load_model(&runtime, None, &base, dtype, report).await,
    }
    .map_err(fail)?;
    Ok(ApiScorer { runtime, model, limits })
}

/// An image as the wrapper hands it over: encoded bytes (decoded here, as `prefscope` decodes
/// files) or raw RGBA pixels (from an `ImageData` or `ImageBitmap`), with a name for errors.
fn image_arg(i: usize, value: &JsValue, limits: &ImageLimits) -> Result<Rgba, JsValue> {
    let get = |key: &str| Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let name = get("name").as_string().unwrap_or_else(|| format!("#{}", i + 1));
    let bytes = get("bytes");
    if !bytes.is_undefined() {
        let bytes: Uint8Array =
            bytes.dyn_into().map_err(|_| fail(format!("image {name}: bytes must be a Uint8Array")))?;
        return Rgba::decode_limited(&name, &bytes.to_vec(), limits).map_err(fail);
    }
    let rgba = get("rgba");
    let (width, height) = (get("width").as_f64(), get("height").as_f64());
    match (rgba.dyn_into::<Uint8Array>(), width, height) {
        (Ok(data), Some(w), Some(h)) if w >= 0.0 && h >= 0.0 && w <= u32::MAX as f64 && h <= u32::MAX as f64 => {
            limits.check(&name, w as u32, h as u32).map_err(fail)?;
            Rgba::from_raw(&name, w as u32, h as u32, data.to_vec()).map_err(fail)
        }
        _ => Err(fail(format!("image {name}: expected encoded bytes or RGBA pixels with a width and height"))),
    }
}

fn images_arg(images: &Array, limits: &ImageLimits) -> Result<Vec<Rgba>, JsValue> {
    images.iter().enumerate().map(|(i, v)| image_arg(i, &v, limits)).collect()
}

fn vectors(rows: impl IntoIterator<Item = Vec<f32>>) -> Array {
    rows.into_iter().map(|v| JsValue::from(Float32Array::from(v.as_slice()))).collect()
}

/// What `scorer.score` takes besides the images (the wrapper fetches and names those).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScoreRequest {
    /// Every image against every prompt …
    prompts: Option<Vec<String>>,
    /// … or a manifest's rows (its name and text), each row's image matched by name.
    manifest: Option<Manifest>,
    preset: Option<String>,
    reweight: Option<f32>,
    /// `"bundled"` (the default) or the prompts whose mean is the common direction.
    reference: Option<ReferenceArg>,
}

#[derive(Deserialize)]
struct Manifest {
    name: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ReferenceArg {
    Named(String),
    Prompts(Vec<String>),
}

#[wasm_bindgen]
impl ApiScorer {
    /// `{kind, adapter, reason, dtype, kernels}`: which path runs the towers, why, what it
    /// keeps the weights in, and the wasm build's SIMD (`simd128` or `relaxed-simd`: the
    /// instruction set of the CPU path's int8 products).
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> JsValue {
        let badge = &self.runtime.badge;
        let out = js_sys::Object::new();
        let _ = Reflect::set(&out, &"kind".into(), &badge.device.into());
        let _ = Reflect::set(&out, &"dtype".into(), &self.model.encoder.dtype().name().into());
        let _ = Reflect::set(&out, &"kernels".into(), &prefscope_clip::qgemm::Isa::best().name().into());
        let _ = Reflect::set(&out, &"adapter".into(), &badge.label.as_str().into());
        let _ = Reflect::set(&out, &"reason".into(), &badge.reason.as_str().into());
        out.into()
    }

    /// Bytes the towers' weights hold in wasm memory on the CPU path (0 on WebGPU): what each
    /// Worker of `load({ workers })` holds again.
    #[wasm_bindgen(getter, js_name = weightBytes)]
    pub fn weight_bytes(&self) -> f64 {
        self.model.encoder.matrix_bytes().unwrap_or(0) as f64
    }

    /// The wasm memory in bytes: it only grows, so this is its peak so far.
    #[wasm_bindgen(getter, js_name = memoryBytes)]
    pub fn memory_bytes(&self) -> f64 {
        crate::fetch::wasm_memory_bytes() as f64
    }

    /// The largest image decoded, in pixels (`load({ maxImagePixels })`).
    #[wasm_bindgen(getter, js_name = maxImagePixels)]
    pub fn max_image_pixels(&self) -> f64 {
        self.limits.max_pixels as f64
    }

    /// The model's name and embedding width.
    #[wasm_bindgen(getter, js_name = embeddingDim)]
    pub fn embedding_dim(&self) -> usize {
        self.model.encoder.config().projection
    }

    /// L2-normalised text embeddings, one `Float32Array` per text (`prefscope embed --texts`).
    #[wasm_bindgen(js_name = embedTexts)]
    pub fn embed_texts(&self, texts: Vec<String>) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let encoder = &model.encoder;
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(encoder.batch.max(1)) {
                for embedded in encoder.embed_texts(chunk).await.map_err(fail)? {
                    out.push(normalize(&embedded.vector));
                }
            }
            Ok(vectors(out).into())
        })
    }

    /// L2-normalised image embeddings, one `Float32Array` per image (`prefscope embed --images`).
    #[wasm_bindgen(js_name = embedImages)]
    pub fn embed_images(&self, images: Array) -> Promise {
        let (model, limits) = (self.model.clone(), self.limits);
        future_to_promise(async move {
            let encoder = &model.encoder;
            let images = images_arg(&images, &limits)?;
            let mut out = Vec::with_capacity(images.len());
            for chunk in images.chunks(encoder.batch.max(1)) {
                let embedded = encoder.embed_images(chunk, None).await.map_err(fail)?;
                out.extend(embedded.data.chunks(embedded.dim.max(1)).map(<[f32]>::to_vec));
            }
            Ok(vectors(out).into())
        })
    }

    /// The rows of `prefscope score` as JSON text (`[{id, group, prompt, image, score, …}]`).
    pub fn score(&self, request: String, images: Array) -> Promise {
        let (model, limits) = (self.model.clone(), self.limits);
        future_to_promise(async move {
            let request: ScoreRequest =
                serde_json::from_str(&request).map_err(|e| fail(format!("score options: {e}")))?;
            let images = images_arg(&images, &limits)?;
            score_rows(&model, request, images).await.map(JsValue::from).map_err(fail)
        })
    }
}

/// `scorer.score`, as `prefscope score` computes it.
async fn score_rows(model: &Model, request: ScoreRequest, images: Vec<Rgba>) -> Result<String, String> {
    let encoder = &model.encoder;
    let scorer = Scorer::parse(request.preset.as_deref().unwrap_or("clip"))?;
    let reweight = request.reweight.unwrap_or(DEFAULT_REWEIGHT);
    if !reweight.is_finite() {
        return Err(format!("reweight must be a finite number, got {reweight}"));
    }
    let reference = match request.reference {
        None => Reference::Bundled,
        Some(ReferenceArg::Named(n)) if n == "bundled" => Reference::Bundled,
        Some(ReferenceArg::Named(n)) => {
            return Err(format!("reference must be \"bundled\" or a list of prompts, got `{n}`"));
        }
        Some(ReferenceArg::Prompts(p)) if p.iter().all(|p| p.trim().is_empty()) => {
            return Err("reference: no prompts".into());
        }
        Some(ReferenceArg::Prompts(p)) => Reference::Prompts(p),
    };
    let names: Vec<&str> = images.iter().map(|im| im.name.as_str()).collect();
    let typed: Vec<String>;
    let manifest_rows: Vec<ManifestRow>;
    let items: Vec<Item<'_>> = match (request.prompts, request.manifest) {
        (Some(_), Some(_)) => return Err("give prompts or a manifest, not both".into()),
        (None, None) => return Err("give prompts or a manifest to score".into()),
        (Some(prompts), None) => {
            if prompts.is_empty() || images.is_empty() {
                return Err("give at least one image and one prompt".into());
            }
            typed = prompts;
            // Prompt by prompt, each against every image, numbered from 1 as a manifest's rows.
            let pairs = typed.iter().flat_map(|p| names.iter().enumerate().map(move |(i, &name)| (p, i, name)));
            pairs
                .enumerate()
                .map(|(k, (prompt, image, image_name))| Item {
                    id: (k + 1).to_string(),
                    group: None,
                    prompt,
                    image,
                    image_name,
                })
                .collect()
        }
        (None, Some(manifest)) => {
            manifest_rows = read_manifest(&manifest.name, manifest.text.as_bytes()).map_err(|e| e.to_string())?;
            let found = match_images(&manifest.name, &manifest_rows, &names).map_err(|e| e.to_string())?;
            manifest_items(&manifest_rows, &found)
        }
    };
    let u = tasks::reference_direction(model, scorer, &reference).await?;
    let mut prompts: Vec<&str> = Vec::new();
    for item in &items {
        if !prompts.contains(&item.prompt) {
            prompts.push(item.prompt);
        }
    }
    let session =
        Session::embed(encoder, scorer, &images, &prompts, Direction::Given(u)).await.map_err(|e| e.to_string())?;
    let scored = session.score(encoder, &items, reweight, None).await.map_err(|e| e.to_string())?;
    Ok(rows_table(&scored).json_rows().to_string())
}

/// The distinct images a manifest's rows name, in order of first use, for the wrapper to fetch
/// (relative to the manifest's URL) or to find among the caller's files.
#[wasm_bindgen(js_name = manifestImages)]
pub fn manifest_images(name: &str, text: &str) -> Result<Vec<String>, JsValue> {
    let rows = read_manifest(name, text.as_bytes()).map_err(fail)?;
    let mut out: Vec<String> = Vec::new();
    for row in rows {
        if !out.contains(&row.image) {
            out.push(row.image);
        }
    }
    Ok(out)
}

/// What `prefscope.dpo` takes (the command's flags, camel-cased).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DpoOptions {
    loss: Option<String>,
    beta: Option<f64>,
    label_smoothing: Option<f64>,
    weights: Option<Vec<f64>>,
    f_divergence: Option<String>,
    f_alpha: Option<f64>,
    /// PRO's SFT weight (`loss: "pro"`).
    sft_weight: Option<f64>,
    /// Bins of the calibration metrics (`--bins`).
    bins: Option<usize>,
    /// `subset` or `category`: metrics per value too (`--by`).
    by: Option<String>,
    /// KTO's weights (`--desirable-weight`, `--undesirable-weight`).
    desirable_weight: Option<f64>,
    undesirable_weight: Option<f64>,
}

/// `prefscope dpo --format json` on files' bytes (one file, or the evaluations of one run):
/// the command's document as JSON text. `names` are the files' names, which errors name.
#[wasm_bindgen(js_name = dpoReport)]
pub fn dpo_report(names: Vec<String>, files: Vec<Uint8Array>, options: &str) -> Result<String, JsValue> {
    let options: DpoOptions = serde_json::from_str(options).map_err(|e| fail(format!("dpo options: {e}")))?;
    if names.len() != files.len() || names.is_empty() {
        return Err(fail(format!("dpo: {} names for {} files", names.len(), files.len())));
    }
    let request = ReportOptions {
        loss: options.loss,
        weights: options.weights,
        beta: options.beta,
        label_smoothing: options.label_smoothing,
        f_divergence: options.f_divergence,
        f_alpha: options.f_alpha,
        bins: options.bins,
        desirable_weight: options.desirable_weight,
        undesirable_weight: options.undesirable_weight,
    }
    .request()
    .map_err(fail)?;
    if let Some(objective) = RANKED_OBJECTIVES.iter().find(|o| **o == request.objective.trim()) {
        // Ranked lists, as `prefscope dpo --loss pro|smpo|rankdpo` reads and reports them.
        let ([name], [bytes]) = (names.as_slice(), files.as_slice()) else {
            return Err(fail(format!("`--loss {objective}` reads one file of ranked lists, not {}", files.len())));
        };
        let lists = read_ranked(name, Bytes::from(bytes.to_vec())).map_err(fail)?;
        let evaluation =
            evaluate_lists(objective, &lists, options.beta, options.sft_weight.unwrap_or(0.05)).map_err(fail)?;
        let pairs: Vec<serde_json::Value> = lists
            .iter()
            .zip(&evaluation.pairs.loss)
            .map(|(l, loss)| serde_json::json!({"id": l.id, "loss": loss}))
            .collect();
        let doc = serde_json::json!({"metrics": prefscope_core::io::write::metrics_json(&evaluation.metrics), "pairs": pairs});
        return Ok(doc.to_string());
    }
    let by = options.by.as_deref().map(By::parse).transpose().map_err(fail)?;
    let mut data = Vec::with_capacity(files.len());
    for (name, bytes) in names.iter().zip(&files) {
        let bytes = Bytes::from(bytes.to_vec());
        data.push(read_preferences(Input::Bytes { name, bytes }, None, &mut |_| {}).map_err(fail)?);
    }
    let document = run::document(&data, &request, by, &|d| report(d, &request)).map_err(fail)?;
    Ok(document.with_pairs().to_string())
}
