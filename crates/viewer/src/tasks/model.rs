//! Loading a model: fetched by URL (or the demo model beside the page) or from picked files,
//! built on the runtime's device and warmed up; and the common text direction of a reference set.

use std::rc::Rc;

use prefscope_clip::scorer::{common_text_direction, Reference, Scorer};
use prefscope_clip::{DtypeChoice, ModelFiles};

use super::{yield_now, Report};
use crate::compute::{Model, Runtime, MODEL_FILES, MODEL_WEIGHTS, OPEN_CLIP_FILES, OPEN_CLIP_WEIGHTS};
use crate::fetch::{fetch_bytes, fetch_cached, fetch_weights};

/// Fetches a model laid out like a Hugging Face repository (`{prefix}config.json`, …) through
/// the model cache, or the demo model shipped beside the page.
pub async fn load_model(
    runtime: &Runtime,
    url: Option<&str>,
    base: &str,
    dtype: DtypeChoice,
    report: Report,
) -> Result<Rc<Model>, String> {
    let bundled = url.is_none();
    let (prefix, name, cached) = match url {
        Some(u) => (if u.ends_with('/') { u.to_string() } else { format!("{u}/") }, u.to_string(), true),
        None => (format!("{base}demo-model/"), "shapes-world demo model".to_string(), false),
    };
    let mut files = ModelFiles::new();
    // Progress is reported while this call runs: a download it started may go on storing after
    // a failed load, and must not report over the error.
    let live = Live(Rc::new(std::cell::Cell::new(true)));
    let bytes_progress = |label: String| {
        let (report, live) = (report.clone(), live.0.clone());
        move |done: u64, total: Option<u64>| {
            if live.get() {
                report(&label, total.filter(|t| *t > 0).map(|t| done as f64 / t as f64));
            }
        }
    };
    let fetch = |file: &'static str| {
        let url = format!("{prefix}{file}");
        let progress = bytes_progress(format!("loading {file}"));
        async move {
            if cached {
                fetch_cached(&url, &progress).await.map(|(b, _)| b)
            } else {
                fetch_bytes(&url, &progress).await
            }
        }
    };
    // transformers' layout first, its files fetched side by side; a 404 on its config means
    // an open_clip repository. The JSON files are read into memory; the weights are read
    // tensor by tensor as they arrive (or from the stored copy) and never held whole.
    let weights_blob = |weights: &str| {
        let url = format!("{prefix}{weights}");
        let progress: Rc<dyn Fn(u64, Option<u64>)> = Rc::new(bytes_progress(format!("loading {weights}")));
        async move { fetch_weights(&url, cached, progress).await }
    };
    let (json, blob) = futures_util::future::join(
        futures_util::future::join_all(MODEL_FILES.iter().map(|&f| fetch(f))),
        weights_blob(MODEL_WEIGHTS),
    )
    .await;
    let (names, weights, json, blob): (&[&'static str], _, _, _) = match json.first() {
        Some(Err(e)) if e.is_not_found() => {
            let json = futures_util::future::join_all(OPEN_CLIP_FILES.iter().map(|&f| fetch(f))).await;
            (&OPEN_CLIP_FILES, OPEN_CLIP_WEIGHTS, json, weights_blob(OPEN_CLIP_WEIGHTS).await)
        }
        _ => (&MODEL_FILES, MODEL_WEIGHTS, json, blob),
    };
    for (&file, fetched) in names.iter().zip(json) {
        match fetched {
            Ok(bytes) => files.insert(file, bytes),
            // Only config, weights and tokenizer are required; the loader names what is missing.
            Err(e) if file == "preprocessor_config.json" && e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let blob = blob?;
    files.insert_streamed(weights);
    crate::scope::mark("model-fetched");
    let stored = match &blob {
        crate::fetch::Weights::Streamed(s) => Some(s.stored()),
        crate::fetch::Weights::Blob(_) => None,
    };
    let model = build_model(runtime, &name, &files, blob, dtype, &report, bundled).await?;
    if let Some(stored) = stored {
        stored.await;
    }
    Ok(model)
}

/// Turns its flag off when dropped (however the load ends).
struct Live(Rc<std::cell::Cell<bool>>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// A model from files the user picked (a Hub repository's files, either layout): the JSON
/// files read into memory, the `.safetensors` files kept as Blobs, the one the config names
/// streamed to the device.
pub async fn load_model_files(
    runtime: &Runtime,
    picked: Vec<(String, web_sys::Blob)>,
    dtype: DtypeChoice,
    report: Report,
) -> Result<Rc<Model>, String> {
    let mut files = ModelFiles::new();
    let mut names = Vec::new();
    let mut blobs = Vec::new();
    for (name, blob) in picked {
        if name.ends_with(".safetensors") {
            files.insert_streamed(&name);
            blobs.push((name.clone(), blob));
        } else if name.ends_with(".json") {
            report(&format!("reading {name}"), None);
            let buffer = wasm_bindgen_futures::JsFuture::from(blob.array_buffer())
                .await
                .map_err(|e| crate::scope::js_error(&format!("{name}: cannot read the file"), e))?;
            files.insert(&name, js_sys::Uint8Array::new(&buffer).to_vec());
        } else {
            continue;
        }
        names.push(name);
    }
    let label = format!("local files ({})", names.join(", "));
    let weights = files.weights_name().map_err(|e| format!("{label}: {e}"))?;
    let (_, blob) =
        blobs.into_iter().find(|(n, _)| *n == weights).ok_or_else(|| format!("{label}: {weights} is missing"))?;
    build_model(runtime, &label, &files, prefscope_clip::blob::BlobSource::new(blob), dtype, &report, false).await
}

/// The towers on the runtime's device from loaded JSON files and streamed weights, warmed up.
async fn build_model(
    runtime: &Runtime,
    name: &str,
    files: &ModelFiles,
    weights: impl prefscope_clip::weights::Source,
    dtype: DtypeChoice,
    report: &Report,
    bundled: bool,
) -> Result<Rc<Model>, String> {
    report("building the towers", None);
    yield_now().await;
    let model = Model { bundled, ..runtime.load(name, files, weights, dtype).await? };
    crate::scope::mark("towers-built");
    // Compiles the GPU pipelines before the first input; the CPU path has nothing to compile.
    if runtime.gpu.is_some() {
        report("warming up the towers", None);
        yield_now().await;
        model.encoder.warm_up().await.map_err(|e| format!("{name}: {e}"))?;
        crate::scope::mark("towers-warm");
    }
    Ok(Rc::new(model))
}

/// The common text direction of `reference` for `scorer`: from the model cache when this
/// model computed it on an earlier visit, else from the text tower (and then cached).
pub async fn reference_direction(model: &Model, scorer: Scorer, reference: &Reference) -> Result<Vec<f32>, String> {
    let prompts = reference.prompts();
    let hash = crate::compute::fnv(
        [scorer.name().as_bytes()].into_iter().chain(prompts.iter().flat_map(|p| [b"\n".as_slice(), p.as_bytes()])),
    );
    let key = format!("{}|direction|{hash:016x}", model.key);
    if let Some(u) = crate::fetch::cached_vector(&key).await {
        if u.len() == model.encoder.config().projection {
            return Ok(u);
        }
    }
    let u = common_text_direction(&model.encoder, scorer, reference).await.map_err(|e| e.to_string())?;
    crate::fetch::store_vector(&key, &u).await;
    Ok(u)
}
