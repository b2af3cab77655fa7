/**
 * The essay's layer-representation procedure: start from noise and run plain
 * gradient steps on the image so that a layer's output matches the output of a
 * target image, blurring after each step. A configuration of the one loop
 * ({@linkcode optimize}): the image itself as parameterization, a
 * feature-match objective, the weights' normalization as transform.
 *
 * @module
 */

import { checkRun } from "./_checks.ts";
import { norm2 } from "./_vector.ts";
import { RUNAWAY_BOUND } from "./guard.ts";
import { type Differentiable, inputTransform, optimize } from "./loop.ts";
import { psnr } from "./metrics.ts";
import { featureMatch } from "./objective.ts";
import { imageParam, randomStart } from "./param.ts";
import type { Schedule } from "./transform.ts";

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
  /** Learning rate schedule (default 0.01 → 0.001, see {@linkcode INVERT_DEFAULTS}). */
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
  /** Largest |pixel| before the run counts as exploded (default {@linkcode RUNAWAY_BOUND}). */
  runawayBound?: number;
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
 * Layer representation (the essay's inversion): finds an image a_g whose layer
 * output matches that of `target` by plain gradient steps from noise.
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { invert } from "./invert.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const target = new Float32Array(3 * 32 * 32).fill(0.4);
 * const r = await invert(model, target, { layer: 1, steps: 5 });
 * assert.equal(r.trace.length, 5);
 * assert.ok(Number.isFinite(r.final.psnr));
 * ```
 */
export async function invert(
  model: Differentiable,
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
  const runawayBound = o.runawayBound ?? RUNAWAY_BOUND;
  checkRun({ ...o, runawayBound });
  if (o.resume && o.resume.image.length !== n) {
    throw new RangeError(
      `Invalid resume image of ${o.resume.image.length} values: expected 3x${size}x${size} = ${n}`,
    );
  }
  const transform = inputTransform(model, o.normalize);
  const at = { layer: o.layer, blocks: o.blocks };
  const embed = (x: Float32Array) => model.forward(transform.forward(x), at);
  const targetOut = (await embed(target)).data;
  // noise baseline: a' = a + N(0, 1/18)
  const noisy = randomStart(n, o.seed + 1, 0, 1 / 18);
  for (let i = 0; i < n; i++) noisy[i] += target[i];
  const noiseBaseline = norm2((await embed(noisy)).data, targetOut);

  const param = imageParam(o.resume?.image ?? randomStart(n, o.seed), size);
  const onStep = o.onStep;
  const run = await optimize(model, {
    param,
    objective: featureMatch(o.layer, targetOut, { loss: o.loss }),
    transform,
    blocks: o.blocks,
    start: o.resume?.step ?? 0,
    steps: o.steps,
    lr: o.lr,
    sigma: o.sigma,
    kernelSize: o.kernelSize,
    runawayBound,
    record: (s): TraceRow => ({
      step: s.step,
      loss: s.value,
      embeddingDistance: norm2(s.output.data, targetOut),
      inputDistance: norm2(s.view.image, target),
      lr: s.lr,
      sigma: s.sigma,
    }),
    onStep: onStep &&
      ((row, p) =>
        onStep({ ...row, steps: o.steps, image: p.data, noiseBaseline })),
  });
  const image = param.data;
  const embeddingDistance = norm2((await embed(image)).data, targetOut);
  const below = run.trace.find((r) => r.embeddingDistance < noiseBaseline);
  const criterionStep = below?.step ??
    (embeddingDistance < noiseBaseline ? run.next : null);
  return {
    image,
    target,
    trace: run.trace,
    noiseBaseline,
    criterionStep,
    final: {
      embeddingDistance,
      inputDistance: norm2(image, target),
      psnr: psnr(image, target),
      steps: run.next,
    },
  };
}
