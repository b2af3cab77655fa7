/**
 * The manifest: the one contract between the Python converter
 * (`tools/convert.py`) and this runtime. {@linkcode parseManifest} checks every
 * field the runtime uses and returns a union discriminated by `architecture`;
 * its errors name the manifest file and the field.
 *
 * @module
 */

import type { InitSpec } from "./rng.ts";
import { Checker, type Json, keyPath } from "./_check.ts";
import { checkRuntime, legacyRuntime, type ManifestRuntime } from "./family.ts";

/** A graph parameter and its place in the graph's external-data buffer. */
export interface GraphParam {
  /** Tensor name relative to the layer's prefix. */
  name: string;
  /** Dimensions. */
  shape: number[];
  /** Byte offset in the buffer. */
  offset: number;
  /** Bytes (float32: 4 × the element count). */
  length: number;
}

/** One graph of a converted model, as listed in `manifest.json`. */
export interface GraphEntry {
  /** Path of the ONNX file, relative to the model folder. */
  file: string;
  /** SHA-256 (hex) of the ONNX file, checked on load. */
  sha256: string;
  /** Graph input names. */
  inputs: string[];
  /** Graph output names (forward graphs: `y` then saved activations `s_*`). */
  outputs: string[];
  /** The graph's parameters and their place in the external-data buffer. */
  params: GraphParam[];
}

/** One position of the chain: input processing, a block, or the head. */
export interface LayerEntry {
  /** Layer name, e.g. `input`, `encoder_layer_3`, `layer2.1`, `logits`. */
  name: string;
  /** Graph name without `.fwd`/`.vjp`. */
  graph: string;
  /** Prefix of its tensors' state-dict keys. */
  prefix: string;
  /** Its switch inputs (`use_ln1`, …). */
  switches: string[];
  /**
   * A graph the CPU backends run instead (same inputs, same result, with ops
   * GPUs lack, e.g. a ResNet stem's MaxPool indices), if any.
   */
  cpu_graph?: string;
}

/** A tensor of a weight set, with its untrained init distribution. */
export interface TensorEntry {
  /** Dimensions. */
  shape: number[];
  /** Always `float32`. */
  dtype: "float32";
  /** How torchvision (or timm) draws it untrained. */
  init: InitSpec;
}

/** A weight set converted into the model folder. */
export interface WeightSet {
  /** Path of the safetensors file, relative to the model folder. */
  file: string;
  /** SHA-256 (hex) of each tensor's float32 little-endian bytes, checked on load. */
  sha256: Record<string, string>;
  /** Where the weights came from (e.g. torchvision's `IMAGENET1K_V1`). */
  source?: string;
}

/** The input the weights expect: [1,3,H,W] in [0,1], then (x − mean) / std. */
export interface ManifestInput {
  /** `[1, 3, image_size, image_size]`. */
  shape: number[];
  /** Per-channel mean. */
  mean: number[];
  /** Per-channel standard deviation (positive). */
  std: number[];
}

/**
 * The architectures a manifest can describe, as {@linkcode parseManifest}
 * accepts them.
 *
 * @example
 * ```ts
 * import { ARCHITECTURES } from "./manifest.ts";
 * import assert from "node:assert/strict";
 * assert(ARCHITECTURES.includes("resnet"));
 * ```
 */
export const ARCHITECTURES = ["vit", "mixer", "ffvit", "resnet"] as const;

/** A family this runtime knows by name: `vit`, `mixer`, `ffvit` or `resnet`. */
export type Architecture = typeof ARCHITECTURES[number];

/** Fields every manifest has. */
export interface ManifestCommon {
  /** Format tag, `vitrep-model/1`. */
  format: "vitrep-model/1";
  /** Model name, e.g. `vit_b_32`. */
  name: string;
  /**
   * Architecture family: one of {@linkcode ARCHITECTURES}, or a family a
   * newer converter module adds (its manifest then carries `runtime`).
   */
  architecture: string;
  /** Input image side in pixels. */
  image_size: number;
  /** Number of blocks between input processing and head. */
  num_layers: number;
  /** Number of output classes. */
  num_classes: number;
  /** Input normalization of the weights. */
  input: ManifestInput;
  /** Name of the external-data file the graphs reference. */
  external_data: string;
  /**
   * Whether every graph's first axis (but the switches') is a dynamic batch
   * axis, so one chain runs B images at once (absent in manifests of older
   * converters: one image per call).
   */
  batch_axis?: boolean;
  /**
   * What the runtime must know about the family (block chaining, wasm
   * threads, grid labels, the converter command), written by the converter's
   * family module; {@linkcode parseManifest} derives it for manifests of
   * older converters, so a parsed manifest always has it.
   */
  runtime: ManifestRuntime;
  /** Graphs by name (`stem.fwd`, `block.vjp`, …). */
  graphs: Record<string, GraphEntry>;
  /** The chain: input processing, blocks, head (`num_layers + 2` entries). */
  layers: LayerEntry[];
  /** Every tensor of a weight set, with its untrained init distribution. */
  tensors: Record<string, TensorEntry>;
  /** Weight sets stored beside the manifest. */
  weight_sets: Record<string, WeightSet>;
  /** Class names (`num_classes` of them), or null. */
  categories: string[] | null;
  /** The stem's convolution weight, [n,3,p,p] (shown by `filters`). */
  patch_filters: string;
  /** Patch side in pixels (token models only). */
  patch_size?: number;
  /** Tokens per image, class token included (token models only). */
  seq_length?: number;
  /** Token width (token models only). */
  hidden_dim?: number;
  /**
   * Settings the model folder recommends per command, used by the command
   * line as defaults where an option is not given (absent: the built-in
   * defaults, made for 224-pixel ViTs): option values as the command line
   * takes them, without the leading `--`, e.g.
   * `{"generate": {"lr": "2:0.2", "steps": 300, "canvas": 40}}`.
   * {@linkcode parseManifest} checks the structure; the command line checks
   * each option name and value.
   */
  recommended?: Partial<
    Record<"invert" | "generate", Record<string, string | number | boolean>>
  >;
}

/** The commands a manifest may recommend settings for. */
const RECOMMENDED_COMMANDS = ["invert", "generate"];

/** A torchvision Vision Transformer. */
export interface VitManifest extends ManifestCommon {
  /** Discriminant. */
  architecture: "vit";
  /** Patch side in pixels. */
  patch_size: number;
  /** Tokens per image, class token included. */
  seq_length: number;
  /** Token width. */
  hidden_dim: number;
  /** Attention heads. */
  num_heads: number;
  /** Hidden width of the MLP. */
  mlp_dim: number;
}

/** An MLP-Mixer, or the feed-forward-only ViT (`ffvit`). */
export interface MixerManifest extends ManifestCommon {
  /** Discriminant. */
  architecture: "mixer" | "ffvit";
  /** Patch side in pixels. */
  patch_size: number;
  /** Tokens per image, class token included. */
  seq_length: number;
  /** Token width. */
  hidden_dim: number;
  /** Hidden width of the token-mixing MLP. */
  tokens_mlp_dim: number;
  /** Hidden width of the channel MLP. */
  channels_mlp_dim: number;
  /** `token_first` or `channel_first`. */
  block_order: string;
  /** Whether a class token is prepended. */
  class_token: boolean;
}

/** A torchvision ResNet: one graph per residual block. */
export interface ResnetManifest extends ManifestCommon {
  /** Discriminant. */
  architecture: "resnet";
  /** `bottleneck` or `basic`. */
  block: string;
  /** Blocks per stage (their sum is `num_layers`). */
  stages: number[];
}

/**
 * The `manifest.json` written by `tools/convert.py`: the fields every family
 * has, what the runtime must know about the family (`runtime`) and the
 * family's own fields, kept as given. The runtime reads no family field by
 * family name: {@linkcode isFamily} narrows to a known family's typed fields.
 *
 * @example
 * ```ts
 * import { isFamily, parseManifest } from "./manifest.ts";
 * import assert from "node:assert/strict";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile("weights/resnet50/manifest.json")), "resnet50");
 * assert.ok(isFamily(m, "resnet"));
 * assert.deepEqual(m.stages, [3, 4, 6, 3]);
 * ```
 */
export type Manifest = ManifestCommon;

/** The typed manifest of each family this runtime knows by name. */
export interface FamilyManifests {
  /** A torchvision ViT. */
  vit: VitManifest;
  /** An MLP-Mixer. */
  mixer: MixerManifest;
  /** The feed-forward-only ViT. */
  ffvit: MixerManifest;
  /** A torchvision ResNet. */
  resnet: ResnetManifest;
}

/**
 * Whether a manifest is of a family this runtime knows by name, narrowing it
 * to that family's typed fields (checked by {@linkcode parseManifest}).
 *
 * @param m A parsed manifest.
 * @param family One of {@linkcode ARCHITECTURES}.
 * @returns Whether `m.architecture` is `family`.
 *
 * @example
 * ```ts
 * import { isFamily, parseManifest } from "./manifest.ts";
 * import assert from "node:assert/strict";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile("weights/vit_b_32/manifest.json")), "vit_b_32");
 * assert.ok(isFamily(m, "vit") && m.num_heads === 12);
 * assert.ok(!isFamily(m, "resnet"));
 * ```
 */
export function isFamily<A extends Architecture>(
  m: Manifest,
  family: A,
): m is FamilyManifests[A] {
  return m.architecture === family;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A path the manifest names: relative, inside the model folder, `/`-separated;
 * no `..`, no scheme, no `%`, `?`, `#` or `\` (so it resolves the same as a
 * file path and as a URL).
 */
function relativePath(c: Checker, v: unknown, path: string): string {
  const s = c.string(v, path);
  const bad = s.startsWith("/") || /[:%?#\\]/.test(s) ||
    [...s].some((ch) => ch.charCodeAt(0) < 0x20) ||
    s.split("/").some((seg) => seg === "" || seg === "." || seg === "..");
  if (bad) {
    c.fail(
      path,
      `must be a relative path inside the model folder, got "${s}": no absolute path, "..", scheme, "%", "?", "#" or "\\"`,
    );
  }
  return s;
}

function sha256(c: Checker, v: unknown, path: string): string {
  if (typeof v !== "string" || !HEX64.test(v)) {
    c.expect(path, "a SHA-256 of 64 lowercase hex digits", v);
  }
  return v;
}

function initSpec(c: Checker, v: unknown, path: string): InitSpec {
  const o = c.object(v, path);
  const kind = c.oneOf(o.kind, `${path}.kind`, [
    "constant",
    "normal",
    "uniform",
    "trunc_normal",
  ]);
  const fields = {
    constant: ["value"],
    normal: ["std"],
    uniform: ["low", "high"],
    trunc_normal: ["std", "a", "b"],
  }[kind];
  if (o.mean !== undefined) fields.push("mean");
  for (const f of fields) {
    const v = c.number(o[f], `${path}.${f}`);
    if (Math.abs(v) > FLOAT32_MAX) {
      c.expect(`${path}.${f}`, "a number within float32 range (±3.4e38)", v);
    }
  }
  return o as unknown as InitSpec;
}

function tensors(c: Checker, v: unknown): Record<string, TensorEntry> {
  return c.record(v, "tensors", (t, path) => {
    const o = c.object(t, path);
    c.shape(o.shape, `${path}.shape`);
    c.oneOf(o.dtype, `${path}.dtype`, ["float32"]);
    initSpec(c, o.init, `${path}.init`);
    return o as unknown as TensorEntry;
  });
}

function graphEntry(c: Checker, v: unknown, path: string): GraphEntry {
  const o = c.object(v, path);
  relativePath(c, o.file, `${path}.file`);
  sha256(c, o.sha256, `${path}.sha256`);
  c.strings(o.inputs, `${path}.inputs`);
  c.strings(o.outputs, `${path}.outputs`);
  const params = c.array(o.params, `${path}.params`);
  let end = 0;
  params.forEach((p, i) => {
    const pp = `${path}.params[${i}]`;
    const q = c.object(p, pp);
    c.string(q.name, `${pp}.name`);
    const numel = c.shape(q.shape, `${pp}.shape`).reduce((a, b) => a * b, 1);
    const offset = c.integer(q.offset, `${pp}.offset`, 0);
    const length = c.integer(q.length, `${pp}.length`, 0);
    if (length !== 4 * numel) {
      c.expect(`${pp}.length`, `${4 * numel} (float32 of its shape)`, length);
    }
    if (offset < end) {
      c.expect(
        `${pp}.offset`,
        `at least ${end} (after the previous one)`,
        offset,
      );
    }
    end = offset + length;
  });
  return o as unknown as GraphEntry;
}

function layerEntries(
  c: Checker,
  v: unknown,
  count: number,
  graphs: Record<string, GraphEntry>,
  known: Record<string, TensorEntry>,
): LayerEntry[] {
  const a = c.array(v, "layers");
  if (a.length !== count) {
    c.fail(
      "layers",
      `must have num_layers + 2 = ${count} entries, got ${a.length}`,
    );
  }
  return a.map((l, i) => {
    const path = `layers[${i}]`;
    const o = c.object(l, path);
    c.string(o.name, `${path}.name`);
    const graph = c.string(o.graph, `${path}.graph`);
    const prefix = o.prefix === "" ? "" : c.string(o.prefix, `${path}.prefix`);
    c.strings(o.switches, `${path}.switches`);
    const names: [string, string][] = [[`${path}.graph`, graph]];
    if (o.cpu_graph !== undefined) {
      names.push([
        `${path}.cpu_graph`,
        c.string(o.cpu_graph, `${path}.cpu_graph`),
      ]);
    }
    for (const [field, name] of names) {
      checkLayerGraph(c, field, name, i, prefix, graphs, known);
    }
    return o as unknown as LayerEntry;
  });
}

/** A layer's graph pair exists and reads tensors of the shapes `tensors` gives. */
function checkLayerGraph(
  c: Checker,
  field: string,
  graph: string,
  i: number,
  prefix: string,
  graphs: Record<string, GraphEntry>,
  known: Record<string, TensorEntry>,
): void {
  for (const kind of ["fwd", "vjp"]) {
    const entry = graphs[`${graph}.${kind}`];
    if (!entry) {
      c.fail(
        field,
        `names "${graph}", which has no graph "${graph}.${kind}" in "graphs"`,
      );
    }
    for (const p of entry.params) {
      const t = known[prefix + p.name];
      if (!t || t.shape.join(",") !== p.shape.join(",")) {
        c.fail(
          keyPath("graphs", `${graph}.${kind}`),
          `has parameter "${p.name}" of shape [${p.shape}], which layer ${i} reads as tensor "${prefix}${p.name}": ${
            t ? `its shape in "tensors" is [${t.shape}]` : `"tensors" lacks it`
          }`,
        );
      }
    }
  }
}

function weightSets(
  c: Checker,
  v: unknown,
  known: Record<string, TensorEntry>,
): Record<string, WeightSet> {
  return c.record(v, "weight_sets", (w, path) => {
    const o = c.object(w, path);
    relativePath(c, o.file, `${path}.file`);
    c.record(o.sha256, `${path}.sha256`, (h, hp, name) => {
      if (!known[name]) c.fail(hp, `names a tensor that "tensors" lacks`);
      return sha256(c, h, hp);
    });
    if (o.source !== undefined) c.string(o.source, `${path}.source`);
    return o as unknown as WeightSet;
  });
}

function input(c: Checker, v: unknown, size: number): ManifestInput {
  const o = c.object(v, "input");
  const shape = c.shape(o.shape, "input.shape");
  if (shape.join(",") !== `1,3,${size},${size}`) {
    c.expect(
      "input.shape",
      `[1, 3, ${size}, ${size}] (from image_size)`,
      shape,
    );
  }
  c.numbers(o.mean, "input.mean", 3);
  c.numbers(o.std, "input.std", 3).forEach((s, i) => {
    if (s <= 0) c.expect(`input.std[${i}]`, "a positive number", s);
  });
  return o as unknown as ManifestInput;
}

/** How a family field is checked. */
type FieldKind = "count" | "counts" | "text" | "flag";

/** Token models' fields (ViTs, mixers). */
const TOKEN_FIELDS = [
  ["patch_size", "count"],
  ["seq_length", "count"],
  ["hidden_dim", "count"],
] as const;
/** The mixers' fields (MLP-Mixer, FF-only ViT). */
const MIXER_FIELDS = [
  ...TOKEN_FIELDS,
  ["tokens_mlp_dim", "count"],
  ["channels_mlp_dim", "count"],
  ["block_order", "text"],
  ["class_token", "flag"],
] as const;

/**
 * The fields each family known by name must have (data: a family a newer
 * converter adds has its fields checked by type only, where present).
 */
const FAMILY_FIELDS: Readonly<
  Record<Architecture, readonly (readonly [string, FieldKind])[]>
> = {
  vit: [...TOKEN_FIELDS, ["num_heads", "count"], ["mlp_dim", "count"]],
  mixer: MIXER_FIELDS,
  ffvit: MIXER_FIELDS,
  resnet: [["stages", "counts"], ["block", "text"]],
};

/** Every family field's kind, for the fields a manifest has. */
const FIELD_KINDS: ReadonlyMap<string, FieldKind> = new Map(
  Object.values(FAMILY_FIELDS).flat(),
);

/** One family field, by its kind. */
function familyField(c: Checker, v: unknown, f: string, kind: FieldKind) {
  if (kind === "count") c.integer(v, f, 1);
  else if (kind === "text") c.string(v, f);
  else if (kind === "flag") c.boolean(v, f);
  else {
    const xs = c.array(v, f, "an array of positive integers");
    xs.forEach((x, i) => c.integer(x, `${f}[${i}]`, 1));
  }
}

/**
 * Fields of the manifest's family, checked after the common ones: every
 * field a known family must have; any family field present, by type; and
 * `stages` (blocks per stage) adding up to `num_layers`.
 */
function familyFields(c: Checker, o: Json, arch: string): void {
  const required = FAMILY_FIELDS[arch as Architecture] ?? [];
  for (const [f, kind] of required) familyField(c, o[f], f, kind);
  for (const [f, kind] of FIELD_KINDS) {
    if (o[f] !== undefined && !required.some(([r]) => r === f)) {
      familyField(c, o[f], f, kind);
    }
  }
  if (o.stages !== undefined) {
    const sum = (o.stages as number[]).reduce((a, b) => a + b, 0);
    if (sum !== o.num_layers) {
      c.fail(
        "stages",
        `must add up to num_layers = ${o.num_layers}, got ${sum}`,
      );
    }
  }
}

/**
 * The manifest's family: a name this runtime knows, or one a newer converter
 * module adds, whose manifest must then carry `runtime`.
 */
function architecture(c: Checker, o: Json): string {
  const arch = c.string(o.architecture, "architecture");
  const known = (ARCHITECTURES as readonly string[]).includes(arch);
  if (!known && (!/^[a-z][a-z0-9_]*$/.test(arch) || o.runtime === undefined)) {
    c.fail(
      "architecture",
      `must be one of ${
        ARCHITECTURES.join(", ")
      }, or a family whose converter module writes "runtime" (a lowercase name), got ${
        JSON.stringify(arch)
      }`,
    );
  }
  return arch;
}

/** The stem convolution's weight: `patch_filters`, [n,3,p,p]. */
function patchFilters(
  c: Checker,
  o: Json,
  known: Record<string, TensorEntry>,
): string {
  const name = c.string(o.patch_filters, "patch_filters");
  const shape = known[name]?.shape;
  if (!shape || shape.length !== 4 || shape[1] !== 3) {
    c.fail(
      "patch_filters",
      `must name a tensor of shape [n, 3, p, p] in "tensors", got "${name}"${
        shape ? ` of shape [${shape}]` : ""
      }`,
    );
  }
  return name;
}

/** `recommended`: commands to objects of option names to strings, finite numbers or booleans. */
function recommended(c: Checker, v: unknown): void {
  c.record(v, "recommended", (cmd, path, name) => {
    if (!RECOMMENDED_COMMANDS.includes(name)) {
      c.fail(
        path,
        `is not a command with settings: expected ${
          RECOMMENDED_COMMANDS.join(" or ")
        }`,
      );
    }
    return c.record(cmd, path, (x, xp, opt) => {
      if (!/^[a-z][a-z0-9-]*$/.test(opt)) {
        c.fail(xp, `is not an option name: expected one such as "steps"`);
      }
      const ok = typeof x === "boolean" ||
        (typeof x === "string" && x !== "") ||
        (typeof x === "number" && Number.isFinite(x));
      if (!ok) c.expect(xp, "a string, a finite number or true/false", x);
      return x;
    });
  });
}

/**
 * Checks a parsed `manifest.json` and returns it typed by architecture.
 * `source` (the file's path or URL) starts every error, which names the field:
 * `weights/x/manifest.json: "layers" is missing: expected an array`.
 *
 * A manifest without `runtime` (older converters) gets the one
 * `legacyRuntime` (src/model/family.ts) derives from its architecture: the
 * single place where the runtime's behaviour depends on a family's name.
 *
 * @param json The parsed JSON.
 * @param source The manifest's path or URL, for error messages.
 * @returns The manifest (a new object; unknown fields are kept).
 * @throws {TypeError} If a field is missing, mistyped or inconsistent.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * import assert from "node:assert/strict";
 * const json = JSON.parse(await Deno.readTextFile("weights/vit_b_32/manifest.json"));
 * assert.equal(parseManifest(json, "vit_b_32").architecture, "vit");
 * delete json.layers;
 * assert.throws(() => parseManifest(json, "x/manifest.json"), /x\/manifest.json: "layers" is missing/);
 * ```
 */
export function parseManifest(json: unknown, source: string): Manifest {
  const c = new Checker(source);
  const o = c.object(json, "manifest");
  c.oneOf(o.format, "format", ["vitrep-model/1"]);
  c.string(o.name, "name");
  const arch = architecture(c, o);
  const size = c.integer(o.image_size, "image_size", 1);
  const n = c.integer(o.num_layers, "num_layers", 1);
  const classes = c.integer(o.num_classes, "num_classes", 1);
  input(c, o.input, size);
  const ext = c.string(o.external_data, "external_data");
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(ext)) {
    c.expect("external_data", "a plain file name", ext);
  }
  if (o.batch_axis !== undefined && typeof o.batch_axis !== "boolean") {
    c.expect("batch_axis", "true or false", o.batch_axis);
  }
  const known = tensors(c, o.tensors);
  const graphs = c.record(o.graphs, "graphs", (g, p) => graphEntry(c, g, p));
  layerEntries(c, o.layers, n + 2, graphs, known);
  weightSets(c, o.weight_sets, known);
  if (o.categories !== null) {
    const cats = c.strings(o.categories, "categories");
    if (cats.length !== classes) {
      c.fail(
        "categories",
        `must hold num_classes = ${classes} names, got ${cats.length}`,
      );
    }
  }
  patchFilters(c, o, known);
  familyFields(c, o, arch);
  if (o.recommended !== undefined) recommended(c, o.recommended);
  const runtime = o.runtime === undefined
    ? legacyRuntime(o)
    : checkRuntime(c, o.runtime, o);
  return { ...o, runtime } as unknown as Manifest;
}

/**
 * The layer number (as `forward`'s `layer` takes it) of a layer given by
 * number or by name: `"7"`, a name from the manifest's `layers` (`stem`,
 * `input`, `layer2.3`, `encoder_layer_0`, `block_5`), or for ResNets a stage,
 * `layer1` … `layer4`, meaning its last bottleneck. 0 is input processing.
 *
 * @example
 * ```ts
 * import { layerIndex, parseManifest } from "./manifest.ts";
 * import assert from "node:assert/strict";
 * const file = "weights/resnet50/manifest.json";
 * const manifest = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * assert.equal(layerIndex(manifest, "layer2"), 7); // layer2.3, the end of stage 2
 * ```
 */
export function layerIndex(manifest: Manifest, layer: string | number): number {
  const text = String(layer).trim();
  const n = manifest.num_layers;
  const names = manifest.layers.slice(0, n + 1).map((l) => l.name);
  if (/^\d+$/.test(text)) {
    if (Number(text) <= n) return Number(text);
  } else {
    const exact = names.indexOf(text);
    if (exact >= 0) return exact;
    const stage = names.findLastIndex((s) => s.startsWith(`${text}.`));
    if (stage >= 0) return stage;
  }
  const stages = [
    ...new Set(
      names.filter((s) => s.includes(".")).map((s) => s.split(".")[0]),
    ),
  ];
  const named = [names[0], names[1], "…", names[n]].join(", ");
  throw new RangeError(
    `Invalid layer "${layer}" for ${manifest.name}: expected 0 (input processing) to ${n}, or a layer name (${named})${
      stages.length > 0
        ? ` or a stage (${stages.join(", ")}: its last block)`
        : ""
    }`,
  );
}

/**
 * The canonical tensor-name prefix of a part: `pos_embedding` and
 * `encoder.layers.3` are accepted for torchvision's `encoder.pos_embedding` and
 * `encoder.layers.encoder_layer_3`.
 *
 * @example
 * ```ts
 * import { parseManifest, resolvePart } from "./manifest.ts";
 * import assert from "node:assert/strict";
 * const file = "weights/vit_b_32/manifest.json";
 * const manifest = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * assert.equal(resolvePart(manifest, "encoder.layers.0.ln_1"), "encoder.layers.encoder_layer_0.ln_1");
 * ```
 */
export function resolvePart(manifest: Manifest, part: string): string {
  let p = part.trim().replace(
    /^encoder\.layers\.(\d+)(?=\.|$)/,
    "encoder.layers.encoder_layer_$1",
  );
  if (p === "pos_embedding") p = "encoder.pos_embedding";
  const names = Object.keys(manifest.tensors);
  if (names.some((n) => n === p || n.startsWith(p + "."))) return p;
  const top = new Set<string>();
  for (const n of names) {
    const short = n.replace(
      /^encoder\.layers\.encoder_layer_(\d+)\..*$/,
      "encoder.layers.$1",
    ).replace(
      /^(heads|conv_proj|encoder\.ln)\..*$/,
      "$1",
    );
    top.add(short === "encoder.pos_embedding" ? "pos_embedding" : short);
  }
  const examples = [...top].slice(0, 8).join(", ");
  const vit = manifest.architecture === "vit"
    ? ", or encoder.layers.N.ln_1, .self_attention, .ln_2, .mlp"
    : "";
  throw new TypeError(
    `Unknown part "${part}" of ${manifest.name}: expected a tensor name or a module prefix such as ${examples}, …${vit}`,
  );
}
