/**
 * Figures of weights: the patch-embedding filters of a ViT as a grid of small
 * images, each filter min-max normalized to [0, 1] on its own, as in the essay.
 *
 * @module
 */
import type { ImageTensor } from "../io/mod.ts";
import { checkFigureSize } from "./_canvas.ts";
import type { Model } from "../model/mod.ts";

/** Options of {@linkcode filterGrid}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FilterGridOptions } from "./filters.ts";
 *
 * const opts: FilterGridOptions = { columns: 32, scale: 2, gap: 1 };
 * assert.equal(opts.columns, 32);
 * ```
 */
export interface FilterGridOptions {
  /** Filters per row (default: about √(2n), a wide grid). */
  columns?: number;
  /** Pixels per weight (default 1 for patches ≥ 16, else 2). */
  scale?: number;
  /** Gap between filters in pixels (default 1). */
  gap?: number;
  /** Gap colour (default white). */
  background?: number;
}

/**
 * Normalizes each filter of a [n, 3, p, p] weight to [0, 1] (min-max over its
 * 3·p·p values; a constant filter becomes 0.5).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeFilters } from "./filters.ts";
 *
 * const f = normalizeFilters(new Float32Array([0, 2, 4, 6, 1, 1, 1, 1, 1, 1, 1, 1]), 1, 2);
 * assert.equal(f[1], Math.fround(1 / 3)); // (2 − 0) / (6 − 0)
 * ```
 */
export function normalizeFilters(
  w: Float32Array,
  n: number,
  p: number,
): Float32Array {
  const size = 3 * p * p;
  if (w.length !== n * size) {
    throw new RangeError(
      `Invalid filter weights of ${w.length} values: expected ${n}x3x${p}x${p} = ${
        n * size
      }`,
    );
  }
  const out = new Float32Array(w.length);
  for (let f = 0; f < n; f++) {
    const v = w.subarray(f * size, (f + 1) * size);
    let lo = Infinity, hi = -Infinity;
    for (const x of v) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    for (let i = 0; i < size; i++) {
      out[f * size + i] = hi > lo ? (v[i] - lo) / (hi - lo) : 0.5;
    }
  }
  return out;
}

/**
 * The patch-embedding filters (`conv_proj.weight`, e.g. 768 × 3×32×32) as one
 * image: each filter normalized to [0, 1], laid out in a grid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "../model/mod.ts";
 * import { filterGrid } from "./filters.ts";
 *
 * // The tiny test ViT: 16 filters of 3×8×8, drawn 2 pixels per weight.
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const img = filterGrid(model, { columns: 4 });
 * assert.deepEqual([img.width, img.height], [4 * 16 + 5, 4 * 16 + 5]);
 * ```
 */
export function filterGrid(
  model: Model,
  options: FilterGridOptions = {},
): ImageTensor {
  const key = model.manifest.patch_filters;
  const info = model.manifest.tensors[key];
  if (
    !info || info.shape.length !== 4 || info.shape[1] !== 3 ||
    info.shape[2] !== info.shape[3]
  ) {
    throw new TypeError(
      `Model ${model.manifest.name} has no patch-embedding convolution "${key}" of shape [n,3,p,p]`,
    );
  }
  const [n, , p] = info.shape;
  const cols = options.columns ?? Math.ceil(Math.sqrt(2 * n));
  const scale = options.scale ?? (p >= 16 ? 1 : 2);
  const gap = options.gap ?? 1;
  for (const [k, v] of [["columns", cols], ["scale", scale]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Invalid ${k} "${v}": expected a positive integer`);
    }
  }
  if (!Number.isInteger(gap) || gap < 0) {
    throw new RangeError(`Invalid gap "${gap}": expected an integer ≥ 0`);
  }
  const rows = Math.ceil(n / cols);
  const cell = p * scale;
  const width = cols * cell + (cols + 1) * gap;
  const height = rows * cell + (rows + 1) * gap;
  checkFigureSize(width, height);
  const data = new Float32Array(3 * width * height).fill(
    options.background ?? 1,
  );
  const f = normalizeFilters(model.tensor(key), n, p);
  const plane = width * height;
  for (let k = 0; k < n; k++) {
    const x0 = gap + (k % cols) * (cell + gap);
    const y0 = gap + Math.floor(k / cols) * (cell + gap);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < cell; y++) {
        for (let x = 0; x < cell; x++) {
          const v = f[
            ((k * 3 + c) * p + Math.floor(y / scale)) * p +
            Math.floor(x / scale)
          ];
          data[c * plane + (y0 + y) * width + x0 + x] = v;
        }
      }
    }
  }
  return { data, channels: 3, height, width };
}
