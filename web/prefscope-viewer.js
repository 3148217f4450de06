// <prefscope-viewer>: the prefscope application as a custom element. Load this file with
// <script type="module" src=".../prefscope-viewer.js"> from the built folder; everything else
// (the wasm, the stylesheet, the demo model) is found relative to it, so the folder works
// from any sub-path of any static host.
//
// Attributes: model (URL prefix of a Hugging Face-style model), data (URL of data for the
// view), view (score | decompose | dpo | model), beta, reweight, device (auto | webgpu | cpu),
// dtype (auto | f32 | f16 | q8: what the towers keep their weights in), simd (auto | baseline:
// the wasm build; read once, by the first element), full (the whole application with navigation).
// Events: prefscope-ready (device and model loaded), prefscope-scored (a view has results).
import init, { mount } from "./pkg/prefscope_viewer.js";
import { wasmUrl } from "./wasm-build.js";

const base = new URL(".", import.meta.url).href;
let wasm = null;

// Stages of the first result are marked in the performance timeline ("prefscope:…"). The
// relaxed-SIMD build where the engine has it; `simd="baseline"` on the first element (or the
// page's ?simd=baseline) forces the other (web/wasm-build.js).
function loadWasm(simd) {
  if (!wasm) {
    performance.mark("prefscope:wasm-start");
    wasm = init({ module_or_path: wasmUrl(base, simd) }).then((w) => {
      performance.mark("prefscope:wasm-ready");
      return w;
    });
  }
  return wasm;
}

function loadStyles() {
  if (document.querySelector("link[data-prefscope]")) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("prefscope.css", base).href;
  link.dataset.prefscope = "";
  document.head.append(link);
}

const ATTRIBUTES = ["model", "data", "view", "beta", "reweight", "dtype"];
const URL_ATTRIBUTES = new Set(["model", "data"]);

// A relative `model` or `data` resolves against the page, as a link would; the manifest's
// own rows then resolve against the manifest. `data` may list several URLs (a DPO run's
// evaluations), each resolved on its own.
function attributeValue(name, value) {
  if (value === null || !URL_ATTRIBUTES.has(name) || value.trim() === "") return value;
  return value.trim().split(/\s+/).map((part) => {
    try {
      return new URL(part, document.baseURI).href;
    } catch {
      return part; // the application reports it as not a URL
    }
  }).join(" ");
}

class PrefscopeViewer extends HTMLElement {
  static observedAttributes = ATTRIBUTES;

  async connectedCallback() {
    if (this.viewer || this.mounting) return;
    this.mounting = true;
    loadStyles();
    const query = new URLSearchParams(location.search);
    try {
      await loadWasm(query.get("simd") ?? this.getAttribute("simd") ?? "auto");
    } catch (e) {
      this.textContent = `prefscope could not start: ${e}`;
      this.dataset.failed = "";
      return;
    }
    const options = { base, full: this.hasAttribute("full") };
    for (const name of [...ATTRIBUTES, "device"]) {
      const value = this.getAttribute(name);
      if (value !== null) options[name] = attributeValue(name, value);
    }
    // The page's ?device= and ?dtype= override (tests and users forcing a path).
    if (query.has("device")) options.device = query.get("device");
    if (query.has("dtype")) options.dtype = query.get("dtype");
    this.viewer = mount(this, JSON.stringify(options));
  }

  attributeChangedCallback(name, old, value) {
    if (this.viewer && old !== value) this.viewer.attribute_changed(name, attributeValue(name, value));
  }
}

if (!customElements.get("prefscope-viewer")) {
  customElements.define("prefscope-viewer", PrefscopeViewer);
}
