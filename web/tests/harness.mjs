// What the browser test files share: a static server over the built folder (and any other
// folders a test mounts), headless Chromium with or without WebGPU, and the native CLI whose
// numbers the page and the JavaScript API must give. `cargo xtask test` sets:
//   PREFSCOPE_SITE  the built folder        PREFSCOPE_CLI  the native `prefscope` binary
//   PREFSCOPE_SHOTS where screenshots go
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { readFile, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";

export const SITE = process.env.PREFSCOPE_SITE;
export const CLI = process.env.PREFSCOPE_CLI;
export const SHOTS = process.env.PREFSCOPE_SHOTS ?? "target/e2e";
export const ROOT = path.resolve(import.meta.dirname, "../..");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// SwiftShader runs the towers at about 0.2 GFLOP/s: scoring the gallery takes minutes.
export const SLOW = 480_000;

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
  ".wasm": "application/wasm", ".json": "application/json", ".jsonl": "application/x-ndjson", ".csv": "text/csv",
  ".png": "image/png", ".jpg": "image/jpeg" };

/**
 * Serves the built folder at `/`, and each `mounts` entry (`"/prefix/": folder`) under its
 * prefix; resolves to `{ server, origin }`.
 */
export async function serve(mounts = {}) {
  assert.ok(SITE, "PREFSCOPE_SITE must be set (cargo xtask test does)");
  await mkdir(SHOTS, { recursive: true });
  const roots = [...Object.entries(mounts), ["/", SITE]];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const pathname = decodeURIComponent(url.pathname);
    const [prefix, dir] = roots.find(([p]) => pathname.startsWith(p));
    let file = path.join(path.resolve(dir), pathname.slice(prefix.length));
    if (!file.startsWith(path.resolve(dir))) return res.writeHead(403).end();
    try {
      if ((await stat(file)).isDirectory()) file = path.join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404, "Not Found").end("not found");
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
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
    if (e.stderr !== undefined) throw new Error(String(e.stderr).trim());
    throw e;
  }
}

const FLAGS = ["--headless=new", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];

/** A browser, with WebGPU (SwiftShader) or without; a page whose console errors are collected. */
export async function open(webgpu) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // playwright gives each launch a fresh profile (the --user-data-dir the brief asks for).
    args: [...FLAGS, ...(webgpu ? ["--enable-unsafe-webgpu"] : ["--disable-webgpu"])],
  });
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("crash", () => problems.push("page crashed"));
  return { browser, page, problems };
}

/** Runs `body` on a fresh page and checks, whatever it did, that nothing reached the console as an error. */
export async function withPage(webgpu, body) {
  const { browser, page, problems } = await open(webgpu);
  try {
    await body(page);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
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
