/**
 * Objectives: what gradient descent on the image minimizes. Each is a value
 * with a name, what it reads (a layer's output, or the image itself for an
 * {@linkcode ImageObjective} such as {@linkcode totalVariation}), and a
 * function giving its value and its gradient with respect to what it reads.
 * Weighted sums of them are built in compose.ts.
 *
 * @module
 */

import type { Layer, Objective, Tensor } from "../model/mod.ts";
import { firstNonFinite } from "./_vector.ts";

export type { Objective };

/** Images in an output: its first axis when it has two or more, else one. */
function batchRows(output: Tensor): number {
  return output.dims.length >= 2 ? output.dims[0] : 1;
}

/** Options of {@linkcode featureMatch}. */
export interface FeatureMatchOptions {
  /** `"l2"`: Σ(O − T)²; `"l1"`: Σ|O − T| (default `"l2"`). */
  loss?: "l1" | "l2";
}

/**
 * Distance between a layer's output and a target: Σ(O_L(x) − T)² (l2) or
 * Σ|O_L(x) − T| (l1). The gradient of |·| at 0 is taken as 0, as in PyTorch.
 * For a batch the target holds one target per image (B times the layer's
 * values) and `values` gives each image's distance.
 * A NaN or ±Inf in the target is refused here, naming its index.
 *
 * @example
 * ```ts
 * import { featureMatch } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const obj = featureMatch(4, new Float32Array([1, 2]), { loss: "l1" });
 * const { value, grad } = obj.evaluate({ data: new Float32Array([0, 4]), dims: [2] });
 * assert.equal(value, 3);
 * assert.deepEqual([...grad], [-1, 1]);
 * assert.throws(() => featureMatch(4, new Float32Array([1, NaN])), /index 1/);
 * ```
 */
export function featureMatch(
  layer: Layer,
  target: Float32Array | Tensor,
  options: FeatureMatchOptions = {},
): Objective {
  const t = target instanceof Float32Array ? target : target?.data;
  if (!(t instanceof Float32Array)) {
    throw new TypeError(
      `Invalid target "${target}": expected a Float32Array or a tensor`,
    );
  }
  const bad = firstNonFinite(t);
  if (bad >= 0) {
    throw new RangeError(
      `Invalid target value "${
        t[bad]
      }" at index ${bad}: expected finite numbers (make the target from a finite image)`,
    );
  }
  const loss = options.loss ?? "l2";
  if (loss !== "l1" && loss !== "l2") {
    throw new TypeError(`Invalid loss "${loss}": expected "l1" or "l2"`);
  }
  return {
    name: `${loss}(layer ${layer})`,
    layer,
    evaluate(output) {
      const o = output.data;
      if (o.length !== t.length) {
        throw new RangeError(
          `Target of ${t.length} values does not match layer ${layer}'s output of ${o.length} values [${output.dims}]: make the target with the same model and layer`,
        );
      }
      const grad = new Float32Array(o.length);
      const rows = batchRows(output);
      const per = o.length / rows;
      const values = new Array<number>(rows).fill(0);
      let value = 0;
      for (let i = 0; i < o.length; i++) {
        const d = o[i] - t[i];
        const v = loss === "l2" ? d * d : Math.abs(d);
        value += v;
        values[Math.floor(i / per)] += v;
        grad[i] = loss === "l2" ? 2 * d : Math.sign(d);
      }
      return { value, grad, values };
    },
  };
}

/** Options of {@linkcode classLogit}. */
export interface ClassLogitOptions {
  /** The large constant C the logit is pulled towards (default 100). */
  constant?: number;
}

/**
 * |C − O_i|: drives the logit of class `index` towards a large constant C, as in
 * the essay's input generation; for a batch of logits [B, classes], of every
 * image (`values` per image, `value` their sum).
 *
 * @example
 * ```ts
 * import { classLogit } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const obj = classLogit(1, { constant: 10 });
 * const { value, grad } = obj.evaluate({ data: new Float32Array([0, 4, 0]), dims: [1, 3] });
 * assert.equal(value, 6);
 * assert.deepEqual([...grad], [0, -1, 0]);
 * ```
 */
export function classLogit(
  index: number,
  options: ClassLogitOptions = {},
): Objective {
  if (!Number.isInteger(index) || index < 0) {
    throw new RangeError(
      `Invalid class index "${index}": expected a non-negative integer`,
    );
  }
  const c = options.constant ?? 100;
  if (!Number.isFinite(c)) {
    throw new RangeError(`Invalid constant "${c}": expected a finite number`);
  }
  return {
    name: `|${c} - logit[${index}]|`,
    layer: "logits",
    evaluate(output) {
      const o = output.data;
      const rows = batchRows(output);
      const classes = o.length / rows;
      if (index >= classes) {
        throw new RangeError(
          `Invalid class index "${index}": expected 0..${classes - 1}`,
        );
      }
      const grad = new Float32Array(o.length);
      const values: number[] = [];
      let value = 0;
      for (let b = 0; b < rows; b++) {
        const d = c - o[b * classes + index];
        grad[b * classes + index] = -Math.sign(d);
        values.push(Math.abs(d));
        value += Math.abs(d);
      }
      return { value, grad, values };
    },
  };
}

/**
 * A scalar function of the image itself rather than of a layer's output: it
 * reads the pixels a step updates (image space, before the input transform)
 * and gives its gradient with respect to them, which the loop adds to the
 * gradient pulled back from the model. A term of a sum (compose.ts), e.g. a
 * {@linkcode totalVariation} penalty next to a feature match.
 *
 * @example
 * ```ts
 * import type { ImageObjective } from "./objective.ts";
 * import assert from "node:assert/strict";
 * // Σ x²: pulls every pixel towards 0
 * const energy: ImageObjective = {
 *   name: "energy",
 *   layer: "image",
 *   evaluate: (image) => ({
 *     value: image.data.reduce((s, v) => s + v * v, 0),
 *     grad: image.data.map((v) => 2 * v),
 *   }),
 * };
 * const r = energy.evaluate({ data: new Float32Array([1, 2]), dims: [1, 1, 1, 2] });
 * assert.equal(r.value, 5);
 * ```
 */
export interface ImageObjective {
  /** A readable name, e.g. `tv(l1)`. */
  readonly name: string;
  /** Always `"image"`: it reads the image, not a layer. */
  readonly layer: "image";
  /**
   * Value and gradient with respect to the image, a tensor [B, 3, H, W];
   * optionally the value of each of the B images (`value` is their sum).
   */
  evaluate(image: Tensor): {
    value: number;
    grad: Float32Array;
    values?: number[];
  };
}

/** Options of {@linkcode totalVariation}. */
export interface TotalVariationOptions {
  /** `"l1"`: Σ|Δ| (lucent's and TensorFlow's total variation); `"l2"`: ΣΔ² (default `"l1"`). */
  loss?: "l1" | "l2";
}

/**
 * Total variation of the image: the differences between vertically and
 * horizontally neighbouring pixels of each channel, summed as Σ|Δ| (l1, as
 * lucent's `total_variation`) or ΣΔ² (l2). Low for smooth images, high for
 * noise: a penalty that, weighted, joins a layer objective in a sum
 * (`sum([featureMatch(4, t), scaled(0.01, totalVariation())])`). The gradient
 * of |·| at 0 is taken as 0, as in PyTorch. The image is [B, 3, H, W] (or
 * [3, H, W]); `values` gives each image's total variation.
 *
 * @example
 * ```ts
 * import { totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * // one channel of 1×3 pixels: |2 − 0| + |2 − 2| = 2
 * const { value, grad } = totalVariation().evaluate({
 *   data: new Float32Array([0, 2, 2]),
 *   dims: [1, 1, 3],
 * });
 * assert.equal(value, 2);
 * assert.deepEqual([...grad], [-1, 1, 0]);
 * ```
 */
export function totalVariation(
  options: TotalVariationOptions = {},
): ImageObjective {
  const loss = options.loss ?? "l1";
  if (loss !== "l1" && loss !== "l2") {
    throw new TypeError(`Invalid loss "${loss}": expected "l1" or "l2"`);
  }
  return {
    name: `tv(${loss})`,
    layer: "image",
    evaluate(image) {
      const { data: x, dims } = image;
      const [h, w] = dims.length >= 2 ? dims.slice(-2) : [0, 0];
      const plane = h * w;
      if (!(plane > 0) || x.length % plane !== 0) {
        throw new RangeError(
          `Invalid image of ${x.length} values [${dims}]: expected a [B, 3, H, W] or [3, H, W] tensor`,
        );
      }
      const rows = dims.length === 4 ? dims[0] : 1;
      const per = x.length / rows;
      const g = new Float64Array(x.length);
      const values = new Array<number>(rows).fill(0);
      // the pair (i, i + step): a neighbour below (step w) or to the right (1)
      const pair = (i: number, step: number) => {
        const d = x[i + step] - x[i];
        const dv = loss === "l2" ? 2 * d : Math.sign(d);
        values[Math.floor(i / per)] += loss === "l2" ? d * d : Math.abs(d);
        g[i + step] += dv;
        g[i] -= dv;
      };
      for (let p = 0; p < x.length; p += plane) {
        for (let y = 0; y < h; y++) {
          for (let c = 0; c < w; c++) {
            const i = p + y * w + c;
            if (y + 1 < h) pair(i, w);
            if (c + 1 < w) pair(i, 1);
          }
        }
      }
      const value = values.reduce((s, v) => s + v, 0);
      return { value, grad: Float32Array.from(g), values };
    },
  };
}
