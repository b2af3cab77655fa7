/**
 * Transforms of the optimization loop, given as a list as in lucent
 * (`transforms: [jitter(…), blur(…), normalize]`), and the schedules that set
 * their strength. Three kinds, told apart by their methods:
 *
 * - views ({@linkcode jitter}): choose the part of the image a step sees and
 *   updates, and put the updated part back (the essay's positional jitter: a
 *   random model-sized crop of an enlarged canvas);
 * - projections ({@linkcode blur}): applied to the stepped image, at their
 *   place in the list (after a jitter: to the crop; torchvision's
 *   `gaussian_blur` with reflect padding, σ annealed linearly);
 * - maps ({@linkcode Transform}: {@linkcode normalizeTransform},
 *   {@linkcode IDENTITY}): differentiable maps from the image to the model's
 *   input, their gradient pulled back by their VJP. Maps come last.
 *
 * @module
 */

import { Rng } from "../model/mod.ts";

/** A value interpolated linearly from `start` (step 0) to `end` (last step). */
export interface Schedule {
  /** Value at the first step. */
  start: number;
  /** Value at the last step. */
  end: number;
}

/**
 * The value of a linear schedule at `step` of `steps` (step 0 gives `start`,
 * step `steps − 1` gives `end`).
 *
 * @example
 * ```ts
 * import { scheduleAt } from "./transform.ts";
 * import assert from "node:assert/strict";
 * assert.equal(scheduleAt({ start: 2.4, end: 0 }, 0, 5), 2.4);
 * assert.equal(scheduleAt({ start: 2.4, end: 0 }, 4, 5), 0);
 * ```
 */
export function scheduleAt(s: Schedule, step: number, steps: number): number {
  if (steps <= 1) return s.start;
  const t = Math.min(1, Math.max(0, step / (steps - 1)));
  return s.start + (s.end - s.start) * t;
}

/**
 * Parses `START:END` (or a single value for a constant schedule).
 *
 * @example
 * ```ts
 * import { parseSchedule } from "./transform.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseSchedule("2.4:0", "sigma"), { start: 2.4, end: 0 });
 * ```
 */
export function parseSchedule(
  text: string,
  name: string,
  options: { min?: number } = {},
): Schedule {
  const parts = String(text).split(":");
  const nums = parts.map(Number);
  if (
    parts.length < 1 || parts.length > 2 ||
    parts.some((p) => p.trim() === "") ||
    nums.some((n) => !Number.isFinite(n))
  ) {
    throw new RangeError(
      `Invalid --${name} "${text}": expected START:END or a single number, e.g. 2.4:0`,
    );
  }
  const min = options.min ?? 0;
  if (nums.some((n) => n < min)) {
    throw new RangeError(
      `Invalid --${name} "${text}": values must be ≥ ${min}`,
    );
  }
  return { start: nums[0], end: nums[nums.length - 1] };
}

/**
 * A normalized 1-D Gaussian kernel of odd `size` (torchvision's
 * `_get_gaussian_kernel1d`). σ ≤ 0 gives the identity kernel.
 *
 * @example
 * ```ts
 * import { gaussianKernel } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const k = gaussianKernel(3, 1); // ≈ [0.274, 0.452, 0.274]
 * assert.ok(Math.abs(k[1] - 0.452) < 1e-3 && k[0] === k[2]);
 * ```
 */
export function gaussianKernel(size: number, sigma: number): Float64Array {
  if (!Number.isInteger(size) || size < 1 || size % 2 === 0) {
    throw new RangeError(
      `Invalid kernel size "${size}": expected an odd positive integer`,
    );
  }
  const k = new Float64Array(size);
  const half = (size - 1) / 2;
  if (!(sigma > 0)) {
    k[half] = 1;
    return k;
  }
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - half;
    k[i] = Math.exp(-0.5 * (x / sigma) ** 2);
    sum += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/**
 * Separable Gaussian blur of a [C,H,W] image with reflect padding, as
 * `torchvision.transforms.functional.gaussian_blur(img, [size, size], [σ, σ])`.
 * Returns a new array.
 *
 * @example
 * ```ts
 * import { gaussianBlur } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const img = new Float32Array(3 * 4 * 4).fill(0.5);
 * const out = gaussianBlur(img, 3, 4, 4, 3, 1.2); // constant stays constant
 * assert.ok(out.every((v) => Math.abs(v - 0.5) < 1e-6));
 * ```
 */
export function gaussianBlur(
  data: Float32Array,
  channels: number,
  height: number,
  width: number,
  size: number,
  sigma: number,
): Float32Array {
  const k = gaussianKernel(size, sigma);
  const half = (size - 1) / 2;
  if (!(sigma > 0)) return data.slice();
  if (half >= height || half >= width) {
    throw new RangeError(
      `Invalid kernel size "${size}" for a ${height}x${width} image: expected a kernel smaller than twice the image`,
    );
  }
  const reflect = (i: number, n: number) =>
    i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
  const tmp = new Float32Array(data.length);
  const out = new Float32Array(data.length);
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const o = c * plane;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let j = 0; j < size; j++) {
          s += k[j] * data[o + y * width + reflect(x + j - half, width)];
        }
        tmp[o + y * width + x] = s;
      }
    }
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let j = 0; j < size; j++) {
          s += k[j] * tmp[o + reflect(y + j - half, height) * width + x];
        }
        out[o + y * width + x] = s;
      }
    }
  }
  return out;
}

/**
 * A differentiable map from image space to the model's input: `forward` and
 * its vector-Jacobian product `vjp` (a gradient with respect to the output
 * pulled back to the input).
 */
export interface Transform {
  /** A readable name, e.g. `normalize`. */
  readonly name: string;
  /** Maps an image to the model's input (a new array, or `x` itself when the map is the identity). */
  forward(x: Float32Array): Float32Array;
  /** Pulls a gradient back through the map (may reuse `g`'s buffer). */
  vjp(g: Float32Array): Float32Array;
}

/**
 * The identity transform: the model sees the image's raw [0,1] pixels (the
 * essay's code).
 *
 * @example
 * ```ts
 * import { IDENTITY } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const x = new Float32Array([0.25]);
 * assert.equal(IDENTITY.forward(x), x);
 * ```
 */
export const IDENTITY: Transform = Object.freeze({
  name: "identity",
  forward: (x: Float32Array) => x,
  vjp: (g: Float32Array) => g,
});

/**
 * Per-channel normalization of a [3,H,W] image (or a batch [B,3,H,W]) with H = W = `size`:
 * x ↦ (x − mean_c) / std_c, whose VJP is g ↦ g / std_c.
 *
 * @example
 * ```ts
 * import { normalizeTransform } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const t = normalizeTransform({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 1] }, 1);
 * assert.deepEqual([...t.forward(new Float32Array([1, 1, 1]))], [2, 1, 0.5]);
 * assert.deepEqual([...t.vjp(new Float32Array([1, 1, 1]))], [4, 2, 1]);
 * ```
 */
export function normalizeTransform(
  input: { mean: readonly number[]; std: readonly number[] },
  size: number,
): Transform {
  const { mean, std } = input;
  if (
    mean?.length !== 3 || std?.length !== 3 ||
    ![...mean, ...std].every(Number.isFinite) || !std.every((s) => s > 0)
  ) {
    throw new RangeError(
      `Invalid normalization mean [${mean}] std [${std}]: expected 3 finite means and 3 positive stds`,
    );
  }
  const plane = size * size;
  return {
    name: "normalize",
    forward(x) {
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const c = Math.floor(i / plane) % 3;
        out[i] = (x[i] - mean[c]) / std[c];
      }
      return out;
    },
    vjp(g) {
      for (let i = 0; i < g.length; i++) g[i] /= std[Math.floor(i / plane) % 3];
      return g;
    },
  };
}

/** The part of an image a view shows a step, and where it lies. */
export interface Window {
  /** The pixels the step sees and updates, [B,3,side,side] (do not modify). */
  image: Float32Array;
  /** Side of `image`. */
  side: number;
  /** Top-left corner [y, x] in the image it was taken from, or null when it is the whole image. */
  at: [number, number] | null;
}

/**
 * A transform that chooses which part of the image a step sees and updates
 * ({@linkcode jitter}): `view` takes the part, `put` writes the updated part
 * back (into a new array).
 */
export interface ViewTransform {
  /** A readable name, e.g. `jitter`. */
  readonly name: string;
  /** The window step `step` sees of an image of side `side`. */
  view(image: Float32Array, side: number, step: number): Window;
  /** The image with the window replaced by `next` (a new array, or `next` itself for a whole-image window). */
  put(
    image: Float32Array,
    side: number,
    window: Window,
    next: Float32Array,
  ): Float32Array;
}

/**
 * A transform applied to the image after each gradient step ({@linkcode blur}):
 * `a ← project(a − lr·∇a)`.
 */
export interface Projection {
  /** A readable name, e.g. `blur`. */
  readonly name: string;
  /** The projected image (a new array), of side `side`, at step `step` of `steps`. */
  project(
    image: Float32Array,
    side: number,
    step: number,
    steps: number,
  ): Float32Array;
  /** The blur σ at a step, when the projection is a blur (reported in trace rows). */
  sigmaAt?(step: number, steps: number): number;
}

/** Any transform of the loop's list: a map, a view or a projection. */
export type AnyTransform = Transform | ViewTransform | Projection;

/**
 * Whether a transform is a view (has `view` and `put`).
 *
 * @example
 * ```ts
 * import { IDENTITY, isView, jitter } from "./transform.ts";
 * import assert from "node:assert/strict";
 * assert.ok(isView(jitter({ size: 4 })));
 * assert.ok(!isView(IDENTITY));
 * ```
 */
export function isView(t: AnyTransform): t is ViewTransform {
  const v = t as Partial<ViewTransform>;
  return typeof v?.view === "function" && typeof v.put === "function";
}

/**
 * Whether a transform is a projection (has `project`).
 *
 * @example
 * ```ts
 * import { blur, IDENTITY, isProjection } from "./transform.ts";
 * import assert from "node:assert/strict";
 * assert.ok(isProjection(blur({ start: 1, end: 0 })));
 * assert.ok(!isProjection(IDENTITY));
 * ```
 */
export function isProjection(t: AnyTransform): t is Projection {
  return typeof (t as Partial<Projection>)?.project === "function";
}

/** A transform list split into its two stages. */
export interface TransformStages {
  /** The views and projections, in list order: they act on the image the step updates. */
  image: readonly (ViewTransform | Projection)[];
  /** The maps, in list order: image → the model's input. */
  maps: readonly Transform[];
}

/**
 * Checks a transform list and splits it: views and projections first (they
 * act on pixels the step writes back), then maps (the step cannot write back
 * through a map, so none may come before a view or projection).
 *
 * @example
 * ```ts
 * import { blur, IDENTITY, jitter, stages } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const s = stages([jitter({ size: 4 }), blur({ start: 1, end: 0 }), IDENTITY]);
 * assert.deepEqual([s.image.length, s.maps.length], [2, 1]);
 * assert.throws(() => stages([IDENTITY, blur({ start: 1, end: 0 })]), /before the maps/);
 * ```
 */
export function stages(list: readonly AnyTransform[]): TransformStages {
  if (!Array.isArray(list)) {
    throw new TypeError(
      `Invalid transforms "${list}": expected an array, e.g. [jitter(…), blur(…), normalize]`,
    );
  }
  const image: (ViewTransform | Projection)[] = [];
  const maps: Transform[] = [];
  for (const t of list) {
    const map = typeof (t as Transform)?.forward === "function" &&
      typeof (t as Transform).vjp === "function";
    if (isView(t) || isProjection(t)) {
      if (maps.length) {
        throw new RangeError(
          `Invalid transforms [${
            list.map((x) => x?.name)
          }]: "${t.name}" comes after the map "${
            maps[0].name
          }": expected the views and projections before the maps (a step cannot write back through a map)`,
        );
      }
      image.push(t);
    } else if (map) maps.push(t as Transform);
    else {
      throw new TypeError(
        `Invalid transform "${
          t?.name ?? t
        }": expected a map (forward, vjp), a view (view, put) or a projection (project)`,
      );
    }
  }
  return { image, maps };
}

/**
 * The projection of both procedures: a Gaussian blur of each channel with
 * σ scheduled linearly over the run ({@linkcode gaussianBlur}, kernel `size`,
 * default 3). σ = 0 leaves the image as it is.
 *
 * @example
 * ```ts
 * import { blur } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const b = blur({ start: 2, end: 0 });
 * assert.equal(b.sigmaAt!(4, 5), 0);
 * const img = new Float32Array(3 * 4 * 4).fill(0.5);
 * assert.ok(b.project(img, 4, 0, 5).every((v) => Math.abs(v - 0.5) < 1e-6));
 * ```
 */
export function blur(sigma: Schedule, size = 3): Projection {
  if (
    !(sigma?.start >= 0 && sigma.end >= 0 && Number.isFinite(sigma.start) &&
      Number.isFinite(sigma.end))
  ) {
    throw new RangeError(
      `Invalid sigma "${sigma?.start}:${sigma?.end}": expected non-negative finite numbers`,
    );
  }
  gaussianKernel(size, 0); // checks the size
  const sigmaAt = (step: number, steps: number) =>
    scheduleAt(sigma, step, steps);
  return {
    name: "blur",
    sigmaAt,
    project: (image, side, step, steps) =>
      gaussianBlur(
        image,
        image.length / (side * side),
        side,
        side,
        size,
        sigmaAt(step, steps),
      ),
  };
}

/** Options of {@linkcode jitter}. */
export interface JitterOptions {
  /** Side of the window (the model's image size S). */
  size: number;
  /** First step that is jittered; earlier steps see the whole image (default 0). */
  from?: number;
  /** Seed of the default crop positions (default 0). */
  seed?: number;
  /** Top-left corner of step `step`'s window in an image of side `side` (default {@linkcode cropAt} with the seed). */
  position?: (step: number, side: number) => [number, number];
}

/**
 * Positional jitter as a view: from step `from` on, each step sees and
 * updates a random `size`² window of the image (the essay's crop of its
 * enlarged canvas; with a projection after it in the list, the projection
 * acts on the window). The corner is a function of (seed, step), so a
 * resumed run takes the same crops.
 *
 * @example
 * ```ts
 * import { jitter } from "./transform.ts";
 * import assert from "node:assert/strict";
 * const j = jitter({ size: 2, position: () => [1, 0] });
 * const image = new Float32Array(3 * 3 * 3).map((_, i) => i);
 * const w = j.view(image, 3, 0);
 * assert.deepEqual([w.side, w.at, w.image[0]], [2, [1, 0], 3]);
 * const back = j.put(image, 3, w, new Float32Array(3 * 2 * 2).fill(-1));
 * assert.deepEqual([back[0], back[3]], [0, -1]);
 * ```
 */
export function jitter(options: JitterOptions): ViewTransform {
  const { size, from = 0, seed = 0 } = options;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `Invalid jitter size "${size}": expected a positive integer (the model's image size)`,
    );
  }
  if (!Number.isInteger(from) || from < 0 || !Number.isInteger(seed)) {
    throw new RangeError(
      `Invalid jitter from "${from}" or seed "${seed}": expected non-negative integers`,
    );
  }
  const position = options.position ??
    ((step: number, side: number) => cropAt(seed, step, side, size));
  return {
    name: "jitter",
    view(image, side, step) {
      if (step < from) return { image, side, at: null };
      const at = position(step, side);
      if (
        !(at[0] >= 0 && at[1] >= 0 && at[0] + size <= side &&
          at[1] + size <= side)
      ) {
        throw new RangeError(
          `Invalid crop [${at}] at step ${step}: expected a ${size}² window inside the canvas`,
        );
      }
      return { image: crop(image, side, at, size), side: size, at };
    },
    put(image, side, window, next) {
      if (!window.at) return next;
      const out = image.slice();
      paste(out, side, window.at, next, size);
      return out;
    },
  };
}

/**
 * Top-left corner of step `step`'s random crop: a function of (seed, step) only,
 * so a resumed run picks the same crops as an uninterrupted one.
 *
 * @example
 * ```ts
 * import { cropAt } from "./transform.ts";
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

/** The `size`² window at [y, x] of each plane of an image of side `side`. */
function crop(
  src: Float32Array,
  side: number,
  [y, x]: [number, number],
  size: number,
): Float32Array {
  const planes = src.length / (side * side);
  const out = new Float32Array(planes * size * size);
  for (let c = 0; c < planes; c++) {
    for (let r = 0; r < size; r++) {
      const from = c * side * side + (y + r) * side + x;
      out.set(src.subarray(from, from + size), c * size * size + r * size);
    }
  }
  return out;
}

/** Writes a window back at [y, x] of each plane, in place. */
function paste(
  dst: Float32Array,
  side: number,
  [y, x]: [number, number],
  patch: Float32Array,
  size: number,
): void {
  const planes = dst.length / (side * side);
  for (let c = 0; c < planes; c++) {
    for (let r = 0; r < size; r++) {
      const from = c * size * size + r * size;
      dst.set(
        patch.subarray(from, from + size),
        c * side * side + (y + r) * side + x,
      );
    }
  }
}
