/**
 * `deno task bench`: one gradient step (forward to block L, L2 feature loss,
 * VJP chain back to the image) on untrained models at 224², for each CPU
 * backend, and the same workload in PyTorch (tools/bench_torch.py) in the same
 * run. Prints a markdown table of median milliseconds and ratios to PyTorch.
 * The default models are ViT-B/32 (L = encoders), ResNet50 (L = bottlenecks:
 * 3 is the end of layer1, 16 of layer4) and an MLP-Mixer with patch 16 and
 * hidden dim 1024 (L = mixer blocks).
 *
 *     deno task bench [--models vit_b_32,resnet50,mixer_p16_d1024] [--layers 1,4,12]
 *                     [--repeats 9] [--backends native,wasm] [--threads 2]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, featureMatch, loadModel } from "../mod.ts";

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
    repeats: { type: "string", default: "9" },
    backends: { type: "string", default: "native,wasm" },
    threads: { type: "string", default: String(navigator.hardwareConcurrency) },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const repeats = Number(opts.repeats);
const threads = Number(opts.threads);
const backends = opts.backends.split(",") as BackendName[];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

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
  ms: Record<string, number>;
  threads: Record<string, number>;
  torch?: number;
}

async function timeVitrep(
  name: string,
  layers: number[],
): Promise<Row[]> {
  const folder = new URL(`../weights/${name}`, import.meta.url).pathname;
  const rows: Row[] = layers.map((layer) => ({
    model: name,
    layer,
    ms: {},
    threads: {},
  }));
  const { architecture } = JSON.parse(
    await Deno.readTextFile(`${folder}/manifest.json`),
  );
  for (const backend of backends) {
    const t = threadsFor(architecture, backend);
    const model = await loadModel(folder, { backend, threads: t });
    const size = model.manifest.image_size;
    const x = new Float32Array(3 * size * size).map((_, i) => (i % 97) / 97);
    for (const row of rows) {
      await model.prepare(row.layer, { gradient: true });
      const target = await model.forward(x, { layer: row.layer });
      const obj = featureMatch(row.layer, target.data.map((v) => v + 0.1));
      const times: number[] = [];
      for (let i = 0; i < repeats + 2; i++) {
        const t0 = performance.now();
        await model.inputGradient(x, obj);
        if (i >= 2) times.push(performance.now() - t0);
      }
      row.ms[backend] = median(times);
      row.threads[backend] = t ?? 1;
      console.error(
        `${name} ${backend} L=${row.layer}: ${row.ms[backend].toFixed(1)} ms`,
      );
    }
    await model.release();
  }
  return rows;
}

interface TorchResult {
  median_ms: Record<string, number>;
  torch: string;
  blas: string;
}

async function timeTorch(
  name: string,
  layers: string,
): Promise<TorchResult | null> {
  try {
    const out = await new Deno.Command(opts.python, {
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

const rows: Row[] = [];
let about = "PyTorch n/a";
for (const name of opts.models.split(",")) {
  const layers = opts.layers ?? DEFAULT_LAYERS[name] ?? "1";
  const mine = await timeVitrep(name, layers.split(",").map(Number));
  const torch = await timeTorch(name, layers);
  if (torch) about = `PyTorch ${torch.torch} (${torch.blas})`;
  for (const row of mine) row.torch = torch?.median_ms[String(row.layer)];
  rows.push(...mine);
}

const head = [
  "model",
  "L",
  ...backends.map((b) => `${b} ms`),
  "PyTorch ms",
  ...backends.map((b) => `${b} / PyTorch`),
];
console.log(
  `\n224², ${threads} threads (ResNet on wasm: 1), median of ${repeats}; ${about}\n`,
);
console.log(`| ${head.join(" | ")} |`);
console.log(`| ${head.map(() => "---").join(" | ")} |`);
for (const r of rows) {
  const t = r.torch;
  const cells = [
    r.model,
    String(r.layer),
    ...backends.map((b) =>
      r.ms[b].toFixed(1) +
      (r.threads[b] !== threads ? ` (${r.threads[b]} thread)` : "")
    ),
    t ? t.toFixed(1) : "n/a",
    ...backends.map((b) => (t ? (r.ms[b] / t).toFixed(2) + "x" : "n/a")),
  ];
  console.log(`| ${cells.join(" | ")} |`);
}
