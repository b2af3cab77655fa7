/**
 * Patch-embedding filters: does a filter show a pattern (a wavelet, a blob)
 * or none (noise)? Measured by lag-1 spatial autocorrelation, which is about
 * 0 for white noise (untrained filters) and near 1 for smooth patterns.
 *
 * @module
 */
import { join } from "node:path";
import { parseSafetensors, tensorToFloat32 } from "../io/mod.ts";
import { untrainedTensor } from "../model/mod.ts";

/** A filter shows a pattern at or above this lag-1 autocorrelation. */
export const PATTERN_THRESHOLD = 0.3;

/**
 * Lag-1 spatial autocorrelation of one `[3, p, p]` filter: per colour, the
 * correlation of each weight with its right and lower neighbours (mean
 * removed), averaged over colours and both directions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { autocorrelation } from "./filters.ts";
 * const p = 8;
 * const smooth = new Float32Array(3 * p * p).map((_, i) => Math.sin((i % p) / 3));
 * assert.ok(autocorrelation(smooth, p) > 0.8);
 * ```
 */
export function autocorrelation(f: Float32Array, p: number): number {
  if (f.length !== 3 * p * p || p < 2) {
    throw new RangeError(
      `Invalid filter of ${f.length} values for p = ${p}: expected 3×p×p values with p ≥ 2`,
    );
  }
  let total = 0;
  for (let c = 0; c < 3; c++) {
    const ch = f.subarray(c * p * p, (c + 1) * p * p);
    const mean = ch.reduce((a, b) => a + b, 0) / ch.length;
    let v = 0;
    for (const x of ch) v += (x - mean) ** 2;
    if (v === 0) continue;
    let h = 0, w = 0;
    for (let y = 0; y < p; y++) {
      for (let x = 0; x < p; x++) {
        const d = ch[y * p + x] - mean;
        if (x + 1 < p) h += d * (ch[y * p + x + 1] - mean);
        if (y + 1 < p) w += d * (ch[(y + 1) * p + x] - mean);
      }
    }
    // normalized per pair count so a constant-length shift does not bias
    const pairs = p * (p - 1);
    total += ((h + w) / (2 * pairs)) / (v / ch.length);
  }
  return total / 3;
}

/**
 * The fraction of `n` filters `[n, 3, p, p]` whose
 * {@linkcode autocorrelation} is at least {@linkcode PATTERN_THRESHOLD}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patternedFraction } from "./filters.ts";
 * let s = 1;
 * const noise = new Float32Array(10 * 3 * 16 * 16).map(() => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5);
 * assert.ok(patternedFraction(noise, 10, 16) < 0.1);
 * ```
 */
export function patternedFraction(
  w: Float32Array,
  n: number,
  p: number,
): number {
  const size = 3 * p * p;
  if (w.length !== n * size) {
    throw new RangeError(
      `Invalid filters of ${w.length} values: expected ${n}×3×${p}×${p} = ${
        n * size
      }`,
    );
  }
  let k = 0;
  for (let f = 0; f < n; f++) {
    if (
      autocorrelation(w.subarray(f * size, (f + 1) * size), p) >=
        PATTERN_THRESHOLD
    ) k++;
  }
  return k / n;
}

/**
 * The patterned fractions of a model folder's patch filters: trained (weight
 * set `weights`) and untrained (seed 0).
 *
 * @example
 * ```ts ignore
 * import { filterFractions } from "./filters.ts";
 * console.log(await filterFractions("weights/vit_b_32", "IMAGENET1K_V1"));
 * ```
 */
export async function filterFractions(
  dir: string,
  weights: string,
): Promise<
  { patterned: number; untrained_patterned: number; filters: number }
> {
  const m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  const key: string = m.patch_filters ?? "conv_proj.weight";
  const info = m.tensors?.[key];
  const file = m.weight_sets?.[weights]?.file;
  if (!info || info.shape.length !== 4 || !file) {
    throw new TypeError(
      `Invalid model folder "${dir}" for filters: expected a tensor ${key} of shape [n,3,p,p] and a weight set "${weights}"`,
    );
  }
  const [n, , p] = info.shape as number[];
  const st = parseSafetensors(await Deno.readFile(join(dir, file)));
  const t = st.tensors.get(key);
  if (!t) {
    throw new TypeError(
      `Invalid weight set "${weights}" of ${dir}: it has no ${key}: expected the model's patch filters`,
    );
  }
  return {
    patterned: patternedFraction(tensorToFloat32(t), n, p),
    untrained_patterned: patternedFraction(
      untrainedTensor(info.init, info.shape, key, 0),
      n,
      p,
    ),
    filters: n,
  };
}
