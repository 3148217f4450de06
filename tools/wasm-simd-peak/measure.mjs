// Runs the module's kernels inside headless Chromium (the browser the benchmarks use) and prints
// GFLOP/s. Every timing is the best of several calls after a first one, so that V8 has
// tiered the code up (a wasm loop that is running cannot switch tiers mid-call).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

function inPage({ bytes, relaxed }) {
  return (async () => {
    const { instance } = await WebAssembly.instantiate(Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0)));
    const e = instance.exports;
    const best = (f, reps = 6) => { f(); let b = Infinity; for (let r = 0; r < reps; r++) { const t = performance.now(); f(); b = Math.min(b, performance.now() - t); } return b; };
    const out = [];
    const iters = 20_000_000;
    e.peak(iters, 0); e.peak(iters, 1); // both tiered up before either is timed
    for (const fused of [0, 1]) {
      const ms = best(() => e.peak(iters, fused));
      out.push(`register-only ${fused ? "relaxed madd" : "mul + add"}: ${(iters * 12 * 8 / ms / 1e6).toFixed(1)} GFLOP/s`);
    }
    e.peak_int8(iters, 0); e.peak_int8(iters, 1);
    for (const fused of relaxed ? [0, 1] : [0]) {
      const ms = best(() => e.peak_int8(iters, fused));
      const macs = fused ? 16 : 8;
      out.push(`register-only int8 ${fused ? "relaxed dot i8×i7 (16 MACs)" : "dot_i16x8 + add (8 MACs)"}: ${(iters * 12 * macs * 2 / ms / 1e6).toFixed(1)} GOP/s`);
    }
    for (const [m, n, k, what] of [[400, 3072, 768, "MLP up-projection, 8 images"], [50, 3072, 768, "MLP up-projection, 1 image"], [400, 768, 3072, "MLP down-projection, 8 images"]]) {
      const ops = e.q8_operands(m, n, k);
      const ms = best(() => e.q8_product(ops, m));
      out.push(`prefscope int8 product ${m}×${k}·${k}×${n} (${what}): ${ms.toFixed(1)} ms, ${(2 * m * n * k / ms / 1e6).toFixed(1)} GOP/s`);
    }
    // B/32's MLP product for 8 images: [8·50, 768] · [768, 3072].
    for (const [m, n, k, what] of [[400, 3072, 768, "MLP up-projection, 8 images"], [50, 3072, 768, "MLP up-projection, 1 image"], [400, 768, 768, "attention output, 8 images"]]) {
      const a = e.alloc(m * k), b = e.alloc(k * n), c = e.alloc(m * n);
      const mem = new Float32Array(e.memory.buffer);
      for (let i = 0; i < m * k; i++) mem[a / 4 + i] = Math.sin(i);
      for (let i = 0; i < k * n; i++) mem[b / 4 + i] = Math.cos(0.7 * i);
      const ms = best(() => e.gemm_f32(m, n, k, a, b, c));
      out.push(`gemm ${m}×${k}·${k}×${n} (${what}): ${ms.toFixed(1)} ms, ${(2 * m * n * k / ms / 1e6).toFixed(1)} GFLOP/s`);
    }
    return out;
  })();
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  for (const file of process.argv.slice(2)) {
    console.log(`${file}:`);
    for (const line of await page.evaluate(inPage, { bytes: readFileSync(file).toString("base64"), relaxed: file.includes("relaxed") })) console.log(`  ${line}`);
  }
} finally {
  await browser.close();
}
