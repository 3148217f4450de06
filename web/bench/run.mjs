// `cargo xtask bench-web`: prefscope against transformers.js in the same headless Chromium, on
// the same random weights with openai/clip-vit-base-patch32's shapes, one after the other in
// one run. Prints image batch 1 and 8, text batch 8, the first image embedding after
// navigation and the bytes each downloads, with ratios; then the demo page's first ranking on the
// CPU path in Chromium, Firefox ESR and WebKitGTK (PREFSCOPE_ENGINES picks), stage by stage (its
// `prefscope:*` performance marks). A benchmark: it asserts nothing.
//
// Environment (xtask sets it): PREFSCOPE_SITE the release build, TJS_WORK the
// transformers.js harness's working folder (set up; docs/DESIGN.md "Reference tools"), THREADS
// (comma list; each count is run on both sides: transformers.js's WASM threads, prefscope's
// calling thread plus Workers), WARM (warm runs), DEVICES (cpu, webgpu; empty: the demo's first
// ranking alone), DTYPES (f32, q8, q8-baseline: the CPU rows in each; q8 is prefscope's
// pre-quantized copy of the weights against transformers.js's dtype=q8, its default on WASM, on
// the build the page picks (relaxed SIMD in Chromium); q8-baseline forces the wasm SIMD build, as
// a browser without relaxed SIMD runs it), PREFSCOPE_ENGINES (the engines for the demo's first
// ranking and the ViT-H row), VIT_H (a ViT-H/14 model directory in q8, set by `VIT_H=1 cargo
// xtask bench-web`: PickScore's size on the CPU path in each engine).
import { spawn, execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS } from "../tests/browsers.mjs";
import { breakdown, engines, open as openPage, rankingRows, serve } from "../tests/harness.mjs";

/** Chromium through playwright itself (the benchmark reads its network events), with WebGPU or without. */
async function open(webgpu) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [...CHROMIUM_FLAGS, webgpu ? "--enable-unsafe-webgpu" : "--disable-webgpu"] });
  return { browser, page: await browser.newPage({ viewport: { width: 1366, height: 900 } }) };
}

const TJS_WORK = process.env.TJS_WORK;
const MODEL = "clip-b32-random";
const THREADS = (process.env.THREADS ?? "1,2").split(",");
const WARM = process.env.WARM ?? "3";
// DEVICES= (empty) leaves out the comparison: the demo's first ranking in each engine alone.
const DEVICES = (process.env.DEVICES ?? "cpu").split(",").filter(Boolean);
const DTYPES = (process.env.DTYPES ?? "f32,q8").split(",").filter(Boolean);

/** prefscope's bench page on `device` in `dtype`: its result and the bytes it downloaded. */
async function prefscope(origin, device, threads, dtype) {
  const { browser, page } = await open(true);
  try {
    const sizes = [];
    page.on("requestfinished", async (r) => { try { sizes.push((await r.sizes()).responseBodySize); } catch { /* gone */ } });
    page.on("console", (m) => { if (m.type() === "error") console.log(`[prefscope console] ${m.text()}`); });
    const [weights, build] = dtype.split("-");
    const model = weights === "q8" ? "/model-q8/" : "/model/";
    const simd = build ? `&simd=${build}` : "";
    await page.goto(`${origin}/bench/index.html?model=${model}&device=${device}&dtype=${weights}${simd}&warm=${WARM}&workers=${threads - 1}`);
    await page.waitForFunction(() => window.__result, null, { timeout: 1_500_000, polling: 500 });
    const result = await page.evaluate(() => window.__result);
    if (!result.ok) throw new Error(`prefscope bench failed: ${result.error}`);
    return { ...result, bytes: sizes.reduce((a, b) => a + b, 0) };
  } finally {
    await browser.close();
  }
}

/** transformers.js's bench page through its harness (server.py + run.mjs in TJS_WORK). */
async function transformersjs(device, threads, dtype) {
  dtype = dtype.split("-")[0];
  const server = spawn("python3", [path.join(TJS_WORK, "server.py"), "8765"], { env: { ...process.env, TJS_WORK }, stdio: "ignore" });
  try {
    await new Promise((ok) => setTimeout(ok, 1500));
    threads = device === "wasm" ? String(threads) : "";
    const extra = `e2e=${WARM}${dtype === "q8" ? "&dtype=q8" : ""}`;
    execFileSync("node", [path.join(TJS_WORK, "run.mjs"), MODEL, device, threads, WARM, "1500", extra], {
      cwd: TJS_WORK, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, TJS_WORK } });
    const tag = `${MODEL}_${device}${dtype === "q8" ? "_q8" : ""}${threads ? "_t" + threads : ""}`;
    const result = JSON.parse(await readFile(path.join(TJS_WORK, "results", `${tag}.json`), "utf8"));
    if (!result.ok) throw new Error(`transformers.js bench failed: ${result.error}`);
    return result;
  } finally {
    server.kill();
  }
}

const ms = (x) => (x === undefined || x === null ? "–" : `${Math.round(x)} ms`);
const ratio = (theirs, ours) => (theirs && ours ? `${(theirs / ours).toFixed(2)}×` : "–");

const VIT_H = process.env.VIT_H;
const { server, origin } = await serve({
  "/model/": path.join(TJS_WORK, "models", MODEL, "hf"),
  "/model-q8/": path.join(TJS_WORK, "models", MODEL, "hf-q8"),
  ...(VIT_H ? { "/model-vit-h/": VIT_H } : {}),
});
try {
  const runs = DEVICES.flatMap((device) => (device === "cpu"
    ? THREADS.flatMap((t) => DTYPES.map((dtype) => [device, Number(t), dtype]))
    : [[device, 1, "f32"]]));
  for (const [device, threads, dtype] of runs) {
    const ours = await prefscope(origin, device, threads, dtype);
    const theirs = await transformersjs(device === "cpu" ? "wasm" : "webgpu", threads, dtype);
    // transformers.js's image numbers with its preprocessing, as prefscope's include it.
    const image = (r, b) => r.image[b].e2e_with_preproc_median_ms ?? r.image[b].warm_median_ms;
    const rows = [
      ["image batch 1 (warm median, preprocessing included)", image(ours, 1), image(theirs, 1)],
      ["image batch 8 (warm median, preprocessing included)", image(ours, 8), image(theirs, 8)],
      ["text batch 8 (warm median)", ours.text[8].warm_median_ms, theirs.text[8].warm_median_ms],
      ["first image embedding after navigation", ours.t_first_image_embedding_since_nav_ms, theirs.t_first_image_embedding_since_nav_ms],
    ];
    const label = device === "cpu"
      ? `prefscope CPU path (${ours.path.kernels ?? "wasm"}) vs transformers.js WASM, ${dtype.startsWith("q8") ? "q8 (int8 weights) on both sides" : "fp32"}, ${threads} thread${threads === 1 ? "" : "s"} each`
      : "prefscope WebGPU vs transformers.js WebGPU";
    console.log(`\n${label}, B/32 random weights, ${ours.path.adapter}`);
    console.log("| workload | prefscope | transformers.js | prefscope faster by |\n|---|---|---|---|");
    for (const [what, a, b] of rows) console.log(`| ${what} | ${ms(a)} | ${ms(b)} | ${ratio(b, a)} |`);
    if (process.env.BENCH_DEBUG) console.log(JSON.stringify({ text: ours.text, image8: ours.image[8].warm_ms }));
    console.log(`| download (page, runtime and weights) | ${(ours.bytes / 1e6).toFixed(1)} MB | ${(theirs.bytes_total / 1e6).toFixed(1)} MB | ${ratio(theirs.bytes_total, ours.bytes)} smaller |`);
  }
  // ViT-H/14 in q8 on the CPU path, WebGPU off: a fresh profile per engine, one warm run.
  if (VIT_H) {
    console.log("\nViT-H/14 (PickScore's and HPS v2's towers), random weights in q8, CPU path, 1 thread");
    console.log("| engine | kernels | load | first image embedding since navigation | image batch 1 | image batch 8 (per image) | text batch 8 | weights in wasm memory | wasm memory after load / peak |");
    console.log("|---|---|---|---|---|---|---|---|---|");
    const mb = (b) => `${Math.round(b / 1e6)} MB`;
    for (const engine of engines()) {
      const page = await openPage(engine);
      try {
        await page.goto(`${origin}/bench/index.html?model=/model-vit-h/&device=cpu&dtype=q8&warm=1&workers=0`);
        await page.waitForFunction(() => window.__result, null, { timeout: 3_600_000 });
        const r = await page.evaluate(() => window.__result);
        if (!r.ok) throw new Error(`${engine}: ViT-H bench failed: ${r.error}`);
        const s = (x) => `${(x / 1000).toFixed(2)} s`;
        console.log(`| ${engine} | ${r.path.kernels} | ${s(r.load_ms)} | ${s(r.t_first_image_embedding_since_nav_ms)} | ${s(r.image[1].warm_median_ms)} | ${s(r.image[8].warm_median_ms)} (${s(r.image[8].warm_median_ms / 8)}) | ${s(r.text[8].warm_median_ms)} | ${mb(r.weight_bytes)} | ${mb(r.memory_bytes_after_load)} / ${mb(r.memory_bytes_peak)} |`);
      } finally {
        await page.close();
      }
    }
  }
  // The demo's first ranking on the CPU path in each engine, a fresh profile each run.
  console.log("\nDemo page, navigation to first ranking on the CPU path (ms since navigation, a fresh profile each run)");
  for (const engine of engines()) {
    const firsts = [];
    for (let run = 0; run < 3; run++) {
      const page = await openPage(engine);
      try {
        await page.goto(`${origin}/index.html`);
        await rankingRows(page);
        firsts.push(Number(await page.getAttribute('[data-testid="scored-time"]', "data-ms")));
        console.log(`${engine} run ${run + 1}: ${await breakdown(page)}`);
        if (run === 2) {
          // Again in the same profile: the browser's caches are warm.
          await page.goto(`${origin}/index.html`);
          await rankingRows(page);
          console.log(`${engine} again: ${await breakdown(page)}`);
        }
      } finally {
        await page.close();
      }
    }
    console.log(`${engine}: first ranking, median of 3: ${firsts.sort((a, b) => a - b)[1]} ms`);
  }
} finally {
  server.close();
}
