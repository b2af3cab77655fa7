/**
 * The work of the commands that look at a model without optimizing an image,
 * through the one run skeleton ({@linkcode runCommand}): `forward` (one
 * layer's output for an image, under ablations and swaps → output.npy and
 * metrics.json) and `filters` (the patch-embedding filters of one or more
 * weight sets → filters.png). Each computes before it claims its output
 * folder, so a failure leaves no file; the caller prints.
 *
 * @module
 */
import { filterGrid, sideBySide } from "../figures/mod.ts";
import {
  encodeNpy,
  type ImageTensor,
  normalize as normalizeImage,
  type PerChannel,
  writeFiles,
  writePng,
} from "../io/mod.ts";
import {
  type Layer,
  loadModel,
  type Manifest,
  type Model,
} from "../model/mod.ts";
import { runCommand } from "./command.ts";
import { loadTarget } from "./images.ts";
import { LIMITS, type RunContext, type RunOptions, usage } from "./settings.ts";
import { modelAbout, type ModelSpec, openVariant } from "./variant.ts";
import { layerArg } from "./refine.ts";

/** A `forward` run as typed settings. */
export interface ForwardRun {
  /** The output folder (checked). */
  out: string;
  /** Where the model is (see modelSource). */
  source: string;
  /** The model variant to load. */
  model: ModelSpec;
  /** The input image (absolute path or URL). */
  imagePath: string;
  /** The layer, resolved against the model's manifest (usage errors). */
  layer(manifest: Manifest): Layer;
  /** Run encoder `layer` alone (input processing, then that block). */
  onlyLayer: boolean;
  /** Classes listed for the logits. */
  top: number;
  /** Normalize the image with the model's mean/std. */
  normalize: boolean;
  /** Replace another run's output in `out`. */
  overwrite: boolean;
  /** The options metrics.json records. */
  options: RunOptions;
}

/** One of the top classes of a logits output. */
export interface TopClass {
  /** 1 for the most probable. */
  rank: number;
  /** The class index. */
  index: number;
  /** The class name (`class N` without categories). */
  name: string;
  /** Its logit. */
  logit: number;
  /** Its softmax probability. */
  probability: number;
}

/** What `forward` computed, for the caller to print. */
export interface ForwardDone {
  /** The model's name. */
  name: string;
  /** The variant's label ("" for the plain model). */
  tag: string;
  /** The layer whose output was written. */
  layer: Layer;
  /** The output's dims. */
  dims: number[];
  /** The output's L2 norm. */
  l2Norm: number;
  /** The top classes (logits only). */
  classes: TopClass[] | null;
}

function softmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  const e = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * The top `top` classes of logits, most probable first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topClasses } from "./inspect.ts";
 * const t = topClasses(new Float32Array([0, 2, 1]), { categories: ["a", "b", "c"] }, 2);
 * assert.deepEqual(t.map((c) => c.name), ["b", "c"]);
 * ```
 */
export function topClasses(
  logits: Float32Array,
  m: Pick<Manifest, "categories">,
  top: number,
): TopClass[] {
  const p = softmax(logits);
  return [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, top).map((
    index,
    r,
  ) => ({
    rank: r + 1,
    index,
    name: m.categories?.[index] ?? `class ${index}`,
    logit: logits[index],
    probability: p[index],
  }));
}

/** The run's image as the model takes it. */
async function modelInput(
  run: { imagePath: string; normalize: boolean },
  m: Manifest,
): Promise<Float32Array> {
  const img = await loadTarget(run.imagePath, m.image_size);
  return run.normalize
    ? normalizeImage(
      img,
      m.input.mean as PerChannel,
      m.input.std as PerChannel,
    ).data
    : img.data;
}

/**
 * `forward`'s `--layer` (its text): a number, a layer name (once the model's
 * `manifest` is known) or logits; a block with `onlyLayer` (a usage error
 * naming the option otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forwardLayer } from "./inspect.ts";
 * assert.equal(forwardLayer("logits", false), "logits");
 * assert.equal(forwardLayer("2", true), 2);
 * assert.throws(() => forwardLayer("logits", true), /Invalid --layer "logits" with --only-layer/);
 * ```
 */
export function forwardLayer(
  text: string,
  onlyLayer: boolean,
  manifest?: Manifest,
): Layer {
  const t = text.trim();
  const layer = t === "logits" ? "logits" : layerArg(t, "layer", manifest);
  if (onlyLayer && (layer === "logits" || layer === 0)) {
    throw usage(
      new RangeError(
        `Invalid --layer "${t}" with --only-layer: expected an encoder block 1..${
          manifest?.num_layers ?? "N"
        }`,
      ),
    );
  }
  return layer;
}

/**
 * Runs `forward`: opens the model, computes the layer's output for the image
 * (before any file), then claims `run.out` and writes output.npy and
 * metrics.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runForward } from "./inspect.ts";
 * const out = `${await Deno.makeTempDir()}/fwd`;
 * const done = await runForward({
 *   out,
 *   source: "tests/fixtures/tiny_vit",
 *   model: {
 *     weights: "fixture", seed: 0, backend: "native", verify: true,
 *     removes: [], positionEmbedding: true, swaps: [],
 *   },
 *   imagePath: "assets/chelsea.png",
 *   layer: () => "logits",
 *   onlyLayer: false,
 *   top: 3,
 *   normalize: true,
 *   overwrite: false,
 *   options: {},
 * });
 * assert.equal(done.classes?.length, 3);
 * assert.ok(JSON.parse(Deno.readTextFileSync(`${out}/metrics.json`)).l2Norm === done.l2Norm);
 * ```
 */
export async function runForward(
  run: ForwardRun,
  ctx: RunContext = {},
): Promise<ForwardDone> {
  return await runCommand({
    out: run.out,
    open: () => openVariant(run.source, run.model),
    ready: async ({ model, variant }) => {
      const m = model.manifest;
      const layer = run.layer(m);
      const x = await modelInput(run, m);
      const blocks = run.onlyLayer ? [layer as number] : undefined;
      const y = await model.forward(x, { layer, blocks });
      let sq = 0;
      for (const v of y.data) sq += v * v;
      const l2Norm = Math.sqrt(sq);
      const classes = layer === "logits"
        ? topClasses(y.data, m, run.top)
        : null;
      // Inputs are valid: from here on, files.
      const metrics = {
        command: "forward",
        options: run.options,
        ...modelAbout(model, run.source, run.normalize, variant),
        layer,
        blocks: blocks ??
          Array.from(
            { length: layer === "logits" ? m.num_layers : layer },
            (_, i) => i + 1,
          ),
        dims: y.dims,
        l2Norm,
        top: classes,
        files: ["output.npy", "metrics.json"],
      };
      const claim = {
        command: "forward",
        options: run.options,
        overwrite: run.overwrite,
        continuing: false,
      };
      const work = async () => {
        await writeFiles(run.out, [
          { name: "output.npy", data: encodeNpy(y.data, y.dims) },
          {
            name: "metrics.json",
            data: JSON.stringify(metrics, null, 2) + "\n",
          },
        ]);
        const { name } = m;
        return { name, tag: variant.tag, layer, dims: y.dims, l2Norm, classes };
      };
      return { claim, work };
    },
  }, ctx);
}

/** A `filters` run as typed settings. */
export interface FiltersRun {
  /** The output folder (checked). */
  out: string;
  /** Where the model is (see modelSource). */
  source: string;
  /** The weight sets, the first that of --weights. */
  weights: readonly string[];
  /** Seed of untrained weights. */
  seed: number;
  /** Filters per row (default about √(2n)). */
  columns?: number;
  /** Pixels per weight (default 1 for patches ≥ 16 px, else 2). */
  scale?: number;
  /** Replace another run's output in `out`. */
  overwrite: boolean;
}

/** What `filters` drew, for the caller to print. */
export interface FiltersDone {
  /** The model's name. */
  name: string;
  /** The number of filters. */
  count: number;
  /** A filter's side in pixels. */
  patch: number;
  /** The weight sets as loaded. */
  weights: string[];
  /** The figure's width in pixels. */
  width: number;
  /** The figure's height in pixels. */
  height: number;
}

/** Checks `columns` against the filter count and the figure against {@linkcode LIMITS}.figurePixels. */
function checkFilterFigure(
  model: Model,
  columns: number | undefined,
  scale: number | undefined,
  sets: number,
): void {
  const m = model.manifest;
  const info = m.tensors[m.patch_filters];
  if (!info || info.shape.length !== 4) return; // filterGrid names the problem
  const [n, , p] = info.shape;
  if (columns !== undefined && columns > n) {
    throw usage(
      new RangeError(
        `Invalid --columns "${columns}": expected at most ${n}, the number of filters of ${m.name}`,
      ),
    );
  }
  const cols = columns ?? Math.ceil(Math.sqrt(2 * n));
  const cell = p * (scale ?? (p >= 16 ? 1 : 2));
  const w = cols * (cell + 1) + 1, h = Math.ceil(n / cols) * (cell + 1) + 1;
  if (w * h * sets > LIMITS.figurePixels) {
    throw usage(
      new RangeError(
        `Invalid --scale "${scale ?? "default"}" with --columns "${
          columns ?? "default"
        }": the figure would be ${w}×${h} px${
          sets > 1 ? ` per weight set (${sets})` : ""
        }: expected at most ${LIMITS.figurePixels} px in all (4096²); lower --scale`,
      ),
    );
  }
}

/** Loads one model per weight set, releasing those loaded when one fails. */
async function openSets(run: FiltersRun): Promise<Model[]> {
  const models: Model[] = [];
  try {
    for (const weights of run.weights) {
      models.push(await loadModel(run.source, { weights, seed: run.seed }));
    }
    return models;
  } catch (err) {
    for (const m of models) await m.release();
    throw err;
  }
}

/**
 * Runs `filters`: loads the model once per weight set, draws the filter
 * grids (side by side for several sets) before any file, then claims
 * `run.out` and writes filters.png.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFilters } from "./inspect.ts";
 * const out = `${await Deno.makeTempDir()}/filters`;
 * const done = await runFilters({
 *   out, source: "tests/fixtures/tiny_vit", weights: ["fixture"], seed: 0, overwrite: false,
 * });
 * assert.ok(done.count > 0 && Deno.statSync(`${out}/filters.png`).isFile);
 * ```
 */
export async function runFilters(
  run: FiltersRun,
  ctx: RunContext = {},
): Promise<FiltersDone> {
  return await runCommand({
    out: run.out,
    open: async () => {
      const models = await openSets(run);
      const release = async () => {
        for (const m of models) await m.release();
      };
      return { models, model: { release } };
    },
    ready: ({ models }) => {
      checkFilterFigure(models[0], run.columns, run.scale, models.length);
      const { columns, scale } = run;
      const grids = models.map((m) => filterGrid(m, { columns, scale }));
      const img: ImageTensor = grids.length === 1
        ? grids[0]
        : sideBySide(grids, models.map((m) => m.weights));
      // Inputs are valid: from here on, files.
      const claim = {
        command: "filters",
        options: {},
        overwrite: run.overwrite,
        continuing: false,
      };
      const m0 = models[0].manifest;
      const [count, , patch] = m0.tensors[m0.patch_filters].shape;
      const work = async () => {
        await writePng(`${run.out}/filters.png`, img);
        return {
          name: m0.name,
          count,
          patch,
          weights: models.map((m) => m.weights),
          width: img.width,
          height: img.height,
        };
      };
      return Promise.resolve({ claim, work });
    },
  }, ctx);
}
