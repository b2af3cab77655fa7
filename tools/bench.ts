/**
 * `deno task bench`: one gradient step (forward to encoder L, L2 feature loss,
 * VJP chain back to the image) on untrained ViT-B/32 at 224², for each CPU
 * backend, and the same workload in PyTorch (tools/bench_torch.py) in the same
 * run. Prints a markdown table of median milliseconds and ratios to PyTorch.
 *
 *     deno task bench [--layers 1,4,12] [--repeats 9] [--backends native,wasm] [--threads 2]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, featureMatch, loadModel } from "../mod.ts";

const { values: opts } = parseArgs({
  options: {
    layers: { type: "string", default: "1,4,12" },
    repeats: { type: "string", default: "9" },
    backends: { type: "string", default: "native,wasm" },
    threads: { type: "string", default: String(navigator.hardwareConcurrency) },
    model: { type: "string", default: "vit_b_32" },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const layers = opts.layers.split(",").map(Number);
const repeats = Number(opts.repeats);
const threads = Number(opts.threads);
const folder = new URL(`../weights/${opts.model}`, import.meta.url).pathname;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const results: Record<string, Record<number, number>> = {};
for (const backend of opts.backends.split(",") as BackendName[]) {
  const model = await loadModel(folder, { backend, threads });
  const size = model.manifest.image_size;
  const x = new Float32Array(3 * size * size).map((_, i) => (i % 97) / 97);
  results[backend] = {};
  for (const L of layers) {
    await model.prepare(L, { gradient: true });
    const target = await model.forward(x, { layer: L });
    const obj = featureMatch(L, target.data.map((v) => v + 0.1));
    const times: number[] = [];
    for (let i = 0; i < repeats + 2; i++) {
      const t = performance.now();
      await model.inputGradient(x, obj);
      if (i >= 2) times.push(performance.now() - t);
    }
    results[backend][L] = median(times);
    console.error(`${backend} L=${L}: ${results[backend][L].toFixed(1)} ms`);
  }
  await model.release();
}

let torch:
  | { median_ms: Record<string, number>; torch: string; blas: string }
  | null = null;
try {
  const out = await new Deno.Command(opts.python, {
    args: [
      new URL("./bench_torch.py", import.meta.url).pathname,
      "--model",
      opts.model,
      "--layers",
      opts.layers,
      "--repeats",
      opts.repeats,
      "--threads",
      String(threads),
    ],
    stderr: "inherit",
  }).output();
  if (out.success) torch = JSON.parse(new TextDecoder().decode(out.stdout));
} catch (err) {
  console.error(
    `PyTorch baseline skipped: ${err instanceof Error ? err.message : err}`,
  );
}

const backends = Object.keys(results);
const head = [
  "L",
  ...backends.map((b) => `${b} ms`),
  "PyTorch ms",
  ...backends.map((b) => `${b} / PyTorch`),
];
console.log(
  `\n${opts.model}, 224², ${threads} threads, median of ${repeats}; PyTorch ${
    torch?.torch ?? "n/a"
  } (${torch?.blas ?? "-"})\n`,
);
console.log(`| ${head.join(" | ")} |`);
console.log(`| ${head.map(() => "---").join(" | ")} |`);
for (const L of layers) {
  const t = torch?.median_ms[String(L)];
  const row = [
    String(L),
    ...backends.map((b) => results[b][L].toFixed(1)),
    t ? t.toFixed(1) : "n/a",
    ...backends.map((b) => (t ? (results[b][L] / t).toFixed(2) + "x" : "n/a")),
  ];
  console.log(`| ${row.join(" | ")} |`);
}
