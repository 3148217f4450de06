// Every view as people see it, in each engine: screenshots at a phone's, a tablet's and a
// laptop's width; no chart text (tick label, axis title) overlapping another or leaving its
// chart; axe-core's accessibility rules; and the page used with the keyboard alone. Run by
// `cargo xtask test` (harness.mjs says what it sets).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { SHOTS, SLOW, WIDTHS, engines, rankingRows, serve, withPage } from "./harness.mjs";

let server, origin;

before(async () => {
  ({ server, origin } = await serve());
});

after(() => server?.close());

/** Each view's tab and what shows it is drawn (its charts included). */
const VIEWS = [
  ["score", '[data-testid="ranking-row"]'],
  ["decompose", ".ps-chart circle"],
  ["pairs", '[data-testid="strength-truth"]'],
  ["dpo", '[data-testid="displacement-chart"] circle'],
  ["model", '[data-testid="model-facts"]'],
];

/** In the page: every pair of texts of one chart whose boxes meet, and every text outside its chart. */
function chartTextProblems() {
  const problems = [];
  const slack = 0.5;
  document.querySelectorAll(".ps-chart svg").forEach((svg, k) => {
    const chart = svg.closest("figure")?.querySelector("figcaption")?.textContent.slice(0, 60) ?? `chart ${k}`;
    const frame = svg.getBoundingClientRect();
    if (frame.width === 0) return;
    const texts = [...svg.querySelectorAll("text")].filter((t) => t.textContent.trim())
      .map((t) => ({ text: t.textContent, r: t.getBoundingClientRect() }));
    for (const { text, r } of texts) {
      if (r.left < frame.left - slack || r.right > frame.right + slack || r.top < frame.top - slack || r.bottom > frame.bottom + slack) {
        problems.push(`${chart}: “${text}” leaves the chart`);
      }
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const [a, b] = [texts[i].r, texts[j].r];
        if (a.left < b.right - slack && b.left < a.right - slack && a.top < b.bottom - slack && b.top < a.bottom - slack) {
          problems.push(`${chart}: “${texts[i].text}” overlaps “${texts[j].text}”`);
        }
      }
    }
  });
  return problems;
}

/** axe-core over the document: the serious and critical violations, and a line per lesser one. */
async function axe(page) {
  await page.evaluate(() => window.axe ? true : new Promise((ok, fail) => {
    const s = document.createElement("script");
    s.src = "/__harness/axe.js";
    s.onload = () => ok(true);
    s.onerror = () => fail(new Error("axe-core did not load"));
    document.head.append(s);
  }));
  return page.evaluate(async () => {
    const { violations } = await window.axe.run(document, { resultTypes: ["violations"] });
    return violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
}

const frames = () => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));

for (const engine of engines()) {
  test(`${engine}: every view at phone, tablet and desktop widths: screenshots, chart texts apart, no serious accessibility violation`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/index.html`);
    await rankingRows(page);
    for (const [view, ready] of VIEWS) {
      await page.click(`button[data-view="${view}"]`);
      await page.waitForSelector(ready, { timeout: SLOW });
      if (view === "dpo") {
        // A selected pair: its per-token view and its marks in every chart are on the screenshots.
        await page.click('[data-testid="pair-row"]');
        await page.waitForSelector('[data-testid="heatmap"] [data-testid="token"]');
      }
      for (const [name, width, height] of WIDTHS) {
        await page.setViewportSize({ width, height });
        await page.evaluate(frames);
        // MiniBrowser's window has a minimum width (447 px here): there the "phone" is that wide.
        const shown = await page.evaluate(() => innerWidth);
        if (shown !== width) console.log(`${engine}: asked for ${width} px, the window is ${shown} px wide`);
        await page.screenshot({ path: path.join(SHOTS, `${engine}-${view}-${name}.png`), fullPage: true });
        assert.deepEqual(await page.evaluate(chartTextProblems), [], `${engine} ${view} at ${width} px`);
        // Nothing wider than the screen: the page scrolls down, never sideways.
        const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(wide <= 1, `${engine} ${view} at ${width} px scrolls sideways by ${wide} px`);
      }
      await page.setViewportSize({ width: 1366, height: 900 });
      const violations = await axe(page);
      for (const v of violations) console.log(`${engine} ${view}: axe ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
      assert.deepEqual(violations.filter((v) => v.impact === "serious" || v.impact === "critical"), [], `${engine} ${view}: axe`);
    }
  }));

  test(`${engine}: the keyboard alone reaches the views, walks a chart's points and opens a pair everywhere`, { timeout: SLOW }, () => withPage(engine, {}, async (page) => {
    await page.goto(`${origin}/index.html`);
    await rankingRows(page);
    const focused = () => page.evaluate(() => {
      const e = document.activeElement;
      return { view: e?.dataset?.view ?? null, role: e?.getAttribute("role") ?? null, chart: e?.closest("[data-testid]")?.dataset.testid ?? null,
        label: e?.getAttribute("aria-label") ?? null };
    });
    /** Presses Tab until `want(focused)` (at most 80 times). */
    const tabTo = async (want, what) => {
      for (let i = 0; i < 80; i++) {
        await page.press("Tab");
        if (want(await focused())) return;
      }
      assert.fail(`${engine}: Tab never reached ${what}`);
    };
    await tabTo((f) => f.view === "dpo", "the DPO tab");
    await page.press("Enter");
    await page.waitForSelector('[data-testid="displacement-chart"] circle', { timeout: SLOW });
    // The first chart whose points are pairs (past the run's charts, whose points are steps):
    // chosen against rejected reward.
    await tabTo((f) => f.role === "listbox" && f.chart !== "dpo-run", "a chart's points");
    for (let i = 0; i < 3; i++) await page.press("ArrowRight");
    const active = await page.evaluate(() => document.getElementById(document.activeElement.getAttribute("aria-activedescendant"))?.dataset.id);
    assert.ok(active, `${engine}: the arrow keys move to a point`);
    await page.press("Enter");
    await page.waitForSelector('[data-testid="heatmap"] [data-testid="token"]');
    // The same pair is selected in every chart that draws pairs, and in the table.
    const selected = await page.$$eval(".ps-point.ps-selected", (ps) => ps.map((p) => p.dataset.id));
    assert.ok(selected.length >= 2, `${engine}: the pair is marked in ${selected.length} charts`);
    assert.deepEqual([...new Set(selected)], [active], `${engine}: linked selection`);
    const row = await page.$$eval('[data-testid="pair-row"].ps-selected', (rs) => rs.map((r) => r.dataset.id));
    assert.deepEqual(row, [active], `${engine}: the table's selected row`);
    await page.screenshot({ path: path.join(SHOTS, `${engine}-keyboard-selected.png`), fullPage: true });
  }));
}
