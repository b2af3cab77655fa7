/**
 * What the page's worker runs (web/worker.ts wires it to messages): loads a
 * model (kept between runs with the same model, weights, backend and swaps;
 * ablations come from `withAblations`), picks WebGPU where there is an
 * adapter, and runs a strip of layer representations one layer after the
 * other, or a class generation, with the core modules (`loadModel`, `invert`,
 * `generate`, `psnr`, `ssim`, `encodePng`, `toCsv`). It posts progress — trace
 * rows, a frame every `every` steps — and each layer's final figures, PNG and
 * traces CSV. No DOM: Deno's tests run it as the worker does.
 *
 * @module
 */

import {
  decodeImage,
  encodePng,
  fitToSize,
  type ImageTensor,
  MAX_IMAGE_BYTES,
  readImage,
  type Row,
  toCsv,
} from "../src/io/mod.ts";
import { loadModel, type Model } from "../src/model/mod.ts";
import {
  generate,
  type GenerateStepInfo,
  invert,
  psnr,
  randomStart,
  ssim,
  type StepInfo,
} from "../src/optimize/mod.ts";
import { checkFigures } from "./check.ts";
import { generatePlot, invertPlot } from "./plots.ts";
import type {
  Frame,
  FromWorker,
  GenerateEntry,
  Job,
  LayerEntry,
  RunResult,
} from "./protocol.ts";
import type { PageBackend } from "./settings.ts";

/** The columns of a layer's traces.csv: those of the CLI's `invert`. */
export const INVERT_COLUMNS: readonly string[] = [
  "step",
  "loss",
  "embedding_distance",
  "input_distance",
  "noise_baseline",
  "below_noise_baseline",
  "psnr",
  "ssim",
  "lr",
  "sigma",
];

/** The columns of a generate run's traces.csv: those of the CLI's `generate`. */
export const GENERATE_COLUMNS: readonly string[] = [
  "step",
  "loss",
  "logit",
  "probability",
  "lr",
  "sigma",
  "crop_y",
  "crop_x",
];

/** Where the engine sends its messages, and whether the page asked it to stop. */
export interface Hooks {
  /** Sends a message (with buffers to transfer). */
  post(message: FromWorker, transfer?: Transferable[]): void;
  /** Whether the run should stop after the current step. */
  stopped(): boolean;
}

/**
 * An image in [0, 1] ([3, H, W]) as RGBA bytes for a canvas.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toFrame } from "./engine.ts";
 *
 * const f = toFrame(new Float32Array([1, 0, 0.5, 2]), 1, 1);
 * assert.deepEqual([...f.rgba.slice(0, 4)], [255, 0, 128, 255]);
 * ```
 */
export function toFrame(
  data: Float32Array,
  height: number,
  width = height,
): Frame {
  const plane = width * height;
  const rgba = new Uint8ClampedArray(4 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      rgba[4 * i + c] = Math.round(
        Math.min(Math.max(data[c * plane + i], 0), 1) * 255,
      );
    }
    rgba[4 * i + 3] = 255;
  }
  return { width, height, rgba };
}

/**
 * The backend a page's choice comes to: WebGPU for `auto` and `webgpu` where
 * the browser (or Deno) has an adapter, else wasm with a note saying why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pickBackend } from "./engine.ts";
 *
 * assert.deepEqual(await pickBackend("wasm"), { name: "wasm", note: "" });
 * ```
 */
export async function pickBackend(
  asked: PageBackend,
): Promise<{ name: "wasm" | "webgpu"; note: string }> {
  if (asked === "wasm") return { name: "wasm", note: "" };
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } })
    .gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (adapter) return { name: "webgpu", note: "" };
  return {
    name: "wasm",
    note: `no WebGPU adapter here (${
      gpu ? "navigator.gpu gave none" : "no navigator.gpu"
    }): running on wasm`,
  };
}

/** Keeps the last loaded model between runs (released when another is needed). */
export class ModelCache {
  #key = "";
  #model: Model | null = null;
  #note = "";

  /** The model of a job on the backend it asks for (WebGPU falling back to wasm), with the note. */
  async get(job: Job, hooks: Hooks): Promise<{ model: Model; note: string }> {
    let { name, note } = await pickBackend(job.settings.backend);
    const key = JSON.stringify([job.modelUrl, job.weights, name, job.swaps]);
    if (key === this.#key && this.#model) {
      return { model: this.#model, note: this.#note };
    }
    await this.release();
    const load = (backend: "wasm" | "webgpu") => {
      hooks.post({
        type: "status",
        text: `loading ${job.settings.model} (${job.weights}) on ${backend}…`,
      });
      return loadModel(job.modelUrl, {
        weights: job.weights,
        backend,
        swaps: job.swaps,
      });
    };
    let model: Model;
    try {
      model = await load(name);
    } catch (err) {
      if (name !== "webgpu") throw err;
      name = "wasm";
      note = `WebGPU failed (${
        err instanceof Error ? err.message.split("\n")[0] : err
      }): running on wasm`;
      model = await load(name);
    }
    this.#key = key;
    this.#model = model;
    this.#note = note;
    return { model, note };
  }

  /** Frees the kept model's sessions. */
  async release(): Promise<void> {
    const m = this.#model;
    this.#model = null;
    this.#key = "";
    await m?.release();
  }
}

/** The target image at the model's size: a dropped file or a URL. */
async function targetImage(job: Job, size: number): Promise<ImageTensor> {
  const file = job.image;
  if (typeof file === "string") return fitToSize(await readImage(file), size);
  if (file.size > MAX_IMAGE_BYTES) {
    throw new RangeError(
      `Invalid image file "${file.name}": ${file.size} bytes exceeds the limit of ${MAX_IMAGE_BYTES} bytes (MAX_IMAGE_BYTES, 256 MiB): pick a smaller image`,
    );
  }
  const img = decodeImage(new Uint8Array(await file.arrayBuffer()), file.name);
  return fitToSize(img, size);
}

/** The median of step times, the first (session creation) left out. */
function median(times: readonly number[]): number {
  const sorted = times.slice(1).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? times[0] ?? 0;
}

/** Step times, the trace and the frame cadence of one run. */
function stepClock(
  job: Job,
  hooks: Hooks,
  layer: number,
  plot: (rows: readonly Row[]) => string,
) {
  const times: number[] = [];
  const rows: Row[] = [];
  let last = performance.now();
  let yielded = last;
  let plotted = -Infinity;
  let pending: Row[] = [];
  return {
    times,
    rows,
    /**
     * Records a step's row; posts rows, a frame and the plot every `every`
     * steps, at the end and on stop. Lets the worker's messages in (a stop)
     * every 50 ms: onnxruntime's runs resolve without leaving the task.
     */
    async step(
      row: Row,
      step: number,
      steps: number,
      frame: () => Frame,
    ): Promise<boolean> {
      times.push(performance.now() - last);
      rows.push(row);
      pending.push(row);
      if (performance.now() - yielded > 50) {
        await new Promise((r) => setTimeout(r, 0));
        yielded = performance.now();
      }
      const stop = hooks.stopped();
      const end = step + 1 === steps || stop;
      if ((step + 1) % job.every === 0 || end) {
        const f = frame();
        // the plot at most 5 times a second (and at the end): it grows with the trace
        const now = performance.now();
        const draw = end || now - plotted > 200;
        if (draw) plotted = now;
        hooks.post({
          type: "progress",
          layer,
          step,
          rows: pending,
          frame: f,
          plot: draw ? plot(rows) : null,
        }, [f.rgba.buffer]);
        pending = [];
      }
      last = performance.now();
      return !stop;
    },
  };
}

/** One layer's representation; posts its progress, final figures, PNG and CSV. */
async function invertLayer(
  model: Model,
  target: ImageTensor,
  layer: number,
  job: Job,
  hooks: Hooks,
): Promise<LayerEntry> {
  const size = target.height;
  hooks.post({ type: "begin", layer });
  let before = randomStart(3 * size * size, job.settings.seed);
  const clock = stepClock(job, hooks, layer, invertPlot);
  const onStep = (i: StepInfo) => {
    const row: Row = {
      step: i.step,
      loss: i.loss,
      embedding_distance: i.embeddingDistance,
      input_distance: i.inputDistance,
      noise_baseline: i.noiseBaseline,
      below_noise_baseline: i.embeddingDistance < i.noiseBaseline ? 1 : 0,
      psnr: psnr(before, target.data),
      ssim: ssim(before, target.data, size),
      lr: i.lr,
      sigma: i.sigma,
    };
    before = i.image.slice();
    return clock.step(row, i.step, i.steps, () => toFrame(i.image, size));
  };
  const r = await invert(model, target.data, {
    layer,
    steps: job.steps,
    seed: job.settings.seed,
    onStep,
  });
  const entry: LayerEntry = {
    layer,
    name: model.manifest.layers[layer].name,
    final: { ...r.final, ssim: ssim(r.image.data, target.data, size) },
    noiseBaseline: r.noiseBaseline,
    criterionStep: r.criterionStep,
    msPerStep: median(clock.times),
    backend: model.backend,
  };
  const png = encodePng(r.image);
  hooks.post({
    type: "layerDone",
    layer,
    entry,
    png,
    csv: toCsv(INVERT_COLUMNS, clock.rows),
  }, [png.buffer as ArrayBuffer]);
  return entry;
}

/** Generate mode: the class's image, with the class the model reads in it. */
async function generateClass(
  model: Model,
  job: Job,
  hooks: Hooks,
): Promise<GenerateEntry> {
  const g = job.generate!;
  hooks.post({ type: "begin", layer: -1 });
  const clock = stepClock(job, hooks, -1, generatePlot);
  const onStep = (i: GenerateStepInfo) => {
    const row: Row = {
      step: i.step,
      loss: i.loss,
      logit: i.logit,
      probability: i.probability,
      lr: i.lr,
      sigma: i.sigma,
      crop_y: i.crop?.[0] ?? null,
      crop_x: i.crop?.[1] ?? null,
    };
    return clock.step(row, i.step, i.steps, () => toFrame(i.image, i.size));
  };
  const r = await generate(model, g.index, {
    steps: job.steps,
    jitterAfter: Math.round(job.steps / 2),
    canvasSize: g.preset.canvasSize,
    lr: g.preset.lr,
    sigma: g.preset.sigma,
    seed: job.settings.seed,
    onStep,
  });
  const logits = (await model.forward(r.image, { layer: "logits" })).data;
  const top = logits.indexOf(Math.max(...logits));
  const sum = logits.reduce((t, v) => t + Math.exp(v - logits[top]), 0);
  const names = model.manifest.categories;
  const entry: GenerateEntry = {
    class: { index: g.index, name: g.name },
    final: r.final,
    predicted: {
      index: top,
      name: names?.[top] ?? String(top),
      probability: 1 / sum,
    },
    msPerStep: median(clock.times),
    backend: model.backend,
  };
  const png = encodePng(r.image);
  hooks.post({
    type: "layerDone",
    layer: -1,
    entry,
    png,
    csv: toCsv(GENERATE_COLUMNS, clock.rows),
  }, [png.buffer as ArrayBuffer]);
  return entry;
}

/**
 * Runs a job: the strip's layers one after the other (invert), a class's
 * image (generate), or web/check.ts's figures (`check`), posting progress to
 * `hooks`; returns what `#result` shows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ModelCache, runJob } from "./engine.ts";
 * import { DEFAULTS } from "./settings.ts";
 *
 * const settings = { ...DEFAULTS, model: "tiny", layers: [1, 2], backend: "wasm" as const };
 * const job = {
 *   settings, modelUrl: "tests/fixtures/tiny_vit", weights: "fixture", ablations: [], swaps: [],
 *   steps: 4, every: 2, image: new URL("../assets/chelsea.png", import.meta.url).href,
 * };
 * const cache = new ModelCache();
 * const r = await runJob(job, { post() {}, stopped: () => false }, cache);
 * assert.deepEqual(r.layers.map((l) => [l.layer, l.final.steps]), [[1, 4], [2, 4]]);
 * await cache.release();
 * ```
 */
export async function runJob(
  job: Job,
  hooks: Hooks,
  cache: ModelCache,
): Promise<RunResult> {
  const { model: base, note } = await cache.get(job, hooks);
  const model = base.withAblations(job.ablations);
  hooks.post({
    type: "loaded",
    backend: model.backend,
    note,
    weights: model.weights,
  });
  const result: RunResult = {
    mode: job.settings.check ? "check" : job.settings.mode,
    model: job.settings.model,
    weights: model.weights,
    backend: model.backend,
    backendNote: note,
    settings: job.settings,
    layers: [],
    stopped: false,
  };
  if (job.settings.check) {
    result.check = await checkFigures(model, job.settings.layers[0]);
    return result;
  }
  if (job.generate) {
    result.generate = await generateClass(model, job, hooks);
    result.stopped = result.generate.final.steps < job.steps;
    return result;
  }
  const target = await targetImage(job, model.manifest.image_size);
  const frame = toFrame(target.data, target.height, target.width);
  hooks.post({ type: "target", frame }, [frame.rgba.buffer]);
  for (const layer of job.settings.layers) {
    const entry = await invertLayer(model, target, layer, job, hooks);
    result.layers.push(entry);
    if (hooks.stopped() || entry.final.steps < job.steps) {
      result.stopped = true;
      break;
    }
  }
  return result;
}
