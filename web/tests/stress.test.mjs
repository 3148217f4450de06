// The page under stress (issue 17), in Chromium (the one engine with WebGPU here): the WebGPU device lost in the middle of the work, a panic,
// a million DPO pairs in one Parquet file, and a pile of errors. Run by `cargo xtask test`.
import { test as nodeTest, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SHOTS, SLOW, cli, cliText, close, engines, open, rankingRows, serve } from "./harness.mjs";
import { writeParquet } from "./parquet.mjs";
import { bombPng } from "./images.mjs";

let server, origin;

// Chromium only: when PREFSCOPE_ENGINES leaves it out, so are these (and their server).
const chromium = engines().includes("chromium");
const test = chromium ? nodeTest : () => {};

before(async () => {
  if (chromium) ({ server, origin } = await serve());
});

after(() => server?.close());

test("a WebGPU device lost mid-way: the page says so and finishes on the CPU path", { timeout: 2 * SLOW }, async () => {
  const page = await open("chromium", { webgpu: true });
  try {
    // Keep every device the page opens, so that the test can destroy it.
    await page.addInitScript(() => {
      window.__devices = [];
      const request = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...args) {
        const device = await request.apply(this, args);
        window.__devices.push(device);
        return device;
      };
    });
    await page.goto(`${origin}/index.html?device=webgpu`);
    // Once the towers are on the device, the gallery is being embedded there: lose it now.
    await page.waitForFunction(() => performance.getEntriesByName("prefscope:towers-built").length > 0, null, { timeout: SLOW });
    const destroyed = await page.evaluate(() => { window.__devices.forEach((d) => d.destroy()); return window.__devices.length; });
    assert.ok(destroyed > 0, "the page opened a WebGPU device");
    const rows = await rankingRows(page);
    assert.ok(rows.length > 0, "rankings on the CPU path");
    assert.equal(await page.getAttribute('[data-testid="device-badge"]', "data-device"), "cpu");
    const errors = await page.$$eval('[data-testid="error"]', (es) => es.map((e) => e.textContent));
    assert.ok(errors.some((e) => /GPU device was lost/.test(e) && /continues on the CPU path/.test(e)), errors.join("\n"));
    // The rankings are the CPU path's: those of `prefscope demo --device cpu`.
    const demo = cli("demo", "--format", "json", "--device", "cpu");
    const want = new Map(demo.prompts.flatMap((p) => p.rows.map((r) => [`${p.prompt}\u0000${r.id}`, r])));
    for (const r of rows) close(r.score, want.get(`${r.prompt}\u0000${r.id}`).score, `${r.id} score`);
    await page.screenshot({ path: path.join(SHOTS, "stress-device-lost.png"), fullPage: true });
  } finally {
    await page.close();
  }
});

test("a panic shows a banner and a console message, never a frozen page", { timeout: SLOW }, async () => {
  const page = await open("chromium");
  try {
    await page.goto(`${origin}/index.html`);
    await rankingRows(page);
    const thrown = await page.evaluate(async () => {
      const wasm = await import("/pkg/prefscope_viewer.js");
      try {
        wasm.panicForTests();
        return null;
      } catch (e) {
        return String(e);
      }
    });
    assert.ok(thrown, "the panic reaches JavaScript as an exception");
    const banner = await page.waitForSelector('[data-testid="panic"]');
    assert.match(await banner.textContent(), /prefscope stopped on an internal error: .*panicForTests.*reload/s);
    const problems = await page.problems();
    assert.ok(problems.some((p) => /prefscope stopped on an internal error/.test(p)), problems.join("\n"));
    await page.screenshot({ path: path.join(SHOTS, "stress-panic.png"), fullPage: true });
  } finally {
    await page.close();
  }
});

test("a million DPO pairs in Parquet load a row group at a time, every row kept, the CLI's metrics", { timeout: 2 * SLOW }, async () => {
  const rows = 1_000_000;
  const file = path.join(mkdtempSync(path.join(tmpdir(), "prefscope-")), "million.parquet");
  const logps = (k) => Float64Array.from({ length: rows }, (_, i) => -1 - ((i * 7919 + k * 104729) % 100003) / 500);
  writeParquet(file, rows, {
    id: { type: "string", values: Array.from({ length: rows }, (_, i) => `pair-${i}`) },
    policy_chosen_logps: { type: "double", values: logps(1) },
    policy_rejected_logps: { type: "double", values: logps(2) },
    reference_chosen_logps: { type: "double", values: logps(3) },
    reference_rejected_logps: { type: "double", values: logps(4) },
  }, 65_536);
  // The CLI's report, pairs included, is larger than a pipe's buffer: it goes to a file.
  const report = path.join(path.dirname(file), "report.json");
  cliText({}, "dpo", "--input", file, "--device", "cpu", "--out", report);
  const want = JSON.parse(readFileSync(report, "utf8")).metrics;
  const page = await open("chromium");
  try {
    await page.goto(`${origin}/index.html`);
    await page.click('button[data-view="dpo"]');
    await page.waitForSelector('[data-testid="metric"]', { timeout: SLOW });
    const started = Date.now();
    await page.setInputFiles('[data-testid="dpo-file"]', file);
    const source = await page.waitForSelector('[data-testid="dpo-source"]', { text: `million.parquet`, timeout: SLOW });
    assert.equal(Number(await source.getAttribute("data-pairs")), rows, "every row of the file is a pair");
    await page.waitForFunction((w) => {
      const m = document.querySelector('[data-testid="metric"][data-name="rewards/margins"]');
      return m && Math.abs(Number(m.dataset.value) - w) <= 1e-5 * Math.max(1, Math.abs(w));
    }, want["rewards/margins"], { timeout: SLOW });
    const shown = Object.fromEntries(await page.$$eval('[data-testid="metric"]', (ms) => ms.map((m) => [m.dataset.name, Number(m.dataset.value)])));
    for (const k of ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "loss"]) {
      close(shown[k], want[k], `million pairs ${k}`, 1e-9);
    }
    const memory = Number(await page.getAttribute('[data-testid="dpo-source"]', "data-wasm-memory"));
    console.log(`million pairs: ${(statSync(file).size / 1e6).toFixed(1)} MB Parquet in 16 row groups, loaded and reported in ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s; peak wasm memory ${(memory / 1e6).toFixed(0)} MB`);
    assert.deepEqual(await page.problems(), []);
  } finally {
    await page.close();
  }
});

test("many errors fold: the newest stay in view, the rest collapse, one click dismisses all", { timeout: SLOW }, async () => {
  const page = await open("chromium");
  try {
    await page.goto(`${origin}/index.html`);
    await page.click('button[data-view="dpo"]');
    await page.waitForSelector('[data-testid="metric"]', { timeout: SLOW });
    for (let i = 1; i <= 6; i++) {
      await page.setInputFiles('[data-testid="dpo-file"]', { name: `bad-${i}.jsonl`, mimeType: "application/x-ndjson",
        buffer: Buffer.from("{\"id\": \n") });
      await page.waitForFunction((n) => document.body.textContent.includes(`bad-${n}.jsonl`), i);
    }
    const visible = await page.$$eval('[data-testid="error"]', (es) => es.filter((e) => !e.closest("details:not([open])")).map((e) => e.textContent));
    assert.equal(visible.length, 3, visible.join("\n"));
    assert.ok(visible.every((e, k) => e.includes(`bad-${4 + k}.jsonl`)), "the newest three are shown");
    assert.match(await page.textContent('[data-testid="older-errors"] summary'), /3 earlier messages/);
    await page.screenshot({ path: path.join(SHOTS, "stress-errors.png"), fullPage: true });
    await page.click('[data-testid="dismiss-all"]');
    await page.waitForFunction(() => !document.querySelector('[data-testid="error"]'));
    // A decompression bomb among the user's images is refused from its header, by name.
    await page.click('button[data-view="score"]');
    // Once the gallery's rankings are shown the view is settled (no re-render swaps the input).
    await rankingRows(page);
    await page.setInputFiles('[data-testid="image-files"]', { name: "bomb.png", mimeType: "image/png", buffer: bombPng(30000, 30000) });
    const bomb = await page.waitForSelector('[data-testid="error"]');
    assert.match(await bomb.textContent(), /bomb\.png: is 30000×30000 \(900\.0 megapixels\), past the limit of 89\.5 megapixels/);
  } finally {
    await page.close();
  }
});
