/**
 * Parameterizations of the optimization loop: where the optimized pixels live
 * and which image each step starts from. {@linkcode imageParam} is the image
 * itself (layer representation); {@linkcode canvasParam} is input
 * generation's canvas: the model-sized image until `enlargeAt`, then the
 * image enlarged to a canvas. Which part of it a step sees is the
 * {@linkcode jitter} transform's choice (transform.ts);
 * {@linkcode jitterParam} is the two together, for callers that step the
 * views themselves.
 *
 * @module
 */

import { Rng } from "../model/mod.ts";
import { resizeBilinear } from "../io/mod.ts";
import { jitter } from "./transform.ts";

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

/** Settings of {@linkcode canvasParam}. */
export interface CanvasSettings {
  /** The model's image size S. */
  size: number;
  /** Side of the enlarged canvas (≥ S). */
  canvasSize: number;
  /** The step at which the image is enlarged to the canvas. */
  enlargeAt: number;
}

/** {@linkcode canvasParam}'s parameterization, which also tells whether the image was enlarged. */
export interface CanvasParam extends Parameterization {
  /** The canvas once enlarged, else null. */
  readonly canvas: Float32Array | null;
}

/**
 * Input generation's pixels: a model-sized image until step `enlargeAt`,
 * where it is enlarged (bilinear) to `canvasSize`; every step sees the whole
 * image (a {@linkcode jitter} transform then takes its window) and replaces
 * it. `start` is model-sized (a run that starts at or before `enlargeAt`) or
 * a canvas (one that resumes at or after it); `step` is the run's first step.
 *
 * @example
 * ```ts
 * import { canvasParam } from "./param.ts";
 * import assert from "node:assert/strict";
 * const p = canvasParam(new Float32Array(3 * 4 * 4).fill(0.5), 0, {
 *   size: 4, canvasSize: 6, enlargeAt: 1,
 * });
 * assert.equal(p.view(0).image.length, 3 * 4 * 4);
 * assert.equal(p.view(1).image.length, 3 * 6 * 6); // enlarged
 * assert.deepEqual([p.side, p.canvas?.length], [6, 3 * 6 * 6]);
 * ```
 */
export function canvasParam(
  start: Float32Array,
  step: number,
  s: CanvasSettings,
): CanvasParam {
  const { size, canvasSize, enlargeAt } = s;
  let small: Float32Array | null = null;
  let canvas: Float32Array | null = null;
  if (start.length === 3 * size * size && step <= enlargeAt) {
    small = start.slice();
  } else if (
    start.length === 3 * canvasSize * canvasSize && step >= enlargeAt
  ) {
    canvas = start.slice();
  } else {
    throw new RangeError(
      `Invalid resume image of ${start.length} values at step ${step}: expected ${
        step <= enlargeAt
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
      if (k === enlargeAt && small) {
        const image = {
          data: small,
          channels: 3 as const,
          height: size,
          width: size,
        };
        canvas = resizeBilinear(image, canvasSize, canvasSize).data;
        small = null;
      }
      return { image: canvas ?? small!, crop: null };
    },
    update(_view, next) {
      if (canvas) canvas = next;
      else small = next;
    },
  };
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
 * A {@linkcode canvasParam} whose views are already jittered: from step
 * `jitterAfter` each view is the crop at `cropPosition(step)`, and an update
 * writes the crop back into a copy of the canvas. The loop does the same
 * with a `canvasParam` and a {@linkcode jitter} transform; this form is for
 * callers that step views themselves.
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
  const inner = canvasParam(start, step, {
    size,
    canvasSize,
    enlargeAt: jitterAfter,
  });
  const j = jitter({
    size,
    from: jitterAfter,
    position: (k) => s.cropPosition(k),
  });
  return {
    get data() {
      return inner.data;
    },
    get side() {
      return inner.side;
    },
    get canvas() {
      return inner.canvas;
    },
    view(k) {
      const whole = inner.view(k);
      const w = j.view(whole.image, inner.side, k);
      return { image: w.image, crop: w.at };
    },
    update(view, next) {
      const w = { image: view.image, side: size, at: view.crop };
      inner.update(view, j.put(inner.data, inner.side, w, next));
    },
  };
}
