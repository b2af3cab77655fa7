/**
 * The essay's layer-representation procedure: start from noise and run plain
 * gradient steps on the image so that a layer's output matches the output of a
 * target image, blurring after each step.
 *
 * @module
 */

import type { Model, Tensor } from "./model.ts";
import { featureMatch } from "./objective.ts";
import { Rng } from "./rng.ts";
import { gaussianBlur, type Schedule, scheduleAt } from "./transform.ts";

/** One row of a run's trace. */
export interface TraceRow {
  /** Step index (0-based; the distances are those of the image before this step's update). */
  step: number;
  /** Objective value. */
  loss: number;
  /** ‖O_L(a) − O_L(a_g)‖₂. */
  embeddingDistance: number;
  /** ‖a − a_g‖₂ (image space). */
  inputDistance: number;
  /** Learning rate used at this step. */
  lr: number;
  /** Blur σ used after this step. */
  sigma: number;
}

/** What {@linkcode invert} reports at each step. */
export interface StepInfo extends TraceRow {
  /** Total steps of the run. */
  steps: number;
  /** The current image a_g ([1,3,H,W], image space; do not modify). */
  image: Float32Array;
}

/** Options of {@linkcode invert}. */
export interface InvertOptions {
  /** Layer to represent: 0 = input processing, 1..N = encoder block (default 4). */
  layer?: number;
  /** Encoder blocks to apply (default 1..layer); `[L]` represents block L alone. */
  blocks?: readonly number[];
  /** Gradient steps (default 1500, as the essay). */
  steps?: number;
  /** Learning rate schedule (default 0.05 → 0.005 ... see DEFAULTS). */
  lr?: Schedule;
  /** Blur σ schedule (default 2.4 → 0). */
  sigma?: Schedule;
  /** Blur kernel size (default 3). */
  kernelSize?: number;
  /** Feature loss (default "l1", as the essay's code). */
  loss?: "l1" | "l2";
  /** Normalize the image with the weights' mean/std before the model (default false, as the essay's code). */
  normalize?: boolean;
  /** Seed of the random start and the noise baseline (default 0). */
  seed?: number;
  /** Called after each step; return `false` to stop early. */
  onStep?: (info: StepInfo) => void | boolean | Promise<void | boolean>;
  /** Start from this image instead of noise (for resuming), and from this step. */
  resume?: { image: Float32Array; step: number };
}

/** Result of {@linkcode invert}. */
export interface InvertResult {
  /** The representation a_g, [1,3,H,W] in image space. */
  image: Float32Array;
  /** The target image a. */
  target: Float32Array;
  /** Trace of every step. */
  trace: TraceRow[];
  /** ‖O_L(a) − O_L(a′)‖₂ with a′ = a + N(0, 1/18): the essay's noise baseline. */
  noiseBaseline: number;
  /** First step whose embedding distance is under the noise baseline, or null. */
  criterionStep: number | null;
  /** Final figures, measured on the returned image. */
  final: {
    embeddingDistance: number;
    inputDistance: number;
    psnr: number;
    steps: number;
  };
}

/** Default settings of {@linkcode invert}. */
export const INVERT_DEFAULTS = {
  layer: 4,
  steps: 1500,
  lr: { start: 0.05, end: 0.005 } as Schedule,
  sigma: { start: 2.4, end: 0 } as Schedule,
  kernelSize: 3,
  loss: "l1" as const,
  normalize: false,
  seed: 0,
};

/**
 * Samples the essay's random start a_0 ~ N(0.7, 1/20), one value per pixel.
 *
 * @example
 * ```ts
 * import { randomStart } from "./render.ts";
 * const a0 = randomStart(3 * 8 * 8, 0);
 * ```
 */
export function randomStart(
  size: number,
  seed: number,
  mean = 0.7,
  std = 1 / 20,
): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = mean + std * rng.normal();
  return out;
}

function norm2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/**
 * Peak signal-to-noise ratio (dB) of `x` against `ref`, both in [0,1] (x clamped).
 *
 * @example
 * ```ts
 * import { psnr } from "./render.ts";
 * console.log(psnr(new Float32Array([0.5, 0.5]), new Float32Array([0.5, 0.6]))); // ≈ 23
 * ```
 */
export function psnr(x: Float32Array, ref: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.min(1, Math.max(0, x[i]));
    s += (v - ref[i]) ** 2;
  }
  const mse = s / x.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

/** Maps an image-space array into the model's input space (and gradients back). */
function modelSpace(model: Model, normalize: boolean) {
  const { mean, std } = model.manifest.input;
  const size = model.manifest.image_size;
  const plane = size * size;
  return {
    toModel(a: Float32Array): Float32Array {
      if (!normalize) return a;
      const out = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) {
        const c = Math.floor(i / plane);
        out[i] = (a[i] - mean[c]) / std[c];
      }
      return out;
    },
    gradToImage(g: Float32Array): Float32Array {
      if (!normalize) return g;
      for (let i = 0; i < g.length; i++) g[i] /= std[Math.floor(i / plane)];
      return g;
    },
  };
}

/**
 * One plain gradient step of the representation procedure: a ← blur(a − lr·∇a),
 * returning the objective's value and the model output before the update.
 * This is the unit the PyTorch step fixture checks.
 *
 * @example
 * ```ts
 * import { featureMatch, invertStep, loadModel } from "../mod.ts";
 * const model = await loadModel("weights/vit_b_32");
 * const a = new Float32Array(3 * 224 * 224).fill(0.5);
 * const target = await model.forward(a.map((v) => v + 0.1), { layer: 1 });
 * const r = await invertStep(model, a, featureMatch(1, target, { loss: "l1" }), 0.01, 1.0);
 * ```
 */
export async function invertStep(
  model: Model,
  a: Float32Array,
  objective: ReturnType<typeof featureMatch>,
  lr: number,
  sigma: number,
  options: {
    kernelSize?: number;
    normalize?: boolean;
    blocks?: readonly number[];
  } = {},
): Promise<{ image: Float32Array; value: number; output: Tensor }> {
  const size = model.manifest.image_size;
  const space = modelSpace(model, options.normalize ?? false);
  const r = await model.inputGradient(space.toModel(a), objective, {
    blocks: options.blocks,
  });
  const g = space.gradToImage(r.grad);
  const next = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) next[i] = a[i] - lr * g[i];
  const image = gaussianBlur(
    next,
    3,
    size,
    size,
    options.kernelSize ?? 3,
    sigma,
  );
  return { image, value: r.value, output: r.output };
}

/**
 * Layer representation (the essay's inversion): finds an image a_g whose layer
 * output matches that of `target` by plain gradient steps from noise.
 *
 * @example
 * ```ts
 * import { invert, loadModel } from "../mod.ts";
 * const model = await loadModel("weights/vit_b_32");
 * const target = new Float32Array(3 * 224 * 224).fill(0.4);
 * const r = await invert(model, target, { layer: 1, steps: 5 });
 * console.log(r.final.psnr);
 * ```
 */
export async function invert(
  model: Model,
  target: Float32Array,
  options: InvertOptions = {},
): Promise<InvertResult> {
  const o = { ...INVERT_DEFAULTS, ...options };
  const size = model.manifest.image_size;
  const n = 3 * size * size;
  if (!(target instanceof Float32Array) || target.length !== n) {
    throw new RangeError(
      `Invalid target image of ${target?.length} values: expected 3x${size}x${size} = ${n}`,
    );
  }
  if (!Number.isInteger(o.steps) || o.steps < 1) {
    throw new RangeError(
      `Invalid steps "${o.steps}": expected a positive integer`,
    );
  }
  for (const [name, s] of [["lr", o.lr], ["sigma", o.sigma]] as const) {
    if (
      !(s.start >= 0 && s.end >= 0 && Number.isFinite(s.start) &&
        Number.isFinite(s.end))
    ) {
      throw new RangeError(
        `Invalid ${name} "${s.start}:${s.end}": expected non-negative finite numbers`,
      );
    }
  }
  const space = modelSpace(model, o.normalize);
  const blocks = o.blocks;
  const targetOut = await model.forward(space.toModel(target), {
    layer: o.layer,
    blocks,
  });
  const objective = featureMatch(o.layer, targetOut.data, { loss: o.loss });
  // noise baseline: a' = a + N(0, 1/18)
  const noisy = randomStart(n, o.seed + 1, 0, 1 / 18);
  for (let i = 0; i < n; i++) noisy[i] += target[i];
  const noisyOut = await model.forward(space.toModel(noisy), {
    layer: o.layer,
    blocks,
  });
  const noiseBaseline = norm2(noisyOut.data, targetOut.data);

  let a = o.resume ? o.resume.image.slice() : randomStart(n, o.seed);
  const trace: TraceRow[] = [];
  let criterionStep: number | null = null;
  let step = o.resume?.step ?? 0;
  for (; step < o.steps; step++) {
    const lr = scheduleAt(o.lr, step, o.steps);
    const sigma = scheduleAt(o.sigma, step, o.steps);
    const r = await invertStep(model, a, objective, lr, sigma, {
      kernelSize: o.kernelSize,
      normalize: o.normalize,
      blocks,
    });
    if (!Number.isFinite(r.value)) {
      throw new RangeError(
        `Loss became ${r.value} at step ${step}: lower the learning rate (--lr)`,
      );
    }
    const row: TraceRow = {
      step,
      loss: r.value,
      embeddingDistance: norm2(r.output.data, targetOut.data),
      inputDistance: norm2(a, target),
      lr,
      sigma,
    };
    trace.push(row);
    if (criterionStep === null && row.embeddingDistance < noiseBaseline) {
      criterionStep = step;
    }
    a = r.image;
    if (o.onStep) {
      const go = await o.onStep({ ...row, steps: o.steps, image: a });
      if (go === false) {
        step++;
        break;
      }
    }
  }
  const finalOut = await model.forward(space.toModel(a), {
    layer: o.layer,
    blocks,
  });
  const embeddingDistance = norm2(finalOut.data, targetOut.data);
  if (criterionStep === null && embeddingDistance < noiseBaseline) {
    criterionStep = step;
  }
  return {
    image: a,
    target,
    trace,
    noiseBaseline,
    criterionStep,
    final: {
      embeddingDistance,
      inputDistance: norm2(a, target),
      psnr: psnr(a, target),
      steps: step,
    },
  };
}
