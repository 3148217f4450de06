// The same example inside a module Web Worker: prefscope needs no DOM.
import { run } from "./api-example.js";

self.onmessage = async ({ data }) => {
  try {
    const result = await run({ device: data.device, log: (line) => self.postMessage({ log: line }) });
    self.postMessage({ result });
  } catch (e) {
    self.postMessage({ error: e.message ?? String(e) });
  }
};
