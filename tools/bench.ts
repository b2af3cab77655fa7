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
 *     deno task bench [--models vit_b_32,resnet50,mixer_p16_d1024] [--layers 1,4,12]
 *                     [--repeats 9] [--backends native,wasm] [--threads 2]
 *                     [--batch 1,8] [--torch-env-as-set]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, loadModel, openBackend } from "../mod.ts";
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
    backends: { type: "string", default: "native,wasm" },
    threads: { type: "string", default: String(navigator.hardwareConcurrency) },
    python: { type: "string", default: "/usr/bin/python3" },
    "torch-env-as-set": { type: "boolean", default: false },
  },
});
const repeats = Number(opts.repeats);
const threads = Number(opts.threads);
const backends = opts.backends.split(",") as BackendName[];

/**
 * onnxruntime-web threads can hang in full-size ResNet graphs (src/model.ts),
 * so a ResNet on wasm runs with the one thread loadModel gives it by default.
 */
function threadsFor(arch: string, backend: BackendName): number | undefined {
  return arch === "resnet" && backend === "wasm" ? undefined : threads;
}

interface Row {
  model: string;
  layer: number;
  batch: number;
  ms: Record<string, number>;
  threads: Record<string, number>;
  torch?: number;
  torchEnv?: number;
  gflop?: number;
}

/** A row's key in bench_torch.py's results: `L`, or `LxB` for a batch. */
const keyOf = (r: { layer: number; batch: number }) =>
  r.batch === 1 ? String(r.layer) : `${r.layer}x${r.batch}`;

async function timeVitrep(
  name: string,
  layers: number[],
  batches: number[],
): Promise<Row[]> {
  const folder = new URL(`../weights/${name}`, import.meta.url).pathname;
  const rows: Row[] = layers.flatMap((layer) =>
    batches.map((batch) => ({
      model: name,
      layer,
      batch,
      ms: {},
      threads: {},
    }))
  );
  const { architecture } = JSON.parse(
    await Deno.readTextFile(`${folder}/manifest.json`),
  );
  for (const backend of backends) {
    const t = threadsFor(architecture, backend);
    const model = await loadModel(folder, { backend, threads: t });
    for (const row of rows) {
      const times = await timeStep(model, {
        layer: row.layer,
        batch: row.batch,
        repeats,
      });
      row.ms[backend] = median(times);
      row.threads[backend] = t ?? 1;
      console.error(
        `${name} ${backend} L=${row.layer} B=${row.batch}: ${
          row.ms[backend].toFixed(1)
        } ms`,
      );
    }
    await model.release();
  }
  return rows;
}

interface TorchResult {
  median_ms: Record<string, number>;
  step_gflop: Record<string, number>;
  sgemm_gflops: number;
  torch: string;
  blas: string;
  blas_config: { config?: string; kernel?: string };
}

/** The variables that make OpenBLAS fall back to an older kernel on these machines. */
const SLOW_BLAS_VARS = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

/** PyTorch's timing of the same steps; `fair` unsets {@linkcode SLOW_BLAS_VARS} for its command only. */
async function timeTorch(
  name: string,
  layers: string,
  batches: string,
  fair: boolean,
): Promise<TorchResult | null> {
  const env = Deno.env.toObject();
  if (fair) { for (const v of SLOW_BLAS_VARS) delete env[v]; }
  try {
    const out = await new Deno.Command(opts.python, {
      clearEnv: true,
      env,
      args: [
        new URL("./bench_torch.py", import.meta.url).pathname,
        "--model",
        name,
        "--layers",
        layers,
        "--repeats",
        opts.repeats,
        "--threads",
        String(threads),
        "--batch",
        batches,
      ],
      stderr: "inherit",
    }).output();
    if (out.success) return JSON.parse(new TextDecoder().decode(out.stdout));
    console.error(`PyTorch baseline for ${name} failed`);
  } catch (err) {
    console.error(
      `PyTorch baseline skipped: ${err instanceof Error ? err.message : err}`,
    );
  }
  return null;
}

/**
 * Each backend's own GEMM peak: median GFLOP/s of one 1024³ float32 MatMul
 * graph (written by bench_torch.py) at the bench's threads; null without
 * Python and onnx.
 */
async function ortPeaks(): Promise<Record<string, number> | null> {
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    const made = await new Deno.Command(opts.python, {
      args: [
        new URL("./bench_torch.py", import.meta.url).pathname,
        "--write-matmul-graph",
        path,
      ],
    }).output().catch(() => null);
    if (!made?.success) return null;
    const graph = await Deno.readFile(path);
    const n = 1024;
    const peaks: Record<string, number> = {};
    for (const name of backends) {
      const be = await openBackend(name, { threads });
      const s = await be.createSession(graph, "unused", new Uint8Array(64));
      const a = be.tensor(
        new Float32Array(n * n).map((_, i) => (i % 89) / 89),
        [n, n],
      );
      const times: number[] = [];
      for (let i = 0; i < repeats + 2; i++) {
        const t0 = performance.now();
        await s.run({ a, b: a });
        if (i >= 2) times.push(performance.now() - t0);
      }
      peaks[name] = 2 * n ** 3 / (median(times) / 1000) / 1e9;
      await s.release();
    }
    return peaks;
  } finally {
    await Deno.remove(path);
  }
}

const rows: Row[] = [];
let about = "PyTorch n/a";
let peak: number | undefined;
for (const name of opts.models.split(",")) {
  const layers = opts.layers ?? DEFAULT_LAYERS[name] ?? "1";
  const batches = opts.batch ?? DEFAULT_BATCHES[name] ?? "1";
  const mine = await timeVitrep(
    name,
    layers.split(",").map(Number),
    batches.split(",").map(Number),
  );
  const torch = await timeTorch(name, layers, batches, true);
  const asSet = opts["torch-env-as-set"]
    ? await timeTorch(name, layers, batches, false)
    : null;
  if (torch) {
    const c = torch.blas_config;
    about = `PyTorch ${torch.torch} (${torch.blas}` +
      (c.kernel ? `, kernel ${c.kernel}: ${c.config}` : "") + ")";
    peak = Math.max(peak ?? 0, torch.sgemm_gflops);
  }
  for (const row of mine) {
    row.torch = torch?.median_ms[keyOf(row)];
    row.torchEnv = asSet?.median_ms[keyOf(row)];
    row.gflop = torch?.step_gflop[keyOf(row)];
  }
  rows.push(...mine);
}

const fix = (v: number | undefined, d: number, unit = "") =>
  v === undefined ? "n/a" : v.toFixed(d) + unit;
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
  `\n224², ${threads} threads (ResNet on wasm: 1), median of ${repeats}; ${about}; ` +
    `PyTorch with ${SLOW_BLAS_VARS.join(" and ")} unset`,
);
console.log(
  `sgemm peak (1024³, ${threads} threads, PyTorch): ${fix(peak, 0)} GFLOP/s`,
);
const own = await ortPeaks();
console.log(
  `onnxruntime's own MatMul peak (1024³, ${threads} threads): ${
    own
      ? backends.map((b) => `${b} ${fix(own[b], 0)} GFLOP/s`).join(", ")
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
    ...backends.map((b) => (t ? (r.ms[b] / t).toFixed(2) + "x" : "n/a")),
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
