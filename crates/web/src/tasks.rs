//! The page's long-running work, each an async function from inputs to a result or a
//! message for the user: loading a model, scoring the gallery, reweighting, the DPO report.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use prefscope_clip::scorer::Scorer;
use prefscope_clip::ModelFiles;
use prefscope_core::dpo::{FDivergence, PairwiseParams};
use prefscope_core::longalign::decompose_all;
use prefscope_core::read::{read_preferences, Input, Preferences};
use prefscope_core::report::{report, ReportRequest};
use prefscope_synth::demo::{embed_gallery, score_embedded, SIZE};
use wasm_bindgen::{Clamped, JsCast};
use yew::Callback;

use crate::compute::{Model, Runtime, MODEL_FILES};
use crate::fetch::{fetch_bytes, fetch_cached};
use crate::store::{Action, Dpo, DpoResult, Progress, Scored};

pub fn progress(label: &str, fraction: Option<f64>) -> Progress {
    Progress { label: label.to_string(), fraction }
}

/// Lets the browser paint (the progress bar) between long synchronous steps.
async fn yield_now() {
    gloo::timers::future::TimeoutFuture::new(0).await;
}

/// Fetches a model laid out like a Hugging Face repository (`{prefix}config.json`, …) through
/// the model cache, or the demo model shipped beside the page.
pub async fn load_model(
    runtime: &Runtime,
    url: Option<&str>,
    base: &str,
    dispatch: &Callback<Action>,
) -> Result<Rc<Model>, String> {
    let (prefix, name, cached) = match url {
        Some(u) => (if u.ends_with('/') { u.to_string() } else { format!("{u}/") }, u.to_string(), true),
        None => (format!("{base}demo-model/"), "shapes-world demo model".to_string(), false),
    };
    let mut files = ModelFiles::new();
    for file in MODEL_FILES {
        let url = format!("{prefix}{file}");
        let label = format!("loading {file}");
        let report = |done: u64, total: Option<u64>| {
            let fraction = total.filter(|t| *t > 0).map(|t| done as f64 / t as f64);
            dispatch.emit(Action::Progress(Some(progress(&label, fraction))));
        };
        let bytes =
            if cached { fetch_cached(&url, &report).await.map(|(b, _)| b) } else { fetch_bytes(&url, &report).await };
        match bytes {
            Ok(bytes) => files.insert(file, bytes),
            // Only config, weights and tokenizer are required; the loader names what is missing.
            Err(e) if file == "preprocessor_config.json" && e.contains("HTTP 404") => {}
            Err(e) => return Err(e),
        }
    }
    dispatch.emit(Action::Progress(Some(progress("building the towers", None))));
    yield_now().await;
    let model = runtime.load(&name, &files)?;
    dispatch.emit(Action::Progress(Some(progress("warming up the towers", None))));
    yield_now().await;
    model.encoder.warm_up().await.map_err(|e| format!("{name}: {e}"))?;
    Ok(model)
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
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

/// Embeds the demo gallery once, scores it (the rows `prefscope demo` prints) and splits every
/// image × prompt score, on the runtime's device.
pub async fn score_demo(
    runtime: &Runtime,
    model: &Model,
    scorer: Scorer,
    reweight: f32,
    dispatch: &Callback<Action>,
) -> Result<Scored, String> {
    let entries = prefscope_synth::gallery::demo();
    let encoder = &model.encoder;
    let candidates: usize = entries.iter().map(|e| e.candidates.len()).sum();
    dispatch.emit(Action::Progress(Some(progress(&format!("embedding {candidates} images and their prompts"), None))));
    yield_now().await;
    let embedded = embed_gallery(encoder, &entries, scorer, None).await.map_err(|e| e.to_string())?;
    let rows = score_embedded(encoder, &entries, &embedded, scorer, reweight).await.map_err(|e| e.to_string())?;
    let (scale, _) = scorer.pair_score(encoder.logit_scale()).affine();
    let (relevant, irrelevant, resident) = match &runtime.gpu {
        Some(gpu) => {
            let d = gpu
                .decompose(&embedded.images, &embedded.prompts, &embedded.u, scale)
                .await
                .map_err(|e| format!("decomposition on the GPU: {e}"))?;
            (d.relevant.clone(), d.irrelevant.clone(), Some(d))
        }
        None => {
            let parts = decompose_all(&embedded.images, &embedded.prompts, &embedded.u, scale);
            (parts.iter().map(|p| p.relevant).collect(), parts.iter().map(|p| p.irrelevant).collect(), None)
        }
    };
    let mut thumbnails = BTreeMap::new();
    for entry in &entries {
        for c in &entry.candidates {
            let image = c.sample.render(SIZE);
            if let Some(url) = data_url(image.width, image.height, &image.data) {
                thumbnails.insert(c.id.clone(), url);
            }
        }
    }
    Ok(Scored { scorer, rows, embedded, thumbnails, relevant, irrelevant, resident, millis: now() })
}

/// `relevant + w·irrelevant` for every image × prompt: the GPU kernel over the resident split,
/// or core's formula on the CPU path.
pub async fn reweight(runtime: &Runtime, scored: &Scored, weight: f32) -> Result<Vec<f32>, String> {
    match (&runtime.gpu, &scored.resident) {
        (Some(gpu), Some(resident)) => {
            resident.reweighted(gpu, weight).await.map_err(|e| format!("reweighting on the GPU: {e}"))
        }
        _ => Ok(scored.relevant.iter().zip(&scored.irrelevant).map(|(r, i)| r + weight * i).collect()),
    }
}

/// Reads DPO log-probabilities (or Diffusion-DPO rows) from bytes, naming the file in errors.
pub fn parse_preferences(name: &str, bytes: Vec<u8>) -> Result<Preferences, String> {
    read_preferences(Input::Bytes { name, bytes: Bytes::from(bytes) }, None, &mut |_| {}).map_err(|e| e.to_string())
}

/// The DPO data at `url`, or the bundled export shipped beside the page.
pub async fn load_dpo(
    url: Option<&str>,
    base: &str,
    dispatch: &Callback<Action>,
) -> Result<(String, Preferences), String> {
    let url = url.map(str::to_string).unwrap_or_else(|| format!("{base}data/dpo_sample.jsonl"));
    let name = url.rsplit('/').next().unwrap_or(&url).split('?').next().unwrap_or(&url).to_string();
    let report = |done: u64, total: Option<u64>| {
        let fraction = total.filter(|t| *t > 0).map(|t| done as f64 / t as f64);
        dispatch.emit(Action::Progress(Some(progress(&format!("loading {name}"), fraction))));
    };
    let bytes = fetch_bytes(&url, &report).await?;
    Ok((name.clone(), parse_preferences(&name, bytes)?))
}

/// The DPO report for the view's settings: prefscope-gpu's kernels on WebGPU, core's CPU
/// reference otherwise (the same function `prefscope dpo` calls).
pub async fn dpo_report(runtime: &Runtime, dpo: &Dpo) -> Result<DpoResult, String> {
    let data = dpo.data.as_ref().ok_or("no DPO data loaded")?;
    let request = ReportRequest {
        objective: dpo.losses.join(","),
        weights: None,
        beta: Some(dpo.beta),
        params: PairwiseParams {
            label_smoothing: dpo.label_smoothing,
            f_divergence: FDivergence::ReverseKl,
            ..PairwiseParams::default()
        },
    };
    let result = match &runtime.gpu {
        Some(gpu) => gpu.report(data, &request).await.map_err(|e| e.to_string())?,
        None => report(data, &request).map_err(|e| e.to_string())?,
    };
    let p = &result.evaluation.pairs;
    Ok(DpoResult {
        key: dpo.key(),
        metrics: result.evaluation.metrics.clone(),
        ids: result.ids.to_vec(),
        chosen_reward: p.chosen_reward.clone(),
        rejected_reward: p.rejected_reward.clone(),
        margin: p.margin.clone(),
        loss: p.loss.clone(),
    })
}
