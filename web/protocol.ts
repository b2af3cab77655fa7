/**
 * The messages between the page (web/main.ts) and its worker (web/worker.ts,
 * where every model call runs): a job out, progress and results back. Types
 * only, and the figures a finished run writes into `#result`.
 *
 * @module
 */

import type { Ablation, Swap } from "../src/model/mod.ts";
import type { GeneratePreset, Settings } from "./settings.ts";

/** What the worker runs: settings resolved by the page (URLs absolute). */
export interface Job {
  /** The settings as the page read them (recorded in the result). */
  settings: Settings;
  /** The model folder's absolute URL. */
  modelUrl: string;
  /** The weight set. */
  weights: string;
  /** Ablations with explicit layers. */
  ablations: Ablation[];
  /** Component swaps. */
  swaps: Swap[];
  /** Gradient steps. */
  steps: number;
  /** Keep a frame every this many steps (≥ 1). */
  every: number;
  /** The target: an absolute URL, or a dropped or picked file. */
  image: string | File;
  /** Generate mode: the class index, its name and the preset. */
  generate?: { index: number; name: string; preset: GeneratePreset };
}

/** The final figures of one layer's representation (an entry of `#result`'s `layers`). */
export interface LayerEntry {
  /** The layer: 0 = input processing, 1..N = encoder blocks. */
  layer: number;
  /** Its name in the manifest. */
  name: string;
  /** Final figures, evaluated on the returned image (after the last step). */
  final: {
    psnr: number;
    ssim: number;
    embeddingDistance: number;
    inputDistance: number;
    steps: number;
  };
  /** ‖O_L(a) − O_L(a′)‖₂, the essay's noise baseline. */
  noiseBaseline: number;
  /** First step whose embedding distance is under the noise baseline, or null. */
  criterionStep: number | null;
  /** Median wall milliseconds of a step. */
  msPerStep: number;
  /** The backend that ran it. */
  backend: string;
}

/** The figures of a generate run. */
export interface GenerateEntry {
  /** The class asked for. */
  class: { index: number; name: string };
  /** Logit and probability of that class for the final model-sized image. */
  final: { logit: number; probability: number; steps: number };
  /** The class the model reads in the final image. */
  predicted: { index: number; name: string; probability: number };
  /** Median wall milliseconds of a step. */
  msPerStep: number;
  /** The backend that ran it. */
  backend: string;
}

/** What a finished run writes into `#result` (also `metrics.json` of the downloads). */
export interface RunResult {
  mode: "invert" | "generate" | "check";
  model: string;
  /** The weights as loaded (swaps named). */
  weights: string;
  /** The backend that ran (`wasm` or `webgpu`). */
  backend: string;
  /** Why the backend differs from the one asked for ("" when it does not). */
  backendNote: string;
  settings: Settings;
  /** One entry per layer of the strip, in order (invert). */
  layers: LayerEntry[];
  /** Generate mode's figures. */
  generate?: GenerateEntry;
  /** Whether the run was stopped before its last step. */
  stopped: boolean;
  /** Check mode: the figures of web/check.ts. */
  check?: { forward: number[]; value: number; grad: number[] };
}

/** An RGBA image ready for a canvas. */
export interface Frame {
  width: number;
  height: number;
  rgba: Uint8ClampedArray<ArrayBuffer>;
}

/** Page → worker. */
export type ToWorker =
  | { type: "run"; job: Job }
  | { type: "stop" };

/** Worker → page. */
export type FromWorker =
  | { type: "status"; text: string }
  | { type: "loaded"; backend: string; note: string; weights: string }
  | { type: "target"; frame: Frame }
  | { type: "begin"; layer: number }
  | {
    type: "progress";
    layer: number;
    step: number;
    /** Trace rows since the last progress message. */
    rows: Record<string, number | null>[];
    /** The image now (every `every` steps and the last). */
    frame: Frame;
    /** The plot of the trace so far (SVG), or null when it was drawn less than 200 ms ago. */
    plot: string | null;
  }
  | {
    type: "layerDone";
    layer: number;
    entry: LayerEntry | GenerateEntry;
    png: Uint8Array;
    csv: string;
  }
  | { type: "done"; result: RunResult }
  | { type: "error"; message: string };
