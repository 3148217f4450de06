// The JavaScript API (web/prefscope.js) in headless Chromium, on both paths, against the
// native CLI on the same files: embeddings, score rows, DPO metrics and error messages. Also
// its example page on the main thread and in a Web Worker, and relative URLs given to the
// element. Run by `cargo xtask test` (harness.mjs says what it sets).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { bombPng } from "./images.mjs";
import os from "node:os";
import path from "node:path";
import { ROOT, SLOW, cli, cliText, close, engines, open, rankingRows, serve, withPage } from "./harness.mjs";

const FIXTURE = path.join(ROOT, "tests/fixtures/clip");
const IMAGES = ["square24.png", "wide.png", "tall_rgba.png", "rotated.jpg"];
const TEXTS = ["a photo of a cat", "a red circle", "two small squares on a white background"];

let server, origin, work;

before(async () => {
  // A fixture model laid out like a Hub repository, a broken copy of it, and bad inputs,
  // served under /work/ beside a page that exposes the module as `window.prefscope`.
  work = await mkdtemp(path.join(os.tmpdir(), "prefscope-api-"));
  for (const dir of ["model", "broken"]) {
    await mkdir(path.join(work, dir));
    for (const f of ["config.json", "preprocessor_config.json", "model.safetensors"]) {
      await copyFile(path.join(FIXTURE, "hf-quickgelu-f32", f), path.join(work, dir, f));
    }
    await copyFile(path.join(FIXTURE, "tokenizer.json"), path.join(work, dir, "tokenizer.json"));
  }
  // The same model written by `prefscope quantize` (int8 weights, per output channel).
  cli("quantize", "--model", path.join(work, "model"), "--dtype", "q8", "--out", path.join(work, "model-q8"));
  const weights = await readFile(path.join(work, "broken/model.safetensors"));
  await writeFile(path.join(work, "broken/model.safetensors"), weights.subarray(0, weights.length >> 1));
  await writeFile(path.join(work, "texts.txt"), TEXTS.join("\n") + "\n");
  // Three checkpoints of the bundled DPO run, named by their steps.
  await mkdir(path.join(work, "run"));
  for (const [from, to] of [["heldout_early.jsonl", "eval-10.jsonl"], ["run/eval-150.jsonl", "eval-150.jsonl"], ["heldout.jsonl", "eval-300.jsonl"]]) {
    await copyFile(path.join(ROOT, "crates/synth/dpo-demo", from), path.join(work, "run", to));
  }
  await writeFile(path.join(work, "bad.png"), "this is not an image");
  await writeFile(path.join(work, "bomb.png"), bombPng(30000, 30000));
  await writeFile(path.join(work, "bad.jsonl"),
    '{"id": "a", "policy_chosen_logps": -1, "policy_rejected_logps": -2, "reference_chosen_logps": -1, "reference_rejected_logps": -2}\n{"id": "b", "policy_chosen_logps": -1\n');
  await writeFile(path.join(work, "api.html"),
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module">import * as p from "/prefscope.js"; window.prefscope = p; window.ready = true;</script>');
  // The element with a model and a manifest given relative to the page (the manifest's image
  // paths are relative to the manifest).
  await writeFile(path.join(work, "element.html"),
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/prefscope-viewer.js"></script>' +
    '<prefscope-viewer view="score" model="model/" data="../repo/web/tests/manifest.csv" device="cpu"></prefscope-viewer>');
  // The element in the DPO view with two of a run's files as its data (relative to the page).
  await writeFile(path.join(work, "run.html"),
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/prefscope-viewer.js"></script>' +
    '<prefscope-viewer view="dpo" data="run/eval-300.jsonl run/eval-10.jsonl" device="cpu"></prefscope-viewer>');
  // The model again from a server whose connection drops halfway through the weights, after
  // announcing their whole length: the load, reading them as they arrive, fails naming the URL.
  const cut = async (res, file) => {
    const body = await readFile(path.join(work, "model", file)).catch(() => null);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { "content-length": body.length, "cache-control": "no-store" });
    if (!file.endsWith(".safetensors")) return res.end(body);
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
  };
  // And from a server that sends it in chunks without saying its length: read once it is whole.
  const chunked = async (res, file) => {
    const body = await readFile(path.join(work, "model", file)).catch(() => null);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { "cache-control": "no-store" });
    res.write(body.subarray(0, body.length >> 1));
    res.end(body.subarray(body.length >> 1));
  };
  ({ server, origin } = await serve({ "/work/": work, "/repo/": ROOT, "/cut/": cut, "/chunked/": chunked }));
});

after(async () => {
  server?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const cos = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / Math.hypot(...a) / Math.hypot(...b);

/** The CLI's rows for the fixture model on `manifest.csv`, and its embeddings of TEXTS and IMAGES. */
function cliReference() {
  const model = path.join(work, "model");
  const embed = cli("embed", "--model", model, "--texts", path.join(work, "texts.txt"), "--images",
    ...IMAGES.map((f) => path.join(FIXTURE, "images", f)), "--format", "json", "--device", "cpu").rows;
  const score = cli("score", "--model", model, "--manifest", "web/tests/manifest.csv", "--preset", "pickscore",
    "--reweight", "0.3", "--format", "json", "--device", "cpu").rows;
  return { embed, score };
}

/** The API on `device`: the fixture model's embeddings, the manifest's rows, a DPO report. */
async function apiRun(page, device) {
  await page.goto(`${origin}/work/api.html`);
  await page.waitForFunction(() => window.ready);
  return page.evaluate(async ({ device, texts, images }) => {
    const scorer = await prefscope.load({ model: "model/", device });
    const t = await scorer.embedTexts(texts);
    const i = await scorer.embedImages(images.map((f) => `/repo/tests/fixtures/clip/images/${f}`));
    const rows = await scorer.score({ manifest: "../repo/web/tests/manifest.csv", preset: "pickscore", reweight: 0.3 });
    const dpo = await prefscope.dpo("/repo/tests/fixtures/dpo_sample.jsonl", { loss: "sigmoid,ipo", beta: 0.2, weights: [1, 0.5] });
    return { device: scorer.device, texts: t.map((v) => [...v]), images: i.map((v) => [...v]), rows, dpo };
  }, { device, texts: TEXTS, images: IMAGES });
}

function assertSameAsCli(got, want, what, minCos) {
  assert.equal(got.texts.length + got.images.length, want.embed.length, `${what}: number of embeddings`);
  [...got.texts, ...got.images].forEach((v, k) => {
    const c = cos(v, want.embed[k].embedding);
    assert.ok(c >= minCos, `${what}: ${want.embed[k].kind} ${want.embed[k].input}: cos ${c}`);
    close(Math.hypot(...v), 1, `${what}: norm of embedding ${k}`, 1e-5);
  });
  assert.equal(got.rows.length, want.score.length, `${what}: score rows`);
  got.rows.forEach((r, k) => {
    const w = want.score[k];
    assert.deepEqual([r.id, r.group, r.prompt, r.image], [w.id, w.group, w.prompt, w.image], `${what}: row ${k + 1}`);
    for (const key of ["score", "relevant", "irrelevant", "reweighted", "probability"]) {
      close(r[key], w[key], `${what}: row ${w.id} ${key}`, 2e-3);
    }
  });
  const cliDpo = cli("dpo", "--input", "tests/fixtures/dpo_sample.jsonl", "--loss", "sigmoid,ipo", "--beta", "0.2",
    "--weights", "1,0.5", "--device", "cpu");
  assert.deepEqual(Object.keys(got.dpo.metrics).sort(), Object.keys(cliDpo.metrics).sort(), `${what}: metric names`);
  for (const [k, v] of Object.entries(cliDpo.metrics)) close(got.dpo.metrics[k], v, `${what}: dpo ${k}`, 1e-12);
  assert.equal(got.dpo.pairs.length, cliDpo.pairs.length);
  got.dpo.pairs.forEach((p, k) => {
    assert.equal(p.id, cliDpo.pairs[k].id);
    for (const key of ["chosen_reward", "rejected_reward", "margin", "loss"]) close(p[key], cliDpo.pairs[k][key], `${what}: pair ${p.id} ${key}`, 1e-12);
  });
}

for (const engine of engines()) {
  test(`${engine}: the JavaScript API keeps the weights in q8 or f16 on the CPU path, as \`prefscope embed --dtype\` does`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/work/api.html`);
    await page.waitForFunction(() => window.ready);
    const got = await page.evaluate(async ({ texts, images }) => {
      const out = {};
      const runs = [["q8", { model: "model/", dtype: "q8" }], ["f16", { model: "model/", dtype: "fp16" }],
        ["stored", { model: "model-q8/" }], ["worker", { model: "model/", dtype: "q8", workers: 1 }]];
      for (const [name, options] of runs) {
        const s = await prefscope.load({ device: "cpu", ...options });
        const all = [...await s.embedTexts(texts), ...await s.embedImages(images)];
        out[name] = { dtype: s.device.dtype, embeddings: all.map((v) => [...v]) };
        s.dispose();
      }
      try {
        await prefscope.load({ model: "model/", device: "cpu", dtype: "int4" });
      } catch (e) {
        out.error = e.message;
      }
      return out;
    }, { texts: TEXTS, images: IMAGES.map((f) => `/repo/tests/fixtures/clip/images/${f}`) });
    const embed = (dtype) => cli("embed", "--model", path.join(work, "model"), "--texts", path.join(work, "texts.txt"),
      "--images", ...IMAGES.map((f) => path.join(FIXTURE, "images", f)), "--device", "cpu", "--dtype", dtype).rows;
    const [f32, q8, f16] = ["f32", "q8", "f16"].map(embed);
    const same = (a, b, floor, what) => a.forEach((v, k) => {
      const c = cos(v, b[k].embedding ?? b[k]);
      assert.ok(c >= floor, `${what}, embedding ${k}: cos ${c}`);
    });
    assert.deepEqual([got.q8.dtype, got.f16.dtype, got.stored.dtype, got.worker.dtype], ["q8", "f16", "q8", "q8"]);
    // The same integers as the native kernels (f32 sums around them may round differently).
    same(got.q8.embeddings, q8, 0.9999, "q8 against the command's q8");
    same(got.q8.embeddings, f32, 0.999, "q8 against f32");
    same(got.f16.embeddings, f16, 0.99999, "f16 against the command's f16");
    same(got.stored.embeddings, got.q8.embeddings, 0.99999, "a quantized directory against quantizing at load");
    same(got.worker.embeddings, got.q8.embeddings, 0.99999, "q8 shared with a Worker");
    assert.match(got.error ?? "", /unknown dtype `int4`/);

    // The page's two wasm builds: relaxed SIMD where the engine validates it, else the baseline;
    // `simd: "baseline"` forces the baseline. Each checks its int8 kernels against the integer
    // twin, and both give the same q8 embeddings.
    const build = async (simd) => {
      await page.goto(`${origin}/work/api.html`);
      await page.waitForFunction(() => window.ready);
      return page.evaluate(async ({ texts, simd }) => {
        const s = await prefscope.load({ model: "model/", device: "cpu", dtype: "q8", simd });
        const glue = await import("/pkg/prefscope_viewer.js");
        const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 61, 1, 59, 0,
          ...[0, 1, 2].flatMap(() => [253, 12, ...new Array(16).fill(0)]), 253, 147, 2, 11]);
        return { kernels: s.device.kernels, checked: glue.int8SelfCheck(), relaxed: WebAssembly.validate(probe),
          embeddings: (await s.embedTexts(texts)).map((v) => [...v]) };
      }, { texts: TEXTS, simd });
    };
    const auto = await build("auto");
    const baseline = await build("baseline");
    console.log(`${engine}: relaxed SIMD ${auto.relaxed ? "present" : "absent"}; int8 kernels checked: ${auto.checked.join(", ")}`);
    assert.equal(auto.kernels, auto.relaxed ? "relaxed-simd" : "simd128");
    assert.deepEqual(auto.checked, auto.relaxed ? ["scalar", "simd128", "relaxed-simd"] : ["scalar", "simd128"]);
    assert.equal(baseline.kernels, "simd128");
    assert.deepEqual(baseline.checked, ["scalar", "simd128"]);
    if (engine === "chromium") assert.ok(auto.relaxed, "Chromium has relaxed SIMD");
    same(baseline.embeddings, auto.embeddings, 0.99999, "the baseline build against the relaxed one");
  }));

  test(`${engine}: the JavaScript API on the CPU path gives \`prefscope embed\`, \`score\` and \`dpo\`'s numbers and messages`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    const got = await apiRun(page, "auto");
    assert.equal(got.device.kind, "cpu");
    assertSameAsCli(got, cliReference(), "cpu", 0.9999);

    // A Worker sharing the batches gives the same embeddings, in input order.
    const shared = await page.evaluate(async ({ texts, images }) => {
      const scorer = await prefscope.load({ model: "model/", device: "cpu", workers: 1 });
      const out = { threads: scorer.threads, texts: (await scorer.embedTexts(texts)).map((v) => [...v]),
        images: (await scorer.embedImages(images.map((f) => `/repo/tests/fixtures/clip/images/${f}`))).map((v) => [...v]) };
      scorer.dispose();
      return out;
    }, { texts: TEXTS, images: IMAGES });
    assert.equal(shared.threads, 2);
    [...shared.texts, ...shared.images].forEach((v, k) => {
      const c = cos(v, [...got.texts, ...got.images][k]);
      assert.ok(c >= 0.99999, `embedding ${k} with a Worker: cos ${c}`);
    });

    // Bad inputs reject with the CLI's message on the same file.
    const cliError = (...args) => {
      try {
        cliText({ cwd: work }, ...args);
      } catch (e) {
        // Its last line is the error; earlier lines say what it was doing.
        return e.message.split("\n").pop().replace(/^error: /, "");
      }
      assert.fail(`prefscope ${args.join(" ")} succeeded`);
    };
    const apiError = async (body) => {
      const message = await page.evaluate(async (body) => {
        try {
          await new Function("return (async () => {" + body + "})()")();
        } catch (e) {
          return e.message;
        }
        return null;
      }, body);
      assert.ok(message !== null, `${body} rejected`);
      return message;
    };
    const image = await apiError('const s = await prefscope.load({ model: "model/", device: "cpu" }); await s.embedImages(["bad.png"]);');
    assert.equal(image, cliError("embed", "--model", "model", "--images", "bad.png", "--device", "cpu"));
    // A decompression bomb's header is refused before decoding, as by the CLI; a lower limit
    // refuses an ordinary image, and an ImageBitmap before it is drawn into pixels.
    const bomb = await apiError('const s = await prefscope.load({ model: "model/", device: "cpu" }); await s.embedImages(["bomb.png"]);');
    assert.equal(bomb, cliError("embed", "--model", "model", "--images", "bomb.png", "--device", "cpu"));
    assert.match(bomb, /30000×30000 \(900\.0 megapixels\), past the limit of 89\.5 megapixels/);
    const small = await apiError('const s = await prefscope.load({ model: "model/", device: "cpu", maxImagePixels: 100 }); ' +
      'await s.embedImages([await createImageBitmap(new ImageData(20, 20))]);');
    assert.match(small, /^image #1: is 20×20 \(400 pixels\), past the limit of 100 pixels/);
    const badLimit = await apiError('await prefscope.load({ model: "model/", device: "cpu", maxImagePixels: -3 });');
    assert.match(badLimit, /maxImagePixels must be a whole number of at least 1, got -3/);
    // Ranked lists through the same call: PRO's numbers are the CLI's.
    const pro = await page.evaluate(() => prefscope.dpo("/repo/tests/fixtures/pro_input.jsonl", { loss: "pro", sftWeight: 2 }));
    const proCli = cli("dpo", "--input", "tests/fixtures/pro_input.jsonl", "--loss", "pro", "--sft-weight", "2");
    for (const [k, v] of Object.entries(proCli.metrics)) close(pro.metrics[k], v, `pro ${k}`, 1e-12);
    assert.deepEqual(pro.pairs.map((p) => p.id), proCli.pairs.map((p) => p.id));
    // Several sources are the evaluations of one run, as several --input are (given out of order).
    const runFiles = ["eval-300.jsonl", "eval-10.jsonl", "eval-150.jsonl"];
    const run = await page.evaluate((files) => prefscope.dpo(files.map((f) => `/work/run/${f}`), { beta: 0.2, bins: 8 }), runFiles);
    const runCli = cli("dpo", ...runFiles.flatMap((f) => ["--input", path.join(work, "run", f)]), "--beta", "0.2", "--bins", "8", "--device", "cpu");
    assert.deepEqual(run.steps.map((s) => s.step), [10, 150, 300]);
    run.steps.forEach((s, k) => {
      for (const [name, v] of Object.entries(runCli.steps[k].metrics)) close(s.metrics[name], v, `run step ${s.step} ${name}`, 1e-12);
    });
    assert.deepEqual(run.flips.map((f) => [f.id, f.step]), runCli.flips.map((f) => [f.id, f.step]));
    assert.deepEqual(run.missing, runCli.missing);
    assert.equal(run.calibration.bins.length, 8);
    assert.deepEqual(run.pairs.map((p) => [p.id, p.steps]), runCli.pairs.map((p) => [p.id, p.steps]));
    run.pairs.forEach((p, k) => p.margins.forEach((m, j) => close(m, runCli.pairs[k].margins[j], `trajectory ${p.id}`, 1e-12)));
    const jsonl = await apiError('await prefscope.dpo("bad.jsonl");');
    assert.equal(jsonl, cliError("dpo", "--input", "bad.jsonl", "--device", "cpu"));
    const model = await apiError('await prefscope.load({ model: "broken/", device: "cpu" });');
    const modelCli = cliError("embed", "--model", "broken", "--texts", "texts.txt", "--device", "cpu");
    // The CLI names the folder's file, the API the URL's: the message from the file on is the same.
    const tail = (m) => m.slice(m.indexOf("model.safetensors"));
    assert.ok(modelCli.includes("model.safetensors"), modelCli);
    assert.equal(tail(model), tail(modelCli));
    const options = await apiError('const s = await prefscope.load({ device: "cpu" }); await s.score({ prompts: ["a"], images: [], preset: "nope" });');
    assert.match(options, /nope/);
  }));

  test(`${engine}: weights read as they download: a connection dropped halfway is an error naming the URL; a response without its length is read whole`, { timeout: SLOW }, async () => {
    const page = await open(engine);
    try {
      await page.goto(`${origin}/work/api.html`);
      await page.waitForFunction(() => window.ready);
      const result = await page.evaluate(async (texts) => {
        // Twice: the first download must not have left a stored copy the second would read.
        const dropped = [];
        for (let i = 0; i < 2; i++) {
          try {
            await prefscope.load({ model: "/cut/", device: "cpu" });
            dropped.push(null);
          } catch (e) {
            dropped.push(e.message);
          }
        }
        const streamed = await prefscope.load({ model: "/work/model/", device: "cpu" });
        const whole = await prefscope.load({ model: "/chunked/", device: "cpu" });
        return { dropped, streamed: (await streamed.embedTexts(texts)).map((v) => [...v]),
          whole: (await whole.embedTexts(texts)).map((v) => [...v]) };
      }, TEXTS);
      for (const message of result.dropped) assert.match(message ?? "(it loaded)", /\/cut\/model\.safetensors: /);
      result.whole.forEach((v, k) => assert.ok(cos(v, result.streamed[k]) >= 0.99999, `text ${k}: cos ${cos(v, result.streamed[k])}`));
      // The browser may log the broken response itself; nothing else may reach the console.
      const problems = (await page.problems()).filter((p) => !/net::ERR_CONTENT_LENGTH_MISMATCH/.test(p));
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test(`${engine}: the JavaScript API asked for WebGPU (SwiftShader in Chromium, else the CPU path and why) gives the CLI's numbers`, { timeout: SLOW }, () => withPage(engine, { webgpu: true }, async (page) => {
    const got = await apiRun(page, "webgpu");
    if (engine === "chromium") {
      assert.equal(got.device.kind, "webgpu");
    } else {
      // No navigator.gpu in Firefox on Linux or WebKitGTK: the CPU path, and the reason.
      assert.equal(got.device.kind, "cpu");
      assert.match(got.device.reason, /this browser has no WebGPU/);
    }
    assertSameAsCli(got, cliReference(), "webgpu", 0.9999);
  }));

  test(`${engine}: the API example runs on the main thread and in a Web Worker, on both paths`, { timeout: SLOW }, async () => {
    const results = [];
    for (const [webgpu, device] of [[false, "cpu"], [true, "webgpu"]]) {
      await withPage(engine, { webgpu }, async (page) => {
        for (const where of ["main", "worker"]) {
          await page.goto(`${origin}/examples/api.html?run=${where}&device=${device}`);
          await page.waitForFunction(() => globalThis.__result, null, { timeout: SLOW });
          const result = await page.evaluate(() => globalThis.__result);
          assert.equal(result.error, undefined, `${where} on ${device}: ${result.error}`);
          // Only Chromium has WebGPU here; elsewhere "webgpu" falls back to the CPU path.
          assert.equal(result.device.kind, engine === "chromium" ? device : "cpu");
          assert.equal(result.rows.length, 4);
          close(result.norm, 1, "text embedding norm", 1e-5);
          assert.ok(result.pairs > 0);
          results.push(result);
        }
      });
    }
    for (const r of results.slice(1)) {
      r.rows.forEach((row, k) => close(row.score, results[0].rows[k].score, `${row.id} score`, 2e-3));
      assert.deepEqual(r.metrics, results[0].metrics);
    }
  });

  test(`${engine}: the element resolves a relative model and manifest against the page, the manifest's images against it, and several data URLs`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/work/element.html`);
    await page.waitForSelector('[data-testid="ranking-row"][data-id="c-square24"]', { timeout: SLOW });
    const rows = await rankingRows(page);
    // The page scores with PickScore's preset by default.
    const want = cli("score", "--model", path.join(work, "model"), "--manifest", "web/tests/manifest.csv", "--preset",
      "pickscore", "--format", "json", "--device", "cpu").rows;
    assert.equal(rows.length, want.length);
    for (const w of want) {
      const r = rows.find((r) => r.id === w.id);
      assert.ok(r, `row ${w.id} is shown`);
      close(r.score, w.score, `${w.id} score`);
    }
    // `data` listing several files, relative to the page: one run, its last step shown.
    await page.goto(`${origin}/work/run.html`);
    await page.waitForSelector('[data-testid="dpo-run"][data-steps="2"]', { timeout: SLOW });
    await page.waitForSelector('[data-testid="dpo-source"]', { text: "eval-300.jsonl" });
  }));
}
