//! The user's files and URLs: picked or dropped files (manifests parsed, images decoded),
//! images fetched by URL, a scoring manifest and its images from a URL.

use std::rc::Rc;

use prefscope_clip::Rgba;
use prefscope_core::io::read::read_manifest;
use yew::Callback;

use super::progress;
use crate::fetch::fetch_bytes;
use crate::store::{Action, UserImage};

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

/// A scoring manifest at `url` (absolute: the element resolves its `data` against the page)
/// and its images (relative paths resolved against the manifest's URL, as `prefscope score`
/// resolves them against its folder).
pub async fn load_manifest_url(
    url: &str,
    dispatch: &Callback<Action>,
) -> Result<(String, Vec<prefscope_core::io::record::ManifestRow>, Vec<Rc<UserImage>>), String> {
    let name = url.rsplit('/').next().unwrap_or(url).split('?').next().unwrap_or(url).to_string();
    let bytes = fetch_bytes(url, &|_, _| {}).await?;
    let rows = prefscope_core::io::read::read_manifest(&name, &bytes).map_err(|e| e.to_string())?;
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

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
// A drop's files, folders walked. The entries are taken before the first await: a drop's
// DataTransfer can only be read while its event is being handled.
export function droppedFiles(transfer) {
  const entries = [...(transfer.items || [])].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  const plain = [...(transfer.files || [])];
  return (async () => {
    if (!entries.length) return plain;
    const out = [];
    const walk = async (entry) => {
      if (entry.isFile) {
        out.push(await new Promise((ok, no) => entry.file(ok, no)));
        return;
      }
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    };
    for (const e of entries) await walk(e);
    return out;
  })();
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = droppedFiles)]
    fn dropped_files_promise(transfer: &web_sys::DataTransfer) -> js_sys::Promise;
}

/// The files of a drop, each dropped folder's files included (its subfolders too). Call it
/// from the drop's handler: the transfer is read before it returns.
pub fn dropped_files(
    transfer: &web_sys::DataTransfer,
) -> impl std::future::Future<Output = Result<Vec<web_sys::File>, String>> {
    let promise = dropped_files_promise(transfer);
    async move {
        let files = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|e| {
            format!("cannot read the dropped files: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")))
        })?;
        Ok(js_sys::Array::from(&files).iter().map(wasm_bindgen::JsCast::unchecked_into).collect())
    }
}
