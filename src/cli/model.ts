/**
 * Internal to the command line (src/cli.ts): model variants from options —
 * `--remove` with `--remove-layers`, `--no-pos-embedding` and `--swap` — and
 * loading a model with them, so that every bad value is a usage error (exit 2)
 * naming it before anything is written.
 *
 * @module
 */
import {
  type Ablation,
  BLOCK_PARTS,
  type BlockPart,
  layerIndex,
  loadModel,
  type LoadOptions,
  type Manifest,
  type Model,
  resolvePart,
  type Swap,
  VerifyCache,
} from "../model/mod.ts";
import {
  backendOpt,
  intOpt,
  list,
  modelKey,
  type Raw,
  str,
  threadsOpt,
  usage,
} from "./options.ts";

/**
 * The layer option `--NAME` gives: a number, or a layer name (`stem`,
 * `layer2.3`, a ResNet stage `layer2`, …) resolved with the model's manifest.
 * Before the model is known a well-formed name gives NaN.
 */
export function layerArg(
  text: string,
  name: string,
  manifest?: Manifest,
  whole: string = text,
): number {
  const t = text.trim();
  const quoted = whole === text
    ? `--${name} "${text}"`
    : `--${name} "${whole}" (layer ${t})`;
  if (manifest === undefined) {
    if (/^\d+$/.test(t)) return Number(t);
    if (/^[A-Za-z_][\w.]*$/.test(t)) return NaN;
    throw usage(
      new RangeError(
        `Invalid ${quoted}: expected a layer number (0 = input processing, 1..N = blocks) or a layer name, e.g. layer2 or layer2.3 for a ResNet`,
      ),
    );
  }
  try {
    return layerIndex(manifest, t);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw usage(
      new RangeError(
        err.message.replace(
          /^Invalid layer "[^"]*" for \S+:/,
          `Invalid ${quoted}:`,
        ),
      ),
    );
  }
}

/** The names `--remove` accepts and the block parts each stands for. */
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

const SHOWN: Record<string, string> = {
  residual: "residual",
  layernorm: "layernorm",
  attention: "attention",
  attn: "attention",
  mlp: "MLP",
  batchnorm: "batch norm",
  bn: "batch norm",
};

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

/** Parses a `--remove` value (a comma list of names) into block parts. */
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

/** Sorted, merged ranges: the same for every way of writing the same layers. */
function mergeRanges(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * Parses a `--remove-layers` value: `all`, or numbers and ranges such as `1-4`
 * or `3,7`, kept as ranges (a range is never expanded before it is checked
 * against the model's depth).
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

/** `--remove` and `--remove-layers` paired: one layer list for all, or one per `--remove`. */
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

/** Parses every `--swap PART=WEIGHTS`. */
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

/** A swap's weights as loadModel gets them: `untrained` alone is drawn with --seed. */
function swapWeights(s: SwapRequest, seed: number): string {
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

/** Every variant option checked for syntax (no model needed): usage errors. */
export function checkVariantOpts(raw: Raw): void {
  removeRequests(raw);
  swapRequests(raw);
}

/** The model options (model, weights, seed, normalization, variant) in a form equal for equal models (for --resume checks). */
export function canonicalModel(raw: Raw): Record<string, unknown> {
  return {
    model: modelKey(str(raw, "model")),
    weights: str(raw, "weights"),
    seed: Number(str(raw, "seed")),
    normalize: raw.normalize !== false,
    ...canonicalVariant(raw),
  };
}

/** The variant options in a form that is equal for equal variants (for --resume checks). */
export function canonicalVariant(raw: Raw): Record<string, unknown> {
  const seed = Number(str(raw, "seed"));
  const removed = removedParts(removeRequests(raw));
  return {
    remove: removed,
    "remove-layers": removed,
    "pos-embedding": raw["pos-embedding"] !== false,
    swap: swapRequests(raw).map((s) => ({
      part: s.part,
      weights: swapWeights(s, seed),
    })),
  };
}

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

/** `--weights` for labels: `untrained` shown with its seed. */
export function weightsText(raw: Raw): string {
  const w = str(raw, "weights");
  return w === "untrained" ? `untrained:${str(raw, "seed")}` : w;
}

/** The figure-label description of the variant the options describe (see {@linkcode describeVariant}). */
export function describeOptions(raw: Raw, numLayers?: number): string {
  const seed = Number(str(raw, "seed"));
  return describeVariant(
    removeRequests(raw),
    raw["pos-embedding"] !== false,
    swapRequests(raw).map((s) => ({
      part: s.part,
      weights: swapWeights(s, seed),
    })),
    numLayers,
  );
}

/** Files this process has verified already (a grid loads the same weights for many cells). */
export const VERIFIED: VerifyCache = new VerifyCache();

/**
 * Loads the model the options describe: weights, then (usage errors) the
 * ablation layers against its depth and the swapped parts against its
 * tensors, then the swaps themselves (a shape mismatch is a usage error).
 */
export async function openModel(
  raw: Raw,
  source: string,
): Promise<{ model: Model; variant: Variant }> {
  const threads = threadsOpt(raw);
  const removes = removeRequests(raw);
  const requests = swapRequests(raw);
  const positionEmbedding = raw["pos-embedding"] !== false;
  const seed = intOpt(raw, "seed", 0);
  const opts: LoadOptions = {
    weights: str(raw, "weights"),
    seed,
    backend: backendOpt(raw),
    threads,
    verify: raw.verify !== false,
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
    const tag = describeOptions(raw, m.num_layers);
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
