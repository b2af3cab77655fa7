/**
 * `deno task bench`: one gradient step (forward to block L, L2 feature loss,
 * VJP chain back to the image) on untrained models at 224², for each CPU
 * backend, and the same workload in PyTorch (tools/bench_torch.py) in the same
 * run. Prints a markdown table of median milliseconds, ratios to PyTorch, the
 * step's GFLOP (counted by PyTorch) and the GFLOP/s each backend achieves
 * against a measured 2-thread sgemm peak.
 *
 * PyTorch is the fair baseline: its command runs with OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE unset (machines that set them force an older OpenBLAS kernel,
 * 2-5x slower). `--torch-env-as-set` adds a labelled column with PyTorch run
 * under the environment as it is.
 * The default models are ViT-B/32 (L = encoders), ResNet50 (L = bottlenecks:
 * 3 is the end of layer1, 16 of layer4) and an MLP-Mixer with patch 16 and
 * hidden dim 1024 (L = mixer blocks).
 *
 * ViT-B/32 is also timed with a batch of 8 images per step (`--batch`): the
 * table's rows give the step's time for the whole batch, and a line after it
 * the images per second of the batch over one image at a time.
 *
 * Both sides are timed in the same minutes: PyTorch runs as a server
 * (`bench_torch.py --serve`) and each row takes `--rounds` rounds in which
 * every backend and then PyTorch take one untimed and `repeats / rounds`
 * timed steps; the ratio is
 * the median of the rounds' ratios, printed with their range. (On a shared
 * machine whose speed drifts by tens of per cent within minutes, ratios of
 * medians timed minutes apart moved by ±0.3.)
 *
 *     deno task bench [--models vit_b_32,resnet50,mixer_p16_d1024] [--layers 1,4,12]
 *                     [--repeats 9] [--rounds 3] [--backends native,wasm] [--threads 2]
 *                     [--batch 1,8] [--torch-env-as-set]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, loadModel, type Model } from "../mod.ts";
import {
  type Backend,
  openBackend,
  parseManifest,
  type Session,
} from "../src/model/mod.ts";
import { median, timeStep } from "./_bench.ts";

/** Batch sizes each model is timed at unless --batch says otherwise (models with a batch axis). */
const DEFAULT_BATCHES: Record<string, string> = { vit_b_32: "1,8" };

/** The layers each model is timed at unless --layers says otherwise. */
const DEFAULT_LAYERS: Record<string, string> = {
  vit_b_32: "1,4,12",
  resnet50: "3,16",
  mixer_p16_d1024: "1,8",
};

const { values: opts } = parseArgs({
  options: {
    models: { type: "string", default: Object.keys(DEFAULT_LAYERS).join(",") },
    layers: { type: "string" },
    batch: { type: "string" },
    repeats: { type: "string", default: "9" },
    rounds: { type: "string", default: "3" },
    backends: { type: "string", default: "native,wasm" },
    threads: { type: "string", default: String(navigator.hardwareConcurrency) },
    python: { type: "string", default: "/usr/bin/python3" },
    "torch-env-as-set": { type: "boolean", default: false },
  },
});
const repeats = Number(opts.repeats);
const rounds = Number(opts.rounds);
const threads = Number(opts.threads);
const backends = opts.backends.split(",") as BackendName[];

/**
 * onnxruntime-web threads can hang in full-size ResNet graphs (src/model.ts),
 * so a model whose manifest asks for wasm threads (a ResNet: one) runs on
 * wasm with those loadModel gives it by default.
 */
function threadsFor(
  wasmThreads: number | null,
  backend: BackendName,
): number | undefined {
  return wasmThreads !== null && backend === "wasm" ? undefined : threads;
}

interface Row {
  model: string;
  layer: number;
  batch: number;
  /** Median of all timed steps per backend, ms. */
  ms: Record<string, number>;
  /** Per backend: the ratio to PyTorch of each round's medians. */
  ratios: Record<string, number[]>;
  threads: Record<string, number>;
  torch?: number;
  torchEnv?: number;
  gflop?: number;
}

/** The variables that make OpenBLAS fall back to an older kernel on these machines. */
const SLOW_BLAS_VARS = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

/** What bench_torch.py --serve says about itself. */
interface TorchInfo {
  torch: string;
  blas: string;
  blas_config: { config?: string; kernel?: string };
}

/**
 * bench_torch.py in `--serve` mode for one model: it times PyTorch's step on
 * request, so the bench can alternate it with its own steps. `fair` unsets
 * {@linkcode SLOW_BLAS_VARS} for its process only.
 */
class TorchServer {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  info: TorchInfo;
  private constructor(
    child: Deno.ChildProcess,
    lines: AsyncIterator<string>,
    info: TorchInfo,
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = lines;
    this.info = info;
  }

  static async open(name: string, fair: boolean): Promise<TorchServer | null> {
    const env = Deno.env.toObject();
    if (fair) { for (const v of SLOW_BLAS_VARS) delete env[v]; }
    try {
      const child = new Deno.Command(opts.python, {
        clearEnv: true,
        env,
        args: [
          new URL("./bench_torch.py", import.meta.url).pathname,
          "--model",
          name,
          "--threads",
          String(threads),
          "--serve",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = readLines(child.stdout);
      const first = await lines.next();
      if (!first.done) {
        return new TorchServer(child, lines, JSON.parse(first.value));
      }
      console.error(`PyTorch baseline for ${name} failed`);
      await child.status;
    } catch (err) {
      console.error(
        `PyTorch baseline skipped: ${err instanceof Error ? err.message : err}`,
      );
    }
    return null;
  }

  async request<T>(body: Record<string, unknown>): Promise<T> {
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify(body) + "\n"),
    );
    const line = await this.#lines.next();
    if (line.done) throw new Error("bench_torch.py --serve ended early");
    return JSON.parse(line.value);
  }

  async close(): Promise<void> {
    await this.#writer.close();
    await this.#child.status;
  }
}

async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    const parts = (rest + decoder.decode(bytes, { stream: true })).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest) yield rest;
}

/**
 * Waits 100 ms: onnxruntime-web's worker threads keep spinning for tens of
 * milliseconds after a run (measured here: 0.4 cores busy in the next 50 ms),
 * which would slow whichever side runs next.
 */
const settle = () => new Promise((r) => setTimeout(r, 100));

/** PyTorch's step times from a server (none without one). */
async function torchSteps(
  srv: TorchServer | null,
  step: { layer: number; batch: number },
  repeats: number,
  warmup: number,
): Promise<number[]> {
  if (!srv) return [];
  return (await srv.request<{ ms: number[] }>({ ...step, repeats, warmup }))
    .ms;
}

/**
 * One row: `rounds` rounds in which every backend and then PyTorch take one
 * untimed and `repeats / rounds` timed steps. Alternating keeps both sides in
 * the same minutes — on a shared machine whose speed drifts by tens of per
 * cent, ratios of steps timed minutes apart mislead. The ratio is the median
 * of the rounds' ratios.
 */
async function timeRow(
  row: Row,
  models: Map<string, Model>,
  torch: TorchServer | null,
  asSet: TorchServer | null,
): Promise<void> {
  const step = { layer: row.layer, batch: row.batch };
  const per = Math.ceil(repeats / rounds);
  const all: Record<string, number[]> = {};
  const torchAll: number[] = [], envAll: number[] = [];
  for (const [backend, model] of models) {
    await timeStep(model, { ...step, repeats: 0, warmup: 2 });
    all[backend] = [];
    row.ratios[backend] = [];
  }
  await torchSteps(torch, step, 0, 2);
  await torchSteps(asSet, step, 0, 2);
  for (let r = 0; r < rounds; r++) {
    const mine: Record<string, number[]> = {};
    for (const [backend, model] of models) {
      // one untimed step first: the other side's run has just evicted this
      // one's weights from the caches
      await settle();
      mine[backend] = await timeStep(model, {
        ...step,
        repeats: per,
        warmup: 1,
      });
      all[backend].push(...mine[backend]);
    }
    await settle();
    const theirs = await torchSteps(torch, step, per, 1);
    torchAll.push(...theirs);
    await settle();
    envAll.push(...await torchSteps(asSet, step, per, 1));
    for (const b of models.keys()) {
      if (theirs.length) row.ratios[b].push(median(mine[b]) / median(theirs));
    }
  }
  for (const b of models.keys()) row.ms[b] = median(all[b]);
  row.torch = torchAll.length ? median(torchAll) : undefined;
  row.torchEnv = envAll.length ? median(envAll) : undefined;
  row.gflop = torch
    ? (await torch.request<{ gflop: number }>({ gflop: true, ...step })).gflop
    : undefined;
}

/** One model's rows, every backend's model loaded at once (see {@linkcode timeRow}). */
async function timeModel(
  name: string,
  layers: number[],
  batches: number[],
  torch: TorchServer | null,
  asSet: TorchServer | null,
): Promise<Row[]> {
  const folder = new URL(`../weights/${name}`, import.meta.url).pathname;
  const { wasm_threads } = parseManifest(
    JSON.parse(await Deno.readTextFile(`${folder}/manifest.json`)),
    `${folder}/manifest.json`,
  ).runtime;
  const models = new Map<string, Model>();
  const threadsOf: Record<string, number> = {};
  for (const backend of backends) {
    const t = threadsFor(wasm_threads, backend);
    models.set(backend, await loadModel(folder, { backend, threads: t }));
    threadsOf[backend] = t ?? 1;
  }
  const rows: Row[] = [];
  for (const layer of layers) {
    for (const batch of batches) {
      const row: Row = {
        model: name,
        layer,
        batch,
        ms: {},
        ratios: {},
        threads: { ...threadsOf },
      };
      await timeRow(row, models, torch, asSet);
      const mine = [...models.keys()].map((b) =>
        `${b} ${row.ms[b].toFixed(1)} ms`
      );
      console.error(
        `${name} L=${layer} B=${batch}: ${mine.join(", ")}, PyTorch ${
          row.torch?.toFixed(1) ?? "n/a"
        } ms`,
      );
      rows.push(row);
    }
  }
  for (const m of models.values()) await m.release();
  return rows;
}

/**
 * The GEMM peaks, best of `rounds` alternating rounds: PyTorch's 1024³ sgemm
 * (through the server) and each onnxruntime backend's own 1024³ MatMul graph
 * (written by bench_torch.py) at the bench's threads; null where unavailable.
 */
async function peaks(
  torch: TorchServer | null,
): Promise<{ torch: number | null; ort: Record<string, number> | null }> {
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    const made = await new Deno.Command(opts.python, {
      args: [
        new URL("./bench_torch.py", import.meta.url).pathname,
        "--write-matmul-graph",
        path,
      ],
    }).output().catch(() => null);
    const graph = made?.success ? await Deno.readFile(path) : null;
    const n = 1024;
    const a = new Float32Array(n * n).map((_, i) => (i % 89) / 89);
    const sessions = new Map<string, { be: Backend; s: Session }>();
    for (const name of graph ? backends : []) {
      const be = await openBackend(name, { threads });
      sessions.set(name, {
        be,
        s: await be.createSession(graph!, "unused", new Uint8Array(64)),
      });
    }
    let best: number | null = null;
    const ort: Record<string, number> = {};
    for (let r = 0; r < rounds; r++) {
      await settle();
      if (torch) {
        const g =
          (await torch.request<{ gflops: number }>({ sgemm: true })).gflops;
        best = Math.max(best ?? 0, g);
      }
      for (const [name, { be, s }] of sessions) {
        await settle();
        const x = be.tensor(a, [n, n]);
        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          await s.run({ a: x, b: x });
          if (i >= 1) times.push(performance.now() - t0);
        }
        ort[name] = Math.max(
          ort[name] ?? 0,
          2 * n ** 3 / (median(times) / 1000) / 1e9,
        );
      }
    }
    for (const { s } of sessions.values()) await s.release();
    return { torch: best, ort: sessions.size ? ort : null };
  } finally {
    await Deno.remove(path);
  }
}

const rows: Row[] = [];
let about = "PyTorch n/a";
let peak: number | undefined;
let own: Record<string, number> | null = null;
for (const name of opts.models.split(",")) {
  const layers = opts.layers ?? DEFAULT_LAYERS[name] ?? "1";
  const batches = opts.batch ?? DEFAULT_BATCHES[name] ?? "1";
  const torch = await TorchServer.open(name, true);
  const asSet = opts["torch-env-as-set"]
    ? await TorchServer.open(name, false)
    : null;
  if (torch) {
    const c = torch.info.blas_config;
    about = `PyTorch ${torch.info.torch} (${torch.info.blas}` +
      (c.kernel ? `, kernel ${c.kernel}: ${c.config}` : "") + ")";
  }
  if (rows.length === 0) {
    const p = await peaks(torch);
    peak = p.torch ?? undefined;
    own = p.ort;
  }
  rows.push(
    ...await timeModel(
      name,
      layers.split(",").map(Number),
      batches.split(",").map(Number),
      torch,
      asSet,
    ),
  );
  await torch?.close();
  await asSet?.close();
}

const fix = (v: number | undefined, d: number, unit = "") =>
  v === undefined ? "n/a" : v.toFixed(d) + unit;
/** `0.78x (0.71–0.84)`: the median of the rounds' ratios and their range. */
const ratioText = (rs: number[]) =>
  rs.length === 0
    ? "n/a"
    : `${median(rs).toFixed(2)}x (${Math.min(...rs).toFixed(2)}–${
      Math.max(...rs).toFixed(2)
    })`;
const head = [
  "model",
  "L",
  "B",
  ...backends.map((b) => `${b} ms`),
  "PyTorch ms",
  ...(opts["torch-env-as-set"] ? ["PyTorch ms (env as set)"] : []),
  ...backends.map((b) => `${b} / PyTorch`),
  "GFLOP",
  ...backends.map((b) => `${b} GFLOP/s (% of peak)`),
];
console.log(
  `\n224², ${threads} threads (ResNet on wasm: 1), median of ${repeats} steps in ${rounds} rounds ` +
    `alternating with PyTorch (ratio: median of the rounds' ratios, their range in brackets); ${about}; ` +
    `PyTorch with ${SLOW_BLAS_VARS.join(" and ")} unset`,
);
console.log(
  `sgemm peak (1024³, ${threads} threads, PyTorch, best of ${rounds}): ${
    fix(peak, 0)
  } GFLOP/s`,
);
console.log(
  `onnxruntime's own MatMul peak (1024³, ${threads} threads, best of ${rounds}, alternating with PyTorch's): ${
    own
      ? backends.map((b) => `${b} ${fix(own![b], 0)} GFLOP/s`).join(", ")
      : "n/a (needs python3 with onnx)"
  }\n`,
);
console.log(`| ${head.join(" | ")} |`);
console.log(`| ${head.map(() => "---").join(" | ")} |`);
for (const r of rows) {
  const t = r.torch;
  const rate = (b: string) => r.gflop && r.gflop / (r.ms[b] / 1000);
  const cells = [
    r.model,
    String(r.layer),
    String(r.batch),
    ...backends.map((b) =>
      r.ms[b].toFixed(1) +
      (r.threads[b] !== threads ? ` (${r.threads[b]} thread)` : "")
    ),
    fix(t, 1),
    ...(opts["torch-env-as-set"] ? [fix(r.torchEnv, 1)] : []),
    ...backends.map((b) => ratioText(r.ratios[b])),
    fix(r.gflop, 2),
    ...backends.map((b) =>
      `${fix(rate(b), 0)} (${
        fix(peak && rate(b) && 100 * rate(b)! / peak, 0, "%")
      })`
    ),
  ];
  console.log(`| ${cells.join(" | ")} |`);
}

// a batch's images per second over one image at a time, per backend and for PyTorch
for (const r of rows.filter((r) => r.batch > 1)) {
  const one = rows.find((o) =>
    o.model === r.model && o.layer === r.layer && o.batch === 1
  );
  if (!one) continue;
  const gain = (single?: number, whole?: number) =>
    single && whole ? (r.batch * single / whole).toFixed(2) + "x" : "n/a";
  console.log(
    `\n${r.model} L${r.layer}: a batch of ${r.batch} gives ${
      backends.map((b) => `${b} ${gain(one.ms[b], r.ms[b])}`).join(", ")
    }, PyTorch ${gain(one.torch, r.torch)} the images per second of batch 1`,
  );
}
