/**
 * The essay's layer-representation procedure: start from noise and run plain
 * gradient steps on the image so that a layer's output matches the output of a
 * target image, blurring after each step.
 *
 * @module
 */

import type { Model, Tensor } from "../model/mod.ts";
import { classLogit, featureMatch, type Objective } from "./objective.ts";
import { Rng } from "../model/mod.ts";
import { resizeBilinear } from "../io/mod.ts";
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
  /** ‖O_L(a) − O_L(a′)‖₂, the essay's noise baseline (the same every step). */
  noiseBaseline: number;
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
  /** Normalize the image with the weights' mean/std before the model (default true; false is the essay's code). */
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
  // tuned on untrained ViT-B/32 (normalized input, L1 loss, 150 steps): among starts of
  // 0.001…0.3, 0.01 gave the best PSNR at layers 1, 4 and 12
  lr: { start: 0.01, end: 0.001 } as Schedule,
  sigma: { start: 2.4, end: 0 } as Schedule,
  kernelSize: 3,
  loss: "l1" as const,
  normalize: true,
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

/**
 * Thrown when a run produces NaN or ±Inf: names the step and carries the last
 * finite image, so a caller can keep it.
 *
 * @example
 * ```ts
 * import { DivergedError } from "./render.ts";
 * const e = new DivergedError(12, new Float32Array(3), "loss NaN");
 * console.log(e.step, e.message);
 * ```
 */
export class DivergedError extends RangeError {
  /** The step that produced a non-finite value. */
  readonly step: number;
  /** The image before that step. */
  readonly lastImage: Float32Array;
  /** @param step the failing step; @param lastImage the last finite image; @param what what went wrong */
  constructor(step: number, lastImage: Float32Array, what: string) {
    super(
      `Run diverged at step ${step} (${what}): lower the learning rate (--lr)`,
    );
    this.name = "DivergedError";
    this.step = step;
    this.lastImage = lastImage;
  }
}

async function guarded<T extends { value: number }>(
  step: number,
  last: Float32Array,
  fn: () => Promise<T>,
): Promise<T> {
  let r: T;
  try {
    r = await fn();
  } catch (err) {
    if (err instanceof RangeError && /became|NaN|Infinity/.test(err.message)) {
      throw new DivergedError(step, last, err.message.split(":")[0]);
    }
    throw err;
  }
  if (!Number.isFinite(r.value)) {
    throw new DivergedError(step, last, `objective ${r.value}`);
  }
  return r;
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
 * One plain gradient step of both procedures: a ← blur(a − lr·∇a), returning
 * the objective's value and the model output before the update. This is the
 * unit the PyTorch step fixtures check.
 *
 * @example
 * ```ts
 * import { featureMatch, gradientStep, loadModel } from "../../mod.ts";
 * const model = await loadModel("weights/vit_b_32");
 * const a = new Float32Array(3 * 224 * 224).fill(0.5);
 * const target = await model.forward(a.map((v) => v + 0.1), { layer: 1 });
 * const r = await gradientStep(model, a, featureMatch(1, target, { loss: "l1" }), 0.01, 1.0);
 * ```
 */
export async function gradientStep(
  model: Model,
  a: Float32Array,
  objective: Objective,
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
 * import { invert, loadModel } from "../../mod.ts";
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
    const r = await guarded(
      step,
      a,
      () =>
        gradientStep(model, a, objective, lr, sigma, {
          kernelSize: o.kernelSize,
          normalize: o.normalize,
          blocks,
        }),
    );
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
      const go = await o.onStep({
        ...row,
        steps: o.steps,
        image: a,
        noiseBaseline,
      });
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

/** One row of a generation trace. */
export interface GenerateRow {
  /** Step index. */
  step: number;
  /** |C − O_i| before this step's update. */
  loss: number;
  /** The target logit O_i. */
  logit: number;
  /** Its softmax probability over all classes. */
  probability: number;
  /** Learning rate used. */
  lr: number;
  /** Blur σ used. */
  sigma: number;
  /** Top-left corner [y, x] of the crop on the enlarged canvas, or null before jitter. */
  crop: [number, number] | null;
}

/** What {@linkcode generate} reports at each step. */
export interface GenerateStepInfo extends GenerateRow {
  /** Total steps. */
  steps: number;
  /** The current image: model-sized before jitter, the canvas after (do not modify). */
  image: Float32Array;
  /** Side of `image`. */
  size: number;
}

/** Options of {@linkcode generate}. */
export interface GenerateOptions {
  /** The constant C of |C − O_i| (default 100). */
  constant?: number;
  /** Total gradient steps (default 720: 220 at model size, then 500 jittered). */
  steps?: number;
  /** Steps at model size before jitter starts (default 220). */
  jitterAfter?: number;
  /** Side of the enlarged canvas the jittered crops come from (default 600). */
  canvasSize?: number;
  /** Learning rate schedule over the whole run. */
  lr?: Schedule;
  /** Blur σ schedule over the whole run (default 2.4 → 0). */
  sigma?: Schedule;
  /** Blur kernel size (default 3). */
  kernelSize?: number;
  /** Normalize with the weights' mean/std before the model (default true; false is the essay's code). */
  normalize?: boolean;
  /** Seed of the start and of the crop positions (default 0). */
  seed?: number;
  /** Called after each step; return `false` to stop early. */
  onStep?: (info: GenerateStepInfo) => void | boolean | Promise<void | boolean>;
  /** Continue from a snapshot: its image (model-sized or canvas) and next step. */
  resume?: { image: Float32Array; step: number };
  /** Crop corner per jittered step (default {@linkcode cropAt} with the seed). */
  cropPosition?: (step: number) => [number, number];
}

/** Result of {@linkcode generate}. */
export interface GenerateResult {
  /** The generated image at the model's size (the canvas shrunk, after jitter). */
  image: Float32Array;
  /** The enlarged canvas, or null when the run ended before jitter. */
  canvas: Float32Array | null;
  /** Side of the canvas. */
  canvasSize: number;
  /** Trace of every step. */
  trace: GenerateRow[];
  /** Logit and probability of the class for the final model-sized image. */
  final: { logit: number; probability: number; steps: number };
}

/** Default settings of {@linkcode generate}. */
export const GENERATE_DEFAULTS = {
  constant: 100,
  steps: 720,
  jitterAfter: 220,
  canvasSize: 600,
  lr: { start: 0.02, end: 0.002 } as Schedule,
  sigma: { start: 2.4, end: 0 } as Schedule,
  kernelSize: 3,
  normalize: true,
  seed: 0,
};

/**
 * Top-left corner of step `step`'s random crop: a function of (seed, step) only,
 * so a resumed run picks the same crops as an uninterrupted one.
 *
 * @example
 * ```ts
 * import { cropAt } from "./render.ts";
 * const [y, x] = cropAt(0, 300, 600, 224); // both in 0..376
 * ```
 */
export function cropAt(
  seed: number,
  step: number,
  canvas: number,
  size: number,
): [number, number] {
  const rng = new Rng((BigInt(seed) << 32n) | BigInt(step));
  const span = canvas - size + 1;
  return [Math.floor(rng.uniform() * span), Math.floor(rng.uniform() * span)];
}

function softmaxAt(logits: Float32Array, i: number): number {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let s = 0;
  for (const v of logits) s += Math.exp(v - m);
  return Math.exp(logits[i] - m) / s;
}

function crop(
  src: Float32Array,
  side: number,
  y: number,
  x: number,
  size: number,
): Float32Array {
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < size; r++) {
      const from = c * side * side + (y + r) * side + x;
      out.set(src.subarray(from, from + size), c * size * size + r * size);
    }
  }
  return out;
}

function paste(
  dst: Float32Array,
  side: number,
  y: number,
  x: number,
  patch: Float32Array,
  size: number,
): void {
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < size; r++) {
      const from = c * size * size + r * size;
      dst.set(
        patch.subarray(from, from + size),
        c * side * side + (y + r) * side + x,
      );
    }
  }
}

/**
 * Input generation (class visualization): gradient steps on noise that pull the
 * logit of class `index` towards a large constant, blurring after each step;
 * after `jitterAfter` steps the image is enlarged to `canvasSize` and each step
 * updates a random model-sized crop (the essay's positional jitter).
 *
 * @example
 * ```ts
 * import { generate, loadModel } from "../../mod.ts";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const r = await generate(model, 3, { steps: 10, jitterAfter: 5, canvasSize: 48 });
 * console.log(r.final.probability);
 * ```
 */
export async function generate(
  model: Model,
  index: number,
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const o = { ...GENERATE_DEFAULTS, ...options };
  const size = model.manifest.image_size;
  const classes = model.manifest.num_classes;
  if (!Number.isInteger(index) || index < 0 || index >= classes) {
    throw new RangeError(
      `Invalid class index "${index}": expected 0..${classes - 1}`,
    );
  }
  if (!Number.isInteger(o.steps) || o.steps < 1) {
    throw new RangeError(
      `Invalid steps "${o.steps}": expected a positive integer`,
    );
  }
  if (!Number.isInteger(o.jitterAfter) || o.jitterAfter < 0) {
    throw new RangeError(
      `Invalid jitterAfter "${o.jitterAfter}": expected a non-negative integer`,
    );
  }
  if (!Number.isInteger(o.canvasSize) || o.canvasSize < size) {
    throw new RangeError(
      `Invalid canvas size "${o.canvasSize}": expected an integer ≥ the model's image size ${size}`,
    );
  }
  const objective = classLogit(index, { constant: o.constant });
  const step0 = o.resume?.step ?? 0;
  let small: Float32Array | null = null;
  let canvas: Float32Array | null = null;
  if (o.resume) {
    const n = o.resume.image.length;
    if (n === 3 * size * size && step0 <= o.jitterAfter) {
      small = o.resume.image.slice();
    } else if (
      n === 3 * o.canvasSize * o.canvasSize && step0 >= o.jitterAfter
    ) canvas = o.resume.image.slice();
    else {
      throw new RangeError(
        `Invalid resume image of ${n} values at step ${step0}: expected ${
          step0 <= o.jitterAfter
            ? `3x${size}x${size}`
            : `3x${o.canvasSize}x${o.canvasSize}`
        }`,
      );
    }
  } else small = randomStart(3 * size * size, o.seed);
  const trace: GenerateRow[] = [];
  let step = step0;
  for (; step < o.steps; step++) {
    if (step === o.jitterAfter && small) {
      canvas = resizeBilinear(
        { data: small, channels: 3, height: size, width: size },
        o.canvasSize,
        o.canvasSize,
      )
        .data;
      small = null;
    }
    const lr = scheduleAt(o.lr, step, o.steps);
    const sigma = scheduleAt(o.sigma, step, o.steps);
    const at: [number, number] | null = canvas
      ? (o.cropPosition ?? ((k) => cropAt(o.seed, k, o.canvasSize, size)))(step)
      : null;
    if (
      at &&
      !(at[0] >= 0 && at[1] >= 0 && at[0] + size <= o.canvasSize &&
        at[1] + size <= o.canvasSize)
    ) {
      throw new RangeError(
        `Invalid crop [${at}] at step ${step}: expected a ${size}² window inside the canvas`,
      );
    }
    const current = canvas
      ? crop(canvas, o.canvasSize, at![0], at![1], size)
      : small!;
    const r = await guarded(
      step,
      canvas ?? small!,
      () =>
        gradientStep(model, current, objective, lr, sigma, {
          kernelSize: o.kernelSize,
          normalize: o.normalize,
        }),
    );
    if (canvas) {
      canvas = canvas.slice();
      paste(canvas, o.canvasSize, at![0], at![1], r.image, size);
    } else small = r.image;
    const row: GenerateRow = {
      step,
      loss: r.value,
      logit: r.output.data[index],
      probability: softmaxAt(r.output.data, index),
      lr,
      sigma,
      crop: at,
    };
    trace.push(row);
    if (o.onStep) {
      const image = canvas ?? small!;
      const go = await o.onStep({
        ...row,
        steps: o.steps,
        image,
        size: canvas ? o.canvasSize : size,
      });
      if (go === false) {
        step++;
        break;
      }
    }
  }
  const image = canvas
    ? resizeBilinear(
      { data: canvas, channels: 3, height: o.canvasSize, width: o.canvasSize },
      size,
      size,
    ).data
    : small!;
  const logits = await model.forward(
    modelSpace(model, o.normalize).toModel(image),
    { layer: "logits" },
  );
  return {
    image,
    canvas,
    canvasSize: o.canvasSize,
    trace,
    final: {
      logit: logits.data[index],
      probability: softmaxAt(logits.data, index),
      steps: step,
    },
  };
}
