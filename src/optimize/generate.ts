/**
 * Input generation (class visualization) as a configuration of the one loop
 * ({@linkcode optimize}): the canvas as parameterization
 * ({@linkcode canvasParam}), |C − O_i| as objective (plus an optional
 * regularizer), and the transforms `[jitter, blur, normalize]`.
 *
 * @module
 */

import { type ImageTensor, resizeBilinear } from "../io/mod.ts";
import { checkRun } from "./_checks.ts";
import { softmaxAt } from "./_vector.ts";
import { RUNAWAY_BOUND } from "./guard.ts";
import { type AnyObjective, partRecord, sum } from "./compose.ts";
import { type Differentiable, inputTransform, optimize } from "./loop.ts";
import { classLogit } from "./objective.ts";
import { canvasParam, randomStart } from "./param.ts";
import { blur, cropAt, jitter, type Schedule } from "./transform.ts";

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
  /** With a `regularizer`: each part's unweighted value (`loss` is then their weighted sum). */
  parts?: Record<string, number>;
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
  /** Largest |pixel| before the run counts as exploded (default {@linkcode RUNAWAY_BOUND}). */
  runawayBound?: number;
  /** Called after each step; return `false` to stop early. */
  onStep?: (info: GenerateStepInfo) => void | boolean | Promise<void | boolean>;
  /** Continue from a snapshot: its image (model-sized or canvas) and next step. */
  resume?: { image: Float32Array; step: number };
  /** Crop corner per jittered step (default {@linkcode cropAt} with the seed). */
  cropPosition?: (step: number) => [number, number];
  /**
   * An objective added to |C − O_i| (e.g. `scaled(0.01, totalVariation())`);
   * the trace then reports each part's value in `parts`.
   */
  regularizer?: AnyObjective;
}

/** Result of {@linkcode generate}. */
export interface GenerateResult {
  /** The generated image at the model's size (the canvas shrunk, after jitter), with its shape. */
  image: ImageTensor;
  /** The enlarged canvas with its shape, or null when the run ended before jitter. */
  canvas: ImageTensor | null;
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

function checkGenerate(
  index: number,
  classes: number,
  size: number,
  o: typeof GENERATE_DEFAULTS,
): void {
  if (!Number.isInteger(index) || index < 0 || index >= classes) {
    throw new RangeError(
      `Invalid class index "${index}": expected 0..${classes - 1}`,
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
}

/**
 * Input generation (class visualization): gradient steps on noise that pull the
 * logit of class `index` towards a large constant, blurring after each step;
 * after `jitterAfter` steps the image is enlarged to `canvasSize` and each step
 * updates a random model-sized crop (the essay's positional jitter).
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { generate } from "./generate.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const r = await generate(model, 3, { steps: 10, jitterAfter: 5, canvasSize: 48 });
 * assert.equal(r.canvas?.data.length, 3 * 48 * 48);
 * assert.deepEqual([r.image.height, r.image.width], [32, 32]);
 * assert.ok(r.final.probability > 0 && r.final.probability < 1);
 * ```
 */
export async function generate(
  model: Differentiable,
  index: number,
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const o = { ...GENERATE_DEFAULTS, ...options };
  const size = model.manifest.image_size;
  checkGenerate(index, model.manifest.num_classes, size, o);
  const runawayBound = o.runawayBound ?? RUNAWAY_BOUND;
  checkRun({ ...o, runawayBound });
  const logit = classLogit(index, { constant: o.constant });
  const objective = o.regularizer ? sum([logit, o.regularizer]) : logit;
  const cropPosition = o.cropPosition ??
    ((k: number) => cropAt(o.seed, k, o.canvasSize, size));
  const start = o.resume?.step ?? 0;
  const param = canvasParam(
    o.resume?.image ?? randomStart(3 * size * size, o.seed),
    start,
    { size, canvasSize: o.canvasSize, enlargeAt: o.jitterAfter },
  );
  const transform = inputTransform(model, o.normalize);
  const onStep = o.onStep;
  const run = await optimize(model, {
    param,
    objective,
    transforms: [
      jitter({ size, from: o.jitterAfter, position: (k) => cropPosition(k) }),
      blur(o.sigma, o.kernelSize),
      transform,
    ],
    start,
    steps: o.steps,
    lr: o.lr,
    runawayBound,
    record: (s): GenerateRow => ({
      step: s.step,
      loss: s.value,
      logit: s.output.data[index],
      probability: softmaxAt(s.output.data, index),
      lr: s.lr,
      sigma: s.sigma,
      crop: s.view.crop,
      ...(s.parts && { parts: partRecord(s.parts) }),
    }),
    onStep: onStep &&
      ((row, p) =>
        onStep({ ...row, steps: o.steps, image: p.data, size: p.side })),
  });
  const canvas: ImageTensor | null = param.canvas && {
    data: param.canvas,
    channels: 3,
    height: o.canvasSize,
    width: o.canvasSize,
  };
  const image: ImageTensor = canvas
    ? resizeBilinear(canvas, size, size)
    : { data: param.data, channels: 3, height: size, width: size };
  const logits = await model.forward(transform.forward(image.data), {
    layer: "logits",
  });
  return {
    image,
    canvas,
    canvasSize: o.canvasSize,
    trace: run.trace,
    final: {
      logit: logits.data[index],
      probability: softmaxAt(logits.data, index),
      steps: run.next,
    },
  };
}
