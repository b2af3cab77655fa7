/**
 * What the benchmarks share: the timed step (forward to block L, an L2 feature
 * loss, the VJP chain back to the image) and its median.
 *
 * @module
 */
import { featureMatch, type Model } from "../mod.ts";

/**
 * A command-line option that must be an integer ≥ 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { positiveInt } from "./_bench.ts";
 * assert.equal(positiveInt("repeats", "9"), 9);
 * assert.throws(() => positiveInt("repeats", "0"), /--repeats "0": expected an integer ≥ 1/);
 * ```
 */
export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Invalid --${name} "${value}": expected an integer ≥ 1`,
    );
  }
  return n;
}

/**
 * The median of `xs` (the mean of the middle two for an even count).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { median } from "./_bench.ts";
 * assert.equal(median([3, 1, 2]), 2);
 * assert.equal(median([4, 1, 2, 3]), 2.5);
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) {
    throw new RangeError("median of no numbers: give at least one");
  }
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Options of {@linkcode timeStep}. */
export interface StepOptions {
  /** Encoder (block) whose output the loss compares. */
  layer: number;
  /** Images per step. */
  batch: number;
  /** Timed steps (the median is taken). */
  repeats: number;
  /** Untimed steps first (default 2). */
  warmup?: number;
}

/**
 * Times `model.inputGradient` for an L2 feature-match loss at `layer` on a
 * fixed deterministic batch whose target is its own output plus 0.1 — the step
 * `deno task bench` and `tools/gpu_bench.ts` time. Returns the milliseconds of
 * each timed step; the gradient is read back to the CPU inside each step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "../mod.ts";
 * import { median, timeStep } from "./_bench.ts";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture", backend: "wasm" });
 * const ms = await timeStep(model, { layer: 1, batch: 1, repeats: 3, warmup: 1 });
 * assert.equal(ms.length, 3);
 * assert.ok(median(ms) > 0);
 * await model.release();
 * ```
 */
export async function timeStep(
  model: Model,
  options: StepOptions,
): Promise<number[]> {
  const { layer, batch, repeats, warmup = 2 } = options;
  const size = model.manifest.image_size;
  const x = new Float32Array(batch * 3 * size * size).map((_, i) =>
    (i % 97) / 97
  );
  await model.prepare(layer, { gradient: true });
  const target = await model.forward(x, { layer });
  const obj = featureMatch(layer, target.data.map((v) => v + 0.1));
  const times: number[] = [];
  for (let i = 0; i < warmup + repeats; i++) {
    const t0 = performance.now();
    await model.inputGradient(x, obj);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return times;
}
