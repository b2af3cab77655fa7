/**
 * The one optimization loop both procedures run, in the manner of lucent's
 * `render_vis`: a {@linkcode Parameterization} holds the pixels; a list of
 * transforms takes each step's view of them (a {@linkcode jitter} window),
 * maps it into the model's input (normalization, with its VJP) and projects
 * the stepped image (a {@linkcode blur}); the objective (a layer objective,
 * an image objective or a weighted sum, compose.ts) scores it; the step
 * moves the view against the gradient, the projections act, the views put
 * it back and the parameterization takes it. {@linkcode guardStep} checks
 * every step's numbers, the trace gets one row per step and `onStep` is
 * called after it.
 *
 * Here an image becomes a gradient step: {@linkcode gradientStep}.
 *
 * @module
 */

import type { Model, Tensor } from "../model/mod.ts";
import { checkRun } from "./_checks.ts";
import {
  type AnyObjective,
  objectiveGradient,
  type PartValue,
} from "./compose.ts";
import { guardStep, RUNAWAY_BOUND } from "./guard.ts";
import type { Parameterization, View } from "./param.ts";
import {
  type AnyTransform,
  blur,
  IDENTITY,
  isView,
  normalizeTransform,
  type Projection,
  type Schedule,
  scheduleAt,
  stages,
  type Transform,
  type ViewTransform,
  type Window,
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
  /** Each part's value, when the objective is a sum. */
  parts?: PartValue[];
  /** The gradient ∇a in image space. */
  grad: Float32Array;
  /** The model output at `a` (the objective's layer; for a sum, its first layer read). */
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
  objective: AnyObjective,
  lr: number,
  sigma: number,
  options: GradientStepOptions = {},
): Promise<GradientStepResult> {
  const t = options.transform ??
    inputTransform(model, options.normalize ?? true);
  const list = [blur({ start: sigma, end: sigma }, options.kernelSize ?? 3), t];
  const { inner } = await transformedStep(model, {
    image: a,
    side: model.manifest.image_size,
    objective,
    lr,
    transforms: list,
    step: 0,
    steps: 1,
    blocks: options.blocks,
  });
  return inner;
}

/** One step of the loop: where it starts and what it applies. */
interface StepInput {
  /** The parameterization's view (the whole image, or its own crop). */
  image: Float32Array;
  /** Side of `image`. */
  side: number;
  objective: AnyObjective;
  lr: number;
  transforms: readonly AnyTransform[];
  step: number;
  steps: number;
  blocks?: readonly number[];
}

/** What one step made: the innermost view's result and the updated image. */
interface StepOutput {
  /** The innermost view's step: its stepped and projected image, value, gradient, output. */
  inner: GradientStepResult;
  /** The innermost view before the update, and the last view's crop corner. */
  view: { image: Float32Array; at: [number, number] | null };
  /** The updated image: the innermost result projected and put back through the views. */
  next: Float32Array;
}

/**
 * One gradient step through a transform list: the views and projections in
 * list order narrow the image to the window the step sees, the maps take it
 * to the model's input; the window is stepped, a ← a − lr·∇a, then going
 * back out each projection acts on the image at its place and each view puts
 * its window back.
 */
async function transformedStep(
  model: Differentiable,
  s: StepInput,
): Promise<StepOutput> {
  const { image: outer, maps } = stages(s.transforms);
  type Level =
    | { t: ViewTransform; image: Float32Array; side: number; w: Window }
    | { t: Projection; side: number };
  const levels: Level[] = [];
  let image = s.image, side = s.side;
  let at: [number, number] | null = null;
  for (const t of outer) {
    if (!isView(t)) {
      levels.push({ t, side });
      continue;
    }
    const w = t.view(image, side, s.step);
    levels.push({ t, image, side, w });
    [image, side, at] = [w.image, w.side, w.at ?? at];
  }
  const r = await objectiveGradient(model, image, side, s.objective, {
    maps,
    blocks: s.blocks,
  });
  let next: Float32Array = new Float32Array(image.length);
  for (let i = 0; i < image.length; i++) next[i] = image[i] - s.lr * r.grad[i];
  let inner: Float32Array | undefined;
  for (let i = levels.length - 1; i >= 0; i--) {
    const l = levels[i];
    if ("w" in l) {
      inner ??= next;
      next = l.t.put(l.image, l.side, l.w, next);
    } else next = l.t.project(next, l.side, s.step, s.steps);
  }
  const stepped: GradientStepResult = {
    image: inner ?? next,
    value: r.value,
    values: r.values,
    grad: r.grad,
    output: r.output,
  };
  if (r.parts) stepped.parts = r.parts;
  return { inner: stepped, view: { image, at }, next };
}

/** What the loop knows about a finished step, for the trace row. */
export interface StepRecord {
  /** The step (0-based). */
  step: number;
  /** Its learning rate. */
  lr: number;
  /** Its blur σ (of the first projection that has one; 0 without). */
  sigma: number;
  /** The objective's value before the update. */
  value: number;
  /** Per image of a batch, when the objective reports them. */
  values?: number[];
  /** Each part's value, when the objective is a sum. */
  parts?: PartValue[];
  /** The model output before the update. */
  output: Tensor;
  /** The view the step differentiated (its image is the one before the update; `crop`: the jitter window's corner). */
  view: View;
}

/** Options of {@linkcode optimize}. */
export interface LoopOptions<Row> {
  /** Where the pixels live and what each step sees. */
  param: Parameterization;
  /** What the steps minimize: a layer objective, an image objective or a sum (compose.ts). */
  objective: AnyObjective;
  /**
   * The transforms, in order from the pixels to the model (views and
   * projections, then maps), e.g. `[jitter(…), blur(σ), normalize]`. Default:
   * `[blur(sigma, kernelSize), transform]`. When given, it replaces `sigma`,
   * `kernelSize` and `transform`, which must then be left out.
   */
  transforms?: readonly AnyTransform[];
  /** Image → model input of the default transforms (default: the weights' normalization, as everywhere). */
  transform?: Transform;
  /** Encoder blocks to apply (default all up to the objective's layer). */
  blocks?: readonly number[];
  /** First step to run: 0 (default), or a resumed run's next step. */
  start?: number;
  /** Total steps; the schedules run over them. */
  steps: number;
  /** Learning-rate schedule. */
  lr: Schedule;
  /** Blur σ schedule of the default transforms (the projection after each step); required without `transforms`. */
  sigma?: Schedule;
  /** Blur kernel size of the default transforms (default 3). */
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

/** The loop's transform list: the given one, or the default blur and map. */
function loopTransforms(
  model: Differentiable,
  o: LoopOptions<unknown>,
): readonly AnyTransform[] {
  if (!o.transforms) {
    const map = o.transform ?? inputTransform(model, true);
    return [blur(o.sigma!, o.kernelSize ?? 3), map];
  }
  const extra = (["sigma", "kernelSize", "transform"] as const).filter((k) =>
    o[k] !== undefined
  );
  if (extra.length) {
    throw new TypeError(
      `Invalid options "${
        extra.join(", ")
      }" next to "transforms": the list replaces them: expected the blur and the map in the list, e.g. transforms: [blur(sigma), normalizeTransform(…)]`,
    );
  }
  stages(o.transforms);
  return o.transforms;
}

/**
 * The optimization loop: for each step from `start` to `steps`, take the
 * parameterization's view, make a gradient step at the scheduled lr through
 * the transforms (views, the step, projections, maps; {@linkcode gradientStep}
 * is one such step with a blur and a map), check it with
 * {@linkcode guardStep}, put the view back, add a trace row and call
 * `onStep`. Throws a `DivergedError` (carrying the image before the failing
 * step) when the numbers become non-finite or run away.
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
 *
 * @example A transform list and a weighted sum: jittered crops, blurred, normalized
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { classLogit, totalVariation } from "./objective.ts";
 * import { scaled, sum } from "./compose.ts";
 * import { canvasParam, randomStart } from "./param.ts";
 * import { blur, jitter } from "./transform.ts";
 * import { inputTransform, optimize } from "./loop.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const param = canvasParam(randomStart(3 * 32 * 32, 0), 0, {
 *   size: 32, canvasSize: 40, enlargeAt: 2,
 * });
 * const run = await optimize(model, {
 *   param,
 *   objective: sum([classLogit(3), scaled(0.01, totalVariation())]),
 *   transforms: [
 *     jitter({ size: 32, from: 2 }),
 *     blur({ start: 1, end: 0 }),
 *     inputTransform(model, true),
 *   ],
 *   steps: 4,
 *   lr: { start: 0.02, end: 0.002 },
 *   record: (s) => ({ crop: s.view.crop, tv: s.parts![1].value }),
 * });
 * assert.equal(run.trace[0].crop, null);
 * assert.ok(run.trace[3].crop !== null && run.trace[3].tv > 0);
 * assert.equal(param.side, 40);
 * ```
 */
export async function optimize<Row>(
  model: Differentiable,
  o: LoopOptions<Row>,
): Promise<LoopResult<Row>> {
  const bound = o.runawayBound ?? RUNAWAY_BOUND;
  let step = o.start ?? 0;
  checkRun({
    ...o,
    sigma: o.transforms ? { start: 0, end: 0 } : o.sigma!,
    runawayBound: bound,
    start: step,
  });
  const transforms = loopTransforms(model, o as LoopOptions<unknown>);
  const blurred = stages(transforms).image.find((t): t is Projection =>
    typeof (t as Projection).sigmaAt === "function"
  );
  const trace: Row[] = [];
  for (; step < o.steps; step++) {
    const lr = scheduleAt(o.lr, step, o.steps);
    const view = o.param.view(step);
    const before = o.param.data;
    const r = await transformedStep(model, {
      image: view.image,
      side: view.crop ? model.manifest.image_size : o.param.side,
      objective: o.objective,
      lr,
      transforms,
      step,
      steps: o.steps,
      blocks: o.blocks,
    });
    guardStep(step, before, r.inner, bound);
    o.param.update(view, r.next);
    const row = o.record({
      step,
      lr,
      sigma: blurred?.sigmaAt?.(step, o.steps) ?? 0,
      value: r.inner.value,
      values: r.inner.values,
      ...(r.inner.parts ? { parts: r.inner.parts } : {}),
      output: r.inner.output,
      view: { image: r.view.image, crop: r.view.at ?? view.crop },
    });
    trace.push(row);
    if (o.onStep && (await o.onStep(row, o.param)) === false) {
      step++;
      break;
    }
  }
  return { trace, next: step };
}
