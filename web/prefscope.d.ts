// Types of prefscope's JavaScript API (prefscope.js). Names and numbers are those of the
// `prefscope` command: `embed`, `score` and `dpo --format json`.

/** An image: encoded bytes (Blob, File), a URL (relative to the page), decoded pixels, or any of these under a name. */
export type ImageInput = Blob | File | ImageBitmap | ImageData | string | URL | { name: string; image: ImageInput };

export interface Progress {
  /** What is happening ("loading model.safetensors", "building the towers", …). */
  label: string;
  /** Fraction done, when known. */
  fraction?: number;
}

export interface LoadOptions {
  /** A URL prefix laid out like a Hugging Face repository, the model's files, or absent for the demo model. */
  model?: string | URL | File[] | FileList;
  /** "auto" takes WebGPU on a hardware adapter and the CPU otherwise. */
  device?: "auto" | "webgpu" | "cpu";
  /**
   * What the towers keep their weights in. "f32" matches the reference implementations exactly;
   * "f16" halves the memory; "q8" (int8 weights and activations on the CPU path, f16 weights on
   * WebGPU) quarters it. "auto" (default) runs a model written by `prefscope quantize` in its
   * stored dtype, half-precision checkpoints in f16 on WebGPU, and f32 otherwise.
   */
  dtype?: "auto" | "f32" | "f16" | "q8" | "fp32" | "fp16";
  /** "auto" (default) loads the wasm build with relaxed SIMD where the engine has it; "baseline" the build with wasm SIMD alone. Fixed by the first load in a page or Worker. */
  simd?: "auto" | "baseline";
  onProgress?: (progress: Progress) => void;
  /** CPU path only: this many module Workers, each with its own copy of the model, share every batch of embeddings; no more than keep the copies' weights within 2.5 GB together (a ViT-H/14 in q8 gets one). */
  workers?: number;
  /** The largest image decoded, in pixels (default 89478485, Pillow's decompression-bomb limit): an image that declares more is refused before it is decoded. */
  maxImagePixels?: number;
}

export interface Device {
  kind: "webgpu" | "cpu";
  /** The adapter's name, or "CPU". */
  adapter: string;
  /** Why this path runs. */
  reason: string;
  /** What the towers keep their weights in (activations are f32 in every dtype). */
  dtype: "f32" | "f16" | "q8";
  /** The wasm build's SIMD: "relaxed-simd" where the engine has it, else "simd128" (the CPU path's int8 products run on it). */
  kernels: "simd128" | "relaxed-simd" | "scalar";
}

/** A row of `prefscope score`. */
export interface ScoreRow {
  id: string;
  group: string;
  prompt: string;
  image: string;
  score: number;
  /** LongAlign's text-relevant part of the score. */
  relevant: number;
  /** LongAlign's text-irrelevant part. */
  irrelevant: number;
  /** relevant + reweight · irrelevant. */
  reweighted: number;
  /** Softmax of the score within the group. */
  probability: number;
  /** 1 for the group's best. */
  rank: number;
}

export interface ScoreOptions {
  images?: ImageInput[];
  /** Every image against every prompt (rows numbered from 1, grouped by prompt)… */
  prompts?: string[];
  /** …or a manifest (CSV or JSON Lines: prompt, image, optional group, id). As a URL its image paths resolve against it. */
  manifest?: string | URL | Blob | File | { name: string; text: string };
  preset?: "clip" | "clipscore" | "clipscore-original" | "pickscore" | "hps";
  /** Weight of the text-irrelevant part in `reweighted`. */
  reweight?: number;
  /** "bundled" (default) or the prompts whose mean embedding is the common text direction. */
  reference?: "bundled" | string[];
}

export interface Scorer {
  readonly device: Device;
  readonly embeddingDim: number;
  /** Bytes the weights hold in the calling thread's wasm memory (0 on WebGPU); each Worker holds as much again. */
  readonly weightBytes: number;
  /** The calling thread's wasm memory in bytes: it grows and never shrinks, so this is its peak so far. */
  readonly memoryBytes: number;
  /** The largest image decoded, in pixels. */
  readonly maxImagePixels: number;
  /** Threads computing embeddings: 1 plus the Workers. */
  readonly threads: number;
  /** Stops the Workers, if any. */
  dispose(): void;
  /** L2-normalised, one per text. */
  embedTexts(texts: string[]): Promise<Float32Array[]>;
  /** L2-normalised, one per image. */
  embedImages(images: ImageInput[]): Promise<Float32Array[]>;
  score(options: ScoreOptions): Promise<ScoreRow[]>;
}

export function load(options?: LoadOptions): Promise<Scorer>;

export interface DpoOptions {
  /** TRL loss types, comma-separated (sigmoid, hinge, ipo, …; diffusion_dpo or mapo for Diffusion-DPO rows; pro, smpo or rankdpo for ranked lists, whose pairs are `{ id, loss }` per list). */
  loss?: string;
  beta?: number;
  labelSmoothing?: number;
  /** One weight per loss type. */
  weights?: number[];
  fDivergence?: "reverse_kl" | "forward_kl" | "js_divergence" | "alpha_divergence";
  fAlpha?: number;
  /** PRO's SFT weight (default 0.05). */
  sftWeight?: number;
  /** Equal-width bins of the calibration (default 10). */
  bins?: number;
  /** Also report every metric per value of this column. */
  by?: "subset" | "category";
  /** KTO's weights of the desirable and undesirable terms (1 each). */
  desirableWeight?: number;
  undesirableWeight?: number;
  /** The file name errors name, for bytes (one per source for an array of bytes). */
  name?: string | string[];
}

export interface DpoPair {
  id: string;
  chosen_reward: number;
  rejected_reward: number;
  margin: number;
  loss: number;
}

export interface CalibrationBin {
  lo: number;
  hi: number;
  /** Points in the bin, both orders of each pair counted. */
  count: number;
  /** Mean predicted probability; null when the bin is empty. */
  confidence: number | null;
  /** Share of the bin's points whose answer won (soft targets averaged); null when empty. */
  accuracy: number | null;
}

/** A pair of a run's last step, with its trajectory over the steps that evaluated it. */
export interface DpoRunPair extends DpoPair {
  steps: number[];
  margins: (number | null)[];
  chosen_rewards: (number | null)[];
  rejected_rewards: (number | null)[];
}

export interface DpoReport {
  /** TRL's names: "rewards/chosen", "rewards/margins", "rewards/accuracies", "loss", "calibration/ece", …; null where undefined. For a run, the last step's. */
  metrics: Record<string, number | null>;
  pairs: DpoPair[] | DpoRunPair[];
  /** The reliability diagram of σ(margin) (absent for ranked lists). */
  calibration?: { bins: CalibrationBin[] };
  /** With `by`: every metric per subset, and their unweighted mean. */
  subsets?: Record<string, Record<string, number | null>>;
  subsets_mean?: Record<string, number | null>;
  /** Several sources (a run): each step's metrics in step order. */
  steps?: { step: number; metrics: Record<string, number | null> }[];
  /** Pairs whose margin changed sign between two consecutive evaluations of them. */
  flips?: { id: string; step: number; from: number; to: number }[];
  /** Ids absent from some step. */
  missing?: string[];
}

type DpoSource = File | Blob | Uint8Array | ArrayBuffer | string | URL;

/** `prefscope dpo --format json` on JSON Lines, CSV or Parquet: one file, or an array of files that are the evaluations of one run. */
export function dpo(source: DpoSource | DpoSource[], options?: DpoOptions): Promise<DpoReport>;
