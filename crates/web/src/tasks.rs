//! The page's long-running work, each an async function from inputs to a result or a
//! message for the user: loading a model, scoring the gallery, reweighting, the DPO report.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use prefscope_clip::pairs::pair_probabilities;
use prefscope_clip::scorer::{
    common_text_direction, score_from_split, Item, PromptEmbeddings, Reference, Scorer, SplitMatrix,
};
use prefscope_clip::{ModelFiles, Rgba};
use prefscope_core::diversity::{split_by_group, Kernel, Paired};
use prefscope_core::dpo::{FDivergence, PairwiseParams};
use prefscope_core::embedding::{normalize, Embeddings};
use prefscope_core::longalign::decompose_all;
use prefscope_core::read::{read_manifest, read_preferences, Input, Preferences};
use prefscope_core::record::ImageRef;
use prefscope_core::report::{report, ReportRequest};
use prefscope_synth::demo::{embed_gallery, score_embedded, SIZE};
use wasm_bindgen::{Clamped, JsCast};
use yew::Callback;

use crate::compute::{Model, Runtime, MODEL_FILES, MODEL_WEIGHTS, OPEN_CLIP_FILES, OPEN_CLIP_WEIGHTS};
use crate::fetch::{fetch_blob, fetch_bytes, fetch_cached};
use crate::store::{Action, Diversity, Dpo, DpoResult, Inputs, Pairs, Progress, Row, Scored, Source, UserImage};

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

/// Fetches a model laid out like a Hugging Face repository (`{prefix}config.json`, …) through
/// the model cache, or the demo model shipped beside the page.
pub async fn load_model(runtime: &Runtime, url: Option<&str>, base: &str, report: Report) -> Result<Rc<Model>, String> {
    let bundled = url.is_none();
    let (prefix, name, cached) = match url {
        Some(u) => (if u.ends_with('/') { u.to_string() } else { format!("{u}/") }, u.to_string(), true),
        None => (format!("{base}demo-model/"), "shapes-world demo model".to_string(), false),
    };
    let mut files = ModelFiles::new();
    let bytes_progress = |label: String| {
        let report = report.clone();
        move |done: u64, total: Option<u64>| {
            report(&label, total.filter(|t| *t > 0).map(|t| done as f64 / t as f64));
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
    // an open_clip repository. The JSON files are read into memory; the weights stay a Blob
    // and stream to the device.
    let weights_blob = |weights: &str| {
        let url = format!("{prefix}{weights}");
        let progress: Rc<dyn Fn(u64, Option<u64>)> = Rc::new(bytes_progress(format!("loading {weights}")));
        async move { fetch_blob(&url, cached, progress).await }
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
    build_model(runtime, &name, &files, blob, &report, bundled).await
}

/// A model from files the user picked (a Hub repository's files, either layout): the JSON
/// files read into memory, the `.safetensors` files kept as Blobs, the one the config names
/// streamed to the device.
pub async fn load_model_files(
    runtime: &Runtime,
    picked: Vec<(String, web_sys::Blob)>,
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
    build_model(runtime, &label, &files, blob, &report, false).await
}

/// The towers on the runtime's device from loaded JSON files and streamed weights, warmed up.
async fn build_model(
    runtime: &Runtime,
    name: &str,
    files: &ModelFiles,
    weights: web_sys::Blob,
    report: &Report,
    bundled: bool,
) -> Result<Rc<Model>, String> {
    report("building the towers", None);
    yield_now().await;
    let model = Model { bundled, ..runtime.load(name, files, weights).await? };
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

/// The split of every image × prompt score against `u`, on the GPU (kept resident for the
/// slider) or with core's formula on the CPU path.
async fn split(
    runtime: &Runtime,
    images: &Embeddings,
    prompts: &Embeddings,
    u: &[f32],
    scale: f32,
) -> Result<(Vec<f32>, Vec<f32>, Option<prefscope_gpu::Decomposed>), String> {
    match &runtime.gpu {
        Some(gpu) => {
            let d =
                gpu.decompose(images, prompts, u, scale).await.map_err(|e| format!("decomposition on the GPU: {e}"))?;
            Ok((d.relevant.clone(), d.irrelevant.clone(), Some(d)))
        }
        None => {
            let parts = decompose_all(images, prompts, u, scale);
            Ok((parts.iter().map(|p| p.relevant).collect(), parts.iter().map(|p| p.irrelevant).collect(), None))
        }
    }
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
    crate::scope::mark("gallery-generated");
    let reference = Reference::Prompts(prefscope_synth::demo::reference_prompts());
    // The bundled model's direction ships with it (for presets that take prompts as written).
    let u = if model.bundled && scorer.text("").is_empty() {
        prefscope_synth::demo::bundled_reference_direction()
    } else {
        reference_direction(model, scorer, &reference).await?
    };
    crate::scope::mark("reference-direction");
    let embedded = embed_gallery(encoder, &entries, scorer, Some(&u)).await.map_err(|e| e.to_string())?;
    crate::scope::mark("gallery-embedded");
    // The split of every candidate × prompt, once: the Decompose view shows it all, the rows
    // read their own parts from it.
    let (scale, _) = scorer.pair_score(encoder.logit_scale()).affine();
    let (relevant, irrelevant, resident) =
        split(runtime, &embedded.images, &embedded.prompts, &embedded.u, scale).await?;
    crate::scope::mark("gallery-split");
    let matrix = SplitMatrix { relevant: &relevant, irrelevant: &irrelevant };
    let gallery = score_embedded(encoder, &entries, &embedded, scorer, reweight, Some(&matrix))
        .await
        .map_err(|e| e.to_string())?;
    crate::scope::mark("gallery-scored");
    let mut thumbnails = Vec::new();
    let mut image_names = Vec::new();
    let mut rows = Vec::new();
    let mut k = 0;
    for (p, entry) in entries.iter().enumerate() {
        for c in &entry.candidates {
            let image = c.sample.render(SIZE);
            thumbnails.push(data_url(image.width, image.height, &image.data));
            image_names.push(c.id.clone());
            let g = &gallery[k];
            rows.push(Row {
                id: g.id.clone(),
                group: format!("p{p}"),
                prompt: g.prompt.clone(),
                image: k,
                text: p,
                rank: g.rank,
                score: g.score,
                relevant: g.relevant,
                irrelevant: g.irrelevant,
                probability: g.probability,
                truth: Some((g.alignment, g.quality)),
            });
            k += 1;
        }
    }
    crate::scope::mark("thumbnails");
    let diversity_input = DiversityInput::of(&rows, &embedded.images, &embedded.prompts);
    Ok(Scored {
        scorer,
        source: Source::Demo,
        rows,
        image_names,
        prompts: entries.iter().map(|e| e.prompt.text.clone()).collect(),
        segments: embedded.segments.clone(),
        thumbnails,
        reference: format!(
            "{} shapes-world prompts (the gallery's reference set)",
            prefscope_synth::demo::reference_prompts().len()
        ),
        relevant,
        irrelevant,
        resident,
        diversity_input,
        millis: now(),
    })
}

/// What the diversity split of a scored set needs: each row's prompt and image embeddings
/// (those `prefscope diversity --model` uses: images as the towers give them, prompts
/// L2-normalised, so the two agree on the same manifest) and its group. Taken while scoring,
/// split by an effect once the rankings are shown.
pub struct DiversityInput {
    dim: usize,
    text: Vec<f64>,
    image: Vec<f64>,
    groups: Vec<Option<String>>,
}

impl DiversityInput {
    /// `None` past [`DIVERSITY_WORK`] (each split costs rows · width² and width³: the page
    /// leaves those sets to the command).
    fn of(rows: &[Row], images: &Embeddings, prompts: &Embeddings) -> Option<Self> {
        if (rows.len() as u64).saturating_mul((images.dim as u64).pow(2)) > DIVERSITY_WORK {
            return None;
        }
        Some(Self {
            dim: images.dim,
            text: rows.iter().flat_map(|r| normalize(prompts.row(r.text))).map(f64::from).collect(),
            image: rows.iter().flat_map(|r| images.row(r.image).iter().map(|&v| f64::from(v))).collect(),
            groups: rows.iter().map(|r| Some(r.group.clone())).collect(),
        })
    }

    /// The split with the cosine kernel, over all rows and per group.
    pub fn split(&self) -> Option<Diversity> {
        let paired = Paired { rows: self.groups.len(), dim: self.dim, text: &self.text, image: &self.image };
        split_by_group(&paired, &self.groups, &Kernel::Cosine).ok()
    }
}

/// Rows × width² past which the Score view leaves the diversity split to `prefscope diversity`.
const DIVERSITY_WORK: u64 = 500_000_000;

fn is_manifest(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".csv", ".jsonl", ".ndjson", ".json"].iter().any(|e| lower.ends_with(e))
}

/// Reads picked or dropped files: manifests (CSV/JSONL) are parsed, everything else decoded
/// as an image. A bad file is reported by name and the others still load.
pub async fn ingest_files(files: Vec<web_sys::File>, dispatch: &Callback<Action>) {
    {
        let mut images = Vec::new();
        for file in files {
            // A folder pick gives relative paths (`folder/a.png`); manifests name either form.
            let path = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default();
            let name = if path.is_empty() { file.name() } else { path };
            let bytes = match gloo::file::futures::read_as_bytes(&gloo::file::Blob::from(file)).await {
                Ok(b) => b,
                Err(e) => {
                    dispatch.emit(Action::Error(format!("{name}: cannot read the file: {e}")));
                    continue;
                }
            };
            if is_manifest(&name) {
                match read_manifest(&name, &bytes) {
                    Ok(rows) => dispatch.emit(Action::Manifest(Some((name, rows)))),
                    Err(e) => dispatch.emit(Action::Error(e.to_string())),
                }
            } else {
                match decode_image(&name, &bytes) {
                    Ok(image) => images.push(Rc::new(image)),
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
            }
        }
        if !images.is_empty() {
            dispatch.emit(Action::AddImages(images));
        }
    }
}

/// Fetches images by URL (relative ones against the page).
pub async fn fetch_images(urls: Vec<String>, dispatch: &Callback<Action>) {
    {
        let mut images = Vec::new();
        for url in urls {
            match fetch_bytes(&url, &|_, _| {}).await.map_err(String::from).and_then(|b| decode_image(&url, &b)) {
                Ok(image) => images.push(Rc::new(image)),
                Err(e) => dispatch.emit(Action::Error(e)),
            }
        }
        if !images.is_empty() {
            dispatch.emit(Action::AddImages(images));
        }
    }
}

/// Labelled pairs from a picked file (images inline, or by the name of an image loaded in
/// the Score view), scored by the loaded model.
pub async fn pairs_file(
    model: Option<Rc<Model>>,
    file: web_sys::File,
    loaded: &[Rc<UserImage>],
    dispatch: &Callback<Action>,
) -> Result<Pairs, String> {
    let name = file.name();
    let model = model.ok_or_else(|| format!("{name}: the model is still loading; try again in a moment"))?;
    let bytes = gloo::file::futures::read_as_bytes(&gloo::file::Blob::from(file))
        .await
        .map_err(|e| format!("{name}: cannot read the file: {e}"))?;
    load_pairs(&model, &name, bytes, None, loaded, dispatch).await
}

/// DPO log-probabilities (or Diffusion-DPO rows) from a picked file. Parquet is read a row
/// group at a time from slices of the file (never the whole file in wasm memory); JSON Lines
/// and CSV are read whole.
pub async fn dpo_file(file: web_sys::File, dispatch: &Callback<Action>) -> Result<(String, DpoLoaded), String> {
    let name = file.name();
    let parquet = prefscope_core::read::Format::from_name(&name).ok() == Some(prefscope_core::read::Format::Parquet);
    let blob: web_sys::Blob = file.into();
    let read_whole = |blob: web_sys::Blob| async move {
        gloo::file::futures::read_as_bytes(&gloo::file::Blob::from(blob))
            .await
            .map_err(|e| format!("cannot read the file: {e}"))
    };
    // Which reader, from the columns alone (a Parquet file's footer, a text file's first row).
    if parquet {
        if ranked_lists(&parquet_columns(&blob).await) {
            let bytes = read_whole(blob).await.map_err(|e| format!("{name}: {e}"))?;
            let lists = prefscope_core::read::read_ranked(&name, Bytes::from(bytes)).map_err(|e| e.to_string())?;
            return Ok((name, DpoLoaded::Ranked(lists)));
        }
        let data = parquet_in_pieces(&name, blob, dispatch).await?;
        return Ok((name, DpoLoaded::Pairs(data)));
    }
    let bytes = read_whole(blob).await.map_err(|e| format!("{name}: {e}"))?;
    if ranked_lists(&prefscope_core::read::column_names(&name, &bytes)) {
        let lists = prefscope_core::read::read_ranked(&name, Bytes::from(bytes)).map_err(|e| e.to_string())?;
        return Ok((name, DpoLoaded::Ranked(lists)));
    }
    let data = parse_preferences(&name, bytes)?;
    Ok((name, DpoLoaded::Pairs(data)))
}

/// Whether columns are those of ranked lists rather than pairs.
fn ranked_lists(columns: &[String]) -> bool {
    let has = |c: &str| columns.iter().any(|x| x == c);
    (has("rewards") || has("ranks")) && !has("policy_chosen_logps")
}

/// A Parquet Blob's column names, from its footer (empty when it does not parse).
async fn parquet_columns(blob: &web_sys::Blob) -> Vec<String> {
    use prefscope_clip::blob::BlobSource;
    use prefscope_clip::weights::Source;
    let source = BlobSource::unbuffered(blob.clone());
    let len = source.size();
    let Ok(tail) = source.range(len.saturating_sub(8), len).await else { return Vec::new() };
    let Ok(range) = prefscope_core::read::ParquetPieces::metadata_range("", len, &tail) else { return Vec::new() };
    let Ok(footer) = source.range(range.start, range.end).await else { return Vec::new() };
    prefscope_core::read::parquet_column_names(len, range.start, Bytes::from(footer.into_owned()))
}

/// What a file in the DPO view holds (one value per load, never stored in bulk).
#[allow(clippy::large_enum_variant)]
pub enum DpoLoaded {
    Pairs(Preferences),
    Ranked(Vec<prefscope_core::dpo::ranked::RankedList>),
}

/// A Parquet file read through [`ParquetPieces`]: its footer, then one row group at a time.
async fn parquet_in_pieces(
    name: &str,
    blob: web_sys::Blob,
    dispatch: &Callback<Action>,
) -> Result<Preferences, String> {
    use prefscope_clip::blob::BlobSource;
    use prefscope_clip::weights::Source;
    use prefscope_core::read::ParquetPieces;
    let source = BlobSource::unbuffered(blob);
    let len = source.size();
    let fetch = |start: u64, end: u64| {
        let source = &source;
        async move {
            source.range(start, end).await.map(|b| Bytes::from(b.into_owned())).map_err(|e| format!("{name}: {e}"))
        }
    };
    let tail = fetch(len.saturating_sub(8), len).await?;
    let footer = ParquetPieces::metadata_range(name, len, &tail).map_err(|e| e.to_string())?;
    let bytes = fetch(footer.start, footer.end).await?;
    let mut pieces = ParquetPieces::open(name, len, footer.start, bytes).map_err(|e| e.to_string())?;
    for (i, range) in pieces.row_groups().into_iter().enumerate() {
        let bytes = fetch(range.start, range.end).await?;
        let mut progress = |p: prefscope_core::read::Progress| {
            let fraction = (p.total > 0).then(|| p.done as f64 / p.total as f64);
            dispatch.emit(Action::Progress(Some(progress(&format!("reading {name}"), fraction))));
        };
        pieces.push_row_group(i, range.start, bytes, &mut progress).map_err(|e| e.to_string())?;
    }
    pieces.finish().map_err(|e| e.to_string())
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

/// Decodes an image the user gave (the `image` crate, as `prefscope score` does natively, so
/// both give the same pixels); the thumbnail is the original bytes as an object URL.
pub fn decode_image(name: &str, bytes: &[u8]) -> Result<UserImage, String> {
    let rgba = Rgba::decode(name, bytes).map_err(|e| e.to_string())?;
    let array = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let thumbnail = web_sys::Blob::new_with_u8_array_sequence(&array)
        .ok()
        .and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok());
    Ok(UserImage { name: name.to_string(), rgba, thumbnail })
}

/// Scores the user's inputs: each manifest row's image against its prompt, or every image
/// against every typed prompt; the common direction from the bundled reference set or the
/// user's prompts.
pub async fn score_user(
    runtime: &Runtime,
    model: &Model,
    inputs: &Inputs,
    scorer: Scorer,
    reweight: f32,
    dispatch: &Callback<Action>,
) -> Result<Scored, String> {
    let encoder = &model.encoder;
    let index: BTreeMap<&str, usize> = inputs.images.iter().enumerate().map(|(i, im)| (im.name.as_str(), i)).collect();
    // (id, group, prompt, image index) per row.
    let mut wanted: Vec<(String, Option<String>, String, usize)> = Vec::new();
    match &inputs.manifest {
        Some((name, rows)) => {
            for (r, row) in rows.iter().enumerate() {
                let file = row.image.rsplit('/').next().unwrap_or(&row.image);
                let i = index.get(row.image.as_str()).or_else(|| index.get(file)).copied().ok_or_else(|| {
                    format!(
                        "{name}: row {}: image `{}` is not among the loaded images (add the file or its folder)",
                        r + 1,
                        row.image
                    )
                })?;
                // As `prefscope score` numbers them: the row, from 1.
                let id = row.id.clone().unwrap_or_else(|| (r + 1).to_string());
                wanted.push((id, row.group.clone(), row.prompt.clone(), i));
            }
        }
        None => {
            if inputs.prompts.is_empty() || inputs.images.is_empty() {
                return Err("add at least one image and one prompt (or a manifest) to score".into());
            }
            for prompt in &inputs.prompts {
                for (i, im) in inputs.images.iter().enumerate() {
                    wanted.push((im.name.clone(), None, prompt.clone(), i));
                }
            }
        }
    }
    let mut prompts: Vec<String> = Vec::new();
    for (_, _, p, _) in &wanted {
        if !prompts.contains(p) {
            prompts.push(p.clone());
        }
    }
    dispatch.emit(Action::Progress(Some(progress(
        &format!("embedding {} images and {} prompts", inputs.images.len(), prompts.len()),
        None,
    ))));
    yield_now().await;
    let reference = if inputs.bundled_reference { Reference::Bundled } else { Reference::Prompts(prompts.clone()) };
    let reference_name = match &reference {
        Reference::Bundled => format!("the {} bundled reference prompts", reference.prompts().len()),
        Reference::Prompts(p) => format!("your {} prompts", p.len()),
    };
    // The prompts run through the text tower once: for the scores, the split and (when they
    // are the reference set) the common direction.
    let embedded = PromptEmbeddings::embed(encoder, scorer, &prompts).await.map_err(|e| e.to_string())?;
    let u = match &reference {
        Reference::Prompts(_) => embedded.direction(),
        Reference::Bundled => reference_direction(model, scorer, &reference).await?,
    };
    let preset = scorer.preset(encoder.preset());
    let rgba: Vec<Rgba> = inputs.images.iter().map(|im| im.rgba.clone()).collect();
    let images = encoder.embed_images(&rgba, Some(&preset)).await.map_err(|e| e.to_string())?;
    let items: Vec<Item<'_>> = wanted
        .iter()
        .map(|(id, group, prompt, i)| Item {
            id: id.clone(),
            group: group.clone(),
            prompt,
            image: *i,
            image_name: &inputs.images[*i].name,
        })
        .collect();
    // The split of every image × prompt, once (the rows read their parts from it).
    let (scale, _) = scorer.pair_score(encoder.logit_scale()).affine();
    let (relevant, irrelevant, resident) = split(runtime, &images, &embedded.embeddings, &u, scale).await?;
    let matrix = SplitMatrix { relevant: &relevant, irrelevant: &irrelevant };
    let scored = score_from_split(encoder, &items, images.len(), &embedded, scorer, reweight, &matrix)
        .map_err(|e| e.to_string())?;
    let rows = scored
        .into_iter()
        .zip(&wanted)
        .map(|(r, (_, _, prompt, i))| Row {
            id: r.id,
            group: r.group,
            text: prompts.iter().position(|p| p == prompt).unwrap_or(0),
            prompt: r.prompt,
            image: *i,
            rank: r.rank,
            score: r.score,
            relevant: r.relevant,
            irrelevant: r.irrelevant,
            probability: r.probability,
            truth: None,
        })
        .collect::<Vec<Row>>();
    // Rows pair an image with its prompt only with a manifest (typed prompts rank every image
    // against every prompt, a cross product the split has nothing to say about).
    let diversity_input =
        if inputs.manifest.is_some() { DiversityInput::of(&rows, &images, &embedded.embeddings) } else { None };
    Ok(Scored {
        scorer,
        source: Source::User,
        rows,
        image_names: inputs.images.iter().map(|im| im.name.clone()).collect(),
        prompts,
        segments: embedded.segments.clone(),
        thumbnails: inputs.images.iter().map(|im| im.thumbnail.clone()).collect(),
        reference: reference_name,
        relevant,
        irrelevant,
        resident,
        diversity_input,
        millis: now(),
    })
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

/// The bundled DPO demo run (crates/synth/dpo-demo, copied into the page's data folder): its
/// held-out pairs after the whole budget and at the early checkpoint.
pub const BUNDLED_FINAL: &str = "dpo_demo.jsonl";
pub const BUNDLED_EARLY: &str = "dpo_demo_early.jsonl";

/// One checkpoint of the bundled run as the DPO view's data, the other beside it.
pub async fn load_bundled(base: &str, early: bool, dispatch: &Callback<Action>) -> Result<(), String> {
    let (this, other) = if early { (BUNDLED_EARLY, BUNDLED_FINAL) } else { (BUNDLED_FINAL, BUNDLED_EARLY) };
    let (name, data) = load_dpo(Some(&format!("{base}data/{this}")), base, dispatch).await?;
    dispatch.emit(Action::DpoData(name, Rc::new(data)));
    let (name, data) = load_dpo(Some(&format!("{base}data/{other}")), base, dispatch).await?;
    dispatch.emit(Action::DpoCompare(name, Rc::new(data)));
    Ok(())
}

/// The DPO data at `url`, or the bundled export shipped beside the page.
pub async fn load_dpo(
    url: Option<&str>,
    base: &str,
    dispatch: &Callback<Action>,
) -> Result<(String, Preferences), String> {
    let url = url.map(str::to_string).unwrap_or_else(|| format!("{base}data/{BUNDLED_FINAL}"));
    let name = url.rsplit('/').next().unwrap_or(&url).split('?').next().unwrap_or(&url).to_string();
    let report = |done: u64, total: Option<u64>| {
        let fraction = total.filter(|t| *t > 0).map(|t| done as f64 / t as f64);
        dispatch.emit(Action::Progress(Some(progress(&format!("loading {name}"), fraction))));
    };
    let bytes = fetch_bytes(&url, &report).await?;
    Ok((name.clone(), parse_preferences(&name, bytes)?))
}

/// The report request the view's settings make.
pub fn dpo_request(dpo: &Dpo) -> ReportRequest {
    ReportRequest {
        objective: dpo.losses.join(","),
        weights: None,
        beta: Some(dpo.beta),
        params: PairwiseParams {
            label_smoothing: dpo.label_smoothing,
            f_divergence: FDivergence::ReverseKl,
            ..PairwiseParams::default()
        },
    }
}

/// The DPO report for the view's settings: prefscope-gpu's kernels on WebGPU, core's CPU
/// reference otherwise (the same function `prefscope dpo` calls).
pub async fn dpo_report(runtime: &Runtime, dpo: &Dpo) -> Result<DpoResult, String> {
    let data = dpo.data.as_ref().ok_or("no DPO data loaded")?;
    let request = dpo_request(dpo);
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

fn is_url(s: &str) -> bool {
    ["http://", "https://", "data:", "blob:"].iter().any(|p| s.starts_with(p))
}

/// Reward-ensemble rows (`prefscope strength`'s input, CDR's strong and weak log-probs
/// included) as the Pairs view shows them: strength and bands, no images. `None` when the
/// file is not such rows (it has no `chosen_rewards` nor strong/weak log-probs in row 1).
fn ensemble_pairs(name: &str, bytes: &[u8]) -> Option<Result<Pairs, String>> {
    use prefscope_core::strength::{bands, pair_strength, DEFAULT_BANDS};
    let columns = prefscope_core::read::column_names(name, bytes);
    if !columns.iter().any(|c| c == "chosen_rewards" || c == "chosen_strong_logps") {
        return None;
    }
    let rows = match prefscope_core::read::read_ensemble(name, Bytes::copy_from_slice(bytes)) {
        Ok(rows) => rows,
        Err(e) => return Some(Err(e.to_string())),
    };
    let (mean, std): (Vec<f64>, Vec<f64>) = rows.iter().map(|r| pair_strength(&r.chosen, &r.rejected)).unzip();
    let band = bands(&mean, DEFAULT_BANDS);
    let pairs = rows
        .iter()
        .map(|r| prefscope_clip::pairs::PairProbabilities {
            caption: r.id.clone(),
            p0: f32::NAN,
            p1: f32::NAN,
            label_0: 1.0,
        })
        .collect();
    let strength = mean.into_iter().zip(std).zip(band).map(|((m, s), b)| (m, s, b)).collect();
    Some(Ok(Pairs { source: name.to_string(), pairs, thumbnails: Vec::new(), strength, flipped: None, groups: None }))
}

/// Pairs with annotators (`prefscope groups`' input) as the Pairs view shows them: the groups
/// `prefscope groups` finds with its defaults (EM's kernels on WebGPU when the page has it),
/// and a GPM head (`--gpm`) when the fit is small enough to stay interactive. `None` when the
/// file has no `user_id` and `features_0`.
async fn annotated_pairs(name: &str, bytes: &[u8], gpu: Option<&prefscope_gpu::Gpu>) -> Option<Result<Pairs, String>> {
    use prefscope_core::gpm::{fit_gpm, GpmOptions};
    use prefscope_core::groups::{fit_groups, fit_prepared, prepare, AnnotatedPairs, GroupOptions};
    let columns = prefscope_core::read::column_names(name, bytes);
    if !(columns.iter().any(|c| c == "user_id") && columns.iter().any(|c| c == "features_0")) {
        return None;
    }
    Some(async {
        let rows = prefscope_core::read::read_annotated_pairs(name, Bytes::copy_from_slice(bytes))
            .map_err(|e| e.to_string())?;
        let annotated = AnnotatedPairs {
            users: &rows.users,
            dim: rows.dim,
            features_0: &rows.features_0,
            features_1: &rows.features_1,
            label_0: &rows.label_0,
        };
        // Newton steps cost pairs · width² each: past the bound the fit is left to the command.
        let (n, d) = (rows.users.len() as u64, rows.dim as u64);
        if n.saturating_mul(d).saturating_mul(d) > GROUPS_WORK {
            return Err(format!(
                "{name}: {n} pairs of {d} features are more than the page fits interactively; run `prefscope groups --input {name}`"
            ));
        }
        let options = GroupOptions::default();
        // EM's kernels on WebGPU when the page has it; on the CPU when the GPU cannot take the
        // pairs or fails (the panel says which).
        let on_gpu = match gpu {
            Some(gpu) => {
                let prepared = prepare(&annotated).map_err(|e| format!("{name}: {e}"))?;
                Some(match gpu.annotated_pairs(&prepared) {
                    Ok(device) => fit_prepared(&prepared, &options, &device).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                })
            }
            None => None,
        };
        let (fit, device) = match on_gpu {
            Some(Ok(fit)) => (fit, "webgpu".to_string()),
            failed => {
                let fit = fit_groups(&annotated, &options).map_err(|e| format!("{name}: {e}"))?;
                (fit, failed.map_or("cpu".to_string(), |e| format!("cpu ({})", e.err().unwrap_or_default())))
            }
        };
        let options = GpmOptions::default();
        let small = n.saturating_mul(d).saturating_mul(options.steps as u64) <= GPM_WORK;
        let gpm = if small { Some(fit_gpm(&annotated, &options).map_err(|e| format!("{name}: {e}"))?) } else { None };
        Ok(Pairs {
            source: name.to_string(),
            pairs: Vec::new(),
            thumbnails: Vec::new(),
            strength: Vec::new(),
            flipped: None,
            groups: Some(crate::store::AnnotatorGroups { fit, gpm, device }),
        })
    }
    .await)
}

/// Pairs × features × steps past which the page leaves the GPM fit to `prefscope groups --gpm`.
const GPM_WORK: u64 = 20_000_000;
/// Pairs × features² past which the page leaves the groups to `prefscope groups`.
const GROUPS_WORK: u64 = 200_000_000;

/// Labelled pairs from a file's bytes: images inline, by URL (relative ones against `base`,
/// the file's own URL when it was fetched), or by the name of an image already loaded in the
/// Score view; then the model's probabilities for each pair. Reward-ensemble rows give their
/// strength instead.
pub async fn load_pairs(
    model: &Model,
    name: &str,
    bytes: Vec<u8>,
    base: Option<&str>,
    loaded: &[Rc<UserImage>],
    dispatch: &Callback<Action>,
) -> Result<Pairs, String> {
    if let Some(pairs) = ensemble_pairs(name, &bytes) {
        return pairs;
    }
    if let Some(pairs) = annotated_pairs(name, &bytes, model.encoder.gpu()).await {
        return pairs;
    }
    let rows = prefscope_core::read::read_pairs(name, Bytes::from(bytes)).map_err(|e| e.to_string())?;
    let mut images = Vec::with_capacity(2 * rows.len());
    let mut thumbnails = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        dispatch.emit(Action::Progress(Some(progress(
            &format!("decoding the images of {} pairs", rows.len()),
            Some(i as f64 / rows.len() as f64),
        ))));
        let mut pair = Vec::with_capacity(2);
        for (column, image) in [("jpg_0", &row.jpg_0), ("jpg_1", &row.jpg_1)] {
            let label = format!("{name} row {} {column}", i + 1);
            let decoded = match image {
                ImageRef::Bytes(b) => decode_image(&label, b)?,
                ImageRef::Path(p) => {
                    let file = p.rsplit('/').next().unwrap_or(p);
                    if let Some(im) = loaded.iter().find(|im| im.name == *p || im.name == file) {
                        UserImage { name: label, rgba: im.rgba.clone(), thumbnail: im.thumbnail.clone() }
                    } else {
                        let url = match (is_url(p), base) {
                            (true, _) => p.clone(),
                            (false, Some(base)) => web_sys::Url::new_with_base(p, base)
                                .map(|u| u.href())
                                .map_err(|_| format!("{label}: `{p}` is not a URL"))?,
                            (false, None) => {
                                return Err(format!(
                                    "{label}: `{p}` is a path; load that image in the Score view first, or give URLs or inline bytes"
                                ))
                            }
                        };
                        let b = fetch_bytes(&url, &|_, _| {}).await.map_err(|e| format!("{label}: {e}"))?;
                        decode_image(&label, &b)?
                    }
                }
            };
            pair.push(decoded);
        }
        let (b, a) = (pair.pop(), pair.pop());
        if let (Some(a), Some(b)) = (a, b) {
            thumbnails.push((a.thumbnail.clone(), b.thumbnail.clone()));
            images.push(a.rgba);
            images.push(b.rgba);
        }
    }
    dispatch.emit(Action::Progress(Some(progress(&format!("scoring {} pairs", rows.len()), None))));
    yield_now().await;
    let captions: Vec<String> = rows.iter().map(|r| r.caption.clone()).collect();
    let labels: Vec<f32> = rows.iter().map(|r| r.label_0 as f32).collect();
    let pairs =
        pair_probabilities(&model.encoder, &captions, &images, &labels).await.map_err(|e| format!("{name}: {e}"))?;
    // Three more passes of the towers: for files of at most MAX_STRENGTH_PAIRS pairs
    // (`prefscope pairs --strength` has no limit).
    let strength = if rows.len() <= MAX_STRENGTH_PAIRS {
        pair_strength(model, &captions, &images, &labels).await.map_err(|e| format!("{name}: {e}"))?
    } else {
        Vec::new()
    };
    Ok(Pairs { source: name.to_string(), pairs, thumbnails, strength, flipped: None, groups: None })
}

/// Preference strength of each pair under the Pairs view's ensemble (the model under
/// `prefscope_clip::pairs::STRENGTH_SCORERS`), banded at the default percentiles.
async fn pair_strength(
    model: &Model,
    captions: &[String],
    images: &[Rgba],
    labels: &[f32],
) -> Result<Vec<(f64, f64, prefscope_core::strength::Band)>, prefscope_clip::ClipError> {
    use prefscope_core::strength::{bands, pair_strength, DEFAULT_BANDS};
    let scorers = prefscope_clip::pairs::STRENGTH_SCORERS;
    let d = prefscope_clip::pairs::ensemble_differences(&model.encoder, captions, images, labels, &scorers).await?;
    let (mean, std): (Vec<f64>, Vec<f64>) = d.iter().map(|(c, r)| pair_strength(c, r)).unzip();
    let band = bands(&mean, DEFAULT_BANDS);
    Ok(mean.into_iter().zip(std).zip(band).map(|((m, s), b)| (m, s, b)).collect())
}

/// The Pairs view's bundled set: shapes-world pairs with 15% of their labels flipped
/// (`prefscope_synth::flipped_pairs`), scored and banded by the demo model's ensemble.
pub async fn bundled_pairs(model: &Model, dispatch: &Callback<Action>) -> Result<Pairs, String> {
    let set = prefscope_synth::flipped_pairs::bundled();
    dispatch.emit(Action::Progress(Some(progress(&format!("scoring {} bundled pairs", set.len()), None))));
    yield_now().await;
    let mut images = Vec::with_capacity(2 * set.len());
    let mut thumbnails = Vec::with_capacity(set.len());
    for p in &set {
        let [a, b] = [0, 1].map(|k| prefscope_synth::demo::rgba(&format!("{} image {k}", p.id), &p.images[k]));
        let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
        thumbnails.push((data_url(a.width, a.height, &a.data), data_url(b.width, b.height, &b.data)));
        images.push(a);
        images.push(b);
    }
    let captions: Vec<String> = set.iter().map(|p| p.caption.clone()).collect();
    let labels: Vec<f32> = set.iter().map(|p| p.label_0).collect();
    let pairs = pair_probabilities(&model.encoder, &captions, &images, &labels).await.map_err(|e| e.to_string())?;
    let strength = pair_strength(model, &captions, &images, &labels).await.map_err(|e| e.to_string())?;
    let flipped = Some(set.iter().map(|p| p.flipped).collect());
    Ok(Pairs { source: BUNDLED_PAIRS.to_string(), pairs, thumbnails, strength, flipped, groups: None })
}

/// The most pairs of a file the view computes preference strength for.
pub const MAX_STRENGTH_PAIRS: usize = 2000;

/// The bundled pair set's name in the view.
pub const BUNDLED_PAIRS: &str = "bundled shapes-world pairs (15% of labels flipped)";

/// A scoring manifest at `url` (absolute: the element resolves its `data` against the page)
/// and its images (relative paths resolved against the manifest's URL, as `prefscope score`
/// resolves them against its folder).
pub async fn load_manifest_url(
    url: &str,
    dispatch: &Callback<Action>,
) -> Result<(String, Vec<prefscope_core::record::ManifestRow>, Vec<Rc<UserImage>>), String> {
    let name = url.rsplit('/').next().unwrap_or(url).split('?').next().unwrap_or(url).to_string();
    let bytes = fetch_bytes(url, &|_, _| {}).await?;
    let rows = prefscope_core::read::read_manifest(&name, &bytes).map_err(|e| e.to_string())?;
    let mut images: Vec<Rc<UserImage>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if images.iter().any(|im| im.name == row.image) {
            continue;
        }
        dispatch.emit(Action::Progress(Some(progress(
            &format!("loading the images of {name}"),
            Some(i as f64 / rows.len() as f64),
        ))));
        let absolute = web_sys::Url::new_with_base(&row.image, url)
            .map(|u| u.href())
            .map_err(|_| format!("{name} row {}: `{}` is not a path or URL", i + 1, row.image))?;
        let b = fetch_bytes(&absolute, &|_, _| {}).await.map_err(|e| format!("{name} row {}: {e}", i + 1))?;
        images.push(Rc::new(decode_image(&row.image, &b)?));
    }
    Ok((name, rows, images))
}
