/**
 * Image transforms applied between gradient steps, and the schedules that set
 * their strength: a small Gaussian blur (torchvision's `gaussian_blur`, reflect
 * padding) with σ annealed linearly, and linear learning-rate schedules.
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
 * console.log(scheduleAt({ start: 2.4, end: 0 }, 0, 5)); // 2.4
 * console.log(scheduleAt({ start: 2.4, end: 0 }, 4, 5)); // 0
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
 * console.log(parseSchedule("2.4:0", "sigma")); // { start: 2.4, end: 0 }
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
 * console.log(gaussianKernel(3, 1)); // ≈ [0.274, 0.452, 0.274]
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
 * const img = new Float32Array(3 * 4 * 4).fill(0.5);
 * const out = gaussianBlur(img, 3, 4, 4, 3, 1.2); // constant stays constant
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
