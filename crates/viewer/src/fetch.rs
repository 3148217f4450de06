//! Bytes from URLs the user or the embedding page gives: streamed with progress, and for
//! model weights kept in the browser's Cache API so a second visit reads them locally.

use std::borrow::Cow;
use std::rc::Rc;

use js_sys::{Reflect, Uint8Array};
use prefscope_clip::blob::BlobSource;
use prefscope_clip::weights::Source;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Response};

use crate::opfs;
use crate::scope::{self, js_error};

/// The cache the Model view fills, counts and clears.
pub const MODEL_CACHE: &str = "prefscope-models";
/// Vectors computed from a model (reference directions): cleared with the models, not counted
/// among their files.
pub const VECTOR_CACHE: &str = "prefscope-vectors";

/// Why a fetch failed: the server's answer, or no answer at all. Callers that treat a missing
/// file as an answer (an optional model file) match on the status, never on the message.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    Status { url: String, status: u16, text: String },
    Failed(String),
}

impl FetchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Status { status: 404, .. })
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status { url, status, text } => write!(f, "{url}: HTTP {status} {text}"),
            FetchError::Failed(message) => f.write_str(message),
        }
    }
}

impl From<FetchError> for String {
    fn from(e: FetchError) -> Self {
        e.to_string()
    }
}

impl From<String> for FetchError {
    fn from(message: String) -> Self {
        FetchError::Failed(message)
    }
}

/// The browser's Cache API, when the scope has one (secure contexts only).
async fn cache() -> Option<Cache> {
    open_cache(MODEL_CACHE).await
}

async fn open_cache(name: &str) -> Option<Cache> {
    let cache = JsFuture::from(scope::caches()?.open(name)).await.ok()?;
    cache.dyn_into::<Cache>().ok()
}

/// The response to a GET of `url`; a non-2xx status is an error naming the URL.
async fn get(url: &str) -> Result<Response, FetchError> {
    let response = JsFuture::from(scope::fetch(url)?).await.map_err(|e| js_error(url, e))?;
    let response: Response = response.dyn_into().map_err(|e| js_error(url, e))?;
    if !response.ok() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status(),
            text: response.status_text(),
        });
    }
    Ok(response)
}

/// GETs `url`, calling `progress(done, total)` as chunks arrive.
pub async fn fetch_bytes(url: &str, progress: &dyn Fn(u64, Option<u64>)) -> Result<Vec<u8>, FetchError> {
    read_response(url, get(url).await?, progress).await
}

async fn read_response(
    url: &str,
    response: Response,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Vec<u8>, FetchError> {
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    let Some(body) = response.body() else { return Ok(Vec::new()) };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| js_error(url, e))?;
        let done = Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(|e| js_error(url, e))?;
        bytes.extend_from_slice(&Uint8Array::new(&value).to_vec());
        progress(bytes.len() as u64, total);
    }
    Ok(bytes)
}

/// [`fetch_bytes`] through the model cache: a cached copy is read without the network, a
/// fetched one is stored. Returns the bytes and whether they came from the cache.
pub async fn fetch_cached(url: &str, progress: &dyn Fn(u64, Option<u64>)) -> Result<(Vec<u8>, bool), FetchError> {
    let cache = cache().await;
    if let Some(cache) = &cache {
        if let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await {
            if let Ok(response) = hit.dyn_into::<Response>() {
                return Ok((read_response(url, response, progress).await?, true));
            }
        }
    }
    let bytes = fetch_bytes(url, progress).await?;
    if let Some(cache) = &cache {
        let body = Uint8Array::from(bytes.as_slice());
        if let Ok(response) = Response::new_with_opt_buffer_source(Some(&body)) {
            // A full cache (quota) only costs the next visit a download.
            let _ = JsFuture::from(cache.put_with_str(url, &response)).await;
        }
    }
    Ok((bytes, false))
}

/// A weights file as the loader reads it: a `Blob` (a stored copy, or a download kept by the
/// browser), or a download read while it arrives and is stored ([`opfs::stream`]).
pub enum Weights {
    Blob(BlobSource),
    Streamed(opfs::Streamed),
}

impl Source for Weights {
    fn size(&self) -> u64 {
        match self {
            Weights::Blob(b) => b.size(),
            Weights::Streamed(s) => s.size(),
        }
    }

    async fn range(&self, start: u64, end: u64) -> Result<Cow<'_, [u8]>, String> {
        match self {
            Weights::Blob(b) => b.range(start, end).await,
            Weights::Streamed(s) => s.range(start, end).await,
        }
    }
}

/// GETs `url` as weights that wasm memory never holds whole. With `stored`, the stored copy in
/// the origin's private file system if a complete one exists; else the download, stored as it
/// arrives when `stored`. When the response says its length and is not re-encoded (the Hub's
/// and any static host's files), the loader reads each tensor as soon as it has arrived;
/// otherwise once the whole file is there, from the stored copy or the browser's Blob store.
pub async fn fetch_weights(
    url: &str,
    stored: bool,
    progress: Rc<dyn Fn(u64, Option<u64>)>,
) -> Result<Weights, FetchError> {
    if stored {
        if let Some(file) = opfs::get(url).await {
            return Ok(Weights::Blob(BlobSource::new(file.into())));
        }
    }
    let response = get(url).await?;
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let total = header("content-length").and_then(|v| v.parse::<u64>().ok());
    let encoded = header("content-encoding").is_some_and(|e| e != "identity");
    // A re-encoded body's length is not the file's: read it whole.
    let size = if encoded { 0 } else { total.unwrap_or(0) };
    let stream = opfs::stream(url, &response, stored, size, Rc::new(move |done| progress(done, total)));
    match size {
        0 => Ok(Weights::Blob(BlobSource::new(stream.blob().await?))),
        _ => Ok(Weights::Streamed(stream)),
    }
}

/// Where small computed vectors are kept in the model cache (a key the network never sees).
fn vector_url(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("https://prefscope.invalid/vector/{encoded}")
}

/// A vector stored by [`store_vector`] under `key`, if the cache has it.
pub async fn cached_vector(key: &str) -> Option<Vec<f32>> {
    let cache = open_cache(VECTOR_CACHE).await?;
    let hit = JsFuture::from(cache.match_with_str(&vector_url(key))).await.ok()?;
    let response = hit.dyn_into::<Response>().ok()?;
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    let bytes = Uint8Array::new(&buffer).to_vec();
    bytes
        .len()
        .is_multiple_of(4)
        .then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Keeps `values` in the model cache under `key` (quietly not, where there is no cache).
pub async fn store_vector(key: &str, values: &[f32]) {
    let Some(cache) = open_cache(VECTOR_CACHE).await else { return };
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let body = Uint8Array::from(bytes.as_slice());
    if let Ok(response) = Response::new_with_opt_buffer_source(Some(&body)) {
        let _ = JsFuture::from(cache.put_with_str(&vector_url(key), &response)).await;
    }
}

/// Bytes of wasm memory the page holds (it only grows: the peak so far).
pub fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64)
        .unwrap_or(0)
}

/// What the model cache holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheUsage {
    pub files: usize,
    pub bytes: u64,
    /// Whether weights are kept at all (the origin's private file system exists).
    pub weights_kept: bool,
}

/// Entries and total bytes in the model cache (the Cache API's JSON files and the weights in
/// the origin's private file system).
pub async fn cache_usage() -> Result<CacheUsage, String> {
    let (stored_files, stored_bytes, weights_kept) = opfs::usage().await;
    let only_stored = CacheUsage { files: stored_files, bytes: stored_bytes, weights_kept };
    let Some(cache) = cache().await else { return Ok(only_stored) };
    let keys = JsFuture::from(cache.keys()).await.map_err(|e| js_error("model cache", e))?;
    let keys: js_sys::Array = keys.unchecked_into();
    let mut total = 0u64;
    for request in keys.iter() {
        let request: web_sys::Request = request.unchecked_into();
        if let Ok(hit) = JsFuture::from(cache.match_with_request(&request)).await {
            if let Ok(response) = hit.dyn_into::<Response>() {
                if let Ok(buffer) = response.array_buffer() {
                    if let Ok(buffer) = JsFuture::from(buffer).await {
                        total += js_sys::ArrayBuffer::from(buffer).byte_length() as u64;
                    }
                }
            }
        }
    }
    Ok(CacheUsage { files: keys.length() as usize + stored_files, bytes: total + stored_bytes, weights_kept })
}

/// Empties the model cache.
pub async fn clear_cache() -> Result<(), String> {
    opfs::clear().await;
    let Some(caches) = scope::caches() else { return Ok(()) };
    for name in [MODEL_CACHE, VECTOR_CACHE] {
        JsFuture::from(caches.delete(name)).await.map_err(|e| js_error("model cache", e))?;
    }
    Ok(())
}
