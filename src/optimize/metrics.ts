/**
 * Image-quality metrics of a result against its target: PSNR and SSIM.
 *
 * @example
 * ```ts
 * import { psnr, ssim } from "./metrics.ts";
 * import assert from "node:assert/strict";
 * const a = new Float32Array(3 * 16 * 16).map((_, i) => (i % 7) / 7);
 * assert.ok(Math.abs(ssim(a, a, 16) - 1) < 1e-12);
 * assert.equal(psnr(a, a), Infinity);
 * ```
 *
 * @module
 */

/**
 * Peak signal-to-noise ratio (dB) of `x` against `ref`, both in [0,1] (x clamped).
 *
 * @example
 * ```ts
 * import { psnr } from "./metrics.ts";
 * import assert from "node:assert/strict";
 * const db = psnr(new Float32Array([0.5, 0.5]), new Float32Array([0.5, 0.6]));
 * assert.ok(Math.abs(db - 23.01) < 0.01);
 * ```
 */
export function psnr(x: Float32Array, ref: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.min(1, Math.max(0, x[i]));
    s += (v - ref[i]) ** 2;
  }
  const mse = s / x.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

/**
 * Checks that `x` and `ref` are both [3, size, size] images: a RangeError
 * naming the lengths otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkImagePair } from "./metrics.ts";
 * const a = new Float32Array(3 * 4 * 4);
 * checkImagePair(a, a, 4);
 * assert.throws(() => checkImagePair(a, new Float32Array(3), 4), RangeError);
 * ```
 */
export function checkImagePair(
  x: Float32Array,
  ref: Float32Array,
  size: number,
): void {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `Invalid size "${size}": expected the images' side in pixels, a positive integer`,
    );
  }
  const n = size * size;
  if (x.length !== 3 * n || ref.length !== 3 * n) {
    throw new RangeError(
      `Invalid images of ${x.length} and ${ref.length} values: expected 3x${size}x${size} = ${
        3 * n
      } each`,
    );
  }
}

/**
 * Mean SSIM of `x` against `ref` on luminance (Rec. 601), over non-overlapping
 * 8×8 windows (one window for images under 8 px); `x` is clamped to [0,1].
 * Both are [3,H,W] with H = W = `size`.
 *
 * @example
 * ```ts
 * import { ssim } from "./metrics.ts";
 * import assert from "node:assert/strict";
 * const a = new Float32Array(3 * 16 * 16).map((_, i) => (i % 7) / 7);
 * assert.ok(Math.abs(ssim(a, a, 16) - 1) < 1e-12);
 * ```
 */
export function ssim(x: Float32Array, ref: Float32Array, size: number): number {
  checkImagePair(x, ref, size);
  const n = size * size;
  const lum = (a: Float32Array, clamp: boolean) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = (v: number) => clamp ? Math.min(1, Math.max(0, v)) : v;
      out[i] = 0.299 * c(a[i]) + 0.587 * c(a[n + i]) + 0.114 * c(a[2 * n + i]);
    }
    return out;
  };
  const a = lum(x, true), b = lum(ref, false);
  const win = size >= 8 ? 8 : size;
  const c1 = 0.01 ** 2, c2 = 0.03 ** 2;
  let total = 0, count = 0;
  for (let y0 = 0; y0 + win <= size; y0 += win) {
    for (let x0 = 0; x0 + win <= size; x0 += win) {
      let ma = 0, mb = 0;
      for (let y = y0; y < y0 + win; y++) {
        for (let xx = x0; xx < x0 + win; xx++) {
          ma += a[y * size + xx];
          mb += b[y * size + xx];
        }
      }
      const m = win * win;
      ma /= m;
      mb /= m;
      let va = 0, vb = 0, cov = 0;
      for (let y = y0; y < y0 + win; y++) {
        for (let xx = x0; xx < x0 + win; xx++) {
          const da = a[y * size + xx] - ma, db = b[y * size + xx] - mb;
          va += da * da;
          vb += db * db;
          cov += da * db;
        }
      }
      va /= m - 1 || 1;
      vb /= m - 1 || 1;
      cov /= m - 1 || 1;
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) /
        ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}
