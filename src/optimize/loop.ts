/**
 * The one optimization loop both procedures run, in the manner of lucent's
 * `render_vis`: a {@linkcode Parameterization} gives each step a model-sized
 * view; a {@linkcode Transform} maps it into the model's input (and the
 * gradient back); the {@linkcode Objective} scores the model's output; the
 * step moves the view against the gradient, the blur projects it, and the
 * parameterization takes it back. {@linkcode guardStep} checks every step's
 * numbers, the trace gets one row per step and `onStep` is called after it.
 *
 * Here an image becomes a gradient step: {@linkcode gradientStep}.
 *
 * @module
 */

import type { Model, Objective, Tensor } from "../model/mod.ts";
import { checkRun } from "./_checks.ts";
import { guardStep, RUNAWAY_BOUND } from "./guard.ts";
import type { Parameterization, View } from "./param.ts";
import {
  gaussianBlur,
  IDENTITY,
  normalizeTransform,
  type Schedule,
  scheduleAt,
  type Transform,
} from "./transform.ts";

/** What the loop needs of a model: its manifest, its forward pass and its input gradient. */
export type Differentiable = Pick<
  Model,
  "manifest" | "forward" | "inputGradient"
>;

/** Options of {@linkcode gradientStep}. */
export interface GradientStepOptions {
  /** Blur kernel size (default 3). */
  kernelSize?: number;
  /** Normalize with the weights' mean/std before the model (default true, as both procedures). */
  normalize?: boolean;
  /** The image-to-input transform; overrides `normalize` when given. */
  transform?: Transform;
  /** Encoder blocks to apply (default all up to the objective's layer). */
  blocks?: readonly number[];
}

/** Result of {@linkcode gradientStep}. */
export interface GradientStepResult {
  /** The updated image blur(a − lr·∇a). */
  image: Float32Array;
  /** The objective's value at `a`. */
  value: number;
  /** Per image of a batch, when the objective reports them (one value per image). */
  values?: number[];
  /** The gradient ∇a in image space. */
  grad: Float32Array;
  /** The model output at `a` (the objective's layer). */
  output: Tensor;
}

/**
 * The image-to-input transform of a model: its normalization with the
 * weights' mean/std, or the identity.
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { inputTransform } from "./loop.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * assert.equal(inputTransform(model, true).name, "normalize");
 * assert.equal(inputTransform(model, false).name, "identity");
 * ```
 */
export function inputTransform(
  model: Pick<Model, "manifest">,
  normalize: boolean,
): Transform {
  return normalize
    ? normalizeTransform(model.manifest.input, model.manifest.image_size)
    : IDENTITY;
}

/**
 * One plain gradient step of both procedures: a ← blur(a − lr·∇a), returning
 * the objective's value, the gradient and the model output before the update.
 * This is the unit the PyTorch step fixtures check.
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { featureMatch } from "./objective.ts";
 * import { gradientStep } from "./loop.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const a = new Float32Array(3 * 32 * 32).fill(0.5);
 * const target = await model.forward(a.map((v) => v + 0.1), { layer: 1 });
 * const r = await gradientStep(model, a, featureMatch(1, target), 0.01, 1.0);
 * assert.equal(r.image.length, a.length);
 * assert.ok(r.value > 0);
 * ```
 */
export async function gradientStep(
  model: Differentiable,
  a: Float32Array,
  objective: Objective,
  lr: number,
  sigma: number,
  options: GradientStepOptions = {},
): Promise<GradientStepResult> {
  const size = model.manifest.image_size;
  const t = options.transform ??
    inputTransform(model, options.normalize ?? true);
  const r = await model.inputGradient(t.forward(a), objective, {
    blocks: options.blocks,
  });
  const grad = t.vjp(r.grad);
  const next = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) next[i] = a[i] - lr * grad[i];
  const k = options.kernelSize ?? 3;
  // a batch [B,3,H,W] blurs as 3·B planes
  const image = gaussianBlur(
    next,
    a.length / (size * size),
    size,
    size,
    k,
    sigma,
  );
  return { image, value: r.value, values: r.values, grad, output: r.output };
}

/** What the loop knows about a finished step, for the trace row. */
export interface StepRecord {
  /** The step (0-based). */
  step: number;
  /** Its learning rate. */
  lr: number;
  /** Its blur σ. */
  sigma: number;
  /** The objective's value before the update. */
  value: number;
  /** Per image of a batch, when the objective reports them. */
  values?: number[];
  /** The model output before the update. */
  output: Tensor;
  /** The view the step differentiated (its image is the one before the update). */
  view: View;
}

/** Options of {@linkcode optimize}. */
export interface LoopOptions<Row> {
  /** Where the pixels live and what each step sees. */
  param: Parameterization;
  /** What the steps minimize. */
  objective: Objective;
  /** Image → model input (default: the weights' normalization, as everywhere). */
  transform?: Transform;
  /** Encoder blocks to apply (default all up to the objective's layer). */
  blocks?: readonly number[];
  /** First step to run: 0 (default), or a resumed run's next step. */
  start?: number;
  /** Total steps; the schedules run over them. */
  steps: number;
  /** Learning-rate schedule. */
  lr: Schedule;
  /** Blur σ schedule (the projection after each step). */
  sigma: Schedule;
  /** Blur kernel size (default 3). */
  kernelSize?: number;
  /** Largest |pixel| before the run counts as exploded (default {@linkcode RUNAWAY_BOUND}). */
  runawayBound?: number;
  /** Makes a step's trace row. */
  record: (s: StepRecord) => Row;
  /** Called after each step with its row and the parameterization; return `false` to stop. */
  onStep?: (
    row: Row,
    param: Parameterization,
  ) => void | boolean | Promise<void | boolean>;
}

/** Result of {@linkcode optimize}. */
export interface LoopResult<Row> {
  /** One row per step run. */
  trace: Row[];
  /** The next step: `steps`, or one past the step `onStep` stopped at. */
  next: number;
}

/**
 * The optimization loop: for each step from `start` to `steps`, take the
 * parameterization's view, make a {@linkcode gradientStep} at the scheduled lr
 * and σ, check it with {@linkcode guardStep}, put the view back, add a trace
 * row and call `onStep`. Throws a `DivergedError` (carrying the image before
 * the failing step) when the numbers become non-finite or run away.
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { classLogit } from "./objective.ts";
 * import { imageParam, randomStart } from "./param.ts";
 * import { optimize } from "./loop.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const param = imageParam(randomStart(3 * 32 * 32, 0), 32);
 * const run = await optimize(model, {
 *   param,
 *   objective: classLogit(3, { constant: 20 }),
 *   steps: 5,
 *   lr: { start: 5, end: 5 },
 *   sigma: { start: 0.5, end: 0 },
 *   record: (s) => ({ step: s.step, logit: s.output.data[3] }),
 * });
 * assert.equal(run.trace.length, 5);
 * assert.equal(run.next, 5);
 * ```
 */
export async function optimize<Row>(
  model: Differentiable,
  o: LoopOptions<Row>,
): Promise<LoopResult<Row>> {
  const bound = o.runawayBound ?? RUNAWAY_BOUND;
  let step = o.start ?? 0;
  checkRun({ ...o, runawayBound: bound, start: step });
  const transform = o.transform ?? inputTransform(model, true);
  const trace: Row[] = [];
  for (; step < o.steps; step++) {
    const lr = scheduleAt(o.lr, step, o.steps);
    const sigma = scheduleAt(o.sigma, step, o.steps);
    const view = o.param.view(step);
    const before = o.param.data;
    const r = await gradientStep(model, view.image, o.objective, lr, sigma, {
      kernelSize: o.kernelSize,
      transform,
      blocks: o.blocks,
    });
    guardStep(step, before, r, bound);
    o.param.update(view, r.image);
    const row = o.record({
      step,
      lr,
      sigma,
      value: r.value,
      values: r.values,
      output: r.output,
      view,
    });
    trace.push(row);
    if (o.onStep && (await o.onStep(row, o.param)) === false) {
      step++;
      break;
    }
  }
  return { trace, next: step };
}
