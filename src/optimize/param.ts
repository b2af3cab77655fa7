/**
 * Parameterizations of the optimization loop: where the optimized pixels live
 * and which model-sized image each step differentiates. {@linkcode imageParam}
 * is the image itself (layer representation); {@linkcode jitterParam} is
 * input generation's canvas: the model-sized image until `jitterAfter`, then
 * an enlarged canvas of which each step sees and updates one random crop (the
 * essay's positional jitter).
 *
 * @module
 */

import { Rng } from "../model/mod.ts";
import { resizeBilinear } from "../io/mod.ts";

/** What one step differentiates: a model-sized image and where it came from. */
export interface View {
  /** The model-sized [3,S,S] image (do not modify). */
  image: Float32Array;
  /** Top-left corner [y, x] of the crop on the canvas, or null when the view is the whole image. */
  crop: [number, number] | null;
}

/** The optimized pixels of a run and the views the steps take of them. */
export interface Parameterization {
  /** The optimized pixels now, [3,side,side] (a new array after each update; do not modify). */
  readonly data: Float32Array;
  /** Side of `data`. */
  readonly side: number;
  /** The view step `step` differentiates. */
  view(step: number): View;
  /** Puts the updated (stepped and projected) view of a step back. */
  update(view: View, next: Float32Array): void;
}

/**
 * Samples the essay's random start a_0 ~ N(0.7, 1/20), one value per pixel.
 *
 * @example
 * ```ts
 * import { randomStart } from "./param.ts";
 * import assert from "node:assert/strict";
 * const a0 = randomStart(3 * 8 * 8, 0);
 * assert.equal(a0.length, 192);
 * assert.deepEqual(a0, randomStart(3 * 8 * 8, 0));
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

/**
 * The image itself as the parameterization: every step sees the whole
 * [3,side,side] image and replaces it with the updated one.
 *
 * @example
 * ```ts
 * import { imageParam } from "./param.ts";
 * import assert from "node:assert/strict";
 * const p = imageParam(new Float32Array(3 * 2 * 2).fill(0.5), 2);
 * const v = p.view(0);
 * p.update(v, v.image.map((x) => x + 0.1));
 * assert.ok(Math.abs(p.data[0] - 0.6) < 1e-6);
 * ```
 */
export function imageParam(
  start: Float32Array,
  side: number,
): Parameterization {
  let data: Float32Array = start.slice();
  return {
    get data() {
      return data;
    },
    side,
    view: () => ({ image: data, crop: null }),
    update(_view, next) {
      data = next;
    },
  };
}

/**
 * Top-left corner of step `step`'s random crop: a function of (seed, step) only,
 * so a resumed run picks the same crops as an uninterrupted one.
 *
 * @example
 * ```ts
 * import { cropAt } from "./param.ts";
 * import assert from "node:assert/strict";
 * const [y, x] = cropAt(0, 300, 600, 224);
 * assert.ok(y >= 0 && y <= 376 && x >= 0 && x <= 376);
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

/** Settings of {@linkcode jitterParam}. */
export interface JitterSettings {
  /** The model's image size S. */
  size: number;
  /** Side of the enlarged canvas (≥ S). */
  canvasSize: number;
  /** The step at which the image is enlarged to the canvas. */
  jitterAfter: number;
  /** Crop corner of each jittered step. */
  cropPosition: (step: number) => [number, number];
}

/** {@linkcode jitterParam}'s parameterization, which also tells whether jitter has begun. */
export interface JitterParam extends Parameterization {
  /** The canvas once jitter has begun, else null. */
  readonly canvas: Float32Array | null;
}

/**
 * Input generation's parameterization: a model-sized image until step
 * `jitterAfter`, where it is enlarged (bilinear) to `canvasSize`; from then
 * on each step sees the crop at `cropPosition(step)` and writes the updated
 * crop back into a copy of the canvas. `start` is model-sized (a run that
 * starts at or before `jitterAfter`) or a canvas (one that resumes at or
 * after it); `step` is the run's first step.
 *
 * @example
 * ```ts
 * import { jitterParam } from "./param.ts";
 * import assert from "node:assert/strict";
 * const p = jitterParam(new Float32Array(3 * 4 * 4).fill(0.5), 0, {
 *   size: 4, canvasSize: 6, jitterAfter: 1, cropPosition: () => [2, 1],
 * });
 * assert.equal(p.view(0).crop, null);
 * const v = p.view(1); // enlarges to the 6x6 canvas, then crops at [2, 1]
 * assert.deepEqual(v.crop, [2, 1]);
 * p.update(v, new Float32Array(3 * 4 * 4).fill(1));
 * assert.equal(p.side, 6);
 * assert.equal(p.data[0], 0.5); // outside the crop
 * assert.equal(p.data[2 * 6 + 1], 1); // inside it
 * ```
 */
export function jitterParam(
  start: Float32Array,
  step: number,
  s: JitterSettings,
): JitterParam {
  const { size, canvasSize, jitterAfter } = s;
  let small: Float32Array | null = null;
  let canvas: Float32Array | null = null;
  if (start.length === 3 * size * size && step <= jitterAfter) {
    small = start.slice();
  } else if (
    start.length === 3 * canvasSize * canvasSize && step >= jitterAfter
  ) {
    canvas = start.slice();
  } else {
    throw new RangeError(
      `Invalid resume image of ${start.length} values at step ${step}: expected ${
        step <= jitterAfter
          ? `3x${size}x${size}`
          : `3x${canvasSize}x${canvasSize}`
      }`,
    );
  }
  return {
    get data() {
      return canvas ?? small!;
    },
    get side() {
      return canvas ? canvasSize : size;
    },
    get canvas() {
      return canvas;
    },
    view(k) {
      if (k === jitterAfter && small) {
        const image = {
          data: small,
          channels: 3 as const,
          height: size,
          width: size,
        };
        canvas = resizeBilinear(image, canvasSize, canvasSize).data;
        small = null;
      }
      if (!canvas) return { image: small!, crop: null };
      const at = s.cropPosition(k);
      if (
        !(at[0] >= 0 && at[1] >= 0 && at[0] + size <= canvasSize &&
          at[1] + size <= canvasSize)
      ) {
        throw new RangeError(
          `Invalid crop [${at}] at step ${k}: expected a ${size}² window inside the canvas`,
        );
      }
      return { image: crop(canvas, canvasSize, at[0], at[1], size), crop: at };
    },
    update(view, next) {
      if (!view.crop) {
        small = next;
        return;
      }
      canvas = canvas!.slice();
      paste(canvas, canvasSize, view.crop[0], view.crop[1], next, size);
    },
  };
}
