// End-to-end tests of the built page in headless Chromium (docs/DESIGN.md "Testing strategy"),
// run by `cargo xtask test` (harness.mjs says what it sets).
// The page's numbers are compared with the CLI's on the same inputs: the CLI is the
// reference the golden tests already tie to transformers, open_clip and TRL.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ROOT, SHOTS, SLOW, breakdown, cli, close, engines, rankingRows, serve, withPage } from "./harness.mjs";

let server, origin;

before(async () => {
  ({ server, origin } = await serve());
});

after(() => server?.close());

/** The page's rankings equal `prefscope demo`'s, row for row. */
/** The page's rows against `prefscope demo`'s, within `tol` (relative to max(1, |value|)). */
function assertSameRankings(rows, demo, tol = 2e-3) {
  const expected = demo.prompts.flatMap((p) => p.rows.map((r) => ({ ...r, prompt: p.prompt })));
  assert.equal(rows.length, expected.length, "number of ranking rows");
  const byKey = new Map(rows.map((r) => [`${r.prompt}\u0000${r.id}`, r]));
  for (const e of expected) {
    const r = byKey.get(`${e.prompt}\u0000${e.id}`);
    assert.ok(r, `row ${e.id} of “${e.prompt}” is on the page`);
    close(r.score, e.score, `${e.id} score`, tol);
    close(r.relevant, e.relevant, `${e.id} relevant`, tol);
    close(r.irrelevant, e.irrelevant, `${e.id} irrelevant`, tol);
    close(r.probability, e.probability, `${e.id} probability`, tol);
  }
  // Ranks: equal wherever the scores are not within the tolerance of a neighbour's.
  for (const p of demo.prompts) {
    const scores = p.rows.map((r) => r.score);
    for (const e of p.rows) {
      const near = scores.some((s) => s !== e.score && Math.abs(s - e.score) < tol * Math.max(1, Math.abs(s)));
      if (!near) assert.equal(byKey.get(`${p.prompt}\u0000${e.id}`).rank, e.rank, `${e.id} rank`);
    }
  }
}

/** A full-page screenshot, named for the engine. */
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${page.engine}-${name}.png`), fullPage: true });

async function metrics(page) {
  await page.waitForSelector('[data-testid="metric"]', { timeout: SLOW });
  // The values as text: NaN (an undefined metric) does not survive WebDriver's JSON as a number.
  return Object.fromEntries((await page.$$eval('[data-testid="metric"]',
    (ms) => ms.map((m) => [m.dataset.name, m.dataset.value]))).map(([name, value]) => [name, Number(value)]));
}

function assertSameMetrics(page, cliMetrics, what) {
  for (const name of ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
    "logps/chosen", "logps/rejected", "loss"]) {
    assert.ok(name in page, `${what}: metric ${name} is shown`);
    close(page[name], cliMetrics[name], `${what} ${name}`, 1e-5);
  }
}

// The bundled run's checkpoints, named by their steps (as the page's data folder holds them).
const RUN_STEPS = [10, 50, 100, 150, 200, 250, 300];
function runFile(step) {
  const dir = path.join(ROOT, "crates/synth/dpo-demo");
  return step === 10 ? path.join(dir, "heldout_early.jsonl") : step === 300 ? path.join(dir, "heldout.jsonl") : path.join(dir, "run", `eval-${step}.jsonl`);
}

// The CLI's report of the whole bundled run at β (each file's step from a copy named by it).
let runCopies;
async function cliRun(beta) {
  if (!runCopies) {
    runCopies = await mkdtemp(path.join(os.tmpdir(), "prefscope-run-"));
    for (const step of RUN_STEPS) await copyFile(runFile(step), path.join(runCopies, `eval-${step}.jsonl`));
  }
  return cli("dpo", "--input", runCopies, "--beta", String(beta), "--device", "cpu");
}

async function setRange(page, testid, value) {
  await page.$eval(`[data-testid="${testid}"]`, (el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

async function dpoChecks(page, label) {
  await page.click('button[data-view="dpo"]');
  // The default data: the bundled DPO demo run (cargo xtask train-dpo-demo), every checkpoint;
  // the last one shown.
  await page.waitForSelector('[data-testid="dpo-run"][data-steps="7"]', { timeout: SLOW });
  await page.waitForSelector('[data-testid="dpo-source"]', { text: "eval-300.jsonl" });
  const run = await cliRun(0.1);
  const atTenth = run.metrics;
  const shown = await metrics(page);
  assertSameMetrics(shown, atTenth, `${label} β=0.1`);
  // The displacement diagnostics and their charts; the calibration and its diagram.
  for (const name of ["diagnostics/chosen_logratio_negative", "diagnostics/both_logratios_negative", "diagnostics/margin_length_spearman",
    "calibration/ece", "calibration/brier"]) {
    assert.ok(name in shown, `${label}: ${name} is shown`);
    // Undefined (NaN, null in the CLI's JSON) where the length difference is constant.
    if (atTenth[name] === null) assert.ok(Number.isNaN(shown[name]), `${label} ${name}: page ${shown[name]}`);
    else close(shown[name], atTenth[name], `${label} ${name}`, 1e-5);
  }
  await page.waitForSelector('[data-testid="displacement-chart"] circle');
  await page.waitForSelector('[data-testid="length-chart"] circle');
  await page.waitForSelector('[data-testid="reliability"] circle');
  // The run: its flips are the CLI's, its lines have a point per step.
  assert.equal(Number(await page.getAttribute('[data-testid="dpo-run"]', "data-flips")), run.flips.length, `${label}: flips`);
  assert.equal((await page.$$eval('[data-testid="dpo-run"] [role="option"]', (os) => os.length)), 2 * RUN_STEPS.length);
  await shot(page, `${label}-dpo`);
  // The slider is logarithmic in steps of 0.01: -0.3 is β = 10^-0.3, shown as 0.501.
  await setRange(page, "beta", -0.3);
  await page.waitForSelector('[data-testid="beta-value"][data-value="0.501"]');
  const cli05 = cli("dpo", "--input", runFile(300), "--beta", "0.501", "--device", "cpu").metrics;
  await page.waitForFunction((want) => {
    const m = document.querySelector('[data-testid="metric"][data-name="rewards/margins"]');
    return m && Math.abs(Number(m.dataset.value) - want) <= 1e-5 * Math.max(1, Math.abs(want));
  }, cli05["rewards/margins"], { timeout: SLOW });
  assertSameMetrics(await metrics(page), cli05, `${label} β=0.501`);
  // A pair's per-token heatmap, and its margin over the run.
  await page.click('[data-testid="pair-row"]');
  await page.waitForSelector('[data-testid="heatmap"] [data-testid="token"]');
  const id = await page.getAttribute('[data-testid="pair-trajectory"]', "data-id");
  const run05 = await cliRun(0.501);
  const want = run05.pairs.find((p) => p.id === id).margins;
  const margins = JSON.parse(await page.getAttribute('[data-testid="pair-trajectory"]', "data-margins"));
  assert.equal(margins.length, want.length, `${label}: pair ${id}'s trajectory`);
  margins.forEach((m, k) => close(m, want[k], `${label} pair ${id} margin at step ${RUN_STEPS[k]}`, 1e-5));
  await shot(page, `${label}-dpo-heatmap`);
  const share = Number(await page.getAttribute('[data-testid="differing-share"]', "data-value"));
  assert.ok(share > 0 && share <= 1, `differing-token share ${share}`);
  // The early checkpoint of the same run, at the same β: a click on its step.
  await page.click('[data-testid="dpo-step"][data-step="10"]');
  await page.waitForSelector('[data-testid="dpo-source"]', { text: "eval-10.jsonl" });
  const early = run05.steps[0].metrics;
  await page.waitForFunction((want) => {
    const m = document.querySelector('[data-testid="metric"][data-name="rewards/margins"]');
    return m && Math.abs(Number(m.dataset.value) - want) <= 1e-5 * Math.max(1, Math.abs(want));
  }, early["rewards/margins"], { timeout: SLOW });
  assertSameMetrics(await metrics(page), early, `${label} early checkpoint β=0.501`);
  // The selected pair is still selected there.
  assert.equal(await page.getAttribute('[data-testid="pair-trajectory"]', "data-id"), id);
  await shot(page, `${label}-dpo-checkpoints`);
  // Files picked together are one run's evaluations; metrics per subset when the rows have one.
  const picked = await mkdtemp(path.join(os.tmpdir(), "prefscope-picked-"));
  const subsetOf = (row) => JSON.parse(row).id.length % 2 ? "odd" : "even";
  for (const step of [50, 250]) {
    const rows = (await readFile(runFile(step), "utf8")).trim().split("\n");
    await writeFile(path.join(picked, `eval-${step}.jsonl`), rows.map((r) => JSON.stringify({ ...JSON.parse(r), subset: subsetOf(r) })).join("\n") + "\n");
  }
  await page.setInputFiles('[data-testid="dpo-file"]', [50, 250].map((s) => path.join(picked, `eval-${s}.jsonl`)));
  await page.waitForSelector('[data-testid="dpo-run"][data-steps="2"]', { timeout: SLOW });
  const pickedCli = cli("dpo", "--input", picked, "--beta", "0.501", "--by", "subset", "--device", "cpu");
  await page.waitForSelector('[data-testid="subsets"]');
  for (const name of Object.keys(pickedCli.subsets)) {
    const value = Number(await page.getAttribute(`[data-testid="subset"][data-name="${name}"] td[data-name="rewards/accuracies"]`, "data-value"));
    close(value, pickedCli.subsets[name]["rewards/accuracies"], `${label} subset ${name}`, 1e-9);
  }
  await shot(page, `${label}-dpo-subsets`);
}

// Annotated pairs (`prefscope groups`' input) in the Pairs view: the same groups as the CLI's
// on the CPU, its metrics within `tolerance` (the GPU's EM kernels compute in f32), fitted where
// `label` says.
async function groupsChecks(page, label, tolerance) {
  const fixture = JSON.parse(await readFile(path.join(ROOT, "tests/fixtures/groups.json"), "utf8")).cases[0];
  const annotated = path.join(SHOTS, `${label}-annotated.jsonl`);
  await writeFile(annotated, fixture.users.map((u, i) => JSON.stringify({ user_id: u, features_0: fixture.features_0[i],
    features_1: fixture.features_1[i], label_0: fixture.label_0[i] })).join("\n") + "\n");
  await page.setInputFiles('[data-testid="pairs-file"]', annotated);
  await page.waitForSelector('[data-testid="groups"]', { timeout: SLOW });
  assert.equal(await page.getAttribute('[data-testid="groups-device"]', "data-device"), label);
  const want = cli("groups", "--input", annotated, "--gpm", "--device", "cpu");
  const shownMetrics = Object.fromEntries(await page.$$eval('[data-testid="group-metric"]', (ms) => ms.map((m) => [m.dataset.name, Number(m.dataset.value)])));
  for (const k of ["k", "accuracy_single", "accuracy_groups", "log_likelihood"]) close(shownMetrics[k], want.metrics[k], `${label} groups ${k}`, tolerance);
  const groupRows = await page.$$eval('[data-testid="group-row"]', (rs) => rs.map((r) => ({ users: Number(r.dataset.users), pairs: Number(r.dataset.pairs) })));
  assert.deepEqual(groupRows, want.groups.map((g) => ({ users: g.users, pairs: g.pairs })));
  assert.equal(Number(await page.getAttribute('[data-testid="gpm"]', "data-triads")), want.gpm.intransitive_triads);
}

const demoRankings = (dtype = "f32") => cli("demo", "--format", "json", "--device", "cpu", "--dtype", dtype);

for (const engine of engines()) {
  test(`${engine}: ?device=webgpu: WebGPU where the engine has it (Chromium's SwiftShader), else the CPU path and why; the rankings equal \`prefscope demo\`'s`, { timeout: 2 * SLOW }, () => withPage(engine, { webgpu: true }, async (page) => {
    await page.goto(`${origin}/index.html?device=webgpu`);
    const rows = await rankingRows(page);
    assertSameRankings(rows, demoRankings());
    const badge = await page.textContent('[data-testid="device-badge"]');
    const ms = await page.getAttribute('[data-testid="scored-time"]', "data-ms");
    console.log(`${engine} device=webgpu: navigation to first ranking ${ms} ms; ${badge}`);
    if (engine !== "chromium") {
      // Firefox on Linux and WebKitGTK have no navigator.gpu: the fallback, and the badge says why.
      assert.equal(await page.getAttribute('[data-testid="device-badge"]', "data-device"), "cpu");
      assert.match(badge, /this browser has no WebGPU/);
      return;
    }
    assert.equal(await page.getAttribute('[data-testid="device-badge"]', "data-device"), "webgpu");
    console.log(`webgpu: ${await breakdown(page)}`);
    await shot(page, "webgpu-score");
    await page.click('button[data-view="decompose"]');
    await setRange(page, "reweight", 0.9);
    await page.waitForSelector('[data-testid="reweighted-winner"]');
    await shot(page, "webgpu-decompose");
    await dpoChecks(page, "webgpu");
    await page.click('button[data-view="model"]');
    await page.waitForSelector('[data-testid="model-facts"]');
    const towers = await page.textContent('[data-testid="model-towers"]');
    console.log(`webgpu: ${towers}`);
    const pipelines = Number(/(\d+) compute pipelines for the towers/.exec(towers)?.[1]);
    assert.ok(pipelines > 0 && pipelines <= 16, `the towers use ${pipelines} pipelines (at most 16)`);
    await shot(page, "webgpu-model");
    // EM's kernels on WebGPU.
    await page.click('button[data-view="pairs"]');
    await page.waitForSelector('[data-testid="pairs-file"]', { timeout: SLOW });
    await groupsChecks(page, "webgpu", 1e-4);
    await shot(page, "webgpu-groups");
  }));

  test(`${engine}: without WebGPU: the CPU path gives the same rankings and DPO metrics`, { timeout: 2 * SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/index.html`);
    const rows = await rankingRows(page);
    assert.equal(await page.getAttribute('[data-testid="device-badge"]', "data-device"), "cpu");
    assertSameRankings(rows, demoRankings());
    const ms = await page.getAttribute('[data-testid="scored-time"]', "data-ms");
    console.log(`cpu: navigation to first ranking ${ms} ms`);
    console.log(`cpu: ${await breakdown(page)}`);
    // The diversity the prompts do not explain: over the whole gallery and for each prompt.
    const prompts = new Set(rows.map((r) => r.prompt)).size;
    // Computed after the rankings are shown.
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="diversity"]').length === n, prompts + 1, { timeout: SLOW });
    const sce = await page.$$eval('[data-testid="diversity"]', (ds) => ds.map((d) => Number(d.dataset.sce)));
    assert.equal(sce.length, prompts + 1, "a diversity line for the gallery and each prompt");
    assert.ok(sce.every((v) => Number.isFinite(v) && v >= 1), `scores ${sce}`);
    await shot(page, "cpu-score");
    await dpoChecks(page, "cpu");
    // A model by URL prefix (the demo model's folder, laid out like a Hub repository): streamed,
    // cached in the browser, listed with its size, cleared.
    await page.click('button[data-view="model"]');
    await page.fill('[data-testid="model-url"]', `${origin}/demo-model/`);
    await page.click('form.ps-control button[type="submit"]');
    await page.waitForSelector('[data-testid="model-facts"]', { text: `${origin}/demo-model/`, timeout: SLOW });
    // With a private file system the weights are kept (4 files); without one (WebKitGTK's
    // automation sessions) the page keeps the JSON files and says the weights are not kept.
    const opfs = await page.evaluate(async () => { try { return Boolean(await navigator.storage.getDirectory()); } catch { return false; } });
    await page.waitForSelector('[data-testid="cache"]', { text: opfs ? "4 files, 2.7 MB" : "3 files, 0.0 MB; weights are not kept" });
    console.log(`${engine}: ${await page.textContent('[data-testid="cache"]')}`);
    await shot(page, "cpu-model");
    await page.click('[data-testid="cache"] button');
    await page.waitForSelector('[data-testid="cache"]', { text: `0 files` });
    // The scores follow the model: the same weights give the same rankings.
    await page.click('button[data-view="score"]');
    assertSameRankings(await rankingRows(page), demoRankings());
    // Another dtype loads the model again: q8 on the CPU path gives `prefscope demo --dtype q8`'s
    // rankings. The integer sums are the native ones, but the f32 sums around them (attention,
    // LayerNorm) round differently in wasm, which moves an activation's code now and then: the
    // scores (100·cos) agree within 1e-2 relative, not f32's 2e-3.
    await page.click('button[data-view="model"]');
    await page.selectOption('[data-testid="dtype-select"]', "q8");
    await page.waitForSelector('[data-testid="model-dtype"][data-dtype="q8"]', { text: "int8", timeout: SLOW });
    await page.click('button[data-view="score"]');
    assertSameRankings(await rankingRows(page), demoRankings("q8"), 1e-2);
  }));

  test(`${engine}: the custom element example fires prefscope-ready and prefscope-scored for both viewers`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.addInitScript(() => {
      window.__events = [];
      for (const name of ["prefscope-ready", "prefscope-scored"]) {
        document.addEventListener(name, (e) => window.__events.push({ name, id: e.target.id, ...e.detail }), true);
      }
    });
    await page.goto(`${origin}/examples/index.html`);
    await page.waitForFunction(() => {
      const e = window.__events;
      return ["scores", "margins"].every((id) => e.some((x) => x.id === id && x.name === "prefscope-scored"));
    }, null, { timeout: SLOW });
    const events = await page.evaluate(() => window.__events);
    assert.ok(events.some((e) => e.id === "scores" && e.name === "prefscope-ready"), JSON.stringify(events));
    assert.ok(events.some((e) => e.id === "margins" && e.name === "prefscope-scored" && e.view === "dpo" && e.beta === 0.2));
    assert.ok(events.some((e) => e.id === "scores" && e.name === "prefscope-scored" && e.view === "score" && e.rows > 0));
    // An attribute change reaches the running viewer.
    await page.$eval("#margins", (el) => el.setAttribute("beta", "0.05"));
    await page.waitForFunction(() => window.__events.some((e) => e.id === "margins" && e.beta === 0.05), null, { timeout: SLOW });
    await shot(page, "example-embedding");
  }));

  test(`${engine}: your images and a manifest, dropped on the page: the rankings equal \`prefscope score\`'s; export writes them`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/index.html`);
    await rankingRows(page);
    const manifest = path.join(ROOT, "web/tests/manifest.csv");
    const images = ["square24.png", "wide.png", "rotated.jpg", "tall_rgba.png", "grey.png"]
      .map((f) => path.join(ROOT, "tests/fixtures/clip/images", f));
    await page.click(".ps-inputs summary");
    // Dropped on the drop zone, as from a file manager.
    await page.drop('[data-testid="drop-zone"]', [...images, manifest]);
    await page.waitForSelector('[data-testid="inputs-summary"]', { text: `5 images loaded · manifest manifest.csv (8 rows)` });
    await page.click('[data-testid="score-inputs"]');
    await page.waitForSelector('[data-testid="scored-time"][data-source="user"]', { timeout: SLOW });
    const rows = await rankingRows(page);
    const want = cli("score", "--model", "crates/synth/demo-model", "--manifest", manifest, "--preset", "pickscore",
      "--device", "cpu", "--format", "json").rows;
    assert.equal(rows.length, want.length);
    for (const w of want) {
      const r = rows.find((x) => x.id === w.id);
      assert.ok(r, `row ${w.id}`);
      for (const k of ["score", "relevant", "irrelevant", "probability"]) close(r[k], w[k], `${w.id} ${k}`);
      assert.equal(r.rank, w.rank, `${w.id} rank`);
    }
    // The diversity split, over all rows and per group, equals `prefscope diversity`'s on the
    // same manifest (the page's CPU kernels in wasm round a little differently, and the split
    // can magnify the last digits, hence 1e-3).
    const split = cli("diversity", "--model", "crates/synth/demo-model", "--manifest", manifest, "--device", "cpu");
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="diversity"]').length === n, split.groups.length + 1, { timeout: SLOW });
    const shown = await page.$$eval('[data-testid="diversity"]',
      (ds) => ds.map((d) => ({ group: d.dataset.group, sce: Number(d.dataset.sce), text: Number(d.dataset.textPart) })));
    const wanted = [{ group: "", sce: split.sce, text: split.text_part },
      ...split.groups.map((g) => ({ group: g.group, sce: g.sce, text: g.text_part }))];
    assert.equal(shown.length, wanted.length, "diversity lines");
    for (const w of wanted) {
      const d = shown.find((x) => x.group === w.group);
      assert.ok(d, `diversity of group “${w.group}”`);
      close(d.sce, w.sce, `group “${w.group}” sce`, 1e-3);
      close(d.text, w.text, `group “${w.group}” text part`, 1e-3);
    }
    // The long prompt is past the demo model's 32-token context: encoded in segments.
    assert.match(await page.textContent(".ps-prompt:last-of-type h2"), /[2-9] segments/);
    await shot(page, "cpu-score-inputs");
    // Export: the CSV download holds every row with the contract's columns.
    const { text } = await page.download('button[data-format="csv"]');
    const lines = text.trim().split("\n");
    assert.equal(lines[0], "id,group,prompt,image,score,relevant,irrelevant,reweighted,probability,rank");
    assert.equal(lines.length, want.length + 1);
    // A corrupt image is reported by name; the images already loaded stay.
    await page.setInputFiles('[data-testid="image-files"]', { name: "corrupt.png", mimeType: "image/png",
      buffer: Buffer.from("\x89PNG\r\n\x1a\n this is not a png") });
    const error = await page.waitForSelector('[data-testid="error"]');
    assert.match(await error.textContent(), /corrupt\.png/);
    await page.waitForSelector('[data-testid="inputs-summary"]', { text: `5 images loaded` });
  }));

  test(`${engine}: labelled pairs: PickScore's accuracy and agreement equal \`prefscope pairs\`'s, at any tie threshold`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    const dir = path.join(ROOT, "tests/fixtures/clip/images");
    const bytes = async (f) => [...await readFile(path.join(dir, f))];
    const pairs = [
      ["a large red circle in the center", "square24.png", "wide.png", 1],
      ["a small blue square on the left", "grey.png", "tall_rgba.png", 0],
      ["a large red circle in the center", "rotated.jpg", "grey.png", 0.5],
      ["a small blue square on the left", "square24.png", "wide.png", 1],
    ];
    const lines = [];
    for (const [caption, a, b, label] of pairs) {
      lines.push(JSON.stringify({ caption, jpg_0: await bytes(a), jpg_1: await bytes(b), label_0: label }));
    }
    const file = path.join(SHOTS, "pairs.jsonl");
    await writeFile(file, lines.join("\n") + "\n");
    await page.goto(`${origin}/index.html`);
    await rankingRows(page);
    await page.click('button[data-view="pairs"]');
    // The view opens on the bundled set with flipped labels, scored and banded.
    const truth = await page.waitForSelector('[data-testid="strength-truth"]', { timeout: SLOW });
    const [hits, flagged, flipped] = await Promise.all(["data-hits", "data-flagged", "data-flipped"].map((a) => truth.getAttribute(a)).map(async (v) => Number(await v)));
    console.log(`bundled pairs: ${hits} of ${flagged} likely_wrong are flipped, ${hits} of ${flipped} flipped caught`);
    assert.ok(hits / flagged >= 0.6 && hits / flipped >= 0.6, `precision ${hits / flagged}, recall ${hits / flipped}`);
    const shownRows = await page.$$eval('[data-testid="strength-row"]', (rs) => rs.map((r) => r.dataset.band));
    assert.ok(shownRows.length === flagged && shownRows.every((b) => b === "likely_wrong"), "filtered to likely_wrong");
    await page.uncheck('[data-testid="only-likely-wrong"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="strength-row"]').length === 60);
    await shot(page, "cpu-pairs-strength");
    await page.setInputFiles('[data-testid="pairs-file"]', file);
    await page.waitForSelector('[data-testid="pairs-source"]', { text: `pairs.jsonl`, timeout: SLOW });
    for (const threshold of [0, 0.3]) {
      await setRange(page, "tie-threshold", threshold);
      const want = cli("pairs", "--model", "crates/synth/demo-model", "--input", file, "--tie-threshold", String(threshold),
        "--device", "cpu").metrics;
      await page.waitForFunction((w) => {
        const m = document.querySelector('[data-testid="metric"][data-name="accuracy"]');
        return m && Math.abs(Number(m.dataset.value) - w) < 1e-6;
      }, want.accuracy);
      const got = Object.fromEntries(await page.$$eval('[data-testid="metric"]', (ms) => ms.map((m) => [m.dataset.name, Number(m.dataset.value)])));
      for (const k of ["accuracy", "agreement", "predicted_ties", "labelled_ties", "pairs"]) close(got[k], want[k], `pairs ${k} at ${threshold}`, 1e-6);
    }
    assert.ok(await page.count('[data-testid="disagreement"]') > 0);
    await shot(page, "cpu-pairs");
    // Reward-ensemble rows (`prefscope strength`'s input): the same bands as the CLI's.
    const ensemble = path.join(ROOT, "tests/fixtures/strength_input.jsonl");
    await page.setInputFiles('[data-testid="pairs-file"]', ensemble);
    await page.waitForSelector('[data-testid="pairs-source"]', { text: `strength_input.jsonl`, timeout: SLOW });
    await page.uncheck('[data-testid="only-likely-wrong"]');
    const bands = await page.$$eval('[data-testid="strength-row"]', (rs) => rs.map((r) => r.dataset.band));
    const cliBands = cli("strength", "--input", ensemble).pairs.map((p) => p.band);
    assert.deepEqual(bands, cliBands);
    await groupsChecks(page, "cpu", 1e-9);
    await shot(page, "cpu-groups");
  }));

  test(`${engine}: bad files show an error naming them, and the page keeps working`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/index.html`);
    await page.click('button[data-view="dpo"]');
    await metrics(page);
    // Malformed JSON Lines: the error names the file and the line.
    await page.setInputFiles('[data-testid="dpo-file"]', { name: "broken.jsonl", mimeType: "application/x-ndjson",
      buffer: Buffer.from('{"id": "a", "policy_chosen_logps": -1.0\n') });
    const error = await page.waitForSelector('[data-testid="error"]');
    assert.match(await error.textContent(), /broken\.jsonl/);
    // Non-finite log-probabilities are refused by row.
    await page.setInputFiles('[data-testid="dpo-file"]', { name: "nan.csv", mimeType: "text/csv",
      buffer: Buffer.from("id,policy_chosen_logps,policy_rejected_logps,reference_chosen_logps,reference_rejected_logps\np0,-1,-2,-1,-2\np1,NaN,-2,-1,-2\n") });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="error"]')].some((e) => /nan\.csv/.test(e.textContent)));
    // A good file still loads.
    await page.setInputFiles('[data-testid="dpo-file"]', path.join(ROOT, "tests/fixtures/dpo_sample.jsonl"));
    await page.waitForSelector('[data-testid="dpo-source"]', { text: `dpo_sample.jsonl` });
    await metrics(page);
    // A wrong model: a config that is not a CLIP config, weights that are not safetensors.
    await page.click('button[data-view="model"]');
    await page.setInputFiles('[data-testid="model-files"]', [
      { name: "config.json", mimeType: "application/json", buffer: Buffer.from('{"model_type": "bert"}') },
      { name: "model.safetensors", mimeType: "application/octet-stream", buffer: Buffer.from("not safetensors") },
      { name: "tokenizer.json", mimeType: "application/json", buffer: Buffer.from("{}") },
    ]);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="error"]').length >= 3);
    await shot(page, "errors");
    // Still working: the demo model is still loaded and the Score view still ranks.
    await page.click('button[data-view="score"]');
    await rankingRows(page);
  }));

  test(`${engine}: ranked lists in the DPO view: PRO, SmPO and RankDPO equal \`prefscope dpo\`'s`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/index.html`);
    await page.click('button[data-view="dpo"]');
    await metrics(page);
    for (const [file, objective] of [["pro_input.jsonl", "pro"], ["smpo_input.jsonl", "smpo"], ["rankdpo_input.jsonl", "rankdpo"]]) {
      const input = path.join(ROOT, "tests/fixtures", file);
      await page.setInputFiles('[data-testid="dpo-file"]', input);
      await page.waitForSelector('[data-testid="dpo-source"]', { text: `${file}` });
      await page.selectOption('[data-testid="ranked-objective"]', objective);
      const want = cli("dpo", "--input", input, "--loss", objective).metrics;
      await page.waitForFunction((w) => {
        const m = document.querySelector('[data-testid="metric"][data-name="loss"]');
        return m && Math.abs(Number(m.dataset.value) - w) <= 1e-9 * Math.max(1, Math.abs(w));
      }, want.loss);
      const shown = Object.fromEntries(await page.$$eval('[data-testid="metric"]', (ms) => ms.map((m) => [m.dataset.name, Number(m.dataset.value)])));
      for (const [k, v] of Object.entries(want)) close(shown[k], v, `${objective} ${k}`, 1e-9);
    }
    await shot(page, "cpu-dpo-ranked");
  }));
}
