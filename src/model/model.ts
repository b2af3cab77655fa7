/**
 * A converted model as a chain of per-block ONNX graphs: the forward chain from
 * the image to any layer, and the vector-Jacobian-product chain back to the
 * image. Weights come from a safetensors weight set or are generated untrained
 * from the init distributions the manifest records; ablation switches are graph
 * inputs, so any ablation runs on the same sessions.
 *
 * @module
 */

import {
  type Backend,
  type BackendName,
  openBackend,
  type Session,
  type Value,
} from "./backend.ts";
import { type InitSpec, Rng, sampleInit } from "./rng.ts";
import { parseSafetensors, tensorToFloat32 } from "../io/mod.ts";

/** One graph of a converted model, as listed in `manifest.json`. */
export interface GraphEntry {
  /** Path of the ONNX file, relative to the model folder. */
  file: string;
  /** Graph input names. */
  inputs: string[];
  /** Graph output names (forward graphs: `y` then saved activations `s_*`). */
  outputs: string[];
  /** The graph's parameters and their place in the external-data buffer. */
  params: { name: string; shape: number[]; offset: number; length: number }[];
}

/** The `manifest.json` written by `tools/convert.py`. */
export interface Manifest {
  /** Format tag, `vitrep-model/1`. */
  format: string;
  /** Model name, e.g. `vit_b_32`. */
  name: string;
  /** Architecture family, e.g. `vit`. */
  architecture: string;
  /** Input image side in pixels. */
  image_size: number;
  /** Patch side in pixels. */
  patch_size: number;
  /** Token width. */
  hidden_dim: number;
  /** Number of encoder blocks. */
  num_layers: number;
  /** Tokens per image, class token included. */
  seq_length: number;
  /** Number of output classes. */
  num_classes: number;
  /** Input normalization of the weights. */
  input: { shape: number[]; mean: number[]; std: number[] };
  /** Name of the external-data file the graphs reference. */
  external_data: string;
  /** Graphs by name (`stem.fwd`, `block.vjp`, …). */
  graphs: Record<string, GraphEntry>;
  /** The chain: input processing, encoder blocks, head. */
  layers: { name: string; graph: string; prefix: string; switches: string[] }[];
  /** Every tensor of a weight set, with its untrained init distribution. */
  tensors: Record<string, { shape: number[]; dtype: string; init: InitSpec }>;
  /** Weight sets stored beside the manifest. */
  weight_sets: Record<string, { file: string }>;
  /** Class names, or null. */
  categories: string[] | null;
  /** The patch-embedding weight shown by `filters` (default `conv_proj.weight`). */
  patch_filters?: string;
}

/** Parts of an encoder block that an ablation can remove. */
export type BlockPart = "ln1" | "attn" | "res1" | "ln2" | "mlp" | "res2" | "bn";

/** The block parts, in graph order. */
export const BLOCK_PARTS: readonly BlockPart[] = [
  "ln1",
  "attn",
  "res1",
  "ln2",
  "mlp",
  "res2",
  "bn", // ResNets: the blocks' batch norms
];

/**
 * Removes parts of some encoder blocks: a removed op becomes the identity, a
 * removed residual drops its addition.
 */
export interface Ablation {
  /** What to remove. */
  remove: BlockPart | readonly BlockPart[];
  /** Encoder layers, 1-based (default: all). */
  layers?: readonly number[] | "all";
}

/** A float32 tensor on the CPU. */
/** A scalar function of one layer's output. */
export interface Objective {
  /** A readable name, e.g. `l1(layer 4)`. */
  readonly name: string;
  /** The layer whose output it reads. */
  readonly layer: Layer;
  /** Value and gradient with respect to the output. */
  evaluate(output: Tensor): { value: number; grad: Float32Array };
}

export interface Tensor {
  /** Values in row-major order. */
  data: Float32Array;
  /** Dimensions. */
  dims: number[];
}

/** A layer of the chain: 0 = input processing, 1..N = encoder block, or the logits. */
export type Layer = number | "logits";

/** Options of {@linkcode loadModel}. */
export interface LoadOptions {
  /**
   * `"untrained"` (generated from the manifest's init distributions with
   * `seed`), the name of a weight set in the model folder, or a safetensors
   * path or URL. Default: `"untrained"`.
   */
  weights?: string;
  /** Seed for untrained weights (default 0). */
  seed?: number;
  /** Backend (default `"auto"`). */
  backend?: BackendName;
  /** Threads for the CPU backends (default: all cores). */
  threads?: number;
  /** Ablations applied to every call (default: none). */
  ablations?: readonly Ablation[];
  /** Add the position embedding in input processing (default true). */
  positionEmbedding?: boolean;
  /** Parts whose tensors come from other weight sets (later swaps win). */
  swaps?: readonly Swap[];
}

/** Options of {@linkcode Model.forward}. */
export interface ForwardOptions {
  /** Layer to stop at (default: the logits). */
  layer?: Layer;
  /**
   * Encoder blocks to apply, 1-based, in order (default `1..layer`, or all
   * blocks for the logits). `[L]` represents block L alone. In a ResNet a
   * block must follow the stem or a block of the stage it follows in the
   * model (its input shape), so `[1]` and `[1, 3]` are valid, `[5]` is not.
   */
  blocks?: readonly number[];
}

/** Result of {@linkcode Model.inputGradient}. */
export interface Gradient {
  /** The objective's value. */
  value: number;
  /** d value / d x, shaped like the image. */
  grad: Float32Array;
  /** The output the objective saw. */
  output: Tensor;
}

type Weights = (name: string) => Float32Array;

/** Input x: a [1,3,H,W] Float32Array or an object holding one (an ImageTensor). */
export type ImageInput = Float32Array | { data: Float32Array };

interface Runtime {
  manifest: Manifest;
  backend: Backend;
  base: string;
  weights: Weights;
  weightsName: string;
  sessions: Map<string, Promise<Session>>;
  graphs: Map<string, Promise<Uint8Array>>;
  sessionBytes: number;
}

const TEXT = new TextDecoder();

function isUrl(s: string): boolean {
  return /^(https?|file):\/\//.test(s);
}

async function readBytes(base: string, rel: string): Promise<Uint8Array> {
  if (isUrl(base) || isUrl(rel)) {
    const url = isUrl(rel)
      ? rel
      : new URL(rel, base.endsWith("/") ? base : base + "/").href;
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new TypeError(
        `Cannot fetch "${url}": HTTP ${res.status} ${res.statusText}`,
      );
    }
    return new Uint8Array(await res.arrayBuffer());
  }
  const path = rel.startsWith("/") || !base
    ? rel
    : `${base.replace(/\/$/, "")}/${rel}`;
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new TypeError(`Cannot read "${path}": no such file`);
    }
    throw err;
  }
}

/** Bytes of a graph's external-data buffer. */
function graphBytes(entry: GraphEntry): number {
  return entry.params.reduce((m, p) => Math.max(m, p.offset + p.length), 0);
}

/** FNV-1a of a string, for per-tensor seeds. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Untrained weights from the manifest's init distributions. Each tensor has its
 * own generator seeded by (seed, tensor name), so a tensor is the same whichever
 * layers are built, and in whatever order.
 *
 * @example
 * ```ts
 * import { untrainedTensor } from "./model.ts";
 * const w = untrainedTensor({ kind: "normal", std: 0.02 }, [4, 4], "w", 0);
 * console.log(w.length); // 16
 * ```
 */
export function untrainedTensor(
  init: InitSpec,
  shape: readonly number[],
  name: string,
  seed: number,
): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng((BigInt(seed) << 32n) | BigInt(hash32(name)));
  return sampleInit(init, size, rng);
}

async function resolveWeights(
  manifest: Manifest,
  base: string,
  weights: string,
  seed: number,
  needed: (name: string) => boolean = () => true,
): Promise<Weights> {
  const known = manifest.tensors;
  const m = /^untrained:(-?\d+)$/.exec(weights);
  if (m) {
    weights = "untrained";
    seed = Number(m[1]);
  }
  if (weights === "untrained") {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Invalid seed "${seed}": expected an integer`);
    }
    // generated on demand and not kept: a tensor is the same each time it is drawn
    return (name) => {
      const t = known[name];
      if (!t) throw new TypeError(`Unknown tensor "${name}"`);
      return untrainedTensor(t.init, t.shape, name, seed);
    };
  }
  let rel: string;
  if (manifest.weight_sets[weights]) rel = manifest.weight_sets[weights].file;
  else if (weights.endsWith(".safetensors")) rel = weights;
  else {
    const sets = [
      "untrained",
      "untrained:SEED",
      ...Object.keys(manifest.weight_sets),
    ];
    throw new TypeError(
      `Unknown weights "${weights}": expected one of ${
        sets.join(", ")
      }, or a .safetensors path or URL`,
    );
  }
  const bytes = await readBytes(
    isUrl(rel) || rel.startsWith("/") ? "" : base,
    rel,
  );
  const file = parseSafetensors(bytes);
  for (const [name, info] of Object.entries(known)) {
    if (!needed(name)) continue;
    const t = file.tensors.get(name);
    if (!t) {
      throw new TypeError(
        `Weights "${weights}" lack tensor "${name}": expected a state dict of ${manifest.name}`,
      );
    }
    if (t.shape.join("x") !== info.shape.join("x")) {
      throw new RangeError(
        `Tensor "${name}" of weights "${weights}" has shape [${t.shape}]: expected [${info.shape}]`,
      );
    }
  }
  return (name) => {
    const t = file.tensors.get(name);
    if (!t) throw new TypeError(`Unknown tensor "${name}"`);
    return tensorToFloat32(t);
  };
}

/**
 * The layer number (as `forward`'s `layer` takes it) of a layer given by
 * number or by name: `"7"`, a name from the manifest's `layers` (`stem`,
 * `input`, `layer2.3`, `encoder_layer_0`, `block_5`), or for ResNets a stage,
 * `layer1` … `layer4`, meaning its last bottleneck. 0 is input processing.
 *
 * @example
 * ```ts
 * import { layerIndex, loadModel } from "../../mod.ts";
 * const model = await loadModel("weights/resnet50");
 * console.log(layerIndex(model.manifest, "layer2")); // 7: layer2.3, the end of stage 2
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
 * import { loadModel, resolvePart } from "../../mod.ts";
 * const model = await loadModel("weights/vit_b_32");
 * console.log(resolvePart(model.manifest, "encoder.layers.0.ln_1")); // "encoder.layers.encoder_layer_0.ln_1"
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

/** Swaps a part's tensors in from another weight set. */
export interface Swap {
  /** A module prefix or tensor name, e.g. `conv_proj`, `encoder.layers.0.ln_1`, `pos_embedding`. */
  part: string;
  /** Weights as for {@linkcode LoadOptions.weights}, plus `untrained:SEED`. */
  weights: string;
}

/** Switch values per chain position (0 = stem, 1..N blocks, N+1 head). */
function buildSwitches(
  manifest: Manifest,
  ablations: readonly Ablation[],
  positionEmbedding: boolean,
): Record<string, number>[] {
  const n = manifest.num_layers;
  const out = manifest.layers.map((l) =>
    Object.fromEntries(l.switches.map((s) => [s, 1])) as Record<string, number>
  );
  if (!positionEmbedding) {
    if (!("use_pos" in out[0])) {
      throw new TypeError(
        `Removing the position embedding has no meaning for ${manifest.name} (${manifest.architecture}): its input processing has none`,
      );
    }
    out[0].use_pos = 0;
  }
  for (const a of ablations) {
    const parts = typeof a.remove === "string" ? [a.remove] : a.remove;
    for (const p of parts) {
      if (!BLOCK_PARTS.includes(p)) {
        throw new TypeError(
          `Invalid ablation part "${p}": expected one of ${
            BLOCK_PARTS.join(", ")
          }`,
        );
      }
    }
    const layers = a.layers === undefined || a.layers === "all"
      ? Array.from({ length: n }, (_, i) => i + 1)
      : a.layers;
    for (const l of layers) {
      if (!Number.isInteger(l) || l < 1 || l > n) {
        throw new RangeError(
          `Invalid ablation layer "${l}": expected an encoder layer 1..${n}`,
        );
      }
      for (const p of parts) {
        if (!(`use_${p}` in out[l])) {
          const has = manifest.layers[l].switches.map((s) =>
            s.replace(/^use_/, "")
          );
          throw new TypeError(
            `Ablation "${p}" has no meaning for layer ${l} of ${manifest.name} (${manifest.architecture}): its parts are ${
              has.join(", ") || "none"
            }`,
          );
        }
        out[l][`use_${p}`] = 0;
      }
    }
  }
  return out;
}

/**
 * Loads a converted model from a folder or an http(s) URL.
 *
 * @example
 * ```ts
 * import { loadModel } from "./model.ts";
 * const model = await loadModel("weights/vit_b_32", { weights: "untrained", seed: 0 });
 * const x = new Float32Array(3 * 224 * 224).fill(0.5);
 * const out = await model.forward(x, { layer: 4 });
 * console.log(out.dims); // [1, 50, 768]
 * await model.release();
 * ```
 */
export async function loadModel(
  source: string,
  options: LoadOptions = {},
): Promise<Model> {
  if (typeof source !== "string" || source === "") {
    throw new TypeError(
      `Invalid model source "${source}": expected a folder path or an http(s) URL`,
    );
  }
  const base = source.replace(/\/manifest\.json$/, "");
  let manifest: Manifest;
  try {
    manifest = JSON.parse(TEXT.decode(await readBytes(base, "manifest.json")));
  } catch (err) {
    throw new TypeError(
      `Cannot load model "${source}": ${
        err instanceof Error ? err.message : err
      }: expected a folder or URL holding manifest.json from tools/convert.py`,
      { cause: err },
    );
  }
  if (manifest.format !== "vitrep-model/1") {
    throw new TypeError(
      `Unsupported model format "${manifest.format}" in "${source}": expected vitrep-model/1`,
    );
  }
  const weightsName = options.weights ?? "untrained";
  let weights = await resolveWeights(
    manifest,
    base,
    weightsName,
    options.seed ?? 0,
  );
  let label = weightsName === "untrained"
    ? `untrained:${options.seed ?? 0}`
    : weightsName;
  for (const swap of options.swaps ?? []) {
    const part = resolvePart(manifest, swap.part);
    const inPart = (n: string) => n === part || n.startsWith(part + ".");
    const other = await resolveWeights(manifest, base, swap.weights, 0, inPart);
    const prev = weights;
    weights = (name) => (inPart(name) ? other(name) : prev(name));
    label += ` + ${part} from ${swap.weights}`;
  }
  const switches = buildSwitches(
    manifest,
    options.ablations ?? [],
    options.positionEmbedding ?? true,
  );
  // onnxruntime-web 1.30 with threads can hang in full-size ResNet graphs with external data
  // (seen here intermittently; one thread never hung): ResNets get one wasm thread unless asked
  const threads = options.threads ??
    (manifest.architecture === "resnet" && options.backend === "wasm"
      ? 1
      : undefined);
  const backend = await openBackend(options.backend ?? "auto", { threads });
  const rt: Runtime = {
    manifest,
    backend,
    base,
    weights,
    weightsName: label,
    sessions: new Map(),
    graphs: new Map(),
    sessionBytes: 0,
  };
  return new Model(rt, switches);
}

/**
 * A loaded model: forward to any layer and input gradients of objectives.
 * Create with {@linkcode loadModel}.
 */
export class Model {
  #rt: Runtime;
  #switches: Record<string, number>[];

  /** @internal Use {@linkcode loadModel}. */
  constructor(rt: Runtime, switches: Record<string, number>[]) {
    this.#rt = rt;
    this.#switches = switches;
  }

  /**
   * The model's manifest (architecture, image size, normalization, classes).
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32");
   * console.log(model.manifest.image_size); // 224
   * ```
   */
  get manifest(): Manifest {
    return this.#rt.manifest;
  }

  /**
   * The backend in use (`native`, `wasm` or `webgpu`).
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32", { backend: "wasm" });
   * console.log(model.backend); // "wasm"
   * ```
   */
  get backend(): string {
    return this.#rt.backend.name;
  }

  /**
   * The weight set: `untrained:SEED`, a weight-set name or a path.
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32", { seed: 3 });
   * console.log(model.weights); // "untrained:3"
   * ```
   */
  get weights(): string {
    return this.#rt.weightsName;
  }

  /**
   * A weight tensor by torchvision state-dict key (a copy), as the sessions see it
   * (swaps applied).
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32");
   * const w = model.tensor("conv_proj.weight"); // 768 × 3 × 32 × 32 values
   * ```
   */
  tensor(name: string): Float32Array {
    if (!this.#rt.manifest.tensors[name]) {
      throw new TypeError(
        `Unknown tensor "${name}" of ${this.#rt.manifest.name}: expected a state-dict key such as ${
          Object.keys(this.#rt.manifest.tensors)[0]
        }`,
      );
    }
    return this.#rt.weights(name).slice();
  }

  /**
   * The same model (same sessions) with other ablations.
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32");
   * const noAttention = model.withAblations([{ remove: "attn", layers: [1, 2, 3, 4] }]);
   * ```
   */
  withAblations(
    ablations: readonly Ablation[],
    positionEmbedding = true,
  ): Model {
    return new Model(
      this.#rt,
      buildSwitches(this.#rt.manifest, ablations, positionEmbedding),
    );
  }

  /**
   * Output of a layer for image x ([1,3,H,W] in the model's input space).
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32");
   * const tokens = await model.forward(new Float32Array(3 * 224 * 224), { layer: 0 });
   * console.log(tokens.dims); // [1, 50, 768]
   * ```
   */
  async forward(x: ImageInput, options: ForwardOptions = {}): Promise<Tensor> {
    const chain = this.#chain(options.layer ?? "logits", options.blocks);
    this.#ensureFits(chain, ["fwd"]);
    const be = this.#rt.backend;
    let value = this.#input(x);
    for (const pos of chain) {
      const session = await this.#session(pos, "fwd");
      const out = await session.run(this.#feeds(pos, session, { x: value }), [
        "y",
      ]);
      if (value !== out.y) be.dispose(value);
      value = out.y;
    }
    const data = await be.read(value);
    const dims = [...value.dims];
    be.dispose(value);
    return { data, dims };
  }

  /**
   * Runs the forward chain to the objective's layer and the VJP chain back:
   * the objective's value and its gradient with respect to the image.
   *
   * @example
   * ```ts
   * import { featureMatch, loadModel } from "../../mod.ts";
   * const model = await loadModel("weights/vit_b_32");
   * const x = new Float32Array(3 * 224 * 224).fill(0.5);
   * const target = await model.forward(x, { layer: 1 });
   * const { value, grad } = await model.inputGradient(
   *   x.map((v) => v + 0.01),
   *   featureMatch(1, target.data),
   * );
   * ```
   */
  async inputGradient(
    x: ImageInput,
    objective: Objective,
    options: { blocks?: readonly number[] } = {},
  ): Promise<Gradient> {
    const chain = this.#chain(objective.layer, options.blocks);
    this.#ensureFits(chain, ["fwd", "vjp"]);
    const be = this.#rt.backend;
    // the tape keeps each graph's input x and its saved activations for the VJP
    const tape: { pos: number; saved: Record<string, Value> }[] = [];
    let value = this.#input(x);
    for (const pos of chain) {
      const session = await this.#session(pos, "fwd");
      const out = await session.run(this.#feeds(pos, session, { x: value }));
      const saved: Record<string, Value> = { x: value };
      for (const [k, v] of Object.entries(out)) {
        if (k.startsWith("s_")) saved[k] = v;
      }
      tape.push({ pos, saved });
      value = out.y;
    }
    const output = { data: await be.read(value), dims: [...value.dims] };
    be.dispose(value);
    const { value: objValue, grad: dOut } = objective.evaluate(output);
    let grad = be.tensor(dOut, output.dims);
    for (let i = tape.length - 1; i >= 0; i--) {
      const { pos, saved } = tape[i];
      const session = await this.#session(pos, "vjp");
      const out = await session.run(
        this.#feeds(pos, session, { dy: grad, ...saved }),
        ["dx"],
      );
      be.dispose(grad);
      for (const v of Object.values(saved)) be.dispose(v);
      grad = out.dx;
    }
    const g = await be.read(grad);
    be.dispose(grad);
    return { value: objValue, grad: g, output };
  }

  /**
   * Creates the sessions a chain needs now rather than on first use.
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32");
   * await model.prepare(12, { gradient: true });
   * ```
   */
  async prepare(
    layer: Layer = "logits",
    options: { gradient?: boolean; blocks?: readonly number[] } = {},
  ): Promise<void> {
    const chain = this.#chain(layer, options.blocks);
    this.#ensureFits(chain, options.gradient ? ["fwd", "vjp"] : ["fwd"]);
    for (const pos of chain) {
      await this.#session(pos, "fwd");
      if (options.gradient) await this.#session(pos, "vjp");
    }
  }

  /**
   * Frees every session of this model (and of models made by withAblations).
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("weights/vit_b_32");
   * await model.release();
   * ```
   */
  async release(): Promise<void> {
    const all = [...this.#rt.sessions.values()];
    this.#rt.sessions.clear();
    this.#rt.sessionBytes = 0;
    for (const s of all) await (await s).release();
  }

  #input(x: ImageInput): Value {
    const m = this.#rt.manifest;
    const data = x instanceof Float32Array ? x : x?.data;
    const [, c, h, w] = m.input.shape;
    if (!(data instanceof Float32Array) || data.length !== c * h * w) {
      throw new RangeError(
        `Invalid image of ${
          data instanceof Float32Array ? data.length : typeof data
        } values: expected a Float32Array of 1x${c}x${h}x${w} = ${
          c * h * w
        } values for ${m.name}`,
      );
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new RangeError(
          `Invalid image value "${
            data[i]
          }" at index ${i}: expected finite numbers`,
        );
      }
    }
    return this.#rt.backend.tensor(data, [1, c, h, w]);
  }

  /** Chain positions: 0 = stem, 1..N blocks, N+1 head. */
  #chain(layer: Layer, blocks?: readonly number[]): number[] {
    const n = this.#rt.manifest.num_layers;
    if (
      layer !== "logits" && (!Number.isInteger(layer) || layer < 0 || layer > n)
    ) {
      throw new RangeError(
        `Invalid layer "${layer}": expected 0 (input processing), 1..${n} (encoder blocks) or "logits"`,
      );
    }
    const last = layer === "logits" ? n : layer;
    const list = blocks ?? Array.from({ length: last }, (_, i) => i + 1);
    for (const b of list) {
      if (!Number.isInteger(b) || b < 1 || b > n) {
        throw new RangeError(
          `Invalid block "${b}": expected encoder blocks 1..${n}`,
        );
      }
    }
    if (
      blocks && layer !== "logits" && blocks.at(-1) !== layer && blocks.length
    ) {
      throw new RangeError(
        `Invalid blocks [${blocks}] for layer ${layer}: the last block must be the layer`,
      );
    }
    if (blocks && this.#rt.manifest.architecture === "resnet") {
      // a block takes the shape its predecessor in the model gives: the same stage's (or the stem's)
      const names = this.#rt.manifest.layers.map((l) => l.name);
      const stage = (p: number) => p === 0 ? "stem" : names[p].split(".")[0];
      let prev = 0;
      for (const b of list) {
        if (stage(prev) !== stage(b - 1)) {
          throw new RangeError(
            `Invalid blocks [${blocks}] for ${this.#rt.manifest.name}: block ${b} (${
              names[b]
            }) takes the output of ${names[b - 1]}, not of ${
              names[prev]
            }: a ResNet block follows the stem or a block of the stage it follows in the model (e.g. [1], or [1, 3])`,
          );
        }
        prev = b;
      }
    }
    return [0, ...list, ...(layer === "logits" ? [n + 1] : [])];
  }

  #feeds(
    pos: number,
    session: Session,
    values: Record<string, Value>,
  ): Record<string, Value> {
    const be = this.#rt.backend;
    const sw = this.#switches[pos];
    const feeds: Record<string, Value> = {};
    for (const name of session.inputNames) {
      if (values[name]) feeds[name] = values[name];
      else if (name in sw) feeds[name] = be.scalar(sw[name]);
      else throw new Error(`Graph input "${name}" has no value`);
    }
    return feeds;
  }

  /** Fails before building anything if a chain's sessions cannot fit the backend's memory. */
  #ensureFits(chain: number[], kinds: ("fwd" | "vjp")[]): void {
    const rt = this.#rt;
    let need = rt.sessionBytes;
    for (const pos of chain) {
      for (const kind of kinds) {
        if (rt.sessions.has(`${pos}:${kind}`)) continue;
        need += graphBytes(
          rt.manifest.graphs[`${rt.manifest.layers[pos].graph}.${kind}`],
        );
      }
    }
    if (need > rt.backend.memoryLimit) {
      const gib = (b: number) => (b / 2 ** 30).toFixed(2);
      throw new RangeError(
        `Model "${rt.manifest.name}" needs ${
          gib(need)
        } GiB of weights in sessions for this chain, over the ${rt.backend.name} backend's ${
          gib(rt.backend.memoryLimit)
        } GiB: use backend "native", or fewer layers`,
      );
    }
  }

  #session(pos: number, kind: "fwd" | "vjp"): Promise<Session> {
    const rt = this.#rt;
    const key = `${pos}:${kind}`;
    let s = rt.sessions.get(key);
    if (!s) {
      s = this.#createSession(pos, kind);
      rt.sessions.set(key, s);
      s.catch(() => rt.sessions.delete(key));
    }
    return s;
  }

  async #createSession(pos: number, kind: "fwd" | "vjp"): Promise<Session> {
    const rt = this.#rt;
    const layer = rt.manifest.layers[pos];
    const gname = `${layer.graph}.${kind}`;
    const entry = rt.manifest.graphs[gname];
    const size = graphBytes(entry);
    rt.sessionBytes += size;
    let graph = rt.graphs.get(gname);
    if (!graph) {
      graph = readBytes(rt.base, entry.file);
      rt.graphs.set(gname, graph);
    }
    const buf = new Uint8Array(size);
    for (const p of entry.params) {
      const w = rt.weights(layer.prefix + p.name);
      if (w.byteLength !== p.length) {
        throw new RangeError(
          `Tensor "${
            layer.prefix + p.name
          }" has ${w.length} values: expected shape [${p.shape}]`,
        );
      }
      buf.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), p.offset);
    }
    try {
      return await rt.backend.createSession(
        await graph,
        rt.manifest.external_data,
        buf,
      );
    } catch (err) {
      rt.sessionBytes -= size;
      throw err;
    }
  }
}
