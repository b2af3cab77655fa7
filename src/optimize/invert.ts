/**
 * The essay's layer-representation procedure: start from noise and run plain
 * gradient steps on the image so that a layer's output matches the output of a
 * target image, blurring after each step. A configuration of the one loop
 * ({@linkcode optimize}): the image itself as parameterization, a
 * feature-match objective (plus an optional regularizer), and the transforms
 * `[blur, normalize]`.
 *
 * @module
 */

import type { ImageTensor } from "../io/mod.ts";
import { checkRun } from "./_checks.ts";
import { norm2 } from "./_vector.ts";
import { RUNAWAY_BOUND } from "./guard.ts";
import { type AnyObjective, partRecord, sum } from "./compose.ts";
import { type Differentiable, inputTransform, optimize } from "./loop.ts";
import { psnr } from "./metrics.ts";
import { featureMatch } from "./objective.ts";
import { imageParam, randomStart } from "./param.ts";
import { blur, type Schedule } from "./transform.ts";

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
  /** With a `regularizer`: each part's unweighted value (`loss` is then their weighted sum). */
  parts?: Record<string, number>;
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
  /**
   * An objective added to the feature match, e.g.
   * `scaled(0.01, totalVariation())`; the trace then reports each part's
   * value in `parts`.
   */
  regularizer?: AnyObjective;
}

/** Result of {@linkcode invert}. */
export interface InvertResult {
  /** The representation a_g in image space, with its shape (write it with `writePng`). */
  image: ImageTensor;
  /** The target image a ([1,3,H,W] values). */
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

/** Options of {@linkcode invertBatch}: those of {@linkcode invert}, per image where they differ. */
export interface InvertBatchOptions
  extends Omit<InvertOptions, "onStep" | "resume"> {
  /** Seed of each image's random start and noise baseline (default: `seed` for every image). */
  seeds?: readonly number[];
  /** Called after each step with one record per image; return `false` to stop early. */
  onStep?: (infos: StepInfo[]) => void | boolean | Promise<void | boolean>;
  /** Start from these images (one per target) and from this step. */
  resume?: { images: readonly Float32Array[]; step: number };
}

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
 * // the representation carries its shape, so it writes as it is
 * assert.deepEqual([r.image.channels, r.image.height, r.image.width], [3, 32, 32]);
 * const { writePng } = await import("../io/mod.ts");
 * await writePng(await Deno.makeTempFile({ suffix: ".png" }), r.image);
 * ```
 */
export async function invert(
  model: Differentiable,
  target: Float32Array,
  options: InvertOptions = {},
): Promise<InvertResult> {
  const { onStep, resume, ...rest } = options;
  const [r] = await invertBatch(model, [target], {
    ...rest,
    onStep: onStep && ((infos) => onStep(infos[0])),
    resume: resume && { images: [resume.image], step: resume.step },
  });
  return r;
}

/**
 * {@linkcode invert} of several targets (or one target under several seeds)
 * in one chain: the model runs the images as one batch (models whose manifest
 * has `batch_axis`), each image's result equal to its own `invert` run. The
 * ablations, layer and schedules are shared; a batch stops when any image's
 * numbers diverge.
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { invertBatch } from "./invert.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const target = new Float32Array(3 * 32 * 32).fill(0.4);
 * const runs = await invertBatch(model, [target, target], { layer: 1, steps: 3, seeds: [0, 1] });
 * assert.equal(runs.length, 2);
 * assert.notDeepEqual(runs[0].image, runs[1].image);
 * ```
 */
export async function invertBatch(
  model: Differentiable,
  targets: readonly Float32Array[],
  options: InvertBatchOptions = {},
): Promise<InvertResult[]> {
  const o = { ...INVERT_DEFAULTS, ...options };
  const size = model.manifest.image_size;
  const n = 3 * size * size;
  const b = targets.length;
  const { seeds, runawayBound } = checkBatch(targets, o, size);
  const resume = o.resume;
  const transform = inputTransform(model, o.normalize);
  const at = { layer: o.layer, blocks: o.blocks };
  const embed = async (x: Float32Array) =>
    (await model.forward(transform.forward(x), at)).data;
  const target = join(targets);
  const targetOut = await embed(target);
  const per = targetOut.length / b;
  const out = (a: Float32Array, i: number) =>
    b === 1 ? a : a.subarray(i * per, (i + 1) * per);
  const img = (a: Float32Array, i: number) =>
    b === 1 ? a : a.subarray(i * n, (i + 1) * n);
  // noise baseline: a' = a + N(0, 1/18)
  const noisy = join(seeds.map((s) => randomStart(n, s + 1, 0, 1 / 18)));
  for (let i = 0; i < noisy.length; i++) noisy[i] += target[i];
  const noisyOut = await embed(noisy);
  const baselines = seeds.map((_, i) =>
    norm2(out(noisyOut, i), out(targetOut, i))
  );

  const start = resume ? join(resume.images) : join(
    seeds.map((s) => randomStart(n, s)),
  );
  const param = imageParam(start, size);
  const match = featureMatch(o.layer, targetOut, { loss: o.loss });
  const onStep = o.onStep;
  const run = await optimize(model, {
    param,
    objective: o.regularizer ? sum([match, o.regularizer]) : match,
    transforms: [blur(o.sigma, o.kernelSize), transform],
    blocks: o.blocks,
    start: resume?.step ?? 0,
    steps: o.steps,
    lr: o.lr,
    runawayBound,
    record: (s): TraceRow[] =>
      targets.map((t, i) => ({
        step: s.step,
        loss: b === 1 ? s.value : s.values![i],
        embeddingDistance: norm2(out(s.output.data, i), out(targetOut, i)),
        inputDistance: norm2(img(s.view.image, i), t),
        lr: s.lr,
        sigma: s.sigma,
        ...(s.parts && { parts: partRecord(s.parts, b === 1 ? undefined : i) }),
      })),
    onStep: onStep &&
      ((rows, p) =>
        onStep(rows.map((row, i) => ({
          ...row,
          steps: o.steps,
          image: b === 1 ? p.data : img(p.data, i).slice(),
          noiseBaseline: baselines[i],
        })))),
  });
  const finalOut = await embed(param.data);
  return targets.map((t, i) => {
    const data = b === 1 ? param.data : img(param.data, i).slice();
    const image: ImageTensor = { data, channels: 3, height: size, width: size };
    const trace = run.trace.map((rows) => rows[i]);
    const embeddingDistance = norm2(out(finalOut, i), out(targetOut, i));
    const below = trace.find((r) => r.embeddingDistance < baselines[i]);
    const criterionStep = below?.step ??
      (embeddingDistance < baselines[i] ? run.next : null);
    return {
      image,
      target: t,
      trace,
      noiseBaseline: baselines[i],
      criterionStep,
      final: {
        embeddingDistance,
        inputDistance: norm2(data, t),
        psnr: psnr(data, t),
        steps: run.next,
      },
    };
  });
}

/** Fails on bad targets, seeds or resume images, naming the value and what is valid. */
function checkBatch(
  targets: readonly Float32Array[],
  o: InvertBatchOptions & {
    seed: number;
    steps: number;
    lr: Schedule;
    sigma: Schedule;
  },
  size: number,
): { seeds: readonly number[]; runawayBound: number } {
  const n = 3 * size * size;
  const b = targets?.length;
  if (!Array.isArray(targets) || b === 0) {
    throw new RangeError(
      `Invalid targets "${targets}": expected an array of one or more images`,
    );
  }
  const which = (i: number) => b > 1 ? ` ${i}` : "";
  const check = (what: string, images: readonly Float32Array[]) =>
    images.forEach((t, i) => {
      if (!(t instanceof Float32Array) || t.length !== n) {
        throw new RangeError(
          `Invalid ${what}${
            which(i)
          } of ${t?.length} values: expected 3x${size}x${size} = ${n}`,
        );
      }
    });
  check("target image", targets);
  const seeds = o.seeds ?? targets.map(() => o.seed);
  if (seeds.length !== b || !seeds.every(Number.isInteger)) {
    throw new RangeError(
      `Invalid seeds [${seeds}]: expected one seed per image (${b}), integers`,
    );
  }
  const runawayBound = o.runawayBound ?? RUNAWAY_BOUND;
  const resume = o.resume;
  if (resume && resume.images?.length !== b) {
    throw new RangeError(
      `Invalid resume of ${resume.images?.length} images: expected one per target (${b})`,
    );
  }
  if (resume) check("resume image", resume.images);
  checkRun({
    ...o,
    runawayBound,
    resume: resume && { image: join(resume.images), step: resume.step },
  });
  return { seeds, runawayBound };
}

/** The images one after another (the array itself for one). */
function join(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  parts.forEach((p, i) => all.set(p, i * p.length));
  return all;
}
