//! Checkpoint files for the browser suites, built by JavaScript in the origin's private file
//! system (so none of it passes through wasm memory), and the wasm memory's size.
#![allow(dead_code)]

use prefscope_clip::ModelFiles;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(inline_js = r#"
// A file of `header` then `dataBytes` bytes of random f16 or f32 values (one random 16 MiB
// chunk repeated: weights for load and speed tests, not a model), written by JavaScript to the origin's
// private file system, so that none of it passes through wasm memory and the browser keeps it
// on disk (in-memory Blobs are capped well below a ViT-H checkpoint).
export async function randomFile(name, header, dataBytes, half) {
  const chunk = half ? new Uint16Array(1 << 23) : new Float32Array(1 << 22);
  let seed = 12345;
  for (let i = 0; i < chunk.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    // f16: |x| in [2^-7, 2^-6), finite; f32: uniform in [-0.05, 0.05).
    chunk[i] = half ? ((seed >>> 16) & 0x83ff) | 0x2000 : ((seed >>> 8) / (1 << 24) - 0.5) * 0.1;
  }
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle(name, { create: true });
  const out = await handle.createWritable();
  await out.write(header);
  const per = chunk.BYTES_PER_ELEMENT;
  for (let left = dataBytes; left > 0; left -= chunk.byteLength) {
    await out.write(left >= chunk.byteLength ? chunk : chunk.subarray(0, left / per));
  }
  await out.close();
  return await handle.getFile();
}
export async function removeFile(name) {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(name);
}
export function bytesBlob(bytes) {
  return new Blob([bytes]);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = randomFile)]
    async fn random_file(name: &str, header: &[u8], data_bytes: f64, half: bool) -> JsValue;
    #[wasm_bindgen(js_name = removeFile)]
    pub async fn remove_file(name: &str);
    #[wasm_bindgen(js_name = bytesBlob)]
    pub fn bytes_blob(bytes: &[u8]) -> web_sys::Blob;
}

pub fn wasm_memory() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

/// A random checkpoint with `config`'s shapes in transformers' layout, written to the origin's
/// private file system: the disk-backed file and its size.
pub async fn random_checkpoint(config: &str, name: &str, half: bool) -> (web_sys::Blob, usize) {
    let config = prefscope_clip::ClipConfig::from_huggingface(config.as_bytes(), None).unwrap();
    let (dtype, width) = if half { ("F16", 2) } else { ("F32", 4) };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in prefscope_clip::export::hf_shapes(&config) {
        let bytes = width * shape.iter().product::<usize>();
        header.insert(
            name,
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut head = (json.len() as u64).to_le_bytes().to_vec();
    head.extend(json);
    let size = head.len() + offset;
    (random_file(name, &head, offset as f64, half).await.unchecked_into(), size)
}

/// config.json, the fixtures' tokenizer and the streamed weights' name.
pub fn model_files(config: &str) -> ModelFiles {
    let mut files = ModelFiles::new();
    files.insert("config.json", config.as_bytes().to_vec());
    files.insert("tokenizer.json", include_bytes!("../../../../tests/fixtures/clip/tokenizer.json").to_vec());
    files.insert_streamed("model.safetensors");
    files
}
