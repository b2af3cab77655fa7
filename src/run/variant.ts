/**
 * Model variants as typed settings — what to remove (`RemoveRequest`), which
 * parts to take from other weights (`SwapRequest`), the position embedding —
 * resolved against a model's depth and tensors and loaded
 * ({@linkcode openVariant}), with the description figures use and the model
 * part of metrics.json. The command line parses its options into these.
 *
 * @module
 */
import {
  type Ablation,
  type BackendName,
  BLOCK_PARTS,
  type BlockPart,
  loadModel,
  type LoadOptions,
  type Manifest,
  type Model,
  resolvePart,
  type Swap,
  VerifyCache,
} from "../model/mod.ts";
import { usage } from "./settings.ts";

/** One `--remove` with its `--remove-layers`, before the model's depth is known. */
export interface RemoveRequest {
  /** The names as given, e.g. `["layernorm", "attn"]`. */
  names: string[];
  /** The block parts they stand for, in graph order. */
  parts: BlockPart[];
  /** `--remove-layers` as given. */
  layersText: string;
  /** The layers as sorted, merged ranges [first, last] (not expanded: checked against the model first), or all of them. */
  layers: [number, number][] | "all";
}

/** One `--swap PART=WEIGHTS`. */
export interface SwapRequest {
  /** As given. */
  text: string;
  part: string;
  weights: string;
}

/** A model variant as loaded: what metrics.json records and figures name. */
export interface Variant {
  /** Ablations with explicit layers. */
  ablations: Ablation[];
  positionEmbedding: boolean;
  /** Swaps with canonical part names (torchvision state-dict prefixes). */
  swaps: Swap[];
  /** A short description for figure labels, e.g. "no layernorm in layers 1-2"; "" for the plain model. */
  tag: string;
}

/** Sorted, merged ranges: the same for every way of writing the same layers. */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The layers of ranges checked against `numLayers`, as a list. */
function expand(
  r: RemoveRequest,
  numLayers: number,
): number[] {
  if (r.layers === "all") {
    return Array.from({ length: numLayers }, (_, i) => i + 1);
  }
  const top = r.layers.at(-1)?.[1] ?? 0;
  if (top > numLayers) {
    throw usage(
      new RangeError(
        `Invalid --remove-layers "${r.layersText}" (layer ${top}): expected encoder layers 1..${numLayers} or all for this model`,
      ),
    );
  }
  return r.layers.flatMap(([a, b]) =>
    Array.from({ length: b - a + 1 }, (_, i) => a + i)
  );
}

/** The ablations for a model with `numLayers` encoder blocks (usage error for a layer beyond it). */
export function resolveAblations(
  requests: readonly RemoveRequest[],
  numLayers: number,
): Ablation[] {
  return requests.map((r) => ({
    remove: r.parts,
    layers: expand(r, numLayers),
  }));
}

/**
 * What is removed, per block part: the layers (with `numLayers`; a usage
 * error beyond it), or before the depth is known "all" or the merged ranges.
 * The same for every way of writing the same ablation (`--remove layernorm` is
 * `--remove ln1,ln2`), so it keys caches and --resume checks.
 */
export function removedParts(
  requests: readonly RemoveRequest[],
  numLayers?: number,
): Partial<Record<BlockPart, number[] | [number, number][] | "all">> {
  const out: Partial<
    Record<BlockPart, number[] | [number, number][] | "all">
  > = {};
  for (const p of BLOCK_PARTS) {
    const rs = requests.filter((r) => r.parts.includes(p));
    if (rs.length === 0) continue;
    if (numLayers !== undefined) {
      out[p] = [...new Set(rs.flatMap((r) => expand(r, numLayers)))].sort((
        a,
        b,
      ) => a - b);
    } else if (rs.some((r) => r.layers === "all")) out[p] = "all";
    else {
      out[p] = mergeRanges(
        rs.flatMap((r) => r.layers as [number, number][]),
      );
    }
  }
  return out;
}

/** A swap's weights as loadModel gets them: `untrained` alone is drawn with --seed. */
export function swapWeights(s: SwapRequest, seed: number): string {
  return s.weights === "untrained" ? `untrained:${seed}` : s.weights;
}

/** The part a swap names, canonical (usage error listing the valid ones). */
function swapPart(manifest: Manifest, s: SwapRequest): string {
  try {
    return resolvePart(manifest, s.part);
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    throw usage(
      new TypeError(`Invalid --swap "${s.text}": ${err.message}`, {
        cause: err,
      }),
    );
  }
}

/** How a removed part's name is shown in labels. */
const SHOWN: Record<string, string> = {
  residual: "residual",
  layernorm: "layernorm",
  attention: "attention",
  attn: "attention",
  mlp: "MLP",
  batchnorm: "batch norm",
  bn: "batch norm",
};

function layerText(ranges: readonly [number, number][]): string {
  const runs = ranges.map(([a, b]) => (b > a ? `${a}-${b}` : `${a}`));
  const one = ranges.length === 1 && ranges[0][0] === ranges[0][1];
  return `${one ? "layer" : "layers"} ${runs.join(",")}`;
}

/**
 * A short description of a variant for figure labels, e.g. "no layernorm in
 * layers 1-2, no pos embedding, conv_proj from untrained:1"; "" for none.
 */
export function describeVariant(
  removes: readonly RemoveRequest[],
  positionEmbedding: boolean,
  swaps: readonly { part: string; weights: string }[],
  numLayers?: number,
): string {
  const items = removes.map((r) => {
    const what = [...new Set(r.names.map((n) => SHOWN[n] ?? n))].join("+");
    const all = r.layers === "all" ||
      (numLayers !== undefined && r.layers.length === 1 &&
        r.layers[0][0] === 1 && r.layers[0][1] === numLayers);
    return `no ${what}${
      all ? "" : ` in ${layerText(r.layers as [number, number][])}`
    }`;
  });
  if (!positionEmbedding) items.push("no pos embedding");
  for (const s of swaps) items.push(`${s.part} from ${s.weights}`);
  return items.join(", ");
}

/** Files this process has verified already (a grid loads the same weights for many cells). */
export const VERIFIED: VerifyCache = new VerifyCache();

/** A model variant as typed settings: what to load and what to change in it. */
export interface ModelSpec {
  /** The weight set (`untrained`, `untrained:SEED`, a name, a file or URL). */
  weights: string;
  /** Seed of untrained weights (and of `untrained` swaps). */
  seed: number;
  backend: BackendName;
  /** Threads of the CPU backends (all cores when left out). */
  threads?: number;
  /** Check sha256s and finiteness on load. */
  verify: boolean;
  /** What to remove (each with its layers). */
  removes: readonly RemoveRequest[];
  positionEmbedding: boolean;
  /** Parts whose tensors come from other weight sets. */
  swaps: readonly SwapRequest[];
}

/** The variant part of a {@linkcode ModelSpec}: what is changed in the loaded model. */
export type VariantSpec = Pick<
  ModelSpec,
  "removes" | "positionEmbedding" | "swaps" | "seed"
>;

/** The swaps of `spec` as loaded: `untrained` alone drawn with its seed. */
function swapsOf(spec: VariantSpec): { part: string; weights: string }[] {
  return spec.swaps.map((s) => ({
    part: s.part,
    weights: swapWeights(s, spec.seed),
  }));
}

/**
 * A variant in a form equal for equal variants, by option name (what
 * `--resume` compares): the removed parts by layer, the position embedding,
 * the swaps with their weights as loaded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { variantKey } from "./variant.ts";
 * const removes = [{ names: ["mlp"], parts: ["mlp" as const], layersText: "1-2", layers: [[1, 2]] as [number, number][] }];
 * const key = variantKey({ removes, positionEmbedding: true, swaps: [], seed: 0 });
 * assert.deepEqual(key.swap, []);
 * assert.deepEqual(key.remove, key["remove-layers"]);
 * ```
 */
export function variantKey(spec: VariantSpec): Record<string, unknown> {
  const removed = removedParts(spec.removes);
  return {
    remove: removed,
    "remove-layers": removed,
    "pos-embedding": spec.positionEmbedding,
    swap: swapsOf(spec),
  };
}

/**
 * The figure-label description of the variant `spec` (see
 * {@linkcode describeVariant}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeSpec } from "./variant.ts";
 * const swaps = [{ text: "conv_proj=untrained", part: "conv_proj", weights: "untrained" }];
 * assert.equal(
 *   describeSpec({ removes: [], positionEmbedding: false, swaps, seed: 3 }),
 *   "no pos embedding, conv_proj from untrained:3",
 * );
 * ```
 */
export function describeSpec(spec: VariantSpec, numLayers?: number): string {
  return describeVariant(
    spec.removes,
    spec.positionEmbedding,
    swapsOf(spec),
    numLayers,
  );
}

/**
 * Loads the model `spec` describes: weights, then (usage errors) the
 * ablation layers against its depth and the swapped parts against its
 * tensors, then the swaps themselves (a shape mismatch is a usage error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openVariant } from "./variant.ts";
 * const { model, variant } = await openVariant("tests/fixtures/tiny_vit", {
 *   weights: "fixture", seed: 0, backend: "native", verify: true,
 *   removes: [{ names: ["mlp"], parts: ["mlp"], layersText: "1", layers: [[1, 1]] }],
 *   positionEmbedding: true, swaps: [],
 * });
 * assert.equal(variant.tag, "no MLP in layer 1");
 * assert.deepEqual(variant.ablations, [{ remove: ["mlp"], layers: [1] }]);
 * await model.release();
 * ```
 */
export async function openVariant(
  source: string,
  spec: ModelSpec,
): Promise<{ model: Model; variant: Variant }> {
  const { removes, positionEmbedding, seed } = spec;
  const requests = spec.swaps;
  const opts: LoadOptions = {
    weights: spec.weights,
    seed,
    backend: spec.backend,
    threads: spec.threads,
    verify: spec.verify,
    verifyCache: VERIFIED,
  };
  let model = await loadModel(source, opts);
  try {
    const m = model.manifest;
    const ablations = resolveAblations(removes, m.num_layers);
    const swaps = requests.map((s) => ({
      part: swapPart(m, s),
      weights: swapWeights(s, seed),
    }));
    if (swaps.length > 0) {
      const base = model;
      model = await loadSwapped(source, {
        ...opts,
        ablations,
        positionEmbedding,
        swaps,
      }, requests);
      await base.release();
    } else if (ablations.length > 0 || !positionEmbedding) {
      model = model.withAblations(ablations, positionEmbedding);
    }
    const tag = describeVariant(
      removes,
      positionEmbedding,
      requests.map((s) => ({ part: s.part, weights: swapWeights(s, seed) })),
      m.num_layers,
    );
    return { model, variant: { ablations, positionEmbedding, swaps, tag } };
  } catch (err) {
    await model.release();
    throw err;
  }
}

async function loadSwapped(
  source: string,
  opts: LoadOptions,
  requests: readonly SwapRequest[],
): Promise<Model> {
  try {
    return await loadModel(source, opts);
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    const s = requests.find((r, i) =>
      err.message.includes(`"${opts.swaps![i].weights}"`) ||
      err.message.includes(`"${r.weights}"`)
    );
    const prefix = `Invalid --swap${s ? ` "${s.text}"` : ""}: `;
    const Err = err instanceof RangeError ? RangeError : TypeError;
    const wrapped = new Err(prefix + err.message, { cause: err });
    // weights that are not there fail as for --weights (exit 1); the rest is usage
    if (/^(Unknown weights|Cannot (read|fetch))/.test(err.message)) {
      throw wrapped;
    }
    throw usage(wrapped);
  }
}

/** The model part of metrics.json. */
export function modelAbout(
  model: Model,
  source: string,
  normalize: boolean,
  variant?: Variant,
): Record<string, unknown> {
  const m = model.manifest;
  return {
    model: {
      name: m.name,
      source,
      imageSize: m.image_size,
      patchSize: m.patch_size,
      layers: m.num_layers,
      classes: m.num_classes,
    },
    weights: model.weights,
    verified: model.verified,
    ablations: variant?.ablations ?? [],
    positionEmbedding: variant?.positionEmbedding ?? true,
    swaps: variant?.swaps ?? [],
    backend: model.backend,
    normalize,
    normalization: normalize ? { mean: m.input.mean, std: m.input.std } : null,
  };
}
