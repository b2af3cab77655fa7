/**
 * Objectives: what gradient descent on the image minimizes. Each is a value
 * with a name, the layer it reads, and a function giving its value and its
 * gradient with respect to that layer's output.
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
