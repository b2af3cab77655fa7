/**
 * The one module that knows onnxruntime. A table maps a backend name to the
 * runtime package and its execution providers; every session of a backend runs
 * through one promise chain, so WebGPU sessions never overlap.
 *
 * @module
 */

/** Names accepted by {@linkcode openBackend}. */
export type BackendName = "wasm" | "webgpu" | "native" | "auto";

/** The backend names {@linkcode openBackend} accepts, in order of preference for `"auto"`. */
export const BACKEND_NAMES: readonly BackendName[] = [
  "auto",
  "native",
  "wasm",
  "webgpu",
];

/** A tensor owned by a backend: on the CPU, or on the GPU for `webgpu`. */
export interface Value {
  /** Dimensions of the tensor. */
  readonly dims: readonly number[];
}

/** One ONNX graph loaded into a backend, with its weights. */
export interface Session {
  /** Graph input names. */
  readonly inputNames: readonly string[];
  /** Graph output names. */
  readonly outputNames: readonly string[];
  /** Runs the graph; `outputs` limits what is fetched (default: all). */
  run(
    feeds: Record<string, Value>,
    outputs?: readonly string[],
  ): Promise<Record<string, Value>>;
  /** Frees the session's memory. */
  release(): Promise<void>;
}

/** An opened backend: creates sessions and moves tensors in and out. */
export interface Backend {
  /** The backend actually used (never `"auto"`). */
  readonly name: Exclude<BackendName, "auto">;
  /** Loads a graph whose initializers live in the external-data buffer `weights`. */
  createSession(
    graph: Uint8Array,
    externalName: string,
    weights: Uint8Array,
  ): Promise<Session>;
  /** Wraps CPU data as a tensor for `run` (no copy where the runtime allows). */
  tensor(data: Float32Array, dims: readonly number[]): Value;
  /** A 0-d float tensor. */
  scalar(value: number): Value;
  /** Reads a tensor back to the CPU. */
  read(value: Value): Promise<Float32Array>;
  /** Releases a tensor's GPU memory (a no-op on the CPU). */
  dispose(value: Value): void;
  /** Bytes of weights a process of this backend can hold, or Infinity. */
  readonly memoryLimit: number;
  /** Whether it runs on a GPU (then graphs run without the CPU-only variants). */
  readonly gpu: boolean;
}

/** Options of {@linkcode openBackend}. */
export interface BackendOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /**
   * `native` only: a path prefix under which onnxruntime writes each session's
   * per-node profile (Chrome trace JSON, `PREFIX-N_TIME.json`, N counting the
   * sessions) when the session is released. Default: no profiles.
   */
  profile?: string;
}

// deno-lint-ignore no-explicit-any
type Ort = any;

interface Table {
  load(): Promise<Ort>;
  providers: string[];
  configure(ort: Ort, threads: number): void;
  sessionOptions(threads: number): Record<string, unknown>;
  memoryLimit: number;
  gpu: boolean;
}

const TABLE: Record<Exclude<BackendName, "auto">, Table> = {
  native: {
    load: () => import("npm:onnxruntime-node@1.30.0"),
    providers: ["cpu"],
    configure() {},
    sessionOptions: (threads) => ({
      intraOpNumThreads: threads,
      // one arena per session would keep each session's peak activations alive:
      // with dozens of sessions (ViT-H at 518²) that alone exceeds the machine
      enableCpuMemArena: false,
      interOpNumThreads: 1,
      extra: {
        session: {
          // spin while a run is going, stop when it ends: with many sessions in one
          // process, idle spinning pools would fight over the cores
          intra_op: { allow_spinning: "1" },
          inter_op: { allow_spinning: "0" },
          force_spinning_stop: "1",
        },
      },
    }),
    memoryLimit: Infinity,
    gpu: false,
  },
  wasm: {
    load: () => import("npm:onnxruntime-web@1.30.0"),
    providers: ["wasm"],
    configure(ort, threads) {
      ort.env.wasm.numThreads = threads;
    },
    sessionOptions: () => ({}),
    memoryLimit: 3.5 * 2 ** 30,
    gpu: false,
  },
  webgpu: {
    load: () => import("npm:onnxruntime-web@1.30.0/webgpu"),
    providers: ["webgpu"],
    configure(ort) {
      ort.env.wasm.numThreads = 1;
    },
    sessionOptions: () => ({
      preferredOutputLocation: "gpu-buffer",
      // errors only: every session otherwise warns that shape ops run on the CPU
      logSeverityLevel: 3,
    }),
    memoryLimit: Infinity,
    gpu: true,
  },
};

/**
 * Opens a backend by name. `"auto"` picks `native` where onnxruntime-node loads,
 * else `wasm` (in a browser always `wasm`). A backend that cannot start fails naming the ones that can.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * const backend = await openBackend("wasm");
 * console.log(backend.name); // "wasm"
 * ```
 */
export async function openBackend(
  name: BackendName = "auto",
  options: BackendOptions = {},
): Promise<Backend> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new TypeError(
      `Invalid backend "${name}": expected one of ${BACKEND_NAMES.join(", ")}`,
    );
  }
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(
      `Invalid threads "${threads}": expected a positive integer`,
    );
  }
  const profile = options.profile;
  if (
    profile !== undefined && (typeof profile !== "string" || profile === "")
  ) {
    throw new TypeError(
      `Invalid profile "${profile}": expected a path prefix for the profile files`,
    );
  }
  if (profile !== undefined && name !== "native") {
    throw new RangeError(
      `Invalid profile for backend "${name}": per-node profiles come from onnxruntime-node only: use backend "native"`,
    );
  }
  if (name === "auto") {
    // a browser has no onnxruntime-node: wasm without trying (a bundle keeps
    // the native import external, and importing it there only fails)
    if (typeof Deno === "undefined") return await open("wasm", threads);
    try {
      return await open("native", threads);
    } catch {
      return await open("wasm", threads);
    }
  }
  try {
    return await open(name, threads, profile);
  } catch (err) {
    const others = await availableBackends(name);
    throw new Error(
      `Backend "${name}" cannot start (${
        err instanceof Error ? err.message.split("\n")[0] : err
      }): available here: ${others.join(", ") || "none"}`,
      { cause: err },
    );
  }
}

/**
 * Lists the backends that start on this machine.
 *
 * @example
 * ```ts
 * import { availableBackends } from "./backend.ts";
 * console.log(await availableBackends()); // e.g. ["native", "wasm"]
 * ```
 */
export async function availableBackends(
  skip?: BackendName,
): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const n of ["native", "wasm", "webgpu"] as const) {
    if (n === skip || (n === "native" && typeof Deno === "undefined")) {
      continue; // no onnxruntime-node in a browser
    }
    try {
      await open(n, 1);
      out.push(n);
    } catch { /* not available */ }
  }
  return out;
}

async function open(
  name: Exclude<BackendName, "auto">,
  threads: number,
  profile?: string,
): Promise<Backend> {
  const entry = TABLE[name];
  const mod = await entry.load();
  const ort: Ort = mod.default?.InferenceSession ? mod.default : mod;
  if (entry.gpu) {
    const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } })
      .gpu;
    const adapter = gpu ? await gpu.requestAdapter() : null;
    if (!adapter) throw new Error("no WebGPU adapter (navigator.gpu)");
  }
  entry.configure(ort, threads);
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => {});
    return next;
  };
  const base = {
    executionProviders: entry.providers,
    graphOptimizationLevel: "all",
    ...entry.sessionOptions(threads),
  };
  let created = 0;
  return {
    name,
    memoryLimit: entry.memoryLimit,
    gpu: entry.gpu,
    createSession: (graph, externalName, weights) =>
      serial(async () => {
        const s = await ort.InferenceSession.create(graph, {
          ...base,
          ...(profile === undefined ? {} : {
            enableProfiling: true,
            profileFilePrefix: `${profile}-${created++}`,
          }),
          externalData: [{ path: externalName, data: weights }],
        });
        return {
          inputNames: s.inputNames,
          outputNames: s.outputNames,
          run: (feeds, outputs) =>
            serial(() => outputs ? s.run(feeds, outputs) : s.run(feeds)),
          release: () =>
            serial(async () => {
              if (profile !== undefined) await s.endProfiling();
              await s.release();
            }),
        } satisfies Session;
      }),
    tensor: (data, dims) => new ort.Tensor("float32", data, dims),
    scalar: (v) => new ort.Tensor("float32", new Float32Array([v]), []),
    read: async (value) => {
      const t = value as unknown as {
        location?: string;
        getData(): Promise<Float32Array>;
        data: Float32Array;
      };
      return t.location === "gpu-buffer" ? await t.getData() : t.data;
    },
    dispose: (value) => {
      const t = value as unknown as { location?: string; dispose(): void };
      if (t.location === "gpu-buffer") t.dispose();
    },
  };
}
