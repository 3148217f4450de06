//! Model weights on disk in the origin's private file system (OPFS): a fetched weights file is
//! written there chunk by chunk while the loader reads the tensors it needs from the chunks as
//! they arrive ([`stream`]), so the towers are built during the download; a second visit reads
//! the stored copy as a disk-backed `File`. A checkpoint of gigabytes never sits whole in wasm
//! memory or in the browser's in-memory Blob store (capped at a few hundred MB in headless
//! Chromium). A file counts as stored once its `.done` marker exists, so an interrupted
//! download is fetched again.

use std::borrow::Cow;
use std::rc::Rc;

use js_sys::{Function, Uint8Array};
use prefscope_clip::weights::Source;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, File, Response};

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
// The weights as they arrive: `range(start, end)` resolves once the network has delivered byte
// `end`, while the same chunks are written to the private file system in batches of 16 MB (each
// write is a round trip; a few thousand of them cost seconds per GB), so the towers are built
// during the download instead of after it. `size` is the announced length (0: unknown, then the
// file is only read whole, through `blob()`). Where the copy is being written, a chunk every byte
// of which has been read is let go: the loader reads each tensor once, so memory holds what has
// arrived and not yet been read (a range read again, as the f16 range scan and the loader both
// do, counts once; a range whose bytes were let go is read from the stored file). Storing is
// best-effort: a failed write, close or marker stops it, never the load; a body that ends short
// of `size`, or a network error, fails the reads waiting on it and stores nothing. `detach()`
// (the loader is done) lets every chunk go; the download goes on only to store the file.
export function opfsStream(key, response, store, size, progress) {
  const BATCH = 16 << 20;
  const chunks = [];
  const seen = new Set();
  let received = 0, ended = false, failed = null, waiting = [], out = null, dir = null, kept = false;
  let detached = false, dropped = false;
  const wake = () => {
    const now = waiting;
    waiting = [];
    for (const w of now) {
      if (received >= w.end) w.resolve();
      else if (failed) w.reject(failed);
      else if (ended) w.resolve();
      else waiting.push(w);
    }
  };
  const stopStoring = () => {
    out?.abort?.().catch(() => {});
    out = null;
  };
  const pump = async () => {
    dir = store ? await root() : null;
    try {
      out = dir && await (await dir.getFileHandle(key, { create: true })).createWritable();
    } catch (e) {
      out = null;
    }
    const reader = response.body.getReader();
    let held = [], heldBytes = 0, writing = Promise.resolve();
    // One batch written while the next is gathered: the network waits for the file system
    // only when that falls a whole batch behind.
    const flush = async () => {
      if (!heldBytes || !out) return;
      const batch = new Uint8Array(heldBytes);
      let at = 0;
      for (const part of held) { batch.set(part, at); at += part.byteLength; }
      held = []; heldBytes = 0;
      await writing;
      writing = out ? out.write(batch).catch(stopStoring) : writing;
    };
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      // Kept for `range` (a sized download) or for `blob()` where nothing is stored.
      if (!detached && (size > 0 || !out)) chunks.push({ start: received, bytes: chunk.value, read: 0 });
      else dropped = true;
      received += chunk.value.byteLength;
      progress(received);
      wake();
      if (out) {
        held.push(chunk.value);
        heldBytes += chunk.value.byteLength;
        if (heldBytes >= BATCH) await flush();
      }
    }
    if (size > 0 && received !== size) {
      throw new Error(`the download ended after ${received} bytes; the server announced ${size} (Content-Length)`);
    }
    ended = true;
    wake();
    await flush();
    await writing;
    if (out) {
      try {
        await out.close();
        await dir.getFileHandle(key + ".done", { create: true });
        kept = true;
      } catch (e) {
        stopStoring();
      }
    }
  };
  const finished = pump().catch((e) => {
    failed = e instanceof Error ? e : new Error(String(e));
    wake();
    stopStoring();
  });
  const fromStore = async (start, end) => {
    await finished;
    if (!kept) throw failed ?? new Error(`bytes ${start}..${end} were let go after a first read, and the copy could not be stored`);
    const file = await (await dir.getFileHandle(key)).getFile();
    return new Uint8Array(await file.slice(start, end).arrayBuffer());
  };
  return {
    finished,
    detach() {
      detached = true;
      chunks.length = 0;
    },
    // The whole file once downloaded: the stored copy (disk-backed), else the chunks in memory.
    async blob() {
      await finished;
      if (failed) throw failed;
      if (kept) return await (await dir.getFileHandle(key)).getFile();
      if (dropped) throw new Error("storing the download in the origin's file system failed part-way");
      return new Blob(chunks.map((c) => c.bytes));
    },
    async range(start, end) {
      while (received < end && !ended && !failed) await new Promise((resolve, reject) => waiting.push({ end, resolve, reject }));
      if (received < end) throw failed ?? new Error(`the download ended after ${received} bytes, before byte ${end}`);
      // The first chunk holding `start` (chunks are in order).
      let lo = 0, hi = chunks.length - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (chunks[mid].start <= start) lo = mid; else hi = mid - 1; }
      const bytes = new Uint8Array(end - start);
      const used = [];
      for (let i = lo; i < chunks.length && chunks[i].start < end; i++) {
        const c = chunks[i];
        if (!c.bytes) return fromStore(start, end);
        const from = Math.max(start, c.start), to = Math.min(end, c.start + c.bytes.byteLength);
        bytes.set(c.bytes.subarray(from - c.start, to - c.start), from - start);
        used.push([c, to - from]);
      }
      // Ranges never overlap but for one read again whole: count each once.
      const first = !seen.has(`${start}:${end}`);
      seen.add(`${start}:${end}`);
      for (const [c, n] of used) {
        if (first) c.read += n;
        if (out && c.read >= c.bytes.byteLength) c.bytes = null;
      }
      return bytes;
    },
  };
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
    /// [`Streamed`]'s JavaScript side.
    pub type Stream;
    #[wasm_bindgen(js_name = opfsStream)]
    fn opfs_stream(key: &str, response: &Response, store: bool, size: f64, progress: &Function) -> Stream;
    #[wasm_bindgen(method)]
    fn detach(this: &Stream);
    #[wasm_bindgen(method, catch)]
    async fn blob(this: &Stream) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn range(this: &Stream, start: f64, end: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn finished(this: &Stream) -> js_sys::Promise;
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

/// A weights file read by the loader while it downloads and is stored (see `opfsStream`
/// above): each range waits for its bytes, not for the whole file.
pub struct Streamed {
    url: String,
    size: u64,
    stream: Stream,
}

/// Starts reading `response` (the body of `url`, `size` bytes as announced, 0 when unknown),
/// storing it as it arrives when `store` and the page has a private file system. A sized
/// download is read by ranges as a [`Source`]; any download whole once it ends
/// ([`Streamed::blob`]).
pub fn stream(url: &str, response: &Response, store: bool, size: u64, progress: Rc<dyn Fn(u64)>) -> Streamed {
    // Owned by the JavaScript side from here: the download outlives the load that started it
    // (its last chunks are stored after the towers are built).
    let report = Closure::<dyn Fn(f64)>::new(move |done: f64| progress(done as u64)).into_js_value();
    let stream = opfs_stream(&key(url), response, store, size as f64, report.unchecked_ref());
    Streamed { url: url.to_string(), size, stream }
}

/// The loader is done with the download: its chunks are let go (storing goes on).
impl Drop for Streamed {
    fn drop(&mut self) {
        self.stream.detach();
    }
}

impl Streamed {
    /// The whole file once downloaded, as a `Blob`: the stored copy, disk-backed, where there
    /// is one.
    pub async fn blob(&self) -> Result<Blob, String> {
        let blob = self.stream.blob().await.map_err(|e| crate::scope::js_error(&self.url, e))?;
        blob.dyn_into::<Blob>().map_err(|e| crate::scope::js_error(&self.url, e))
    }

    /// Resolves once the download has ended and its copy is stored (or storing failed: the
    /// next visit downloads again). Awaited after the towers are built, so that a loaded model
    /// is a cached one.
    pub fn stored(&self) -> impl std::future::Future<Output = ()> {
        let finished = wasm_bindgen_futures::JsFuture::from(self.stream.finished());
        async move {
            let _ = finished.await;
        }
    }
}

impl Source for Streamed {
    fn size(&self) -> u64 {
        self.size
    }

    async fn range(&self, start: u64, end: u64) -> Result<Cow<'_, [u8]>, String> {
        let bytes =
            self.stream.range(start as f64, end as f64).await.map_err(|e| crate::scope::js_error(&self.url, e))?;
        Ok(Cow::Owned(bytes.unchecked_into::<Uint8Array>().to_vec()))
    }
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
