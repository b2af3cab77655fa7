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
import {
  type GraphEntry,
  type Manifest,
  parseManifest,
  resolvePart,
} from "./manifest.ts";
import {
  DEFAULT_DOWNLOAD_TIMEOUT_MS,
  DEFAULT_MAX_BYTES,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_MS,
  describe,
  inModel,
  modelFolder,
  type NetOptions,
  readLocation,
  smallFileLimit,
} from "./_source.ts";
import {
  type ReadContext,
  readGraph,
  resolveWeights,
  type Weights,
} from "./_weights.ts";
import type { VerifyCache } from "./weights.ts";

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

/** A scalar function of one layer's output. */
export interface Objective {
  /** A readable name, e.g. `l1(layer 4)`. */
  readonly name: string;
  /** The layer whose output it reads. */
  readonly layer: Layer;
  /**
   * Value and gradient with respect to the output; for a batch (the output's
   * first axis), optionally the value of each image (`value` is their sum).
   */
  evaluate(output: Tensor): {
    value: number;
    grad: Float32Array;
    values?: number[];
  };
}

/** A float32 tensor on the CPU. */
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
   * `seed`), `"untrained:SEED"`, the name of a weight set in the model folder
   * (its file resolves against the model folder or URL), or a `.safetensors`
   * path (relative paths resolve against the current directory, like any
   * file path) or http(s) URL. Default: `"untrained"`.
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
  /**
   * Check each graph file's SHA-256 and each weight set's tensors (SHA-256 as
   * the manifest records them, finite values) on load (default true).
   */
  verify?: boolean;
  /** Files verified earlier in this process, skipped when unchanged (default: none kept). */
  verifyCache?: VerifyCache;
  /**
   * Limit in milliseconds on the wait for an http(s) answer and for each next
   * piece of its body (default 30000).
   */
  timeoutMs?: number;
  /**
   * Limit in milliseconds on the whole download of one http(s) file, retries
   * included (default 600000, 10 minutes; raise it for large weights on a slow
   * link).
   */
  downloadTimeoutMs?: number;
  /** Extra attempts after a connection error or HTTP 5xx/408/429 (default 2). */
  retries?: number;
  /**
   * The most bytes one model file may hold, read from a folder or a URL
   * (default 4 GiB). It bounds a `.safetensors` of the caller's; a weight set
   * of the manifest is bounded by what its tensors take (with up to 1 MiB and
   * 1 KiB per tensor of header), and `manifest.json` and each graph file by
   * 64 MiB; `maxBytes` lowers these limits where it is smaller. Redirects are
   * followed only within the URL's origin.
   */
  maxBytes?: number;
  /** Record the wall time of every graph run, read by {@linkcode Model.timings} (default false). */
  timing?: boolean;
  /**
   * Backend `native` only: write onnxruntime's per-node profile of each
   * session to files starting with this path prefix when the model is released
   * (see {@linkcode BackendOptions.profile}). Default: none.
   */
  profile?: string;
}

/** The runs of one graph at one chain position, from {@linkcode Model.timings}. */
export interface GraphTiming {
  /** Chain position (0 is the input processing). */
  position: number;
  /** The graph's name in the manifest, e.g. `"encoder_layer.vjp"`. */
  graph: string;
  /** Completed runs. */
  runs: number;
  /** Wall milliseconds of all runs together (from the call to its outputs). */
  ms: number;
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

/**
 * One encoder block linearized at its input tokens, from
 * {@linkcode Model.linearizeBlock}: the block's output there and its
 * vector-Jacobian product, run on the block's VJP graph with the forward
 * pass's saved activations (kept until {@linkcode BlockLinearization.release}).
 */
export interface BlockLinearization {
  /** The block's output at the tokens. */
  readonly output: Tensor;
  /**
   * Jᵀ·dy for J = ∂block(x)/∂x at the tokens: `dy` is shaped like the output,
   * the result like the tokens.
   */
  vjp(dy: Float32Array): Promise<Float32Array>;
  /** Frees the saved activations (GPU memory on `webgpu`). */
  release(): void;
}

/** Result of {@linkcode Model.inputGradient}. */
export interface Gradient {
  /** The objective's value. */
  value: number;
  /** The objective's value per image of the batch, when the objective reports them. */
  values?: number[];
  /** d value / d x, shaped like the image. */
  grad: Float32Array;
  /** The output the objective saw. */
  output: Tensor;
}

/**
 * Input x: a [1,3,H,W] Float32Array or an object holding one (an ImageTensor);
 * for models whose manifest has `batch_axis`, B images one after another
 * ([B,3,H,W], B inferred from the length).
 */
export type ImageInput = Float32Array | { data: Float32Array };

interface Runtime {
  manifest: Manifest;
  backend: Backend;
  read: ReadContext;
  weights: Weights;
  weightsName: string;
  sessions: Map<string, Promise<Session>>;
  graphs: Map<string, Promise<Uint8Array>>;
  sessionBytes: number;
  /** Per chain position and graph kind, when the model was loaded with `timing`. */
  timings: Map<string, GraphTiming> | null;
}

const TEXT = new TextDecoder();

/** Bytes of a graph's external-data buffer. */
function graphBytes(entry: GraphEntry): number {
  return entry.params.reduce((m, p) => Math.max(m, p.offset + p.length), 0);
}

/** A session whose runs add their wall time to `timings` under its chain position and graph. */
function timed(
  session: Session,
  timings: Map<string, GraphTiming>,
  position: number,
  graph: string,
): Session {
  const key = `${position}:${graph}`;
  const t: GraphTiming = timings.get(key) ??
    { position, graph, runs: 0, ms: 0 };
  timings.set(key, t);
  return {
    ...session,
    run: async (feeds, outputs) => {
      const t0 = performance.now();
      const out = await session.run(feeds, outputs);
      t.ms += performance.now() - t0;
      t.runs++;
      return out;
    },
  };
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

/** A timer's milliseconds: setTimeout takes at most 2^31 - 1. */
function milliseconds(name: string, v: unknown): number {
  if (typeof v !== "number" || !(v > 0 && v <= 2 ** 31 - 1)) {
    throw new RangeError(
      `Invalid ${name} "${v}": expected milliseconds in 1..2147483647`,
    );
  }
  return v;
}

function netOptions(options: LoadOptions): NetOptions {
  const {
    retries = DEFAULT_RETRIES,
    maxBytes = DEFAULT_MAX_BYTES,
  } = options;
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) {
    throw new RangeError(
      `Invalid retries "${retries}": expected an integer in 0..10`,
    );
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(
      `Invalid maxBytes "${maxBytes}": expected a positive integer (bytes)`,
    );
  }
  return {
    timeoutMs: milliseconds(
      "timeoutMs",
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ),
    downloadTimeoutMs: milliseconds(
      "downloadTimeoutMs",
      options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS,
    ),
    retries,
    maxBytes,
  };
}

async function readManifest(read: ReadContext): Promise<Manifest> {
  const loc = inModel(read.base, "manifest.json", "manifest");
  const name = describe(loc);
  let json: unknown;
  try {
    const limit = smallFileLimit("manifest.json", read.net);
    json = JSON.parse(
      TEXT.decode(await readLocation(loc, read.net, "", limit)),
    );
  } catch (err) {
    throw new TypeError(
      `Cannot load model "${name}": ${
        err instanceof Error ? err.message : err
      }: expected a folder or URL holding manifest.json from tools/convert.py`,
      { cause: err },
    );
  }
  return parseManifest(json, name);
}

/** The weights with swaps applied, and their label. */
async function loadWeights(
  manifest: Manifest,
  read: ReadContext,
  options: LoadOptions,
): Promise<{ weights: Weights; label: string }> {
  const name = options.weights ?? "untrained";
  const seed = options.seed ?? 0;
  let weights = await resolveWeights(manifest, read, name, seed);
  let label = name === "untrained" ? `untrained:${seed}` : name;
  for (const swap of options.swaps ?? []) {
    const part = resolvePart(manifest, swap.part);
    const inPart = (n: string) => n === part || n.startsWith(part + ".");
    const other = await resolveWeights(
      manifest,
      read,
      swap.weights,
      0,
      inPart,
      part,
    );
    const prev = weights;
    weights = (name) => (inPart(name) ? other(name) : prev(name));
    label += ` + ${part} from ${swap.weights}`;
  }
  return { weights, label };
}

/**
 * Loads a converted model from a folder or an http(s) URL. Every path the
 * manifest names stays inside the model (its folder, or its URL's origin and
 * path prefix); graph files and weight sets are verified against the
 * manifest's SHA-256 unless `verify: false`.
 *
 * @example
 * ```ts
 * import { loadModel } from "./model.ts";
 * import assert from "node:assert/strict";
 * const model = await loadModel("weights/vit_b_32", { weights: "untrained", seed: 0 });
 * const x = new Float32Array(3 * 224 * 224).fill(0.5);
 * const out = await model.forward(x, { layer: 4 });
 * assert.deepEqual(out.dims, [1, 50, 768]);
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
  if (options.verify !== undefined && typeof options.verify !== "boolean") {
    throw new TypeError(
      `Invalid verify "${options.verify}": expected true or false`,
    );
  }
  const read: ReadContext = {
    base: modelFolder(source),
    net: netOptions(options),
    verify: options.verify ?? true,
    cache: options.verifyCache,
  };
  const manifest = await readManifest(read);
  const { weights, label } = await loadWeights(manifest, read, options);
  const switches = buildSwitches(
    manifest,
    options.ablations ?? [],
    options.positionEmbedding ?? true,
  );
  // the manifest's wasm_threads (ResNets: 1, see ManifestRuntime) unless asked
  const threads = options.threads ??
    (options.backend === "wasm"
      ? manifest.runtime.wasm_threads ?? undefined
      : undefined);
  if (options.timing !== undefined && typeof options.timing !== "boolean") {
    throw new TypeError(
      `Invalid timing "${options.timing}": expected true or false`,
    );
  }
  const backend = await openBackend(options.backend ?? "auto", {
    threads,
    profile: options.profile,
  });
  const rt: Runtime = {
    manifest,
    backend,
    read,
    weights,
    weightsName: label,
    sessions: new Map(),
    graphs: new Map(),
    sessionBytes: 0,
    timings: options.timing ? new Map() : null,
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
   * Whether graph files and weight sets were verified on load (SHA-256 as the
   * manifest records them, finite weights): false only with `verify: false`.
   *
   * @example
   * ```ts
   * import { loadModel } from "./model.ts";
   * import assert from "node:assert/strict";
   * const model = await loadModel("weights/vit_b_32", { verify: false });
   * assert.equal(model.verified, false);
   * ```
   */
  get verified(): boolean {
    return this.#rt.read.verify;
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
    const r = objective.evaluate(output);
    const { value: objValue, grad: dOut } = r;
    if (!(dOut instanceof Float32Array) || dOut.length !== output.data.length) {
      throw new RangeError(
        `Objective "${objective.name}" gave a gradient of ${dOut?.length} values: expected one per output value, ${output.data.length} [${output.dims}]`,
      );
    }
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
    return { value: objValue, values: r.values, grad: g, output };
  }

  /**
   * Encoder block `layer` (1-based) alone on tokens: its output for input
   * tokens shaped as the block takes them (e.g. [1, 50, 768] for ViT-B/32,
   * what `forward(x, { layer: layer - 1 })` gives), under this model's
   * ablations of that block.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
   * const x = new Float32Array(3 * 32 * 32).fill(0.5);
   * const tokens = await model.forward(x, { layer: 1 });
   * const y = await model.blockForward(2, tokens);
   * assert.deepEqual(y.data, (await model.forward(x, { layer: 2 })).data);
   * await model.release();
   * ```
   */
  async blockForward(layer: number, tokens: Tensor): Promise<Tensor> {
    const value = this.#blockInput(layer, tokens, ["fwd"]);
    const be = this.#rt.backend;
    const session = await this.#session(layer, "fwd");
    const out = await session.run(this.#feeds(layer, session, { x: value }), [
      "y",
    ]);
    if (value !== out.y) be.dispose(value);
    const data = await be.read(out.y);
    const dims = [...out.y.dims];
    be.dispose(out.y);
    return { data, dims };
  }

  /**
   * Encoder block `layer` (1-based) linearized at `tokens` (shaped as for
   * {@linkcode Model.blockForward}): its output there and vector-Jacobian
   * products Jᵀ·dy on the block's VJP graph, any number of them on one
   * forward pass. Release it when done.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
   * const tokens = await model.forward(new Float32Array(3 * 32 * 32).fill(0.5), { layer: 0 });
   * const lin = await model.linearizeBlock(1, tokens);
   * const dx = await lin.vjp(new Float32Array(lin.output.data.length).fill(1));
   * assert.equal(dx.length, tokens.data.length);
   * lin.release();
   * await model.release();
   * ```
   */
  async linearizeBlock(
    layer: number,
    tokens: Tensor,
  ): Promise<BlockLinearization> {
    const value = this.#blockInput(layer, tokens, ["fwd", "vjp"]);
    const be = this.#rt.backend;
    const session = await this.#session(layer, "fwd");
    const out = await session.run(this.#feeds(layer, session, { x: value }));
    const saved: Record<string, Value> = { x: value };
    for (const [k, v] of Object.entries(out)) {
      if (k.startsWith("s_")) saved[k] = v;
    }
    const output = { data: await be.read(out.y), dims: [...out.y.dims] };
    if (out.y !== value) be.dispose(out.y);
    let released = false;
    return {
      output,
      vjp: async (dy) => {
        if (released) {
          throw new TypeError(
            `Block ${layer} of ${this.#rt.manifest.name} was released: linearize it again`,
          );
        }
        if (
          !(dy instanceof Float32Array) || dy.length !== output.data.length
        ) {
          throw new RangeError(
            `Invalid dy of ${
              dy instanceof Float32Array ? `${dy.length} values` : typeof dy
            }: expected a Float32Array shaped like the block's output, [${output.dims}]`,
          );
        }
        const grad = be.tensor(dy.slice(), output.dims);
        const vjp = await this.#session(layer, "vjp");
        const r = await vjp.run(
          this.#feeds(layer, vjp, { dy: grad, ...saved }),
          ["dx"],
        );
        be.dispose(grad);
        const dx = await be.read(r.dx);
        be.dispose(r.dx);
        return dx;
      },
      release: () => {
        if (released) return;
        released = true;
        for (const v of Object.values(saved)) be.dispose(v);
      },
    };
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
   * The wall time of every graph run so far, per chain position and graph, in
   * chain order (forward graphs before VJP graphs at each position). Needs the
   * model loaded with `timing: true`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadModel } from "./model.ts";
   * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture", backend: "wasm", timing: true });
   * await model.forward(new Float32Array(3 * 32 * 32), { layer: 2 });
   * const t = model.timings();
   * assert.deepEqual(t.map((g) => g.position), [0, 1, 2]);
   * assert.ok(t.every((g) => g.runs === 1 && g.ms > 0));
   * await model.release();
   * ```
   */
  timings(): GraphTiming[] {
    const timings = this.#rt.timings;
    if (!timings) {
      throw new TypeError(
        `Timing is off for model "${this.#rt.manifest.name}": load it with { timing: true }`,
      );
    }
    return [...timings.values()].map((t) => ({ ...t })).sort((a, b) =>
      a.position - b.position || a.graph.localeCompare(b.graph)
    );
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
    const one = c * h * w;
    const count = data instanceof Float32Array ? data.length : 0;
    const batch = count / one;
    const fits = count > 0 && Number.isInteger(batch) &&
      (batch === 1 || m.batch_axis === true);
    if (!(data instanceof Float32Array) || !fits) {
      const got = data instanceof Float32Array
        ? `${data.length} values`
        : typeof data;
      throw new RangeError(
        m.batch_axis
          ? `Invalid image of ${got}: expected a Float32Array of B images, Bx${c}x${h}x${w} values (one is 1x${c}x${h}x${w} = ${one}), for ${m.name}`
          : `Invalid image of ${got}: expected a Float32Array of 1x${c}x${h}x${w} = ${one} values for ${m.name}${
            count > one && count % one === 0
              ? ` (its graphs take one image: convert it again with tools/convert.py for a batch axis)`
              : ""
          }`,
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
    return this.#rt.backend.tensor(data, [batch, c, h, w]);
  }

  /** The tokens entering block `layer` as a backend tensor (a copy), after checking the layer, the shape and the values. */
  #blockInput(
    layer: number,
    tokens: Tensor,
    kinds: ("fwd" | "vjp")[],
  ): Value {
    const n = this.#rt.manifest.num_layers;
    if (!Number.isInteger(layer) || layer < 1 || layer > n) {
      throw new RangeError(
        `Invalid block "${layer}": expected an encoder block 1..${n} of ${this.#rt.manifest.name}`,
      );
    }
    const data = tokens?.data;
    const dims = tokens?.dims;
    const size = Array.isArray(dims) ? dims.reduce((a, b) => a * b, 1) : NaN;
    if (!(data instanceof Float32Array) || data.length !== size || size === 0) {
      throw new RangeError(
        `Invalid tokens of ${
          data instanceof Float32Array ? `${data.length} values` : typeof data
        } with dims [${dims}]: expected a Float32Array holding the product of its dims, e.g. forward(x, { layer: ${
          layer - 1
        } })`,
      );
    }
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new RangeError(
        `Invalid token value "${
          data[bad]
        }" at index ${bad}: expected finite numbers`,
      );
    }
    this.#ensureFits([layer], kinds);
    return this.#rt.backend.tensor(data.slice(), dims);
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
    if (blocks && blocks.length === 0) {
      throw new RangeError(
        `Invalid blocks []: expected at least one encoder block of 1..${n} (for input processing alone, use layer 0 without blocks)`,
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
    if (blocks && layer !== "logits" && blocks.at(-1) !== layer) {
      throw new RangeError(
        `Invalid blocks [${blocks}] for layer ${layer}: the last block must be the layer`,
      );
    }
    if (blocks && this.#rt.manifest.runtime.block_chain === "stage") {
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
          rt.manifest.graphs[`${this.#graphOf(pos)}.${kind}`],
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

  /** The graph a chain position runs on this backend: its CPU variant on a CPU backend, if it has one. */
  #graphOf(pos: number): string {
    const layer = this.#rt.manifest.layers[pos];
    return this.#rt.backend.gpu ? layer.graph : layer.cpu_graph ?? layer.graph;
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

  /** A graph file's bytes, read once; a failed read is not kept, so a later call tries again. */
  #graph(gname: string): Promise<Uint8Array> {
    const rt = this.#rt;
    let graph = rt.graphs.get(gname);
    if (!graph) {
      graph = readGraph(rt.read, rt.manifest, gname);
      rt.graphs.set(gname, graph);
      graph.catch(() => rt.graphs.delete(gname));
    }
    return graph;
  }

  /** The external-data buffer of a graph at a chain position. */
  #weightBuffer(pos: number, entry: GraphEntry): Uint8Array {
    const layer = this.#rt.manifest.layers[pos];
    const buf = new Uint8Array(graphBytes(entry));
    for (const p of entry.params) {
      const w = this.#rt.weights(layer.prefix + p.name);
      if (w.byteLength !== p.length) {
        throw new RangeError(
          `Tensor "${
            layer.prefix + p.name
          }" has ${w.length} values: expected shape [${p.shape}]`,
        );
      }
      buf.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), p.offset);
    }
    return buf;
  }

  async #createSession(pos: number, kind: "fwd" | "vjp"): Promise<Session> {
    const rt = this.#rt;
    const gname = `${this.#graphOf(pos)}.${kind}`;
    const entry = rt.manifest.graphs[gname];
    const size = graphBytes(entry);
    rt.sessionBytes += size;
    try {
      const graph = this.#graph(gname);
      const session = await rt.backend.createSession(
        await graph,
        rt.manifest.external_data,
        this.#weightBuffer(pos, entry),
      );
      return rt.timings ? timed(session, rt.timings, pos, gname) : session;
    } catch (err) {
      rt.sessionBytes -= size;
      throw err;
    }
  }
}
