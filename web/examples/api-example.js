// The JavaScript API end to end on the demo model: two drawn images scored against two
// prompts, a text embedding, and the bundled DPO run's metrics. api.html runs it on the main
// thread and in a Web Worker (api-worker.js); the code is the same in both.
import * as prefscope from "../prefscope.js";

/// A 96×96 picture of one shape, drawn on an OffscreenCanvas (which workers have too).
function draw(color, shape) {
  const canvas = new OffscreenCanvas(96, 96);
  const g = canvas.getContext("2d");
  g.fillStyle = "#f4f1ea";
  g.fillRect(0, 0, 96, 96);
  g.fillStyle = color;
  if (shape === "circle") {
    g.beginPath();
    g.arc(48, 48, 30, 0, 2 * Math.PI);
    g.fill();
  } else {
    g.fillRect(18, 18, 60, 60);
  }
  return g.getImageData(0, 0, 96, 96);
}

export async function run({ device = "auto", log = () => {} } = {}) {
  const t0 = performance.now();
  const scorer = await prefscope.load({
    device,
    onProgress: ({ label, fraction }) => log(fraction === undefined ? label : `${label} ${Math.round(100 * fraction)}%`),
  });
  const loaded = performance.now() - t0;
  const images = [
    { name: "red-circle", image: draw("#d23c2c", "circle") },
    { name: "blue-square", image: draw("#2c5fd2", "square") },
  ];
  const prompts = ["a large red circle in the center", "a large blue square in the center"];
  const rows = await scorer.score({ images, prompts, preset: "pickscore" });
  const [embedding] = await scorer.embedTexts([prompts[0]]);
  const dpo = await prefscope.dpo(new URL("../data/dpo_demo.jsonl", import.meta.url), { loss: "sigmoid", beta: 0.1 });
  return {
    device: scorer.device,
    loadedMs: Math.round(loaded),
    rows,
    embeddingDim: embedding.length,
    norm: Math.hypot(...embedding),
    metrics: dpo.metrics,
    pairs: dpo.pairs.length,
  };
}
