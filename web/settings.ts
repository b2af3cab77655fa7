/**
 * The page's options: the models it offers (with the memory each needs), the
 * query parameters that set a run — `mode=invert|generate`, `model`,
 * `layers=0,1,4`, `remove=attn@1-4` (per encoder, as the CLI's `--remove
 * attn --remove-layers 1-4`), `swap=conv_proj=untrained:1`, `steps`,
 * `every`, `backend`, `class`, `seed`, `image` — and their checks against a
 * model's manifest (layers bounded by its depth). Pure functions: no DOM.
 *
 * @module
 */

// the model's files themselves, not its barrel: the page's main bundle takes
// no image codec or runtime along (web/build.ts reports its size)
import { resolveClass } from "../src/model/classes.ts";
import type { Manifest } from "../src/model/manifest.ts";
import type { Ablation, BlockPart } from "../src/model/model.ts";
import type { Schedule } from "../src/optimize/mod.ts";

/** Generation settings that work for a model (the CLI's defaults are made for 224-pixel ViTs). */
export interface GeneratePreset {
  /** Gradient steps (jitter starts after half of them). */
  steps: number;
  /** Side of the enlarged canvas the jittered crops come from. */
  canvasSize: number;
  /** Learning rate schedule. */
  lr: Schedule;
  /** Blur σ schedule. */
  sigma: Schedule;
}

/** The generation settings the Fashion-MNIST models' manifests recommend (32² inputs; `recommended.generate`, which tests/web_test.ts checks this against). */
export const FMNIST_GENERATE: GeneratePreset = {
  steps: 300,
  canvasSize: 40,
  lr: { start: 2, end: 0.2 },
  sigma: { start: 1, end: 0 },
};

/** Where a model's sample images come from. */
export type SampleSet = "fmnist" | "photos";

/** A model the page offers. */
export interface PageModel {
  /** The model folder, relative to `web/index.html`. */
  path: string;
  /** The weight set `loadModel` gets. */
  weights: string;
  /** What the picker says. */
  label: string;
  /** The picker's group. */
  group:
    | "trained here"
    | "untrained (weights drawn in TypeScript)"
    | "test fixtures";
  /**
   * MiB of weights the sessions hold for every layer with gradients (what a
   * run to the last layer needs; activations come on top).
   */
  sessionMiB: number;
  /** The sample images offered as targets. */
  samples: SampleSet;
  /** Settings for generate mode (trained models only: untrained heads are zero). */
  generate?: GeneratePreset;
}

const UNTRAINED = "untrained (weights drawn in TypeScript)" as const;

function untrained(name: string, label: string, mib: number): PageModel {
  return {
    path: `../weights/${name}`,
    weights: "untrained",
    label,
    group: UNTRAINED,
    sessionMiB: mib,
    samples: "photos",
  };
}

/** The models of the page: small trained ones, untrained torchvision ones, test fixtures. */
export const MODELS: Readonly<Record<string, PageModel>> = {
  fmnist_vit: {
    path: "../weights/fmnist_vit",
    weights: "trained",
    label: "Fashion-MNIST ViT (32², 4 layers)",
    group: "trained here",
    sessionMiB: 1.1,
    samples: "fmnist",
    generate: FMNIST_GENERATE,
  },
  fmnist_resnet: {
    path: "../weights/fmnist_resnet",
    weights: "trained",
    label: "Fashion-MNIST ResNet (32², 4 blocks)",
    group: "trained here",
    sessionMiB: 0.6,
    samples: "fmnist",
    generate: FMNIST_GENERATE,
  },
  vit_b_32: untrained("vit_b_32", "ViT-B/32 (224², 12 layers)", 667),
  vit_b_16: untrained("vit_b_16", "ViT-B/16 (224², 12 layers)", 654),
  vit_l_32: untrained("vit_l_32", "ViT-L/32 (224², 24 layers)", 2330),
  vit_l_16: untrained("vit_l_16", "ViT-L/16 (224², 24 layers)", 2312),
  mixer_b16_224: untrained(
    "mixer_b16_224",
    "Mixer-B/16 (224², 12 layers)",
    451,
  ),
  mixer_l16_224: untrained(
    "mixer_l16_224",
    "Mixer-L/16 (224², 24 layers)",
    1580,
  ),
  mixer_p16_d1024: untrained(
    "mixer_p16_d1024",
    "Mixer P16 d1024 (224², 8 layers)",
    531,
  ),
  mixer_p8_d1024: untrained(
    "mixer_p8_d1024",
    "Mixer P8 d1024 (224², 8 layers)",
    563,
  ),
  linear_tiny: untrained(
    "linear_tiny",
    "FF-only ViT, tiny (224², 12 layers)",
    56.8,
  ),
  linear_base: untrained(
    "linear_base",
    "FF-only ViT, base (224², 12 layers)",
    466,
  ),
  resnet50: untrained("resnet50", "ResNet-50 (224², 16 blocks)", 180),
  tiny: {
    path: "../tests/fixtures/tiny_vit",
    weights: "fixture",
    label: "tiny ViT (32², 3 layers)",
    group: "test fixtures",
    sessionMiB: 0.1,
    samples: "photos",
  },
  tiny_resnet: {
    path: "../tests/fixtures/tiny_resnet",
    weights: "fixture",
    label: "tiny ResNet (64², 6 blocks)",
    group: "test fixtures",
    sessionMiB: 0.1,
    samples: "photos",
  },
};

/** One sample image the page offers, relative to `web/index.html`. */
export interface Sample {
  /** The image's URL relative to the page. */
  url: string;
  /** Its caption (a class name for data-set samples). */
  label: string;
}

/**
 * The sample images of a set: one Fashion-MNIST test image per class
 * (tests/fixtures/fmnist/sample_K.png, 32², captioned with the model's class
 * names), or the repository's photos.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samples } from "./settings.ts";
 *
 * assert.equal(samples("fmnist", ["T-shirt/top", "Trouser"])[1].label, "Trouser");
 * assert.equal(samples("photos")[0].url, "../assets/chelsea.png");
 * ```
 */
export function samples(set: SampleSet, classes?: readonly string[]): Sample[] {
  if (set === "photos") {
    return [
      { url: "../assets/chelsea.png", label: "cat (chelsea)" },
      { url: "../tests/fixtures/images/rocket.jpg", label: "rocket" },
    ];
  }
  return Array.from({ length: 10 }, (_, k) => ({
    url: `../tests/fixtures/fmnist/sample_${k}.png`,
    label: classes?.[k] ?? `class ${k}`,
  }));
}

/**
 * The block parts in graph order: the library's `BLOCK_PARTS` (a test checks
 * they agree; importing model.ts would bring the runtime into the page's main
 * bundle).
 */
export const PARTS: readonly BlockPart[] = [
  "ln1",
  "attn",
  "res1",
  "ln2",
  "mlp",
  "res2",
  "bn",
];

/**
 * The names `remove` accepts and the block parts each stands for: those of
 * the CLI's `--remove`.
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

/** One `remove` parameter: block parts removed in some encoder layers. */
export interface RemoveSpec {
  /** The text as given, e.g. `attn@1-4`. */
  text: string;
  /** The block parts, in graph order. */
  parts: BlockPart[];
  /** Encoder layers (1-based) as sorted, merged ranges, or all of them. */
  layers: [number, number][] | "all";
}

function mergeRanges(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Numbers and ranges (`1-4,7`) from `min`, merged; throws naming `what`. */
function parseRanges(
  text: string,
  what: string,
  min: number,
): [number, number][] {
  const ranges: [number, number][] = [];
  for (const item of text.split(",").map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    const a = m ? Number(m[1]) : NaN, b = m?.[2] ? Number(m[2]) : a;
    if (!m || a < min || b < a || b > 10_000) {
      throw new RangeError(
        `Invalid ${what}${
          item === text ? "" : ` ("${item}")`
        }: expected layers from ${min} as numbers and ranges, e.g. ${min}-4 or ${min},4`,
      );
    }
    ranges.push([a, b]);
  }
  return mergeRanges(ranges);
}

/**
 * Parses one `remove` value: `NAMES[@LAYERS]`, NAMES a comma list of the
 * CLI's `--remove` names, LAYERS its `--remove-layers` (default all).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRemove } from "./settings.ts";
 *
 * assert.deepEqual(parseRemove("attn@1-4").layers, [[1, 4]]);
 * assert.deepEqual(parseRemove("layernorm,mlp").parts, ["ln1", "ln2", "mlp"]);
 * assert.throws(() => parseRemove("attn@0"), RangeError);
 * ```
 */
export function parseRemove(text: string): RemoveSpec {
  const at = text.indexOf("@");
  const namesText = (at < 0 ? text : text.slice(0, at)).trim().toLowerCase();
  const names = namesText.split(",").map((s) => s.trim());
  const bad = names.find((n) => !Object.hasOwn(REMOVE_NAMES, n));
  if (bad !== undefined) {
    throw new TypeError(
      `Invalid remove "${text}"${
        bad === namesText ? "" : ` ("${bad}")`
      }: expected NAMES[@LAYERS], NAMES a comma list of ${
        Object.keys(REMOVE_NAMES).join(", ")
      }, e.g. attn@1-4`,
    );
  }
  const set = new Set(names.flatMap((n) => REMOVE_NAMES[n]));
  const layersText = at < 0 ? "all" : text.slice(at + 1).trim();
  return {
    text,
    parts: PARTS.filter((p) => set.has(p)),
    layers: layersText.toLowerCase() === "all"
      ? "all"
      : parseRanges(layersText, `remove "${text}"`, 1),
  };
}

/**
 * The `remove` value of block parts removed in some layers: `attn@1-2,4`, or
 * the part alone when every one of `numLayers` layers is listed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeText } from "./settings.ts";
 *
 * assert.equal(removeText("attn", [1, 2, 4], 4), "attn@1-2,4");
 * assert.equal(removeText("mlp", [1, 2, 3, 4], 4), "mlp");
 * ```
 */
export function removeText(
  part: string,
  layers: readonly number[],
  numLayers: number,
): string {
  const sorted = [...new Set(layers)].sort((a, b) => a - b);
  if (sorted.length === numLayers) return part;
  const ranges = mergeRanges(sorted.map((l) => [l, l]));
  return `${part}@${
    ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",")
  }`;
}

/** Page modes: the essay's layer representation, or class generation. */
export type Mode = "invert" | "generate";

/** The backends a page asks for: `auto` is WebGPU where the browser has an adapter, else wasm. */
export type PageBackend = "auto" | "wasm" | "webgpu";

/** One run of the page. */
export interface Settings {
  /** `invert` (layer representations) or `generate` (a class's image). */
  mode: Mode;
  /** A key of {@linkcode MODELS}. */
  model: string;
  /** Layers to represent side by side (0 = input processing, 1..N = encoder), sorted ([]: {@linkcode defaultLayers}). */
  layers: number[];
  /** Gradient steps (0: the model's preset in generate mode, else 200). */
  steps: number;
  /** Where the work runs. */
  backend: PageBackend;
  /** `remove` values, each `NAMES[@LAYERS]`. */
  remove: string[];
  /** `swap` values, each `PART=WEIGHTS`. */
  swap: string[];
  /** The class to generate: a name or an index ("" : the first). */
  class: string;
  /** Keep a frame (and redraw) every this many steps (0: about 50 a run). */
  every: number;
  /** Seed of the random start. */
  seed: number;
  /** Only compare a forward output and an input gradient (for the tests). */
  check: boolean;
  /** The target's URL relative to the page ("": the model's first sample). */
  image: string;
}

/** The defaults, also the form's initial values. */
export const DEFAULTS: Settings = {
  mode: "invert",
  model: "fmnist_vit",
  layers: [],
  steps: 0,
  backend: "auto",
  remove: [],
  swap: [],
  class: "",
  every: 0,
  seed: 0,
  check: false,
  image: "",
};

/** The most steps a page run takes. */
export const MAX_STEPS = 100_000;

function integer(
  name: string,
  text: string | null,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === null || text === "") return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`Invalid ${name} "${text}": expected ${min}..${max}`);
  }
  return v;
}

function oneOf<T extends string>(
  name: string,
  text: string | null,
  valid: readonly T[],
  fallback: T,
): T {
  if (text === null || text === "") return fallback;
  if (!valid.includes(text as T)) {
    throw new TypeError(
      `Invalid ${name} "${text}": expected one of ${valid.join(", ")}`,
    );
  }
  return text as T;
}

/** The layers of `layers=` (or the older `layer=`), sorted and unique. */
function readLayers(q: URLSearchParams): number[] {
  const all = [...q.getAll("layers"), ...q.getAll("layer")].filter((t) => t);
  if (all.length === 0) return DEFAULTS.layers;
  return all.flatMap((t) =>
    parseRanges(t, `layers "${t}"`, 0).flatMap(([a, b]) =>
      Array.from({ length: b - a + 1 }, (_, i) => a + i)
    )
  ).filter((l, i, a) => a.indexOf(l) === i).sort((a, b) => a - b);
}

function readSwaps(q: URLSearchParams): string[] {
  const swaps = q.getAll("swap").filter((t) => t.trim() !== "");
  for (const s of swaps) {
    const i = s.indexOf("=");
    if (i <= 0 || s.slice(i + 1).trim() === "") {
      throw new TypeError(
        `Invalid swap "${s}": expected PART=WEIGHTS, e.g. conv_proj=untrained:1`,
      );
    }
  }
  return swaps;
}

/**
 * Reads settings from query parameters (or a form's fields); missing ones
 * take {@linkcode DEFAULTS}, bad ones throw naming the value. What depends on
 * the model (layers within its depth, its block parts, its classes) is
 * checked by {@linkcode checkForModel}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSettings } from "./settings.ts";
 *
 * const s = readSettings(new URLSearchParams("model=tiny&layers=3,1&remove=attn@1-2"));
 * assert.deepEqual([s.model, s.layers, s.remove], ["tiny", [1, 3], ["attn@1-2"]]);
 * assert.throws(() => readSettings(new URLSearchParams("steps=-1")), RangeError);
 * ```
 */
export function readSettings(q: URLSearchParams): Settings {
  const remove = q.getAll("remove").filter((r) => r.trim() !== "");
  for (const r of remove) parseRemove(r);
  return {
    mode: oneOf("mode", q.get("mode"), ["invert", "generate"], DEFAULTS.mode),
    model: oneOf("model", q.get("model"), Object.keys(MODELS), DEFAULTS.model),
    layers: readLayers(q),
    steps: integer("steps", q.get("steps"), DEFAULTS.steps, 1, MAX_STEPS),
    backend: oneOf(
      "backend",
      q.get("backend"),
      ["auto", "wasm", "webgpu"],
      DEFAULTS.backend,
    ),
    remove,
    swap: readSwaps(q),
    class: (q.get("class") ?? "").trim(),
    every: integer("every", q.get("every"), DEFAULTS.every, 0, MAX_STEPS),
    seed: integer("seed", q.get("seed"), DEFAULTS.seed, 0, 2 ** 31 - 1),
    check: q.get("check") === "1",
    image: q.get("image") ?? "",
  };
}

/**
 * The query string of settings (what a link to this run needs; defaults left out).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULTS, toQuery } from "./settings.ts";
 *
 * const q = toQuery({ ...DEFAULTS, model: "tiny", layers: [1, 3], remove: ["attn@1"] });
 * assert.equal(q, "model=tiny&layers=1%2C3&remove=attn%401");
 * ```
 */
export function toQuery(s: Settings): string {
  const q = new URLSearchParams();
  const put = (k: string, v: string, d: string) => v !== d && q.append(k, v);
  put("mode", s.mode, DEFAULTS.mode);
  q.append("model", s.model);
  if (s.mode === "invert") q.append("layers", s.layers.join(","));
  put("steps", String(s.steps), String(DEFAULTS.steps));
  put("backend", s.backend, DEFAULTS.backend);
  for (const r of s.remove) q.append("remove", r);
  for (const w of s.swap) q.append("swap", w);
  if (s.mode === "generate") put("class", s.class, "");
  put("every", String(s.every), "0");
  put("seed", String(s.seed), "0");
  put("image", s.image, "");
  if (s.check) q.append("check", "1");
  return q.toString();
}

/** What the page knows of a model once its manifest is read. */
export interface ModelInfo {
  /** The model's name in the manifest. */
  name: string;
  /** The family: `vit`, `mixer`, `ffvit`, `resnet` or one a newer converter adds. */
  architecture: string;
  /** What each removable part of a block is (the manifest's `runtime.part_names`). */
  partNames: Record<string, string>;
  /** Encoder blocks N (layers 0..N). */
  numLayers: number;
  /** Input side in pixels. */
  imageSize: number;
  /** The manifest's layer names, 0..N. */
  layerNames: string[];
  /** The block parts each encoder layer 1..N can remove (index 0: none). */
  parts: BlockPart[][];
  /** Class names, or null. */
  classes: string[] | null;
  /** Weight sets in the model folder. */
  weightSets: string[];
  /** Swappable parts (module prefixes of its tensors). */
  swapParts: string[];
  /** Bytes of weights in sessions for a chain to each layer 0..N with gradients (CPU graphs). */
  chainBytes: number[];
}

/** Bytes of a graph's external data (what one session holds). */
function graphBytes(m: Manifest, name: string): number {
  const g = m.graphs[name];
  return g ? g.params.reduce((t, p) => Math.max(t, p.offset + p.length), 0) : 0;
}

/** Module prefixes of tensor names: `conv_proj`, `encoder.layers.encoder_layer_0.ln_1`, … */
function modulePrefixes(names: readonly string[]): string[] {
  const out = new Set<string>();
  for (const n of names) {
    const parts = n.split(".");
    for (let k = 1; k < parts.length; k++) {
      out.add(parts.slice(0, k).join("."));
    }
    if (parts.length === 1 || /embedding|token/.test(n)) out.add(n);
  }
  return [...out].filter((p) => p !== "encoder" && p !== "encoder.layers");
}

/**
 * What the page needs of a manifest: depth, layer names, removable parts per
 * layer, classes, weight sets, swappable parts and the memory a chain to each
 * layer needs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../src/model/mod.ts";
 * import { modelInfo } from "./settings.ts";
 *
 * const file = "tests/fixtures/tiny_vit/manifest.json";
 * const info = modelInfo(parseManifest(JSON.parse(await Deno.readTextFile(file)), file));
 * assert.equal(info.numLayers, 3);
 * assert.ok(info.parts[1].includes("attn"));
 * assert.ok(info.chainBytes[3] > info.chainBytes[1]);
 * ```
 */
export function modelInfo(m: Manifest): ModelInfo {
  const n = m.num_layers;
  const chainBytes: number[] = [];
  let total = 0;
  for (let l = 0; l <= n; l++) {
    const g = m.layers[l].cpu_graph ?? m.layers[l].graph;
    total += graphBytes(m, `${g}.fwd`) + graphBytes(m, `${g}.vjp`);
    chainBytes.push(total);
  }
  return {
    name: m.name,
    architecture: m.architecture,
    partNames: { ...m.runtime.part_names },
    numLayers: n,
    imageSize: m.image_size,
    layerNames: m.layers.slice(0, n + 1).map((l) => l.name),
    parts: m.layers.slice(0, n + 1).map((l, i) =>
      i === 0 ? [] : PARTS.filter((p) => l.switches.includes(`use_${p}`))
    ),
    classes: m.categories ? [...m.categories] : null,
    weightSets: Object.keys(m.weight_sets ?? {}),
    swapParts: modulePrefixes(Object.keys(m.tensors)),
    chainBytes,
  };
}

/**
 * The ablations of `remove` values for a model: layers expanded and checked
 * against its depth, parts against its blocks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ablationsFor } from "./settings.ts";
 *
 * const parts = [[], ["attn", "mlp"], ["attn", "mlp"]] as const;
 * const info = { name: "m", architecture: "vit", numLayers: 2, parts };
 * assert.deepEqual(ablationsFor(["attn@2"], info), [{ remove: ["attn"], layers: [2] }]);
 * assert.throws(() => ablationsFor(["mlp@3"], info), /expected encoder layers 1\.\.2/);
 * ```
 */
export function ablationsFor(
  remove: readonly string[],
  info: Pick<ModelInfo, "name" | "architecture" | "numLayers"> & {
    parts: readonly (readonly BlockPart[])[];
  },
): Ablation[] {
  const n = info.numLayers;
  return remove.map((text) => {
    const r = parseRemove(text);
    const layers = r.layers === "all"
      ? Array.from({ length: n }, (_, i) => i + 1)
      : r.layers.flatMap(([a, b]) => {
        if (b > n) {
          throw new RangeError(
            `Invalid remove "${text}" (layer ${b}): expected encoder layers 1..${n} or all for ${info.name}`,
          );
        }
        return Array.from({ length: b - a + 1 }, (_, i) => a + i);
      });
    for (const p of r.parts) {
      const l = layers.find((l) => !info.parts[l].includes(p));
      if (l !== undefined) {
        throw new TypeError(
          `Invalid remove "${text}": layer ${l} of ${info.name} (${info.architecture}) has no ${p}: expected one of ${
            info.parts[l].join(", ") || "none"
          }`,
        );
      }
    }
    return { remove: r.parts, layers };
  });
}

/** Settings checked against a model: layers within its depth, classes resolved. */
export interface CheckedSettings {
  /** The ablations, layers explicit. */
  ablations: Ablation[];
  /** The class index to generate (generate mode), else null. */
  classIndex: number | null;
  /** Gradient steps: as set, or the default (the model's preset in generate mode, else 200). */
  steps: number;
  /** The strip: as set, or the model's {@linkcode defaultLayers}. */
  layers: number[];
}

/**
 * The strip a model starts with: layer 1, the last, and two between.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultLayers } from "./settings.ts";
 *
 * assert.deepEqual(defaultLayers(12), [1, 4, 8, 12]);
 * assert.deepEqual(defaultLayers(4), [1, 3, 4]);
 * assert.deepEqual(defaultLayers(0), [0]);
 * ```
 */
export function defaultLayers(numLayers: number): number[] {
  const n = numLayers;
  const picks = n === 0
    ? [0]
    : [1, Math.round(n / 3), Math.round(2 * n / 3), n];
  return [...new Set(picks.filter((l) => l >= Math.min(1, n)))];
}

/** Steps of an inversion when the settings leave them at 0. */
export const INVERT_STEPS = 200;

/**
 * Checks settings against a model (layers 0..N, ablation layers 1..N and the
 * parts its blocks have, the class among its names, generate only for models
 * with trained heads) and resolves ablations and the class.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../src/model/mod.ts";
 * import { checkForModel, DEFAULTS, modelInfo } from "./settings.ts";
 *
 * const file = "weights/fmnist_vit/manifest.json";
 * const info = modelInfo(parseManifest(JSON.parse(await Deno.readTextFile(file)), file));
 * const s = { ...DEFAULTS, mode: "generate" as const, class: "trouser" };
 * assert.equal(checkForModel(s, info).classIndex, 1);
 * assert.throws(() => checkForModel({ ...DEFAULTS, layers: [5] }, info), /expected 0\.\.4/);
 * ```
 */
export function checkForModel(s: Settings, info: ModelInfo): CheckedSettings {
  const n = info.numLayers;
  const bad = s.layers.find((l) => l > n);
  if (bad !== undefined) {
    throw new RangeError(
      `Invalid layers "${
        s.layers.join(",")
      }" (layer ${bad}): expected 0..${n} for ${s.model} (0 = input processing, 1..${n} = encoder blocks)`,
    );
  }
  const layers = s.layers.length > 0 ? s.layers : defaultLayers(n);
  const ablations = ablationsFor(s.remove, info);
  if (s.mode !== "generate") {
    return {
      ablations,
      classIndex: null,
      steps: s.steps || INVERT_STEPS,
      layers,
    };
  }
  if (!MODELS[s.model].generate) {
    const trained = Object.keys(MODELS).filter((k) => MODELS[k].generate);
    throw new TypeError(
      `Invalid mode "generate" for ${s.model}: its head is untrained (zero), so no class has a gradient: expected a trained model (${
        trained.join(", ")
      })`,
    );
  }
  const classIndex = s.class === ""
    ? 0
    : resolveClass(s.class, info.classes, info.classes?.length ?? 0);
  return {
    ablations,
    classIndex,
    steps: s.steps || MODELS[s.model].generate!.steps,
    layers,
  };
}

/**
 * Megabytes (10^6 bytes) or gigabytes as the picker shows them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBytes } from "./settings.ts";
 *
 * assert.equal(formatBytes(699e6), "699 MB");
 * assert.equal(formatBytes(2.44e9), "2.4 GB");
 * ```
 */
export function formatBytes(bytes: number): string {
  return bytes >= 1e9
    ? `${(bytes / 1e9).toFixed(1)} GB`
    : bytes >= 1e7
    ? `${Math.round(bytes / 1e6)} MB`
    : `${(bytes / 1e6).toFixed(1)} MB`;
}
