//! Model weights on disk in the origin's private file system (OPFS): a fetched weights file is
//! streamed there chunk by chunk and read back as a disk-backed `File`, so a checkpoint of
//! gigabytes never sits in wasm memory or in the browser's in-memory Blob store (capped at a
//! few hundred MB in headless Chromium), and a second visit reads it locally. A file counts
//! as stored once its `.done` marker exists, so an interrupted download is fetched again.

use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{File, Response};

#[wasm_bindgen(inline_js = r#"
const root = async () => {
  try { return await navigator.storage.getDirectory(); } catch (e) { return null; }
};
export async function opfsGet(key) {
  const dir = await root();
  if (!dir) return null;
  try {
    await dir.getFileHandle(key + ".done");
    return await (await dir.getFileHandle(key)).getFile();
  } catch (e) {
    return null;
  }
}
export async function opfsPut(key, response, progress) {
  const dir = await root();
  if (!dir) return null;
  let out;
  try {
    out = await (await dir.getFileHandle(key, { create: true })).createWritable();
  } catch (e) {
    return null;
  }
  // The network's chunks (tens of kB) are gathered into writes of 16 MB: each write to the
  // file is a round trip, and a few thousand of them cost seconds per GB.
  const reader = response.body.getReader();
  const BATCH = 16 << 20;
  let done = 0, held = [], heldBytes = 0;
  const flush = async () => {
    if (!heldBytes) return;
    const batch = new Uint8Array(heldBytes);
    let at = 0;
    for (const part of held) { batch.set(part, at); at += part.byteLength; }
    held = []; heldBytes = 0;
    await out.write(batch);
  };
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    held.push(chunk.value);
    heldBytes += chunk.value.byteLength;
    done += chunk.value.byteLength;
    if (heldBytes >= BATCH) await flush();
    progress(done);
  }
  await flush();
  await out.close();
  await dir.getFileHandle(key + ".done", { create: true });
  return await (await dir.getFileHandle(key)).getFile();
}
export async function opfsUsage() {
  const dir = await root();
  let files = 0, bytes = 0;
  if (!dir) return [0, 0, false];
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind !== "file" || name.endsWith(".done")) continue;
    files += 1;
    bytes += (await handle.getFile()).size;
  }
  return [files, bytes, true];
}
export async function opfsClear() {
  const dir = await root();
  if (!dir) return;
  const names = [];
  for await (const [name] of dir.entries()) names.push(name);
  for (const name of names) await dir.removeEntry(name, { recursive: true });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = opfsGet)]
    async fn opfs_get(key: &str) -> JsValue;
    #[wasm_bindgen(js_name = opfsPut, catch)]
    async fn opfs_put(key: &str, response: &Response, progress: &Function) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = opfsUsage)]
    async fn opfs_usage() -> JsValue;
    #[wasm_bindgen(js_name = opfsClear)]
    async fn opfs_clear();
}

/// A file name for `url` (OPFS names cannot hold `/`).
fn key(url: &str) -> String {
    url.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// The stored copy of `url`, if a complete one exists.
pub async fn get(url: &str) -> Option<File> {
    opfs_get(&key(url)).await.dyn_into::<File>().ok()
}

/// Streams `response` into the store and returns the stored file; `Ok(None)` when the page has
/// no private file system (the body is then untouched).
pub async fn put(url: &str, response: &Response, progress: Rc<dyn Fn(u64)>) -> Result<Option<File>, String> {
    let report = Closure::<dyn Fn(f64)>::new(move |done: f64| progress(done as u64));
    let stored = opfs_put(&key(url), response, report.as_ref().unchecked_ref())
        .await
        .map_err(|e| format!("{url}: storing in the origin's file system: {e:?}"))?;
    Ok(stored.dyn_into::<File>().ok())
}

/// Files and bytes stored, and whether the page has a private file system at all (WebKitGTK's
/// automation sessions, for one, have none: the weights are then fetched on every visit).
pub async fn usage() -> (usize, u64, bool) {
    let triple: js_sys::Array = opfs_usage().await.unchecked_into();
    let number = |k: u32| triple.get(k).as_f64().unwrap_or(0.0);
    (number(0) as usize, number(1) as u64, triple.get(2).as_bool().unwrap_or(false))
}

/// Removes every stored file.
pub async fn clear() {
    opfs_clear().await;
}
