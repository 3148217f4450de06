// prefscope's JavaScript API: score images against prompts and read DPO runs from your own
// script, on WebGPU or the CPU, on the main thread or in a Web Worker.
//
//   import * as prefscope from "./prefscope.js";
//   const scorer = await prefscope.load({ model: "models/clip-vit-base-patch32/", device: "auto" });
//   const [text] = await scorer.embedTexts(["a red circle"]);
//   const rows = await scorer.score({ images: [file], prompts: ["a red circle"], preset: "clip" });
//   const { metrics, pairs } = await prefscope.dpo(jsonlFile, { loss: "sigmoid", beta: 0.1 });
//
// The numbers, names and error messages are those of the `prefscope` command (embed, score,
// dpo): the same Rust code computes them. Types: prefscope.d.ts. Everything else the module
// needs (the wasm, the demo model) is found relative to this file.
import init, { loadScorer, dpoReport, manifestImages, imageSizeError } from "./pkg/prefscope_viewer.js";
import { wasmUrl } from "./wasm-build.js";

const base = new URL(".", import.meta.url).href;
let started = null;
let startedWith = null;

/// Instantiates the wasm once per page or Worker: the relaxed-SIMD build where the engine has
/// it, the baseline when `simd` is "baseline" (or the engine lacks it). A later call asking for
/// the other build fails (one module serves the realm); `undefined` takes whichever runs.
function start(simd) {
  if (started && simd === undefined) return started;
  const url = wasmUrl(base, simd ?? "auto").href;
  if (started && startedWith !== url) {
    return Promise.reject(new Error(`the wasm build is already chosen (${startedWith.split("/").pop()}): load({ simd }) must be the same in every call`));
  }
  startedWith = url;
  started ??= init({ module_or_path: url });
  return started;
}

// What relative URLs resolve against: the page (as a link would), or the worker's script.
function here() {
  return globalThis.document?.baseURI ?? globalThis.location?.href ?? base;
}

function resolve(url, against = here()) {
  try {
    return new URL(String(url), against).href;
  } catch {
    throw new Error(`\`${url}\` is not a URL`);
  }
}

async function fetchBytes(url, name) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`${name}: ${e.message ?? e}`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`.trimEnd());
  return new Uint8Array(await response.arrayBuffer());
}

function pixelsOf(bitmap, name, maxPixels) {
  // Refused before the browser draws it into a pixel buffer of its own.
  const tooLarge = imageSizeError(name, bitmap.width, bitmap.height, maxPixels);
  if (tooLarge) throw new Error(tooLarge);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, bitmap.width, bitmap.height);
}

/// One image as the wasm side takes it: encoded bytes, or RGBA pixels, with a name.
async function imageArg(input, i, against, maxPixels, named) {
  const fallback = named ?? `#${i + 1}`; // errors read "image #2: …"
  if (typeof input === "string" || input instanceof URL) {
    const url = resolve(input, against);
    return { name: String(input), bytes: await fetchBytes(url, String(input)) };
  }
  if (typeof Blob !== "undefined" && input instanceof Blob) {
    return { name: input.name || fallback, bytes: new Uint8Array(await input.arrayBuffer()) };
  }
  if (typeof ImageData !== "undefined" && input instanceof ImageData) {
    return { name: fallback, rgba: new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.byteLength),
      width: input.width, height: input.height };
  }
  if (typeof ImageBitmap !== "undefined" && input instanceof ImageBitmap) {
    const data = pixelsOf(input, fallback, maxPixels);
    return { name: fallback, rgba: new Uint8Array(data.data.buffer), width: data.width, height: data.height };
  }
  // { name, image }: any of the above under a name of the caller's choosing.
  if (input && typeof input === "object" && "image" in input) {
    const arg = await imageArg(input.image, i, against, maxPixels, input.name === undefined ? undefined : String(input.name));
    return { ...arg, name: String(input.name ?? arg.name) };
  }
  throw new Error(`image ${fallback}: expected a Blob, File, ImageBitmap, ImageData or URL`);
}

const imageArgs = (images, against, maxPixels) =>
  Promise.all([...(images ?? [])].map((im, i) => imageArg(im, i, against, maxPixels)));

/// A manifest as `{ name, text, url }`: a URL (relative to the page), a Blob or File, or
/// `{ name, text }`.
async function manifestArg(manifest) {
  if (typeof manifest === "string" || manifest instanceof URL) {
    const url = resolve(manifest);
    const name = new URL(url).pathname.split("/").pop() || url;
    return { name, text: new TextDecoder().decode(await fetchBytes(url, name)), url };
  }
  if (typeof Blob !== "undefined" && manifest instanceof Blob) {
    return { name: manifest.name || "manifest", text: await manifest.text() };
  }
  if (manifest && typeof manifest.text === "string") return { name: String(manifest.name ?? "manifest"), text: manifest.text };
  throw new Error("manifest: expected a URL, a Blob or File, or { name, text }");
}

const rethrow = (e) => {
  throw e instanceof Error ? e : new Error(String(e));
};

/// Other threads for the CPU path: module Workers (prefscope-worker.js), each with its own
/// copy of the model, sharing each batch of embeddings with the calling thread.
class Pool {
  #workers;
  #next = 0;
  #pending = new Map();

  constructor(count) {
    this.#workers = Array.from({ length: count }, () => {
      const worker = new Worker(new URL("prefscope-worker.js", base), { type: "module" });
      worker.onmessage = ({ data }) => {
        const { resolve, reject } = this.#pending.get(data.id);
        this.#pending.delete(data.id);
        if (data.error !== undefined) reject(new Error(data.error));
        else resolve(data.result);
      };
      worker.onerror = (e) => {
        for (const { reject } of this.#pending.values()) reject(new Error(`prefscope worker: ${e.message}`));
        this.#pending.clear();
      };
      return worker;
    });
  }

  get size() {
    return this.#workers.length;
  }

  call(worker, op, args) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#workers[worker].postMessage({ id, op, args });
    });
  }

  all(op, args) {
    return Promise.all(this.#workers.map((_, w) => this.call(w, op, args)));
  }

  terminate() {
    for (const worker of this.#workers) worker.terminate();
  }
}

/// `items` cut into `parts` runs of nearly equal length, in order.
function split(items, parts) {
  const out = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const end = start + Math.floor(items.length / parts) + (p < items.length % parts ? 1 : 0);
    out.push(items.slice(start, end));
    start = end;
  }
  return out;
}

/// Embeds images already turned into bytes or pixels (a Pool's Workers get them so): a key
/// only this module holds.
const PREPARED = Symbol("embed prepared images");

/// A model loaded onto a device; from `load`.
class Scorer {
  #inner;
  #pool;

  constructor(inner, pool) {
    this.#inner = inner;
    this.#pool = pool;
  }

  /// Threads computing embeddings (1 plus the Workers `load({ workers })` started).
  get threads() {
    return 1 + (this.#pool?.size ?? 0);
  }

  /// Stops the Workers, if any.
  dispose() {
    this.#pool?.terminate();
    this.#pool = undefined;
  }

  /// `op` on `items`, shared between this thread and the Workers, results in input order.
  async #shared(op, items, here) {
    if (!this.#pool || items.length < 2) return here(items);
    const parts = split(items, this.threads);
    const results = await Promise.all(parts.map((part, k) =>
      k === 0 ? here(part) : part.length ? this.#pool.call(k - 1, op, part) : Promise.resolve([])));
    return results.flat();
  }

  /// `{ kind: "webgpu" | "cpu", adapter, reason, dtype: "f32" | "f16" | "q8" }`: where the
  /// towers run, why, and what they keep their weights in.
  get device() {
    return this.#inner.device;
  }

  get embeddingDim() {
    return this.#inner.embeddingDim;
  }

  /// Bytes the weights hold in the calling thread's wasm memory (0 on WebGPU); each Worker holds
  /// as much again.
  get weightBytes() {
    return this.#inner.weightBytes;
  }

  /// The calling thread's wasm memory in bytes (it grows, never shrinks: its peak so far).
  get memoryBytes() {
    return this.#inner.memoryBytes;
  }

  /// The largest image decoded, in pixels (`load({ maxImagePixels })`, Pillow's limit by default).
  get maxImagePixels() {
    return this.#inner.maxImagePixels;
  }

  /// L2-normalised text embeddings, a Float32Array per text.
  async embedTexts(texts) {
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== "string")) throw new Error("embedTexts: expected an array of strings");
    return this.#shared("embedTexts", texts, (part) => this.#inner.embedTexts(part).catch(rethrow));
  }

  /// L2-normalised image embeddings, a Float32Array per image.
  async embedImages(images) {
    const args = await imageArgs(images, undefined, this.maxImagePixels);
    return this.#shared("embedPrepared", args, (part) => this[PREPARED](part));
  }

  [PREPARED](args) {
    return this.#inner.embedImages(args).catch(rethrow);
  }

  /// The rows of `prefscope score`: every image against every prompt (`prompts`), or a
  /// manifest's rows (`manifest`, whose image paths resolve against its URL, else match the
  /// names of `images`).
  async score({ images, prompts, manifest, preset, reweight, reference } = {}) {
    const request = { prompts, preset, reweight, reference };
    let given = await imageArgs(images, undefined, this.maxImagePixels);
    if (manifest !== undefined) {
      const m = await manifestArg(manifest);
      request.manifest = { name: m.name, text: m.text };
      const names = new Set(given.map((g) => g.name));
      const wanted = manifestImages(m.name, m.text).filter((image) => !names.has(image) && !names.has(image.split("/").pop()));
      if (wanted.length && m.url === undefined) {
        throw new Error(`${m.name}: image \`${wanted[0]}\` was not given (pass it in images, or give the manifest as a URL)`);
      }
      given = given.concat(await Promise.all(wanted.map(async (image) => {
        const url = resolve(image, m.url);
        return { name: image, bytes: await fetchBytes(url, image) };
      })));
    }
    return JSON.parse(await this.#inner.score(JSON.stringify(request), given).catch(rethrow));
  }
}

/// Loads a model: `model` is a URL prefix laid out like a Hugging Face repository (relative
/// to the page), an array of Files (config.json, tokenizer.json, model.safetensors, …), or
/// absent for prefscope's demo model. `device`: "auto" | "webgpu" | "cpu". `dtype`: "auto" |
/// "f32" | "f16" | "q8" (also "fp32", "fp16"): what the towers keep their weights in; "f32"
/// matches the reference implementations exactly, "q8" runs int8 products on the CPU path (a
/// quarter of the memory) and f16 weights on WebGPU, "auto" runs a model written by `prefscope
/// quantize` in its stored dtype and anything else as before (f16 on WebGPU for half
/// checkpoints, f32 otherwise).
/// `onProgress({ label, fraction })` follows the download and the load. `workers` (CPU path
/// only, default 0): that many module Workers, each loading its own copy of the model, share
/// the embedding of every batch with this thread; no more than let the copies' weights stay
/// within 2.5 GB together (`scorer.threads` says how many run). `maxImagePixels` (default 89478485, Pillow's
/// decompression-bomb limit): an image that declares more pixels is refused before decoding.
/// `simd`: "auto" (default) loads the wasm build with relaxed SIMD where the engine has it,
/// "baseline" the build with wasm SIMD alone; `scorer.device.kernels` says which runs.
export async function load({ model, device = "auto", dtype = "auto", simd = "auto", onProgress, workers = 0, maxImagePixels } = {}) {
  await start(simd);
  const files = Array.isArray(model) || (typeof FileList !== "undefined" && model instanceof FileList) ? [...model] : undefined;
  const url = files ? undefined : model === undefined || model === null ? undefined : resolve(String(model));
  const inner = await loadScorer(url, files, base, device, onProgress, maxImagePixels, String(dtype)).catch(rethrow);
  let pool;
  // Each Worker holds its own copy of the weights: as many as fit WORKER_WEIGHTS in all (a
  // ViT-H/14 in q8, 1 GB, gets one Worker beside the calling thread; B/32 in f32, 0.6 GB, up to
  // three; in q8, 0.15 GB, as many as asked for).
  const fit = Math.max(0, Math.floor(WORKER_WEIGHTS / Math.max(1, inner.weightBytes)) - 1);
  const count = Math.min(fit, Math.max(0, Math.floor(Number(workers) || 0)));
  if (count > 0 && inner.device.kind === "cpu") {
    pool = new Pool(count);
    try {
      await pool.all("load", { model: files ?? url, device: "cpu", dtype, simd, maxImagePixels });
    } catch (e) {
      pool.terminate();
      rethrow(e);
    }
  }
  return new Scorer(inner, pool);
}

/// Bytes of weights the calling thread and its Workers may hold together: each copy lives in its
/// own wasm memory, and the browser's tab shares one machine's memory.
const WORKER_WEIGHTS = 2.5e9;

/// What prefscope-worker.js runs for a Pool: the scorer's own operations, inside a Worker.
export async function serveWorker(scope) {
  let scorer;
  scope.onmessage = async ({ data: { id, op, args } }) => {
    try {
      let result;
      if (op === "load") {
        scorer = await load(args);
      } else if (op === "embedTexts") {
        result = await scorer.embedTexts(args);
      } else if (op === "embedPrepared") {
        result = await scorer[PREPARED](args);
      }
      scope.postMessage({ id, result }, (result ?? []).map((v) => v.buffer));
    } catch (e) {
      scope.postMessage({ id, error: e.message ?? String(e) });
    }
  };
}

/// `prefscope dpo --format json` on a file (File, Blob, bytes, or a URL), or on an array of
/// them: the evaluations of one run (`{ metrics, pairs, calibration, steps, flips, missing }`).
/// Options: loss, beta, labelSmoothing, weights, fDivergence, fAlpha, sftWeight (PRO), bins,
/// by ("subset" or "category"), name (for bytes).
export async function dpo(source, options = {}) {
  await start();
  const { name: given, ...flags } = options;
  const sources = Array.isArray(source) ? source : [source];
  if (!sources.length) throw new Error("dpo: no source given");
  const names = [];
  const files = [];
  for (const [i, item] of sources.entries()) {
    let name = given ?? "input.jsonl";
    let bytes;
    if (typeof item === "string" || item instanceof URL) {
      const url = resolve(item);
      name = new URL(url).pathname.split("/").pop() || name;
      bytes = await fetchBytes(url, name);
    } else if (typeof Blob !== "undefined" && item instanceof Blob) {
      name = item.name || name;
      bytes = new Uint8Array(await item.arrayBuffer());
    } else if (item instanceof Uint8Array || item instanceof ArrayBuffer) {
      bytes = new Uint8Array(item);
      if (Array.isArray(given)) name = given[i];
    } else {
      throw new Error("dpo: expected a File, Blob, Uint8Array, ArrayBuffer or URL, or an array of them");
    }
    names.push(String(name));
    files.push(bytes);
  }
  try {
    return JSON.parse(dpoReport(names, files, JSON.stringify(flags)));
  } catch (e) {
    rethrow(e);
  }
}
