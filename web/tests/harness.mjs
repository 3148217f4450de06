// What the browser test files share: a static server over the built folder (and any other
// folders a test mounts), a page in any of the three engines with the same methods, and the
// native CLI whose numbers the page and the JavaScript API must give. `cargo xtask test` sets:
//   PREFSCOPE_SITE  the built folder        PREFSCOPE_CLI  the native `prefscope` binary
//   PREFSCOPE_SHOTS where screenshots go    PREFSCOPE_ENGINES  which engines (default all)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { readFile, mkdir, mkdtemp, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { engines, launch } from "./browsers.mjs";

export { engines };
export const SITE = process.env.PREFSCOPE_SITE;
export const CLI = process.env.PREFSCOPE_CLI;
export const SHOTS = process.env.PREFSCOPE_SHOTS ?? "target/e2e";
export const ROOT = path.resolve(import.meta.dirname, "../..");
// SwiftShader runs the towers at about 0.2 GFLOP/s: scoring the gallery takes minutes.
export const SLOW = 480_000;
/** The widths every view is looked at: a phone, a tablet, a laptop. */
export const WIDTHS = [["phone", 390, 844], ["tablet", 768, 1024], ["desktop", 1366, 900]];

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
  ".wasm": "application/wasm", ".json": "application/json", ".jsonl": "application/x-ndjson", ".csv": "text/csv",
  ".png": "image/png", ".jpg": "image/jpeg" };

// Runs first in every HTML page the server sends, in every engine: it records uncaught errors,
// rejected promises and console.error calls (WebKitWebDriver reports none of them), the blobs
// offered as downloads, and then runs the scripts a test asked for with page.addInitScript.
const HOOK = `(() => {
  const problems = (window.__harnessProblems = []);
  // The stack too: for a trap in wasm it names the functions (the debug build keeps their names).
  const text = (x) => (x?.stack && !String(x.stack).includes(x.message) ? x.message + "\\n" : "") + (x?.stack ?? x?.message ?? String(x));
  addEventListener("error", (e) => problems.push("page error: " + (e.error ? text(e.error) : e.message)));
  addEventListener("unhandledrejection", (e) => problems.push("page error: " + text(e.reason)));
  const error = console.error.bind(console);
  console.error = (...args) => { problems.push("console: " + args.map(String).join(" ")); error(...args); };
  const blobs = new Map(), downloads = (window.__harnessDownloads = []);
  const create = URL.createObjectURL;
  URL.createObjectURL = (b) => { const u = create(b); blobs.set(u, b); return u; };
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () {
    // A download is kept for the test instead of handed to the engine's download manager.
    if (this.download && blobs.has(this.href)) return void downloads.push({ name: this.download, blob: blobs.get(this.href) });
    return click.call(this);
  };
})();`;
let initScripts = [];

/**
 * Serves the built folder at `/`, and each `mounts` entry (`"/prefix/": folder`) under its
 * prefix; resolves to `{ server, origin }`. HTML gets the harness's hook first.
 */
/** Serves SITE, and each of `mounts` (URL prefix → folder, or a function of the response and the
 *  path after the prefix that answers itself). */
export async function serve(mounts = {}) {
  assert.ok(SITE, "PREFSCOPE_SITE must be set (cargo xtask test does)");
  await mkdir(SHOTS, { recursive: true });
  const roots = [...Object.entries(mounts), ["/", SITE]];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const pathname = decodeURIComponent(url.pathname);
    if (pathname === "/__harness/axe.js") {
      const body = await readFile(path.join(import.meta.dirname, "../node_modules/axe-core/axe.min.js"));
      return res.writeHead(200, { "content-type": "text/javascript" }).end(body);
    }
    if (pathname === "/__harness/init.js") {
      const body = [HOOK, ...initScripts].join("\n");
      return res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" }).end(body);
    }
    const [prefix, dir] = roots.find(([p]) => pathname.startsWith(p));
    // A mount given as a function answers its requests itself (a server misbehaving on purpose).
    if (typeof dir === "function") return dir(res, pathname.slice(prefix.length));
    let file = path.join(path.resolve(dir), pathname.slice(prefix.length));
    if (!file.startsWith(path.resolve(dir))) return res.writeHead(403).end();
    try {
      if ((await stat(file)).isDirectory()) file = path.join(file, "index.html");
      let body = await readFile(file);
      if (path.extname(file) === ".html") body = inject(body.toString("utf8"));
      // With its length, as static hosts send files (the page reads weights as they arrive then).
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "content-length": body.length,
        "cache-control": "no-store" }).end(body);
    } catch {
      res.writeHead(404, "Not Found").end("not found");
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/** The hook's script element, first in <head> (or after the doctype where a page has no head). */
function inject(html) {
  const tag = '<script src="/__harness/init.js"></script>';
  const head = /<head[^>]*>/i.exec(html);
  if (head) return html.slice(0, head.index + head[0].length) + tag + html.slice(head.index + head[0].length);
  const doctype = /<!doctype[^>]*>/i.exec(html);
  const at = doctype ? doctype.index + doctype[0].length : 0;
  return html.slice(0, at) + tag + html.slice(at);
}

/** The CLI's JSON output for `args`, run from `cwd` (the repository by default). */
export function cli(...args) {
  return JSON.parse(cliText({}, ...args));
}

/** The CLI's stdout (`options.cwd`), or, when it fails, an Error carrying its stderr line. */
export function cliText(options, ...args) {
  assert.ok(CLI, "PREFSCOPE_CLI must be set (cargo xtask test does)");
  try {
    return execFileSync(CLI, args, { cwd: options.cwd ?? ROOT, encoding: "utf8", maxBuffer: 64 << 20,
      stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (e.stderr) throw new Error(String(e.stderr).trim());
    throw e;
  }
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * A page in one engine. Its methods are named as playwright's and take CSS selectors, with
 * `{ text }` where an element must also contain a text; they are built on the driver's
 * evaluate, so each does the same in every engine.
 */
export class Page {
  constructor(driver) {
    this.driver = driver;
    this.engine = driver.engine;
    this.earlier = [];
  }

  async goto(url) {
    await this.collect();
    await this.driver.goto(url);
    // Every HTML page from serve() starts with the hook; without it no error would be seen.
    if (!(await this.driver.evaluate(() => Array.isArray(window.__harnessProblems)))) {
      throw new Error(`${this.engine}: the harness's hook did not run in ${url}`);
    }
  }

  evaluate(fn, arg) {
    return this.driver.evaluate(fn, arg);
  }

  /** Polls `fn(arg)` in the page until it returns a truthy value, and returns it. */
  async waitForFunction(fn, arg, { timeout = 30_000 } = {}) {
    const until = Date.now() + timeout;
    const run = ({ src, arg }) => (0, eval)(`(${src})`)(arg);
    for (let polls = 1; ; polls++) {
      let value;
      try {
        value = await this.driver.evaluate(run, { src: String(fn), arg: arg ?? null });
      } catch (e) {
        // WebKitWebDriver now and then answers a poll with this; a poll only reads, so poll again.
        if (!/Could not parse script result/.test(e.message)) throw e;
      }
      if (value) return value;
      // An uncaught exception in the page ends the wait at once (it would otherwise last the timeout).
      if (polls % 10 === 0) {
        const thrown = await this.driver.evaluate(() => (window.__harnessProblems ?? []).filter((p) => p.startsWith("page error:")));
        if (thrown?.length) throw new Error(`${this.engine}: the page threw while the test waited for ${String(fn).slice(0, 120)}: ${thrown.join("\n")}`);
      }
      if (Date.now() > until) {
        // What the page shows instead: its messages and the start of its text.
        const shown = await this.driver.evaluate(() => ({ url: location.href, problems: window.__harnessProblems ?? [],
          text: document.body?.innerText.slice(0, 400) ?? "" })).catch((e) => ({ unreadable: e.message }));
        throw new Error(`${this.engine}: timed out after ${timeout} ms waiting for ${String(fn).slice(0, 200)} with ${JSON.stringify(arg)}; ` +
          `the page: ${JSON.stringify(shown)}`);
      }
      await sleep(100);
    }
  }

  /** Waits for an element matching `selector` (and containing `text`); returns a handle that reads it. */
  async waitForSelector(selector, { text, timeout } = {}) {
    await this.waitForFunction(find, { selector, text: text ?? null, test: true }, { timeout });
    const page = this;
    return {
      textContent: () => page.textContent(selector, { text }),
      getAttribute: (name) => page.getAttribute(selector, name, { text }),
    };
  }

  /** `fn` over every element matching `selector` (in the page; its result comes back as JSON). */
  $$eval(selector, fn, arg) {
    return this.driver.evaluate(({ selector, src, arg }) => (0, eval)(`(${src})`)([...document.querySelectorAll(selector)], arg),
      { selector, src: String(fn), arg: arg ?? null });
  }

  async $eval(selector, fn, arg) {
    await this.waitForSelector(selector);
    return this.driver.evaluate(({ selector, src, arg }) => (0, eval)(`(${src})`)(document.querySelector(selector), arg),
      { selector, src: String(fn), arg: arg ?? null });
  }

  async count(selector) {
    return this.driver.evaluate((s) => document.querySelectorAll(s).length, selector);
  }

  /** Clicks the first element matching `selector` (and containing `text`), once there is one. */
  async click(selector, { text } = {}) {
    await this.waitForSelector(selector, { text });
    await this.driver.evaluate(({ selector, text, src }) => (0, eval)(`(${src})`)({ selector, text }).click(),
      { selector, text: text ?? null, src: String(find) });
  }

  async getAttribute(selector, name, { text } = {}) {
    await this.waitForSelector(selector, { text });
    return this.driver.evaluate(({ selector, text, name, src }) => (0, eval)(`(${src})`)({ selector, text }).getAttribute(name),
      { selector, text: text ?? null, name, src: String(find) });
  }

  async textContent(selector, { text } = {}) {
    await this.waitForSelector(selector, { text });
    return this.driver.evaluate(({ selector, text, src }) => (0, eval)(`(${src})`)({ selector, text }).textContent,
      { selector, text: text ?? null, src: String(find) });
  }

  /** Sets a form control's value as a user would (input and change events). */
  async fill(selector, value) {
    await this.$eval(selector, (el, v) => {
      el.value = v;
      el.dispatchEvent(new Event("input", { bubbles: true }));
      el.dispatchEvent(new Event("change", { bubbles: true }));
    }, String(value));
  }

  selectOption(selector, value) {
    return this.fill(selector, value);
  }

  async setChecked(selector, checked) {
    await this.$eval(selector, (el, on) => { if (el.checked !== on) el.click(); }, checked);
  }

  uncheck(selector) {
    return this.setChecked(selector, false);
  }

  /**
   * Gives an `<input type=file>` files through the engine's own file chooser facility: paths,
   * or `{ name, buffer }` objects (written to a temporary folder under their names first).
   */
  async setInputFiles(selector, files) {
    await this.waitForSelector(selector);
    const paths = [];
    for (const f of [files].flat()) {
      if (typeof f === "string") paths.push(path.resolve(f));
      else {
        const dir = await mkdtemp(path.join(os.tmpdir(), "prefscope-upload-"));
        await writeFile(path.join(dir, f.name), f.buffer);
        paths.push(path.join(dir, f.name));
      }
    }
    await this.driver.upload(selector, paths);
  }

  /**
   * Drops files on the element matching `selector` as a user dragging them from a file manager
   * would (dragenter, dragover, drop with a DataTransfer holding them): paths or `{ name, buffer }`.
   */
  async drop(selector, files) {
    const list = [];
    for (const f of [files].flat()) {
      const [name, bytes] = typeof f === "string" ? [path.basename(f), await readFile(f)] : [f.name, Buffer.from(f.buffer)];
      list.push({ name, type: TYPES[path.extname(name)] ?? "", data: bytes.toString("base64") });
    }
    await this.$eval(selector, (el, files) => {
      const transfer = new DataTransfer();
      for (const f of files) {
        transfer.items.add(new File([Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
      }
      for (const type of ["dragenter", "dragover", "drop"]) {
        el.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
      }
    }, list);
  }

  /** Clicks `selector` and returns the file the page offered: `{ name, text }`. */
  async download(selector) {
    const before = await this.driver.evaluate(() => window.__harnessDownloads.length);
    await this.click(selector);
    await this.waitForFunction((n) => window.__harnessDownloads.length > n, before);
    return this.driver.evaluate(async (n) => {
      const d = window.__harnessDownloads[n];
      return { name: d.name, text: await d.blob.text() };
    }, before);
  }

  /** Runs `fn` (no arguments) first in every document this page loads from the harness's server. */
  addInitScript(fn) {
    initScripts.push(`(${fn})();`);
  }

  /** Presses `key` ("Tab", "Enter", "ArrowRight", …) on the keyboard: the focused element gets it. */
  press(key) {
    return this.driver.press(key);
  }

  setViewportSize({ width, height }) {
    return this.driver.viewport(width, height);
  }

  screenshot({ path: file, fullPage = false }) {
    return this.driver.screenshot(file, fullPage);
  }

  /** Problems recorded so far: the hook's (this document's and earlier ones') and the driver's. */
  async problems() {
    await this.collect();
    return [...new Set([...this.earlier, ...this.driver.problems()])];
  }

  async collect() {
    const now = await this.driver.evaluate(() => {
      const p = window.__harnessProblems ?? [];
      window.__harnessProblems = [];
      return p;
    }).catch(() => []);
    this.earlier.push(...now);
  }

  async close() {
    initScripts = [];
    await this.driver.close();
  }
}

/** In the page: the first element matching `selector` whose text contains `text`; with `test`, whether there is one. */
function find({ selector, text, test }) {
  const found = [...document.querySelectorAll(selector)].find((e) => text === null || text === undefined || e.textContent.includes(text));
  if (test) return Boolean(found);
  if (!found) throw new Error(`no element matches ${selector}${text ? ` containing “${text}”` : ""}`);
  return found;
}

/** A page in `engine` (with SwiftShader's WebGPU in Chromium when `webgpu`), 1366×900. */
export async function open(engine, { webgpu = false } = {}) {
  return new Page(await launch(engine, { webgpu }));
}

/** Runs `body` on a fresh page and checks, whatever it did, that nothing reached the console as an error. */
export async function withPage(engine, options, body) {
  try {
    await onFreshPage(engine, options, body);
  } catch (e) {
    // WebKitGTK's JavaScriptCore here now and then traps with "Out of bounds memory access" in
    // safe Rust (seen in image generation code no other engine ever faulted in, and gone on the
    // next page load): one fresh page more for that error alone, said in the log. Any other
    // failure, or the same one twice, fails the test.
    if (engine !== "webkit" || !/Out of bounds memory access/.test(String(e?.message ?? e))) throw e;
    console.log(`${engine}: JavaScriptCore trapped (out of bounds memory access); once more on a fresh page`);
    await onFreshPage(engine, options, body);
  }
}

async function onFreshPage(engine, options, body) {
  const page = await open(engine, options);
  try {
    await body(page);
    assert.deepEqual(await page.problems(), [], `${engine}: problems`);
  } finally {
    await page.close();
  }
}

/** The Score view's ranking rows, once there are some. */
export async function rankingRows(page) {
  await page.waitForSelector('[data-testid="ranking-row"]', { timeout: SLOW });
  return page.$$eval('[data-testid="ranking-row"]', (rows) => rows.map((r) => ({
    prompt: r.dataset.prompt, id: r.dataset.id, rank: Number(r.dataset.rank), score: Number(r.dataset.score),
    relevant: Number(r.dataset.relevant), irrelevant: Number(r.dataset.irrelevant),
    probability: Number(r.dataset.probability) })));
}

/** `a` within `tol` (relative past 1) of the CLI's `b`. */
export function close(a, b, what, tol = 2e-3) {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: page ${a}, cli ${b}`);
}

/** The page's "prefscope:…" performance marks as "stage ms" since navigation, in order. */
export async function breakdown(page) {
  const marks = await page.evaluate(() => performance.getEntriesByType("mark")
    .filter((m) => m.name.startsWith("prefscope:")).map((m) => [m.name.slice("prefscope:".length), Math.round(m.startTime)]));
  return marks.map(([stage, ms]) => `${stage} ${ms}`).join(" · ");
}
