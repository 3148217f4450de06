// The DPO view on a run of 20 evaluations × 10 000 pairs (`cargo xtask bench-dpo-web`): the
// files are written as JSON Lines, served beside a page whose element has them as its `data`; the
// page reads them, then computes every step's report, the flips and the trajectories (the run
// panel's `data-ms`), and draws the run. Prints the time from the files read to the run drawn,
// per engine (PREFSCOPE_ENGINES). A benchmark: it asserts nothing.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { engines, open, serve } from "../tests/harness.mjs";

const STEPS = Number(process.env.STEPS ?? 20);
const PAIRS = Number(process.env.PAIRS ?? 10000);

/** Deterministic pseudo-random evaluations: the policy drifts from the reference step by step. */
async function writeRun(dir) {
  let state = 0x2545f4914f6cdd1dn;
  const next = () => {
    state ^= (state << 13n) & 0xffffffffffffffffn;
    state ^= state >> 7n;
    state ^= (state << 17n) & 0xffffffffffffffffn;
    return Number(state >> 11n) / 2 ** 53;
  };
  const base = Array.from({ length: PAIRS }, () => [-(0.2 + 2.8 * next()) * 40, -(0.2 + 2.8 * next()) * 40, 0.5 + 0.5 * next()]);
  const urls = [];
  for (let s = 0; s < STEPS; s++) {
    const drift = s / STEPS;
    const lines = base.map(([x, y, share], i) => JSON.stringify({ id: `pair-${i}`, policy_chosen_logps: x + drift * 4 * (next() - 0.3),
      policy_rejected_logps: y - drift * 4 * (next() - 0.3), reference_chosen_logps: x, reference_rejected_logps: y, preference_share: share }));
    const name = `eval-${100 * (s + 1)}.jsonl`;
    await writeFile(path.join(dir, name), lines.join("\n") + "\n");
    urls.push(name);
  }
  // The element with the run's files as its data, relative to the page.
  await writeFile(path.join(dir, "run.html"), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    `<script type="module" src="/prefscope-viewer.js"></script><prefscope-viewer view="dpo" device="cpu" data="${urls.join(" ")}"></prefscope-viewer>`);
  return urls;
}

const dir = await mkdtemp(path.join(os.tmpdir(), "prefscope-dpo-run-"));
try {
  await writeRun(dir);
  const { server, origin } = await serve({ "/run/": dir });
  try {
    console.log(`DPO view: a run of ${STEPS} evaluations × ${PAIRS} pairs (JSON Lines), CPU path`);
    for (const engine of engines()) {
      const page = await open(engine);
      try {
        const start = Date.now();
        await page.goto(`${origin}/run/run.html`);
        try {
          await page.waitForSelector(`[data-testid="dpo-run"][data-steps="${STEPS}"]`, { timeout: Number(process.env.TIMEOUT_MS ?? 600_000) });
        } catch (e) {
          // Say what the page shows instead (an error banner, the console).
          const shown = await page.evaluate(() => [...document.querySelectorAll(".ps-error, [role=alert]")].map((n) => n.textContent).join(" | "));
          throw new Error(`${engine}: no run drawn (${e.message}); the page shows: ${shown}; problems: ${(await page.problems()).join(" | ")}`);
        }
        const total = Date.now() - start;
        const ms = Number(await page.getAttribute('[data-testid="dpo-run"]', "data-ms"));
        console.log(`${engine}: the run computed in ${ms.toFixed(0)} ms after the files were read; ${total} ms from navigation to the run drawn`);
      } finally {
        await page.close();
      }
    }
  } finally {
    server.close();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
