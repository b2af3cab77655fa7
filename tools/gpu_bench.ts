/**
 * The GPU benchmark's Deno side (`bash tools/gpu_bench.sh run` calls it): one
 * gradient step — forward to encoder L, an L2 feature loss, the VJP chain back
 * to the image, the gradient read back to the CPU — on the `webgpu` backend for
 * each batch size, then the same step in PyTorch (tools/bench_torch.py) on the
 * same machine in the same run: float32 (TF32 off) and bfloat16 as a labelled
 * extra, on CUDA where PyTorch sees a GPU, else on the CPU (the column says
 * which). Prints one markdown table (median ms per step, images/s, ratio to
 * PyTorch float32) and writes it to `--out` (default `$OUT/gpu_bench.md` when
 * `OUT` is set), with the raw numbers beside it as `.json`.
 *
 *     deno run -A tools/gpu_bench.ts [--model vit_b_32] [--layer 12] [--batches 1,8]
 *         [--repeats 9] [--warmup 2] [--backend webgpu] [--torch-device auto|cuda|cpu]
 *         [--dtypes float32,bfloat16] [--python python3] [--no-torch] [--out FILE]
 *
 * Exit codes: 2 for bad options, 1 when a step fails.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, loadModel } from "../mod.ts";
import { median, positiveInt as positive, timeStep } from "./_bench.ts";

interface Options {
  model: string;
  weights: string;
  layer: number;
  batches: number[];
  repeats: number;
  warmup: number;
  backend: BackendName;
  torchDevice: "auto" | "cuda" | "cpu";
  dtypes: string[];
  python: string;
  torch: boolean;
  out?: string;
}

const DTYPES = ["float32", "bfloat16"];
const DEVICES = ["auto", "cuda", "cpu"] as const;
const BACKENDS: readonly BackendName[] = ["webgpu", "wasm", "native"];

function oneOf<T extends string>(
  name: string,
  v: string,
  valid: readonly T[],
): T {
  if (!valid.includes(v as T)) {
    throw new TypeError(
      `Invalid --${name} "${v}": expected one of ${valid.join(", ")}`,
    );
  }
  return v as T;
}

function parseOptions(args: string[]): Options {
  const { values: o } = parseArgs({
    args,
    options: {
      model: { type: "string", default: "vit_b_32" },
      weights: { type: "string", default: "untrained" },
      layer: { type: "string", default: "12" },
      batches: { type: "string", default: "1,8" },
      repeats: { type: "string", default: "9" },
      warmup: { type: "string", default: "2" },
      backend: { type: "string", default: "webgpu" },
      "torch-device": { type: "string", default: "auto" },
      dtypes: { type: "string", default: DTYPES.join(",") },
      python: { type: "string", default: "python3" },
      "no-torch": { type: "boolean", default: false },
      out: { type: "string" },
    },
  });
  const outDir = Deno.env.get("OUT");
  return {
    model: o.model,
    weights: o.weights,
    layer: positive("layer", o.layer),
    batches: o.batches.split(",").map((b) => positive("batches", b)),
    repeats: positive("repeats", o.repeats),
    warmup: Number(o.warmup) === 0 ? 0 : positive("warmup", o.warmup),
    backend: oneOf("backend", o.backend, BACKENDS),
    torchDevice: oneOf("torch-device", o["torch-device"], DEVICES),
    dtypes: o.dtypes.split(",").map((d) => oneOf("dtypes", d, DTYPES)),
    python: o.python,
    torch: !o["no-torch"],
    out: o.out ?? (outDir ? `${outDir}/gpu_bench.md` : undefined),
  };
}

/** What the WebGPU adapter says it is ("" off WebGPU or where it says nothing). */
async function adapterName(backend: BackendName): Promise<string> {
  if (backend !== "webgpu") return "";
  type Info = Record<string, string | undefined>;
  const gpu = (navigator as {
    gpu?: { requestAdapter(): Promise<{ info?: Info } | null> };
  }).gpu;
  const info = (await gpu?.requestAdapter())?.info ?? {};
  return ["vendor", "architecture", "device", "description"]
    .map((k) => info[k]).filter((v) => v).join(" / ");
}

interface Timing {
  batch: number;
  ms: number[];
}

async function timeDeno(o: Options): Promise<Timing[]> {
  const folder = o.model.includes("/")
    ? o.model
    : new URL(`../weights/${o.model}`, import.meta.url).pathname;
  const model = await loadModel(folder, {
    weights: o.weights,
    backend: o.backend,
  });
  const out: Timing[] = [];
  for (const batch of o.batches) {
    const ms = await timeStep(model, {
      layer: o.layer,
      batch,
      repeats: o.repeats,
      warmup: o.warmup,
    });
    console.error(
      `${o.backend} L=${o.layer} B=${batch}: ${median(ms).toFixed(2)} ms`,
    );
    out.push({ batch, ms });
  }
  await model.release();
  return out;
}

interface TorchResult {
  torch: string;
  device: string;
  device_name: string;
  dtype: string;
  median_ms: Record<string, number>;
  step_gflop: Record<string, number>;
  sgemm_gflops: number;
}

/** bench_torch.py's timing of the same steps, or null (with a line on stderr) when it fails. */
async function timeTorch(
  o: Options,
  dtype: string,
): Promise<TorchResult | null> {
  const args = [
    new URL("./bench_torch.py", import.meta.url).pathname,
    "--model",
    o.model,
    "--layers",
    String(o.layer),
    "--batch",
    o.batches.join(","),
    "--repeats",
    String(o.repeats),
    "--warmup",
    String(o.warmup),
    "--device",
    o.torchDevice,
    "--dtype",
    dtype,
    "--threads",
    String(navigator.hardwareConcurrency),
  ];
  try {
    const r = await new Deno.Command(o.python, { args, stderr: "inherit" })
      .output();
    if (r.success) return JSON.parse(new TextDecoder().decode(r.stdout));
    console.error(`PyTorch ${dtype} failed (exit ${r.code})`);
  } catch (err) {
    console.error(
      `PyTorch ${dtype} skipped: ${err instanceof Error ? err.message : err}`,
    );
  }
  return null;
}

const keyOf = (layer: number, batch: number) =>
  batch === 1 ? String(layer) : `${layer}x${batch}`;

function table(
  o: Options,
  mine: Timing[],
  torch: TorchResult[],
  adapter: string,
): string {
  const fix = (v: number | undefined, d: number) =>
    v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(d);
  const label = (t: TorchResult) =>
    `PyTorch ${t.device === "cuda" ? "CUDA" : "CPU"} ${
      t.dtype === "float32" ? "fp32" : "bf16 (extra)"
    }`;
  // float32 first: the ratio column follows it
  const sorted = [...torch].sort((a, b) =>
    DTYPES.indexOf(a.dtype) - DTYPES.indexOf(b.dtype)
  );
  const fp32 = sorted.find((t) => t.dtype === "float32");
  const head = ["model", "L", "B", `${o.backend} ms`, `${o.backend} img/s`];
  for (const t of sorted) {
    head.push(`${label(t)} ms`, `${label(t)} img/s`);
    if (t === fp32) head.push(`${o.backend} / ${label(t)}`);
  }
  head.push("GFLOP", `${o.backend} GFLOP/s`);
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
  ];
  for (const { batch, ms } of mine) {
    const key = keyOf(o.layer, batch);
    const m = ms.length ? median(ms) : NaN;
    const gflop = sorted[0]?.step_gflop[key];
    const cells = [o.model, String(o.layer), String(batch), fix(m, 2)];
    cells.push(fix(1000 * batch / m, 1));
    for (const t of sorted) {
      const tm = t.median_ms[key];
      cells.push(fix(tm, 2), fix(1000 * batch / tm, 1));
      if (t === fp32) cells.push(tm ? `${(m / tm).toFixed(2)}x` : "n/a");
    }
    cells.push(fix(gflop, 2), fix(gflop && gflop / (m / 1000), 0));
    lines.push(`| ${cells.join(" | ")} |`);
  }
  const devices = [...new Set(sorted.map((t) => t.device_name))];
  const cuda = sorted.some((t) => t.device === "cuda");
  const about = [
    `${o.model} (${o.weights}) L${o.layer}, median of ${o.repeats} steps after ${o.warmup} warm-up`,
    `${o.backend}${adapter ? ` on ${adapter}` : ""}`,
    sorted.length
      ? `PyTorch ${sorted[0].torch} on ${devices.join(", ")}${
        cuda ? " (fp32 with TF32 off)" : ""
      }, GEMM peak ${
        sorted.map((t) => `${t.dtype} ${fix(t.sgemm_gflops, 0)}`).join(", ")
      } GFLOP/s (${cuda ? "8192" : "1024"}³)`
      : "PyTorch: not run",
  ];
  return `${about.join("; ")}\n\n${lines.join("\n")}\n`;
}

async function main(args: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(args);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  const adapter = await adapterName(o.backend);
  console.error(`adapter: ${adapter || "(none reported)"}`);
  // a failing backend still leaves PyTorch's numbers (one lent GPU run is precious)
  let failed = "";
  const mine = await timeDeno(o).catch((err) => {
    failed = err instanceof Error ? err.stack ?? err.message : String(err);
    console.error(`error: ${o.backend} failed: ${failed}`);
    return o.batches.map((batch) => ({ batch, ms: [] }));
  });
  const torch: TorchResult[] = [];
  for (const dtype of o.torch ? o.dtypes : []) {
    const r = await timeTorch(o, dtype);
    if (r) torch.push(r);
  }
  const md = table(o, mine, torch, adapter);
  console.log(`\n${md}`);
  // on failure the table goes to stdout only (the run's log keeps it), no result files
  if (o.out && !failed) {
    await Deno.writeTextFile(o.out, md);
    await Deno.writeTextFile(
      o.out.replace(/\.md$/, "") + ".json",
      JSON.stringify(
        { options: o, adapter, failed, deno: mine, torch },
        null,
        1,
      ),
    );
    console.error(`wrote ${o.out}`);
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.stack : err}`);
    Deno.exit(1);
  }
}
