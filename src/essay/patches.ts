/**
 * Per-patch error maps: the PSNR of a representation against its target in
 * every patch of the model's patch grid, their spread, and a heatmap image —
 * the essay's "patchwork" images and "imperfections in certain patches",
 * measured.
 *
 * @module
 */
import type { ImageTensor } from "../io/mod.ts";
import { checkImagePair } from "../optimize/mod.ts";

/** Per-patch PSNR of one representation. */
export interface PatchPsnr {
  /** Patches per side (the grid is `side × side`). */
  side: number;
  /** Patch size in pixels. */
  patch: number;
  /** PSNR in dB per patch, row-major (`side * side` values; Infinity for an exact patch). */
  psnr: Float64Array;
  /** Mean squared error per patch, row-major. */
  mse: Float64Array;
}

/**
 * The PSNR (dB, peak 1) of `x` against `ref` in every `patch × patch` square
 * of a `[3, size, size]` image, `x` clamped to [0, 1] as the global PSNR of
 * the representation procedure does. A grid that does not divide `size` ends
 * in smaller edge patches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patchPsnr } from "./patches.ts";
 * const ref = new Float32Array(3 * 4 * 4).fill(0.5);
 * const x = ref.slice();
 * x[0] = 0.6; // one pixel of the top-left 2×2 patch, red channel
 * const p = patchPsnr(x, ref, 4, 2);
 * assert.equal(p.side, 2);
 * assert.ok(Math.abs(p.psnr[0] - 10 * Math.log10(1 / (0.01 / 12))) < 1e-4);
 * assert.equal(p.psnr[3], Infinity);
 * ```
 */
export function patchPsnr(
  x: Float32Array,
  ref: Float32Array,
  size: number,
  patch: number,
): PatchPsnr {
  checkImagePair(x, ref, size);
  if (!Number.isInteger(patch) || patch < 1 || patch > size) {
    throw new RangeError(
      `Invalid patch "${patch}": expected a patch side in pixels from 1 to ${size}`,
    );
  }
  const n = size * size;
  const side = Math.ceil(size / patch);
  const sum = new Float64Array(side * side);
  const count = new Float64Array(side * side);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      const row = Math.floor(y / patch) * side;
      for (let xx = 0; xx < size; xx++) {
        const i = c * n + y * size + xx;
        const v = Math.min(1, Math.max(0, x[i]));
        const k = row + Math.floor(xx / patch);
        sum[k] += (v - ref[i]) ** 2;
        count[k]++;
      }
    }
  }
  const mse = sum.map((s, k) => s / count[k]);
  const psnr = mse.map((m) => m === 0 ? Infinity : 10 * Math.log10(1 / m));
  return { side, patch, psnr, mse };
}

/** The spread of per-patch PSNR. */
export interface Spread {
  /** Median per-patch PSNR, dB. */
  median: number;
  /** Interquartile range (75th − 25th percentile), dB. */
  iqr: number;
  /** Standard deviation, dB. */
  std: number;
  /** Lowest per-patch PSNR, dB. */
  min: number;
}

/** The q-quantile (0..1) of sorted values, linear between ranks. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  if (lo === hi) return sorted[lo];
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Median, interquartile range, standard deviation and minimum of per-patch
 * PSNR values. Exact patches (Infinity) are capped at `cap` dB first, so one
 * perfect patch does not make the spread infinite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spread } from "./patches.ts";
 * const s = spread([10, 20, 30, 40, 50]);
 * assert.equal(s.median, 30);
 * assert.equal(s.iqr, 20);
 * assert.equal(s.min, 10);
 * ```
 */
export function spread(values: ArrayLike<number>, cap = 100): Spread {
  if (values.length === 0) {
    throw new RangeError(
      `Invalid values: an empty list: expected at least one per-patch PSNR`,
    );
  }
  const v = Array.from(values, (x) => Math.min(x, cap)).sort((a, b) => a - b);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(
    v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length,
  );
  return {
    median: quantile(v, 0.5),
    iqr: quantile(v, 0.75) - quantile(v, 0.25),
    std,
    min: v[0],
  };
}

// A perceptually ordered colour scale (viridis' end points and three stops between).
const STOPS: readonly (readonly [number, number, number])[] = [
  [0.267, 0.005, 0.329],
  [0.231, 0.322, 0.545],
  [0.129, 0.569, 0.549],
  [0.369, 0.788, 0.384],
  [0.993, 0.906, 0.144],
];

/** The colour of `t` in [0, 1] on the heatmap scale. */
function heatColor(t: number): [number, number, number] {
  const u = Math.min(1, Math.max(0, Number.isNaN(t) ? 0 : t)) *
    (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u)), f = u - i;
  return [0, 1, 2].map((c) =>
    STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * f
  ) as [number, number, number];
}

/**
 * The heatmap scale's colours from low to high as CSS `rgb()` values (for a
 * colour bar beside the maps).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HEAT_COLOURS } from "./patches.ts";
 * assert.equal(HEAT_COLOURS[0], "rgb(68,1,84)");
 * ```
 */
export const HEAT_COLOURS: readonly string[] = STOPS.map((s) =>
  `rgb(${s.map((v) => Math.round(v * 255)).join(",")})`
);

/** Range of the heatmaps' colour scale, dB: the same for every map, so maps compare. */
export const HEAT_RANGE: readonly [number, number] = [5, 40];

/**
 * A heatmap of per-patch PSNR as an image of `size × size` pixels (each
 * patch one flat square), coloured from {@linkcode HEAT_RANGE}'s low end
 * (dark blue) to its high end (yellow).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patchPsnr, psnrHeatmap } from "./patches.ts";
 * const ref = new Float32Array(3 * 8 * 8).fill(0.5);
 * const img = psnrHeatmap(patchPsnr(ref.map((v) => v + 0.1), ref, 8, 4), 8);
 * assert.equal(img.width, 8);
 * assert.equal(img.data.length, 3 * 64);
 * ```
 */
export function psnrHeatmap(p: PatchPsnr, size: number): ImageTensor {
  const n = size * size;
  const data = new Float32Array(3 * n);
  const [lo, hi] = HEAT_RANGE;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const k = Math.min(p.side - 1, Math.floor(y / p.patch)) * p.side +
        Math.min(p.side - 1, Math.floor(x / p.patch));
      const col = heatColor((p.psnr[k] - lo) / (hi - lo));
      for (let c = 0; c < 3; c++) data[c * n + y * size + x] = col[c];
    }
  }
  return { data, channels: 3, height: size, width: size };
}

/** Shares of a representation's squared error (they sum to 1), per patch fitted as offset + gain × target. */
export interface PatchErrorShares {
  /** The image-wide mean error (a uniform brightness shift). */
  globalOffset: number;
  /** Patch-to-patch differences of the mean error: each patch shifted by its own offset. */
  offset: number;
  /** Each patch's contrast wrong: gain ≠ 1 against the patch's own variation. */
  gain: number;
  /** What an offset and a gain per patch do not explain. */
  residual: number;
  /** Mean squared error over the image (clamped to [0, 1] as the PSNR). */
  mse: number;
}

/**
 * Decomposes the error of a representation `x` against its target `ref`
 * (`[3, size, size]`, `x` clamped to [0, 1]) patch by patch: in patch k,
 * with target mean t̄ and error mean o_k, the least-squares fit
 * `x − x̄ ≈ g_k (t − t̄)` splits the error exactly into an offset o_k, a gain
 * error (g_k − 1)(t − t̄) and a residual orthogonal to both. Summed over the
 * image, the offsets split further into the image-wide mean error and the
 * patch-to-patch differences from it. Layer normalization, applied to each
 * patch's token, is blind to exactly a per-patch offset and gain: the
 * "patchwork" it leaves shows as a large `offset` + `gain` share. Shares are
 * 0 when the representation is exact.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patchError } from "./patches.ts";
 * // a 4×4 image of 2×2 patches; the top-left patch brighter by 0.1
 * const ref = new Float32Array(3 * 16).map((_, i) => 0.3 + 0.02 * (i % 4));
 * const x = ref.map((v, i) => (i % 16) < 8 && (i % 4) < 2 ? v + 0.1 : v);
 * const s = patchError(x, ref, 4, 2);
 * assert.ok(s.offset + s.globalOffset > 0.999 && s.gain < 1e-6);
 * ```
 */
export function patchError(
  x: Float32Array,
  ref: Float32Array,
  size: number,
  patch: number,
): PatchErrorShares {
  checkImagePair(x, ref, size);
  if (!Number.isInteger(patch) || patch < 1 || patch > size) {
    throw new RangeError(
      `Invalid patch "${patch}": expected a patch side in pixels from 1 to ${size}`,
    );
  }
  const side = Math.ceil(size / patch), n = size * size;
  const k = (i: number) => {
    const p = i % n;
    return Math.floor(Math.floor(p / size) / patch) * side +
      Math.floor((p % size) / patch);
  };
  const cnt = new Float64Array(side * side);
  const sumT = new Float64Array(side * side);
  const sumE = new Float64Array(side * side);
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  for (let i = 0; i < x.length; i++) {
    cnt[k(i)]++;
    sumT[k(i)] += ref[i];
    sumE[k(i)] += clamp(x[i]) - ref[i];
  }
  // per patch: Σ(t−t̄)², Σ(e−ē)(t−t̄) and Σ(e−ē)², with e = x − t
  const stt = new Float64Array(side * side);
  const ste = new Float64Array(side * side);
  const see = new Float64Array(side * side);
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    const j = k(i), e = clamp(x[i]) - ref[i];
    const dt = ref[i] - sumT[j] / cnt[j], de = e - sumE[j] / cnt[j];
    stt[j] += dt * dt;
    ste[j] += dt * de;
    see[j] += de * de;
    total += e * e;
  }
  const mean = sumE.reduce((a, b) => a + b, 0) / x.length;
  let offset = 0, gain = 0, residual = 0;
  for (let j = 0; j < cnt.length; j++) {
    const o = sumE[j] / cnt[j];
    offset += cnt[j] * (o - mean) ** 2;
    // e − ē = (g − 1)(t − t̄) + r: the gain part is ste²/stt
    const g = stt[j] > 0 ? ste[j] * ste[j] / stt[j] : 0;
    gain += g;
    residual += see[j] - g;
  }
  const share = (v: number) => total > 0 ? Math.max(0, v) / total : 0;
  return {
    globalOffset: share(x.length * mean * mean),
    offset: share(offset),
    gain: share(gain),
    residual: share(residual),
    mse: total / x.length,
  };
}
