/**
 * Transforms of the optimization loop and the schedules that set their
 * strength: the differentiable map from image space to the model's input
 * (normalization with the weights' mean/std, with its VJP), the projection
 * after each step (a small Gaussian blur, torchvision's `gaussian_blur` with
 * reflect padding, σ annealed linearly), and linear schedules.
 *
 * @module
 */

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
