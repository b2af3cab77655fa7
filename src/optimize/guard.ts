/**
 * The optimization loop's one guard. After every step it looks at the numbers
 * the loop saw (the objective's value, the gradient with respect to the image,
 * the updated image) and stops the run when one of them is NaN or ±Inf
 * ("non-finite") or when the image has run off beyond
 * {@linkcode RUNAWAY_BOUND} ("exploded"). It works from the values alone and
 * never reads error messages.
 *
 * @module
 */

import { firstBeyond, firstNonFinite } from "./_vector.ts";

/**
 * The largest |pixel| an optimized image may reach before a run counts as
 * exploded: 1000, three orders of magnitude beyond the [0,1] pixel range
 * (over 4000 standard deviations once normalized with ImageNet's std). Healthy
 * runs stay within a few units (the tiny test model's largest |pixel| is about
 * 2.5 even at learning rate 20); a too-large learning rate sends the image to
 * 1e3…1e36 within a step or two. Both procedures take `runawayBound` to change
 * it (`Infinity` turns the check off; non-finite values are always caught).
 *
 * @example
 * ```ts
 * import { RUNAWAY_BOUND } from "./guard.ts";
 * import assert from "node:assert/strict";
 * assert.equal(RUNAWAY_BOUND, 1000);
 * ```
 */
export const RUNAWAY_BOUND = 1000;

/** How a run went wrong: a NaN/±Inf appeared, or the image ran beyond the bound. */
export type DivergenceKind = "non-finite" | "exploded";

/**
 * Thrown when a run's numbers become NaN or ±Inf (`kind` "non-finite") or its
 * image leaves ±{@linkcode RUNAWAY_BOUND} (`kind` "exploded"): names the step
 * and carries the last image that was finite and inside the bound (the image
 * before that step), so a caller can keep it and continue from it.
 *
 * @example
 * ```ts
 * import { DivergedError } from "./guard.ts";
 * import assert from "node:assert/strict";
 * const e = new DivergedError(12, new Float32Array(3), "objective NaN");
 * assert.equal(e.kind, "non-finite");
 * assert.equal(e.message, "Run diverged at step 12 (objective NaN): lower the learning rate");
 * const x = new DivergedError(3, new Float32Array(3), "pixel 0 reached 5e6", "exploded");
 * assert.equal(x.message, "Run exploded at step 3 (pixel 0 reached 5e6): lower the learning rate");
 * ```
 */
export class DivergedError extends RangeError {
  /** The step whose numbers went wrong. */
  readonly step: number;
  /** The image before that step: finite and inside the bound. */
  readonly lastImage: Float32Array;
  /** "non-finite" (NaN/±Inf) or "exploded" (finite but beyond the bound). */
  readonly kind: DivergenceKind;
  /**
   * Records where and how a run went wrong.
   *
   * @param step the failing step
   * @param lastImage the last image that was finite and inside the bound
   * @param what what went wrong, e.g. `objective NaN`
   * @param kind "non-finite" (default) or "exploded"
   */
  constructor(
    step: number,
    lastImage: Float32Array,
    what: string,
    kind: DivergenceKind = "non-finite",
  ) {
    super(
      `Run ${
        kind === "exploded" ? "exploded" : "diverged"
      } at step ${step} (${what}): lower the learning rate`,
    );
    this.name = "DivergedError";
    this.step = step;
    this.lastImage = lastImage;
    this.kind = kind;
  }
}

/** The numbers of one step that {@linkcode guardStep} checks. */
export interface StepNumbers {
  /** The objective's value before the update. */
  value: number;
  /** Its gradient with respect to the image (image space). */
  grad: Float32Array;
  /** The updated image. */
  image: Float32Array;
}

/**
 * Checks one step's numbers, in the order they arose: the objective's value
 * and the gradient must be finite, the updated image finite and within
 * ±`bound`. Throws a {@linkcode DivergedError} carrying `before` otherwise.
 *
 * @example
 * ```ts
 * import { DivergedError, guardStep } from "./guard.ts";
 * import assert from "node:assert/strict";
 * const before = new Float32Array([0.5, 0.5]);
 * const grad = new Float32Array([1, 1]);
 * guardStep(0, before, { value: 1, grad, image: new Float32Array([0.4, 0.6]) }); // fine
 * assert.throws(
 *   () => guardStep(7, before, { value: 1, grad, image: new Float32Array([0.4, 2e6]) }),
 *   (e) => e instanceof DivergedError && e.kind === "exploded" && e.step === 7,
 * );
 * ```
 */
export function guardStep(
  step: number,
  before: Float32Array,
  r: StepNumbers,
  bound: number = RUNAWAY_BOUND,
): void {
  if (!Number.isFinite(r.value)) {
    throw new DivergedError(step, before, `objective ${r.value}`);
  }
  let i = firstNonFinite(r.grad);
  if (i >= 0) {
    throw new DivergedError(
      step,
      before,
      `gradient ${r.grad[i]} at pixel ${i}`,
    );
  }
  i = firstNonFinite(r.image);
  if (i >= 0) {
    throw new DivergedError(
      step,
      before,
      `the update made pixel ${i} ${r.image[i]}`,
    );
  }
  i = firstBeyond(r.image, bound);
  if (i >= 0) {
    throw new DivergedError(
      step,
      before,
      `the update took pixel ${i} to ${
        r.image[i].toPrecision(3)
      }, beyond ±${bound}`,
      "exploded",
    );
  }
}
