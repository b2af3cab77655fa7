/**
 * Internal to the command line (src/cli.ts): commands that look at a model
 * without optimizing an image — `forward` (one layer's output for an image,
 * under ablations and swaps) and `filters` (the patch-embedding filters of one
 * or more weight sets).
 *
 * @module
 */
import { filterGrid } from "../figures/mod.ts";
import {
  encodeNpy,
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
import { sideBySide } from "../figures/mod.ts";
import {
  absoluteWeights,
  backendOpt,
  type Command,
  type Context,
  DEFAULT_IMAGE_TEXT,
  defaultImage,
  defaults,
  HELP_OPT,
  intOpt,
  LIMITS,
  list,
  MODEL_OPTS,
  modelKey,
  modelSource,
  type Raw,
  savedOptions,
  type Spec,
  str,
  threadsOpt,
  usage,
  VARIANT_OPTS,
} from "./options.ts";
import { checkVariantOpts, layerArg, openModel, weightsText } from "./model.ts";
import { modelAbout } from "../run/variant.ts";
import { loadTarget } from "../run/images.ts";
import { checkOutPath, claimOut } from "../run/outdir.ts";

/** `--overwrite` of forward and filters. */
const OVERWRITE_OPT: Spec = {
  overwrite: {
    type: "boolean",
    default: false,
    help:
      "replace another run's output in --out (only the files it wrote; without it, a folder holding another run is refused)",
  },
};

// ---------------------------------------------------------------------------
// forward

/** Options of `forward`. */
export const FORWARD_SPEC: Spec = {
  ...MODEL_OPTS,
  seed: { ...MODEL_OPTS.seed, help: "seed of untrained weights" },
  image: {
    type: "string",
    default: DEFAULT_IMAGE_TEXT,
    arg: "PATH",
    help:
      "input image (PNG or JPEG), resized and centre-cropped to the model's size",
    saved: true,
  },
  layer: {
    type: "string",
    default: "logits",
    arg: "L|logits",
    help:
      "layer whose output to write: 0 = input processing, 1..N = encoder block (a ResNet: bottleneck), a layer name (stem, layer2.3, a ResNet stage layer1…layer4), logits = the head",
    saved: true,
  },
  "only-layer": {
    type: "boolean",
    default: false,
    help:
      "run encoder L alone: input processing, then encoder L (skipping 1..L−1)",
    saved: true,
  },
  top: {
    type: "string",
    default: "5",
    arg: "K",
    help: "classes listed for the logits, most probable first",
  },
  ...VARIANT_OPTS,
  out: {
    type: "string",
    default: "out/forward",
    arg: "DIR",
    help: "output folder: output.npy (the layer's output) and metrics.json",
  },
  ...OVERWRITE_OPT,
  ...HELP_OPT,
};

/** --layer: a number, a layer name (once the model is known) or logits; a block with --only-layer. */
function layerOpt(raw: Raw, manifest?: Manifest): Layer {
  const text = str(raw, "layer").trim();
  const layer = text === "logits"
    ? "logits"
    : layerArg(text, "layer", manifest);
  if (raw["only-layer"] === true && (layer === "logits" || layer === 0)) {
    throw usage(
      new RangeError(
        `Invalid --layer "${text}" with --only-layer: expected an encoder block 1..${
          manifest?.num_layers ?? "N"
        }`,
      ),
    );
  }
  return layer;
}

function softmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  const e = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The top classes of logits, most probable first. */
function topClasses(logits: Float32Array, m: Manifest, top: number) {
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

/** Prints forward's summary line and the table of top classes. */
function printForward(
  head: string,
  classes: ReturnType<typeof topClasses> | null,
  out: string,
): void {
  console.log(head);
  if (classes) {
    console.log("\n| rank | class | name | logit | probability |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const c of classes) {
      console.log(
        `| ${c.rank} | ${c.index} | ${c.name} | ${c.logit.toFixed(4)} | ${
          c.probability.toFixed(4)
        } |`,
      );
    }
  }
  console.log(`\nwrote ${out}/ (output.npy, metrics.json)`);
}

async function forwardCommand(given: Raw, _ctx: Context): Promise<number> {
  const raw: Raw = { ...defaults(FORWARD_SPEC), ...absoluteWeights(given) };
  layerOpt(raw);
  const onlyLayer = raw["only-layer"] === true;
  const top = intOpt(raw, "top", 1);
  intOpt(raw, "seed", 0);
  checkVariantOpts(raw);
  backendOpt(raw);
  threadsOpt(raw);
  const out = checkOutPath(str(raw, "out"));
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const { model, variant } = await openModel(raw, source);
  try {
    const m = model.manifest;
    const layer = layerOpt(raw, m);
    const normalize = raw.normalize !== false;
    const img = await loadTarget(imagePath, m.image_size);
    const x = normalize
      ? normalizeImage(
        img,
        m.input.mean as PerChannel,
        m.input.std as PerChannel,
      ).data
      : img.data;
    const blocks = onlyLayer ? [layer as number] : undefined;
    const y = await model.forward(x, { layer, blocks });
    let sq = 0;
    for (const v of y.data) sq += v * v;
    const l2Norm = Math.sqrt(sq);
    const classes = layer === "logits" ? topClasses(y.data, m, top) : null;
    // Inputs are valid: from here on, files.
    const options = {
      ...savedOptions(FORWARD_SPEC, raw),
      image: imagePath,
      model: modelKey(str(raw, "model")),
    };
    const metrics = {
      command: "forward",
      options,
      ...modelAbout(model, source, normalize, variant),
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
    const folder = await claimOut(out, {
      command: "forward",
      options,
      overwrite: raw.overwrite === true,
      continuing: false,
    });
    try {
      await writeFiles(out, [
        { name: "output.npy", data: encodeNpy(y.data, y.dims) },
        { name: "metrics.json", data: JSON.stringify(metrics, null, 2) + "\n" },
      ]);
    } finally {
      await folder.release();
    }
    const what = layer === "logits"
      ? "logits"
      : onlyLayer
      ? `encoder ${layer} alone`
      : `layer ${layer}`;
    printForward(
      `${m.name}, ${weightsText(raw)}${
        variant.tag ? ` (${variant.tag})` : ""
      }: output of ${what}: dims [${y.dims.join(", ")}], L2 norm ${
        l2Norm.toPrecision(6)
      }`,
      classes,
      out,
    );
    return 0;
  } finally {
    await model.release();
  }
}

/** `forward`: one layer's output for an image. */
export const FORWARD_COMMAND: Command = {
  about:
    "one layer's output for an image (with ablations and swaps) → output.npy; logits: top classes",
  synopsis: "--image IMG --layer L|logits [options]",
  spec: FORWARD_SPEC,
  run: forwardCommand,
};

// ---------------------------------------------------------------------------
// filters

/** Options of `filters`. */
export const FILTERS_SPEC: Spec = {
  model: MODEL_OPTS.model,
  weights: MODEL_OPTS.weights,
  seed: {
    ...MODEL_OPTS.seed,
    help: "seed of untrained weights (of --weights and --compare)",
  },
  compare: {
    type: "string",
    multiple: true,
    arg: "W2",
    defaultText: "none",
    help:
      "another weight set (as for --weights) whose filters go beside those of --weights, each grid labelled with its weights; repeatable",
  },
  columns: {
    type: "string",
    arg: "N",
    defaultText: "about √(2n) for n filters",
    help: "filters per row",
  },
  scale: {
    type: "string",
    arg: "K",
    defaultText: "1 for patches ≥ 16 px, else 2",
    help: "pixels per weight",
  },
  out: {
    type: "string",
    default: "out/filters",
    arg: "DIR",
    help: "output folder: filters.png",
  },
  ...OVERWRITE_OPT,
  ...HELP_OPT,
};

/** Checks --columns against the filter count and the figure against {@linkcode LIMITS}.figurePixels. */
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

async function filtersCommand(given: Raw, _ctx: Context): Promise<number> {
  const raw: Raw = { ...defaults(FILTERS_SPEC), ...absoluteWeights(given) };
  const seed = intOpt(raw, "seed", 0);
  const columns = raw.columns === undefined
    ? undefined
    : intOpt(raw, "columns", 1);
  const scale = raw.scale === undefined
    ? undefined
    : intOpt(raw, "scale", 1, LIMITS.scale);
  const sets = [str(raw, "weights"), ...list(raw, "compare")];
  const empty = sets.findIndex((w) => w.trim() === "");
  if (empty >= 0) {
    throw usage(
      new TypeError(
        `Invalid --${
          empty === 0 ? "weights" : "compare"
        } "": expected untrained, untrained:SEED, a weight set of the model or a .safetensors file`,
      ),
    );
  }
  const out = checkOutPath(str(raw, "out"));
  const source = modelSource(str(raw, "model"));
  const models: Model[] = [];
  try {
    for (const weights of sets) {
      models.push(await loadModel(source, { weights, seed }));
    }
    checkFilterFigure(models[0], columns, scale, models.length);
    const grids = models.map((m) => filterGrid(m, { columns, scale }));
    const img = grids.length === 1
      ? grids[0]
      : sideBySide(grids, models.map((m) => m.weights));
    // Inputs are valid: from here on, files.
    const folder = await claimOut(out, {
      command: "filters",
      options: {},
      overwrite: raw.overwrite === true,
      continuing: false,
    });
    try {
      await writePng(`${out}/filters.png`, img);
    } finally {
      await folder.release();
    }
    const m0 = models[0].manifest;
    const [n, , p] = m0.tensors[m0.patch_filters].shape;
    console.log(
      `${models[0].manifest.name}: ${n} patch-embedding filters of 3×${p}×${p}${
        models.length > 1
          ? ` per weight set (${models.map((m) => m.weights).join(" | ")})`
          : ` (${models[0].weights})`
      }, each min-max normalized to [0, 1]`,
    );
    console.log(`wrote ${out}/filters.png (${img.width}×${img.height})`);
    return 0;
  } finally {
    for (const m of models) await m.release();
  }
}

/** `filters`: the patch-embedding filters as a grid image. */
export const FILTERS_COMMAND: Command = {
  about:
    "the patch-embedding filters as a grid image, or several weight sets side by side",
  synopsis: "--model M --weights W [--compare W2] [options]",
  spec: FILTERS_SPEC,
  run: filtersCommand,
};
