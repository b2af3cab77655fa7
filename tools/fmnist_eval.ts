/**
 * Measurements on the Fashion-MNIST models (weights/fmnist_vit, weights/fmnist_resnet)
 * that the vitrep CLI does not make itself, each through vitrep's own forward:
 *
 * ```sh
 * # test accuracy on all 10,000 test images, against PyTorch's predictions
 * deno run -A tools/fmnist_eval.ts accuracy --out docs/fmnist_accuracy.json
 * # both models' softmax on generated images (a `generate --class 0,1,…` folder)
 * deno run -A tools/fmnist_eval.ts transfer --dir out/fmnist/gen_vit --out docs/fmnist_transfer_vit.json
 * # per-filter "has a pattern" scores of the patch embedding / first convolution
 * deno run -A tools/fmnist_eval.ts patterns --out docs/fmnist_patterns.json
 * # the tables of docs/fmnist.md from those JSON files
 * deno run -A tools/fmnist_eval.ts report --out docs/fmnist_tables.md
 * ```
 *
 * `accuracy` reads the data set's idx files (default /usr/share/datasets/fashion-mnist,
 * Debian's dataset-fashion-mnist); it is a tool, not part of the library or the tests.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadModel, type Model, Rng } from "../src/model/mod.ts";
import {
  decodeNpy,
  normalize,
  type PerChannel,
  readImage,
  writeJson,
} from "../src/io/mod.ts";

/**
 * The two models' folder names (under weights/ or --models DIR), by short name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODELS } from "./fmnist_eval.ts";
 * assert.equal(MODELS.vit, "fmnist_vit");
 * ```
 */
export const MODELS = {
  vit: "fmnist_vit",
  resnet: "fmnist_resnet",
} as const;

/**
 * Side of the models' input: Fashion-MNIST's 28² padded by 2 on every side.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SIZE } from "./fmnist_eval.ts";
 * assert.equal(SIZE, 28 + 2 * 2);
 * ```
 */
export const SIZE = 32;

/**
 * A 28×28 uint8 image as a vitrep input in [0, 1]: padded to 32² with zeros and
 * repeated to three channels (as tools/train_fmnist.py).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { padToInput } from "./fmnist_eval.ts";
 * const x = padToInput(new Uint8Array(784).fill(255));
 * assert.equal(x.length, 3 * 32 * 32);
 * assert.equal(x[0], 0);
 * assert.equal(x[2 * 32 + 2], 1);
 * ```
 */
export function padToInput(pixels: Uint8Array): Float32Array {
  if (pixels.length !== 28 * 28) {
    throw new RangeError(
      `Invalid image of ${pixels.length} pixels: expected 28x28 = 784`,
    );
  }
  const out = new Float32Array(3 * SIZE * SIZE);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        out[c * SIZE * SIZE + (y + 2) * SIZE + x + 2] = pixels[y * 28 + x] /
          255;
      }
    }
  }
  return out;
}

/**
 * The model's logits for an image in [0, 1] ([3,H,W]), normalized with the
 * manifest's mean/std first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "../src/model/mod.ts";
 * import { logitsOf } from "./fmnist_eval.ts";
 * const model = await loadModel("weights/fmnist_vit", { weights: "trained" });
 * const z = await logitsOf(model, new Float32Array(3 * 32 * 32));
 * assert.equal(z.length, 10);
 * await model.release();
 * ```
 */
export async function logitsOf(
  model: Model,
  image: Float32Array,
): Promise<Float32Array> {
  const { mean, std } = model.manifest.input;
  const size = model.manifest.image_size;
  const x = normalize(
    { data: image, channels: 3, height: size, width: size },
    mean as PerChannel,
    std as PerChannel,
  );
  return (await model.forward(x.data, { layer: "logits" })).data;
}

/**
 * Softmax of logits (in float64).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmax } from "./fmnist_eval.ts";
 * assert.deepEqual(softmax(new Float32Array([0, 0])), [0.5, 0.5]);
 * ```
 */
export function softmax(logits: Float32Array): number[] {
  const m = Math.max(...logits);
  const e = [...logits].map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Index of the largest value. */
function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/**
 * The "has a pattern" score of one filter [3, p, p]: the share of its spectral
 * energy (per-channel 2-D DFT power, summed over channels) at the lowest spatial
 * frequencies, both |frequency| ≤ 1 cycle per filter (DC included). Smooth
 * filters (blobs, edges, low-frequency wavelets) score near 1; white noise
 * scores about 9/p² on average.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lowFrequencyShare } from "./fmnist_eval.ts";
 * const flat = new Float32Array(3 * 4 * 4).fill(1);
 * assert.equal(lowFrequencyShare(flat, 4), 1);
 * const checker = Float32Array.from({ length: 48 }, (_, i) => ((i % 4) + (i >> 2)) % 2 ? 1 : -1);
 * assert.ok(lowFrequencyShare(checker, 4) < 1e-12);
 * ```
 */
export function lowFrequencyShare(filter: Float32Array, p: number): number {
  const channels = filter.length / (p * p);
  if (!Number.isInteger(channels) || channels < 1) {
    throw new RangeError(
      `Invalid filter of ${filter.length} values: expected channels x ${p} x ${p}`,
    );
  }
  const low = (k: number) => Math.min(k, p - k) <= 1;
  let lowE = 0, total = 0;
  for (let c = 0; c < channels; c++) {
    const w = filter.subarray(c * p * p, (c + 1) * p * p);
    for (let u = 0; u < p; u++) {
      for (let v = 0; v < p; v++) {
        let re = 0, im = 0;
        for (let y = 0; y < p; y++) {
          for (let x = 0; x < p; x++) {
            const a = -2 * Math.PI * (u * y + v * x) / p;
            re += w[y * p + x] * Math.cos(a);
            im += w[y * p + x] * Math.sin(a);
          }
        }
        const e = re * re + im * im;
        total += e;
        if (low(u) && low(v)) lowE += e;
      }
    }
  }
  return total > 0 ? lowE / total : 0;
}

/**
 * The threshold above which a filter counts as patterned: the `quantile` of
 * {@linkcode lowFrequencyShare} over `draws` i.i.d. normal filters of the same
 * shape (seeded), so that by construction a share `1 − quantile` of pure-noise
 * filters passes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { noiseThreshold } from "./fmnist_eval.ts";
 * const t = noiseThreshold(3, 4, 0.95, 2000, 0);
 * assert.ok(t > 9 / 16 && t < 1);
 * ```
 */
export function noiseThreshold(
  channels: number,
  p: number,
  quantile: number,
  draws: number,
  seed: number,
): number {
  const rng = new Rng(seed);
  const scores = new Float64Array(draws);
  const f = new Float32Array(channels * p * p);
  for (let i = 0; i < draws; i++) {
    rng.fill("normal", f);
    scores[i] = lowFrequencyShare(f, p);
  }
  scores.sort();
  return scores[Math.min(draws - 1, Math.floor(quantile * draws))];
}

/** Sums a [n, c, p, p] weight over its input channels: [n, 1, p, p]. */
function channelSum(w: Float32Array, n: number, p: number): Float32Array {
  const c = w.length / (n * p * p);
  const out = new Float32Array(n * p * p);
  for (let k = 0; k < n; k++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < p * p; i++) {
        out[k * p * p + i] += w[(k * c + ch) * p * p + i];
      }
    }
  }
  return out;
}

/**
 * Pattern scores ({@linkcode lowFrequencyShare}) of one model's first-layer
 * filters under one weight set, as they are (`rgb`) and summed over the input
 * channels (`gray`), with the {@linkcode noiseThreshold} each is held to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filterPatterns } from "./fmnist_eval.ts";
 * const r = await filterPatterns("weights/fmnist_resnet", "untrained");
 * assert.equal(r.n, 16);
 * ```
 */
export async function filterPatterns(
  folder: string,
  weights: string,
  quantile = 0.95,
): Promise<Record<string, unknown>> {
  const model = await loadModel(folder, { weights });
  try {
    const key = model.manifest.patch_filters ?? "conv_proj.weight";
    const [n, c, p] = model.manifest.tensors[key].shape;
    const w = model.tensor(key);
    const out: Record<string, unknown> = { model: folder, weights, key, n, p };
    for (
      const [view, data, ch] of [
        ["rgb", w, c],
        ["gray", channelSum(w, n, p), 1],
      ] as const
    ) {
      const threshold = noiseThreshold(ch, p, quantile, 20000, 0);
      const scores = Array.from(
        { length: n },
        (_, k) =>
          lowFrequencyShare(
            data.subarray(k * ch * p * p, (k + 1) * ch * p * p),
            p,
          ),
      );
      const patterned = scores.filter((s) => s > threshold).length;
      out[view] = { threshold, patterned, share: patterned / n, scores };
    }
    return out;
  } finally {
    await model.release();
  }
}

async function readIdx(
  path: string,
): Promise<{ dims: number[]; data: Uint8Array }> {
  const file = await Deno.open(path);
  const raw = new Uint8Array(
    await new Response(
      file.readable.pipeThrough(new DecompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const ndim = raw[3];
  const view = new DataView(raw.buffer);
  const dims = Array.from(
    { length: ndim },
    (_, i) => view.getUint32(4 + 4 * i),
  );
  return { dims, data: raw.subarray(4 + 4 * ndim) };
}

async function accuracyCommand(
  root: string,
  data: string,
  out: string | undefined,
) {
  const images = await readIdx(`${data}/t10k-images-idx3-ubyte.gz`);
  const labels = await readIdx(`${data}/t10k-labels-idx1-ubyte.gz`);
  const n = images.dims[0];
  const result: Record<string, unknown> = { images: n };
  for (const [kind, folder] of Object.entries(MODELS)) {
    const model = await loadModel(`${root}/${folder}`, { weights: "trained" });
    let torchPred: Float32Array | null = null;
    try {
      torchPred = decodeNpy(
        await Deno.readFile(`out/fmnist/pytorch_pred_${kind}.npy`),
      ).data;
    } catch {
      console.error(
        `no out/fmnist/pytorch_pred_${kind}.npy: run tools/fmnist_fixtures.py`,
      );
    }
    let correct = 0, disagree = 0;
    try {
      for (let i = 0; i < n; i++) {
        const x = padToInput(images.data.subarray(i * 784, (i + 1) * 784));
        const pred = argmax(await logitsOf(model, x));
        if (pred === labels.data[i]) correct++;
        if (torchPred && pred !== torchPred[i]) disagree++;
      }
    } finally {
      await model.release();
    }
    result[kind] = {
      accuracy: correct / n,
      disagreements_with_pytorch: torchPred ? disagree : null,
    };
    console.log(
      `${kind}: vitrep accuracy ${
        (100 * correct / n).toFixed(2)
      }% on ${n} test images; ` +
        `${torchPred ? disagree : "?"} predictions differ from PyTorch's`,
    );
  }
  if (out) await writeJson(out, result);
}

async function transferCommand(
  root: string,
  dir: string,
  out: string | undefined,
) {
  const models = Object.fromEntries(
    await Promise.all(
      Object.entries(MODELS).map(async ([k, f]) =>
        [k, await loadModel(`${root}/${f}`, { weights: "trained" })] as const
      ),
    ),
  );
  const rows: Record<string, unknown>[] = [];
  try {
    for (
      const entry of [...Deno.readDirSync(dir)].sort((a, b) =>
        a.name.localeCompare(b.name)
      )
    ) {
      const m = /^class_(\d+)$/.exec(entry.name);
      if (!m) continue;
      const target = Number(m[1]);
      // the generated image itself (values may leave [0, 1]) and as saved in generated.png
      const exact = decodeNpy(
        await Deno.readFile(`${dir}/${entry.name}/generated.npy`),
      ).data;
      const png = (await readImage(`${dir}/${entry.name}/generated.png`)).data;
      const row: Record<string, unknown> = { class: target };
      for (const [k, model] of Object.entries(models)) {
        for (const [key, img] of [[k, exact], [`${k}_png`, png]] as const) {
          const p = softmax(await logitsOf(model, img));
          row[key] = {
            target: p[target],
            predicted: argmax(p),
            correct: argmax(p) === target,
          };
        }
      }
      rows.push(row);
    }
  } finally {
    for (const model of Object.values(models)) await model.release();
  }
  const summary = Object.fromEntries(
    Object.keys(MODELS).flatMap((k) => [k, `${k}_png`]).map((k) => [
      k,
      rows.filter((r) => (r[k] as { correct: boolean }).correct).length /
      rows.length,
    ]),
  );
  console.log(`${dir}: accuracy on ${rows.length} generated images`, summary);
  if (out) await writeJson(out, { dir, rows, accuracy: summary });
}

async function patternsCommand(root: string, out: string | undefined) {
  const result = [];
  for (const folder of Object.values(MODELS)) {
    for (const weights of ["untrained", "trained"]) {
      const r = await filterPatterns(`${root}/${folder}`, weights);
      for (const view of ["rgb", "gray"]) {
        const v = r[view] as {
          threshold: number;
          patterned: number;
          share: number;
        };
        console.log(
          `${folder} ${weights} ${view}: ${v.patterned}/${r.n} filters above ${
            v.threshold.toFixed(3)
          } (${(100 * v.share).toFixed(1)}%)`,
        );
      }
      result.push(r);
    }
  }
  if (out) await writeJson(out, result);
}

interface Judgement {
  target: number;
  predicted: number;
  correct: boolean;
}
type TransferRow = { class: number } & Record<string, Judgement>;

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** The generation table: per class, each generating model's softmax and the other's accuracy. */
async function generationTable(seeds: number[]): Promise<string[]> {
  const runs: Record<string, TransferRow[][]> = {};
  for (const m of Object.keys(MODELS)) {
    runs[m] = [];
    for (const s of seeds) {
      const t = await readJson(`docs/fmnist_transfer_${m}_s${s}.json`) as {
        rows: TransferRow[];
      };
      runs[m].push(t.rows);
    }
  }
  const cats = (await readJson(`weights/${MODELS.vit}/manifest.json`) as {
    categories: string[];
  }).categories;
  const lines = [
    "| class | ViT's images: ViT softmax for the class, mean (min) | ViT accuracy | ResNet accuracy | ResNet's images: ResNet softmax, mean (min) | ResNet accuracy | ViT accuracy |",
    "| ----- | --- | --- | --- | --- | --- | --- |",
  ];
  const pick = (gen: string, c: number | null) =>
    runs[gen].flatMap((r) => r.filter((x) => c === null || x.class === c));
  const softmaxCell = (gen: string, c: number | null, png: string) => {
    const p = pick(gen, c).map((r) => r[gen + png].target);
    const mean = p.reduce((a, b) => a + b, 0) / p.length;
    return `${mean.toFixed(3)} (${Math.min(...p).toFixed(3)})`;
  };
  const accCell = (
    gen: string,
    judge: string,
    c: number | null,
    png: string,
  ) => {
    const rows = pick(gen, c);
    return `${
      rows.filter((r) => r[judge + png].correct).length
    }/${rows.length}`;
  };
  const row = (c: number | null, png: string) => [
    c === null
      ? (png ? "all, as saved in PNG (clipped to [0, 1])" : "all")
      : `${c}: ${cats[c]}`,
    softmaxCell("vit", c, png),
    accCell("vit", "vit", c, png),
    accCell("vit", "resnet", c, png),
    softmaxCell("resnet", c, png),
    accCell("resnet", "resnet", c, png),
    accCell("resnet", "vit", c, png),
  ];
  for (const c of [...cats.keys(), null]) {
    lines.push(`| ${row(c, "").join(" | ")} |`);
  }
  lines.push(`| ${row(null, "_png").join(" | ")} |`);
  return lines;
}

async function reportCommand(out: string) {
  const acc = await readJson("docs/fmnist_accuracy.json") as Record<
    string,
    { accuracy: number; disagreements_with_pytorch: number }
  >;
  const torch = (await readJson("tests/fixtures/fmnist/accuracy.json") as {
    pytorch: Record<string, { test: number }>;
  }).pytorch;
  const lines = [
    "<!-- made by `deno run -A tools/fmnist_eval.ts report` from docs/fmnist_*.json -->",
    "",
    "| model | PyTorch test accuracy | vitrep test accuracy | predictions that differ |",
    "| ----- | --------------------- | -------------------- | ----------------------- |",
  ];
  for (const m of Object.keys(MODELS)) {
    lines.push(
      `| ${m} | ${(100 * torch[m].test).toFixed(2)}% | ${
        (100 * acc[m].accuracy).toFixed(2)
      }% | ${acc[m].disagreements_with_pytorch} of 10,000 |`,
    );
  }
  lines.push("", ...await generationTable([0, 1, 2]), "");
  const patterns = await readJson("docs/fmnist_patterns.json") as Record<
    string,
    unknown
  >[];
  lines.push(
    "| model | weights | filters seen as | noise threshold (95th percentile) | filters above it |",
    "| ----- | ------- | --------------- | --------------------------------- | ---------------- |",
  );
  for (const r of patterns) {
    for (const view of ["rgb", "gray"]) {
      const v = r[view] as {
        threshold: number;
        patterned: number;
        share: number;
      };
      lines.push(
        `| ${String(r.model).split("/").pop()} | ${r.weights} | ${
          view === "rgb" ? "3 channels" : "channel sum"
        } | ${v.threshold.toFixed(3)} | ${v.patterned}/${r.n} (${
          (100 * v.share).toFixed(0)
        }%) |`,
      );
    }
  }
  await Deno.writeTextFile(out, lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      data: { type: "string", default: "/usr/share/datasets/fashion-mnist" },
      dir: { type: "string" },
      models: { type: "string", default: "weights" },
      out: { type: "string" },
    },
  });
  const command = positionals[0];
  const root = values.models!;
  if (command === "accuracy") {
    await accuracyCommand(root, values.data!, values.out);
  } else if (command === "transfer" && values.dir) {
    await transferCommand(root, values.dir, values.out);
  } else if (command === "patterns") await patternsCommand(root, values.out);
  else if (command === "report") {
    await reportCommand(values.out ?? "docs/fmnist_tables.md");
  } else {
    console.error(
      `Invalid command "${
        command ?? ""
      }": expected accuracy [--data DIR], transfer --dir DIR, patterns, or report; each takes --out FILE.json and --models DIR (default weights)`,
    );
    Deno.exit(2);
  }
}
