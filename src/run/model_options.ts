/**
 * Model variants from a run's options record — `--remove` with
 * `--remove-layers`, `--no-pos-embedding` and `--swap` — read into the typed
 * settings of variant.ts, so that every bad value is a usage error (exit 2)
 * naming it before anything is written.
 *
 * @module
 */
import { BLOCK_PARTS, type BlockPart } from "../model/mod.ts";
import {
  mergeRanges,
  type ModelSpec,
  type RemoveRequest,
  type SwapRequest,
  variantKey,
  type VariantSpec,
} from "./variant.ts";
import { backendOpt, intOpt, list, str, threadsOpt } from "./read.ts";
import { modelKey } from "./models.ts";
import { type RunOptions, usage } from "./settings.ts";

type Raw = RunOptions;

/**
 * The names `--remove` accepts and the block parts each stands for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REMOVE_NAMES } from "./model_options.ts";
 * assert.deepEqual(REMOVE_NAMES.layernorm, ["ln1", "ln2"]);
 * ```
 */
export const REMOVE_NAMES: Readonly<Record<string, readonly BlockPart[]>> = {
  residual: ["res1", "res2"],
  layernorm: ["ln1", "ln2"],
  ln1: ["ln1"],
  ln2: ["ln2"],
  attention: ["attn"],
  mlp: ["mlp"],
  attn: ["attn"],
  res1: ["res1"],
  res2: ["res2"],
  batchnorm: ["bn"],
  bn: ["bn"],
};

/**
 * Parses a `--remove` value (a comma list of names) into block parts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRemove } from "./model_options.ts";
 * assert.deepEqual(parseRemove("attention,mlp").parts, ["attn", "mlp"]);
 * assert.throws(() => parseRemove("foo"), /Invalid --remove "foo"/);
 * ```
 */
export function parseRemove(
  text: string,
): { names: string[]; parts: BlockPart[] } {
  const names = text.split(",").map((s) => s.trim().toLowerCase());
  const bad = names.find((n) => !(n in REMOVE_NAMES));
  if (bad !== undefined) {
    throw usage(
      new TypeError(
        `Invalid --remove "${text}"${
          bad === "" || bad === text.trim().toLowerCase() ? "" : ` ("${bad}")`
        }: expected a comma list of residual, layernorm, ln1, ln2, attention, mlp, batchnorm (or attn, res1, res2, bn)`,
      ),
    );
  }
  const set = new Set(names.flatMap((n) => REMOVE_NAMES[n]));
  return { names, parts: BLOCK_PARTS.filter((p) => set.has(p)) };
}

/**
 * Parses a `--remove-layers` value: `all`, or numbers and ranges such as `1-4`
 * or `3,7`, kept as ranges (a range is never expanded before it is checked
 * against the model's depth).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLayers } from "./model_options.ts";
 * assert.deepEqual(parseLayers("1-2,3"), [[1, 3]]);
 * assert.equal(parseLayers("all"), "all");
 * ```
 */
export function parseLayers(text: string): [number, number][] | "all" {
  const t = text.trim().toLowerCase();
  if (t === "all") return "all";
  const ranges: [number, number][] = [];
  for (const item of t.split(",").map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    const a = m ? Number(m[1]) : NaN, b = m?.[2] ? Number(m[2]) : a;
    if (!m || a < 1 || b < a || !Number.isSafeInteger(b)) {
      throw usage(
        new RangeError(
          `Invalid --remove-layers "${text}"${
            item === text ? "" : ` ("${item}")`
          }: expected all, or encoder layers from 1 as numbers and ranges, e.g. 1-4 or 3,7`,
        ),
      );
    }
    ranges.push([a, b]);
  }
  return mergeRanges(ranges);
}

/**
 * `--remove` and `--remove-layers` paired: one layer list for all, or one per `--remove`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeRequests } from "./model_options.ts";
 * const [r] = removeRequests({ remove: "mlp", "remove-layers": "1-2" });
 * assert.deepEqual(r.layers, [[1, 2]]);
 * assert.throws(() => removeRequests({ "remove-layers": "1" }), /without --remove/);
 * ```
 */
export function removeRequests(raw: Raw): RemoveRequest[] {
  const removes = list(raw, "remove");
  const layers = list(raw, "remove-layers");
  if (removes.length === 0) {
    if (layers.length > 0) {
      throw usage(
        new RangeError(
          `Invalid --remove-layers "${
            layers.join(" ")
          }" without --remove: expected --remove PART too, e.g. --remove attention --remove-layers 1-4`,
        ),
      );
    }
    return [];
  }
  if (layers.length > 1 && layers.length !== removes.length) {
    throw usage(
      new RangeError(
        `Invalid --remove-layers: ${layers.length} given for ${removes.length} --remove: expected one for all, or one per --remove in order`,
      ),
    );
  }
  return removes.map((text, i) => {
    const layersText = layers.length === 0
      ? "all"
      : layers[layers.length === 1 ? 0 : i];
    return {
      ...parseRemove(text),
      layersText,
      layers: parseLayers(layersText),
    };
  });
}

/**
 * Parses every `--swap PART=WEIGHTS`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { swapRequests } from "./model_options.ts";
 * assert.deepEqual(swapRequests({ swap: "conv_proj=untrained" }), [
 *   { text: "conv_proj=untrained", part: "conv_proj", weights: "untrained" },
 * ]);
 * ```
 */
export function swapRequests(raw: Raw): SwapRequest[] {
  return list(raw, "swap").map((text) => {
    const i = text.indexOf("=");
    const part = i < 0 ? "" : text.slice(0, i).trim();
    const weights = i < 0 ? "" : text.slice(i + 1).trim();
    if (part === "" || weights === "") {
      throw usage(
        new TypeError(
          `Invalid --swap "${text}": expected PART=WEIGHTS, e.g. conv_proj=untrained:1 or encoder.layers.0.ln_1=IMAGENET1K_V1`,
        ),
      );
    }
    return { text, part, weights };
  });
}

/**
 * Every variant option checked for syntax (no model needed): usage errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkVariantOpts } from "./model_options.ts";
 * assert.throws(() => checkVariantOpts({ swap: "x" }), /Invalid --swap "x"/);
 * ```
 */
export function checkVariantOpts(raw: Raw): void {
  removeRequests(raw);
  swapRequests(raw);
}

/**
 * The model options (model, weights, seed, normalization, variant) in a form equal for equal models (for --resume checks).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalModel } from "./model_options.ts";
 * const c = canonicalModel({ model: "tests/fixtures/tiny_vit", weights: "fixture", seed: "0" });
 * assert.equal(c.weights, "fixture");
 * assert.equal(c.normalize, true);
 * ```
 */
export function canonicalModel(raw: Raw): Record<string, unknown> {
  return {
    model: modelKey(str(raw, "model")),
    weights: str(raw, "weights"),
    seed: Number(str(raw, "seed")),
    normalize: raw.normalize !== false,
    ...canonicalVariant(raw),
  };
}

/** The variant options as typed settings, read for a key or a label (the seed as typed, unchecked). */
function variantOpts(raw: Raw): VariantSpec {
  return {
    removes: removeRequests(raw),
    positionEmbedding: raw["pos-embedding"] !== false,
    swaps: swapRequests(raw),
    seed: Number(str(raw, "seed")),
  };
}

/**
 * The variant options in a form that is equal for equal variants (for --resume checks; see {@linkcode variantKey}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalVariant } from "./model_options.ts";
 * assert.deepEqual(canonicalVariant({ seed: "0" }).swap, []);
 * ```
 */
export function canonicalVariant(raw: Raw): Record<string, unknown> {
  return variantKey(variantOpts(raw));
}

/**
 * `--weights` for labels: `untrained` shown with its seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { weightsText } from "./model_options.ts";
 * assert.equal(weightsText({ weights: "untrained", seed: "3" }), "untrained:3");
 * ```
 */
export function weightsText(raw: Raw): string {
  const w = str(raw, "weights");
  return w === "untrained" ? `untrained:${str(raw, "seed")}` : w;
}

/**
 * The model options as typed settings (usage errors for bad values): read once per run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelSpec } from "./model_options.ts";
 * const spec = modelSpec({ weights: "fixture", seed: "0", backend: "native" });
 * assert.equal(spec.seed, 0);
 * assert.deepEqual(spec.removes, []);
 * ```
 */
export function modelSpec(raw: Raw): ModelSpec {
  const removes = removeRequests(raw);
  const swaps = swapRequests(raw);
  const positionEmbedding = raw["pos-embedding"] !== false;
  const backend = backendOpt(raw);
  const threads = threadsOpt(raw);
  const seed = intOpt(raw, "seed", 0);
  return {
    weights: str(raw, "weights"),
    seed,
    backend,
    threads,
    verify: raw.verify !== false,
    removes,
    positionEmbedding,
    swaps,
  };
}
