// The three browser engines behind one small driver interface, so that every suite runs the
// same steps in each:
//   chromium  Debian's Chromium through playwright-core (WebGPU on SwiftShader when asked for)
//   firefox   Debian's Firefox ESR through WebDriver BiDi (puppeteer-core, the stock binary)
//   webkit    WebKitGTK's MiniBrowser through WebKitWebDriver (W3C WebDriver classic) under Xvfb
// A driver has: goto, evaluate (a function and one JSON argument, run in the page, awaited),
// screenshot, viewport, upload (file paths into an <input type=file>), press (a key, as the
// user's keyboard: trusted events, focus moves), problems (console
// errors and uncaught exceptions the engine reports) and close. Everything else the tests do
// (waiting, clicking, reading) is built on evaluate in harness.mjs, so it is the same code in
// every engine.
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import net from "node:net";

export const ENGINES = ["chromium", "firefox", "webkit"];

/** The engines to run: `$PREFSCOPE_ENGINES` (comma-separated) or all three. */
export function engines() {
  const chosen = (process.env.PREFSCOPE_ENGINES ?? ENGINES.join(",")).split(",").map((e) => e.trim()).filter(Boolean);
  for (const e of chosen) if (!ENGINES.includes(e)) throw new Error(`PREFSCOPE_ENGINES: unknown engine ${e} (${ENGINES.join(", ")})`);
  return chosen;
}

/** Opens `engine` with a page of `width`×`height`; `webgpu` asks Chromium for SwiftShader's adapter. */
export async function launch(engine, { webgpu = false, width = 1366, height = 900 } = {}) {
  const driver = await { chromium, firefox, webkit }[engine](webgpu);
  try {
    await driver.viewport(width, height);
  } catch (e) {
    await driver.close();
    throw e;
  }
  return driver;
}

export const CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function chromium(webgpu) {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // playwright gives each launch a fresh profile.
    args: [...CHROMIUM_FLAGS, webgpu ? "--enable-unsafe-webgpu" : "--disable-webgpu"],
  });
  const page = await browser.newPage();
  const driver = pageDriver("chromium", browser, page, {
    viewport: (width, height) => page.setViewportSize({ width, height }),
    upload: (selector, paths) => page.setInputFiles(selector, paths),
  });
  page.on("crash", () => driver.problems().push("page crashed"));
  return driver;
}

async function firefox() {
  const { default: puppeteer } = await import("puppeteer-core");
  // A fresh profile each launch (puppeteer's default).
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr", headless: true });
  const page = await browser.newPage();
  return pageDriver("firefox", browser, page, {
    viewport: (width, height) => page.setViewport({ width, height }),
    upload: async (selector, paths) => {
      const input = await page.$(selector);
      if (!input) throw new Error(`upload: no element matches ${selector}`);
      await input.uploadFile(...paths);
    },
  });
}

/**
 * A driver over a playwright or puppeteer page: the two agree on everything the harness uses
 * but the viewport and the file chooser, which `own` gives.
 */
function pageDriver(engine, browser, page, own) {
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return {
    engine,
    goto: (url) => page.goto(url).then(() => undefined),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    screenshot: (path, fullPage) => page.screenshot({ path, fullPage }).then(() => undefined),
    press: (key) => page.keyboard.press(key),
    problems: () => problems,
    close: () => browser.close(),
    ...own,
  };
}

/** WebDriver's codes for the keys the tests press (W3C WebDriver, "Keyboard actions"). */
const KEYS = { Tab: "\uE004", Enter: "\uE007", Escape: "\uE00C", " ": "\uE00D", End: "\uE010", Home: "\uE011",
  ArrowLeft: "\uE012", ArrowUp: "\uE013", ArrowRight: "\uE014", ArrowDown: "\uE015" };

const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/** A free TCP port on localhost. */
async function freePort() {
  const server = net.createServer();
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

// Xvfb and the WebDriver servers die with this process, however it ends.
const children = new Set();
process.on("exit", () => children.forEach((c) => c.kill()));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

/** One Xvfb display for the process (WebKitGTK needs a display; headless it has none). */
let display;
async function xvfb() {
  if (process.env.DISPLAY) return process.env.DISPLAY;
  if (!display) {
    display = (async () => {
      // -displayfd: Xvfb picks a free display number and writes it once it accepts clients.
      const x = spawn("Xvfb", ["-displayfd", "3", "-screen", "0", "1920x16000x24", "-nolisten", "tcp"],
        { stdio: ["ignore", "ignore", "ignore", "pipe"] });
      x.unref();
      children.add(x);
      const number = await new Promise((ok, fail) => {
        let text = "";
        x.stdio[3].on("data", (d) => { text += d; if (text.includes("\n")) ok(text.trim()); });
        x.on("error", (e) => fail(new Error(`cannot start Xvfb (apt-get install xvfb): ${e.message}`)));
        x.on("exit", (code) => fail(new Error(`Xvfb exited (${code}) before it opened a display`)));
      });
      x.stdio[3].destroy();
      return `:${number}`;
    })();
  }
  return display;
}

async function webkit() {
  const port = await freePort();
  const env = { ...process.env, DISPLAY: await xvfb() };
  const driver = spawn(process.env.WEBKIT_WEBDRIVER ?? "WebKitWebDriver", [`--port=${port}`], { stdio: "ignore", env });
  children.add(driver);
  const exited = new Promise((_, fail) => driver.on("error", (e) =>
    fail(new Error(`cannot start WebKitWebDriver (apt-get install webkit2gtk-driver): ${e.message}`))));
  const base = `http://127.0.0.1:${port}`;
  async function call(method, path, body) {
    if (process.env.PREFSCOPE_DRIVER_LOG) console.error(`webkit ${new Date().toISOString()} ${method} ${path} ${JSON.stringify(body?.args ?? body ?? "").slice(0, 300)}`);
    const response = await fetch(base + path, { method, headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body) });
    const { value } = await response.json();
    if (value?.error) throw new Error(`WebDriver ${method} ${path}: ${value.error}: ${value.message}`);
    return value;
  }
  // The driver listens a moment after it starts.
  let session;
  for (let attempt = 0; ; attempt++) {
    try {
      session = await Promise.race([exited, call("POST", "/session", { capabilities: { alwaysMatch: {
        browserName: "MiniBrowser",
        "webkitgtk:browserOptions": { binary: process.env.MINIBROWSER ?? MINIBROWSER, args: ["--automation"] },
      } } })]);
      break;
    } catch (e) {
      if (attempt > 50 || !/fetch failed|ECONNREFUSED/.test(`${e.message} ${e.cause?.code}`)) { driver.kill(); throw e; }
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }
  const s = `/session/${session.sessionId}`;
  await call("POST", `${s}/timeouts`, { script: 900_000, pageLoad: 300_000 });
  const evaluate = async (fn, arg) => {
    // WebDriver classic has no promise-aware evaluate: the async form's callback gets the result.
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve(arguments[0]).then(${fn}).then(
        (v) => done({ ok: v === undefined ? null : v }),
        (e) => done({ error: e && e.message ? e.message : String(e) }));`;
    const out = await call("POST", `${s}/execute/async`, { script, args: [arg ?? null] });
    if (out && "error" in out) throw new Error(out.error);
    return out?.ok ?? undefined;
  };
  const viewport = async (width, height) => {
    // The window's size is set; the toolbar's height is measured and added.
    await call("POST", `${s}/window/rect`, { width, height });
    const [w, h] = await evaluate(() => [innerWidth, innerHeight]);
    if (w === width && h === height) return;
    try {
      await call("POST", `${s}/window/rect`, { width: 2 * width - w, height: 2 * height - h });
    } catch (e) {
      // A window asked past what it can grow to keeps the size it has (a tall screenshot is
      // then cut short; a narrow one is logged by the test that asked).
      if (!/Invalid (height|width) value/.test(e.message)) throw e;
    }
  };
  return {
    engine: "webkit",
    goto: (url) => call("POST", `${s}/url`, { url }).then(() => undefined),
    evaluate,
    screenshot: async (path, fullPage) => {
      // WebKit's screenshots stop at the viewport: for the whole page the window is made as
      // tall as the document (Xvfb's screen is tall enough), then given its height back.
      const [width, height, full] = await evaluate(() => [innerWidth, innerHeight, document.documentElement.scrollHeight]);
      const tall = fullPage && full > height;
      // At most 6000 px: past some height WebKitGTK's window stops growing and refuses the size.
      if (tall) await viewport(width, Math.min(full, 6_000));
      await writeFile(path, Buffer.from(await call("GET", `${s}/screenshot`), "base64"));
      if (tall) {
        await viewport(width, height);
        // Two frames: the layout at the restored size before anyone measures it.
        await evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
      }
    },
    viewport,
    upload: async (selector, paths) => {
      const element = await call("POST", `${s}/element`, { using: "css selector", value: selector });
      await call("POST", `${s}/element/${Object.values(element)[0]}/value`, { text: paths.join("\n") });
    },
    press: async (key) => {
      if (!(key in KEYS) && key.length !== 1) throw new Error(`press: no WebDriver code for ${key}`);
      const value = KEYS[key] ?? key;
      await call("POST", `${s}/actions`, { actions: [{ type: "key", id: "keyboard",
        actions: [{ type: "keyDown", value }, { type: "keyUp", value }] }] });
    },
    // No console in WebDriver classic: the harness's injected hook is the only record.
    problems: () => [],
    close: async () => {
      await call("DELETE", s).catch(() => {});
      driver.kill();
      children.delete(driver);
    },
  };
}
