/**
 * The page's `?check=1` figures: one forward output (the logits) and one input
 * gradient of a fixed input, computed by the same function in the page and in
 * Deno so a test can compare the two runtimes value by value.
 *
 * @module
 */

import { featureMatch } from "../src/optimize/mod.ts";
import type { Model } from "../src/model/mod.ts";

/** What `?check=1` writes into `#result`. */
export interface CheckFigures {
  /** The logits of the fixed input x. */
  forward: number[];
  /** The L2 feature-match objective at `layer` (target: the layer's output for y). */
  value: number;
  /** Its gradient with respect to x. */
  grad: number[];
}

/** A deterministic input in [0, 1] with `n` values (`k` varies the pattern). */
export function pattern(n: number, k: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => ((i * k) % 101) / 100);
}

/**
 * The forward output and input gradient the page's check mode reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "../src/model/mod.ts";
 * import { checkFigures } from "./check.ts";
 *
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture", backend: "wasm" });
 * const c = await checkFigures(model, 1);
 * assert.equal(c.grad.length, 3 * 32 * 32);
 * await model.release();
 * ```
 */
export async function checkFigures(
  model: Model,
  layer: number,
): Promise<CheckFigures> {
  const size = model.manifest.image_size;
  const n = 3 * size * size;
  const x = pattern(n, 37);
  const logits = await model.forward(x, { layer: "logits" });
  const target = await model.forward(pattern(n, 7), { layer });
  const g = await model.inputGradient(
    x,
    featureMatch(layer, target, { loss: "l2" }),
  );
  return {
    forward: [...logits.data],
    value: g.value,
    grad: [...g.grad],
  };
}
