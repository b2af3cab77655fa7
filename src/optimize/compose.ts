/**
 * Objectives that compose, as lucent's do: weighted sums of layer objectives
 * ({@linkcode featureMatch}, {@linkcode classLogit}, any `Objective`) and
 * image objectives ({@linkcode totalVariation}), each part named so that its
 * value is reported on its own. `sum([featureMatch(4, t),
 * scaled(0.01, totalVariation())])` is the essay's feature match plus a
 * weighted total-variation penalty.
 *
 * How the parts meet: the model's input gradient reads one layer, so the
 * parts that read the same layer are merged into one objective on it (one
 * forward and VJP pass per layer read); their gradients are pulled back to
 * the image through the input transform, and the image objectives' gradients
 * are then added in image space. A lone layer objective takes exactly the
 * path it always took.
 *
 * @module
 */

import type { Layer, Model, Objective, Tensor } from "../model/mod.ts";
import type { ImageObjective } from "./objective.ts";
import type { Transform } from "./transform.ts";

/** One objective of a sum: on a layer's output, or on the image. */
export type Term = Objective | ImageObjective;

/** A term of a sum with its weight and the name its value is reported under. */
export interface Part {
  /** Unique within its sum (default: the term's name). */
  readonly name: string;
  /** The weight w of w·f (finite; may be negative or 0). */
  readonly weight: number;
  /** The term f. */
  readonly objective: Term;
}

/** A weighted sum Σ wᵢ·fᵢ of objectives, built by {@linkcode sum}, {@linkcode scaled} and {@linkcode named}. */
export interface ObjectiveSum {
  /** The parts joined, e.g. `l1(layer 4) + 0.01·tv(l1)`. */
  readonly name: string;
  /** The weighted terms, names unique. */
  readonly parts: readonly Part[];
}

/** Whatever the loop can minimize: a layer objective, an image objective or a weighted sum of them. */
export type AnyObjective = Term | ObjectiveSum;

/**
 * Whether an objective is a weighted sum (else a single term).
 *
 * @example
 * ```ts
 * import { isSum, scaled } from "./compose.ts";
 * import { totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isSum(totalVariation()), false);
 * assert.equal(isSum(scaled(2, totalVariation())), true);
 * ```
 */
export function isSum(objective: AnyObjective): objective is ObjectiveSum {
  return Array.isArray((objective as ObjectiveSum)?.parts);
}

function checkTerm(t: Term): Term {
  const layer = (t as { layer?: unknown })?.layer;
  const ok = typeof t?.name === "string" && typeof t.evaluate === "function" &&
    (layer === "image" || layer === "logits" ||
      (Number.isInteger(layer) && (layer as number) >= 0));
  if (!ok) {
    throw new TypeError(
      `Invalid objective "${
        t?.name ?? t
      }": expected a name, an evaluate function and a layer (a block number, "logits" or "image")`,
    );
  }
  return t;
}

/**
 * The weighted parts of an objective: a sum's own, or one part of weight 1
 * named after a single term.
 *
 * @example
 * ```ts
 * import { partsOf } from "./compose.ts";
 * import { totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const [p] = partsOf(totalVariation());
 * assert.deepEqual([p.name, p.weight], ["tv(l1)", 1]);
 * ```
 */
export function partsOf(objective: AnyObjective): readonly Part[] {
  if (isSum(objective)) return objective.parts;
  const t = checkTerm(objective);
  return [{ name: t.name, weight: 1, objective: t }];
}

function show(w: number): string {
  return String(Number(w.toPrecision(6)));
}

function makeSum(parts: readonly Part[]): ObjectiveSum {
  if (parts.length === 0) {
    throw new RangeError(
      `Invalid sum of 0 objectives: expected one or more, e.g. sum([featureMatch(4, target), scaled(0.01, totalVariation())])`,
    );
  }
  const seen = new Set<string>();
  for (const p of parts) {
    if (!Number.isFinite(p.weight)) {
      throw new RangeError(
        `Invalid weight "${p.weight}" of "${p.name}": expected a finite number`,
      );
    }
    if (seen.has(p.name)) {
      throw new RangeError(
        `Invalid sum: two parts are named "${p.name}": expected unique names, e.g. named("tv", …)`,
      );
    }
    seen.add(p.name);
  }
  const name = parts.map((p) =>
    p.weight === 1 ? p.name : `${show(p.weight)}·${p.name}`
  ).join(" + ");
  return Object.freeze({ name, parts: Object.freeze([...parts]) });
}

/**
 * The sum of objectives, Σ fᵢ: nested sums are flattened into one list of
 * weighted parts; part names must be unique (rename one with
 * {@linkcode named}). Minimized by the loop like any objective: its value
 * is Σ wᵢ·vᵢ, its gradient Σ wᵢ·gᵢ, and each part's value is reported.
 *
 * @example
 * ```ts
 * import { scaled, sum } from "./compose.ts";
 * import { featureMatch, totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const target = new Float32Array([1, 2]);
 * const objective = sum([featureMatch(4, target), scaled(0.01, totalVariation())]);
 * assert.equal(objective.name, "l2(layer 4) + 0.01·tv(l1)");
 * assert.deepEqual(objective.parts.map((p) => p.weight), [1, 0.01]);
 * ```
 */
export function sum(objectives: readonly AnyObjective[]): ObjectiveSum {
  if (!Array.isArray(objectives)) {
    throw new TypeError(
      `Invalid objectives "${objectives}": expected an array of objectives`,
    );
  }
  return makeSum(objectives.flatMap((o) => partsOf(o)));
}

/**
 * `weight` times an objective: every part's weight multiplied by it.
 *
 * @example
 * ```ts
 * import { scaled } from "./compose.ts";
 * import { totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const tv = scaled(0.5, scaled(0.1, totalVariation()));
 * assert.equal(tv.parts[0].weight, 0.05);
 * assert.throws(() => scaled(NaN, totalVariation()), /Invalid weight "NaN"/);
 * ```
 */
export function scaled(weight: number, objective: AnyObjective): ObjectiveSum {
  if (!Number.isFinite(weight)) {
    throw new RangeError(
      `Invalid weight "${weight}": expected a finite number, e.g. 0.01`,
    );
  }
  return makeSum(
    partsOf(objective).map((p) => ({ ...p, weight: p.weight * weight })),
  );
}

/**
 * An objective of one part under another name (the name its value is
 * reported under), e.g. to sum two total variations.
 *
 * @example
 * ```ts
 * import { named, scaled, sum } from "./compose.ts";
 * import { totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const both = sum([
 *   named("smooth", scaled(0.1, totalVariation({ loss: "l2" }))),
 *   named("sharp", totalVariation()),
 * ]);
 * assert.deepEqual(both.parts.map((p) => p.name), ["smooth", "sharp"]);
 * ```
 */
export function named(name: string, objective: AnyObjective): ObjectiveSum {
  const parts = partsOf(objective);
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`Invalid name "${name}": expected a non-empty string`);
  }
  if (parts.length !== 1) {
    throw new RangeError(
      `Invalid objective "${objective.name}" to name "${name}": it has ${parts.length} parts: expected one (name the parts before summing them)`,
    );
  }
  return makeSum([{ ...parts[0], name }]);
}

/** The value of one part of a sum at a step: unweighted, with its weight. */
export interface PartValue {
  /** The part's name. */
  name: string;
  /** Its weight wᵢ. */
  weight: number;
  /** Its unweighted value vᵢ. */
  value: number;
  /** Its unweighted value per image of a batch, when the term reports them. */
  values?: number[];
}

/**
 * Each part's unweighted value by name, for a trace row: of the whole
 * batch, or of image `image` of it (its per-image value).
 *
 * @example
 * ```ts
 * import { partRecord } from "./compose.ts";
 * import assert from "node:assert/strict";
 * const parts = [{ name: "tv(l1)", weight: 0.01, value: 5, values: [2, 3] }];
 * assert.deepEqual(partRecord(parts), { "tv(l1)": 5 });
 * assert.deepEqual(partRecord(parts, 1), { "tv(l1)": 3 });
 * ```
 */
export function partRecord(
  parts: readonly PartValue[],
  image?: number,
): Record<string, number> {
  return Object.fromEntries(
    parts.map((
      p,
    ) => [p.name, image === undefined ? p.value : p.values?.[image] ?? NaN]),
  );
}

/** Result of {@linkcode objectiveGradient}. */
export interface ObjectiveGradient {
  /** The objective's value, Σ wᵢ·vᵢ for a sum. */
  value: number;
  /** Per image of a batch, when every part reports them. */
  values?: number[];
  /** Each part's value, for a sum (absent for a single term). */
  parts?: PartValue[];
  /** The gradient with respect to the image (image space), Σ wᵢ·gᵢ for a sum. */
  grad: Float32Array;
  /** The output of the first layer read (the image itself when no part reads a layer). */
  output: Tensor;
}

/** What {@linkcode objectiveGradient} needs of a model. */
export type GradientSource = Pick<Model, "inputGradient">;

/** Options of {@linkcode objectiveGradient}. */
export interface ObjectiveGradientOptions {
  /** Maps from the image to the model's input, in order (e.g. normalization); default none. */
  maps?: readonly Transform[];
  /** Encoder blocks to apply (default all up to each layer read). */
  blocks?: readonly number[];
}

/**
 * Value and image-space gradient of any objective at `image` ([B,3,side,side]):
 * layer parts through the model (the maps applied on the way in, their VJPs
 * on the way back; parts on one layer share one pass), image parts on the
 * image itself, gradients added with their weights.
 *
 * @example
 * ```ts
 * import { loadModel } from "../model/mod.ts";
 * import { objectiveGradient, scaled, sum } from "./compose.ts";
 * import { classLogit, totalVariation } from "./objective.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const image = new Float32Array(3 * 32 * 32).map((_, i) => (i % 7) / 7);
 * const objective = sum([classLogit(3), scaled(0.01, totalVariation())]);
 * const r = await objectiveGradient(model, image, 32, objective);
 * const [logit, tv] = r.parts!;
 * assert.ok(Math.abs(r.value - (logit.value + 0.01 * tv.value)) < 1e-9 * r.value);
 * ```
 */
export async function objectiveGradient(
  model: GradientSource,
  image: Float32Array,
  side: number,
  objective: AnyObjective,
  options: ObjectiveGradientOptions = {},
): Promise<ObjectiveGradient> {
  const maps = options.maps ?? [];
  const blocks = options.blocks;
  const into = (x: Float32Array) => maps.reduce((v, m) => m.forward(v), x);
  const back = (g: Float32Array) => maps.reduceRight((v, m) => m.vjp(v), g);
  if (!isSum(objective) && objective.layer !== "image") {
    // a lone layer objective: the path the PyTorch step fixtures check
    const r = await model.inputGradient(into(image), objective, { blocks });
    return {
      value: r.value,
      values: r.values,
      grad: back(r.grad),
      output: r.output,
    };
  }
  const parts = partsOf(objective);
  const dims = [image.length / (3 * side * side), 3, side, side];
  const seen: PartValue[] = new Array(parts.length);
  const layers = new Map<Layer, number[]>();
  parts.forEach((p, i) => {
    if (p.objective.layer === "image") return;
    const l = p.objective.layer;
    layers.set(l, [...(layers.get(l) ?? []), i]);
  });
  let output: Tensor | undefined;
  let sumGrad: Float32Array | undefined;
  const x = layers.size ? into(image) : image;
  for (const [layer, members] of layers) {
    const r = await model.inputGradient(
      x,
      layerObjective(layer, members.map((i) => parts[i]), (k, v) => {
        seen[members[k]] = v;
      }),
      { blocks },
    );
    output ??= r.output;
    sumGrad = sumGrad ? addScaled(sumGrad, r.grad, 1) : r.grad;
  }
  const grad = sumGrad ? back(sumGrad) : new Float32Array(image.length);
  parts.forEach((p, i) => {
    if (p.objective.layer !== "image") return;
    const r = evaluateChecked(p, { data: image, dims });
    seen[i] = report(p, r);
    addScaled(grad, r.grad, p.weight);
  });
  return {
    ...total(seen),
    parts: seen,
    grad,
    output: output ?? { data: image, dims },
  };
}

/** The parts of a sum on one layer as one objective on it, reporting each part's value. */
function layerObjective(
  layer: Layer,
  parts: readonly Part[],
  note: (k: number, v: PartValue) => void,
): Objective {
  return {
    name: parts.map((p) => p.name).join(" + "),
    layer,
    evaluate(output) {
      const grad = new Float32Array(output.data.length);
      const values: PartValue[] = parts.map((p, k) => {
        const r = evaluateChecked(p, output);
        addScaled(grad, r.grad, p.weight);
        const v = report(p, r);
        note(k, v);
        return v;
      });
      return { ...total(values), grad };
    },
  };
}

/** A part's evaluation, its gradient checked against what it read. */
function evaluateChecked(
  p: Part,
  input: Tensor,
): { value: number; grad: Float32Array; values?: number[] } {
  const r = p.objective.evaluate(input);
  if (
    !(r?.grad instanceof Float32Array) || r.grad.length !== input.data.length
  ) {
    throw new RangeError(
      `Objective "${p.name}" gave a gradient of ${r?.grad?.length} values: expected one per value it reads, ${input.data.length} [${input.dims}]`,
    );
  }
  return r;
}

function report(
  p: Part,
  r: { value: number; values?: number[] },
): PartValue {
  const v: PartValue = { name: p.name, weight: p.weight, value: r.value };
  if (r.values) v.values = r.values;
  return v;
}

/** Σ wᵢ·vᵢ, and per image when every part reports values. */
function total(
  parts: readonly PartValue[],
): { value: number; values?: number[] } {
  const value = parts.reduce((s, p) => s + p.weight * p.value, 0);
  const rows = parts[0]?.values?.length;
  if (!rows || !parts.every((p) => p.values?.length === rows)) return { value };
  const values = new Array<number>(rows).fill(0);
  for (const p of parts) p.values!.forEach((v, i) => values[i] += p.weight * v);
  return { value, values };
}

/** acc += w·g, in place; returns acc. */
function addScaled(
  acc: Float32Array,
  g: Float32Array,
  w: number,
): Float32Array {
  for (let i = 0; i < acc.length; i++) acc[i] += w * g[i];
  return acc;
}
