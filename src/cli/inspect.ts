/**
 * Internal to the command line (src/cli.ts): the options of the commands that
 * look at a model without optimizing an image — `forward` (one layer's output
 * for an image, under ablations and swaps) and `filters` (the patch-embedding
 * filters of one or more weight sets) — read into the typed runs of
 * src/run/inspect.ts, and their results printed.
 *
 * @module
 */
import {
  absoluteWeights,
  type Command,
  type Context,
  DEFAULT_IMAGE_TEXT,
  defaultImage,
  defaults,
  HELP_OPT,
  MODEL_OPTS,
  type Raw,
  savedOptions,
  type Spec,
  VARIANT_OPTS,
} from "./options.ts";
import { intOpt, list, str } from "../run/read.ts";
import { LIMITS, usage } from "../run/settings.ts";
import { modelKey, modelSource } from "../run/models.ts";
import { modelSpec, weightsText } from "../run/model_options.ts";
import { checkOutPath } from "../run/outdir.ts";
import {
  forwardLayer,
  runFilters,
  runForward,
  type TopClass,
} from "../run/inspect.ts";

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

/** Prints forward's summary line and the table of top classes. */
function printForward(
  head: string,
  classes: readonly TopClass[] | null,
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

async function forwardCommand(given: Raw, ctx: Context): Promise<number> {
  const raw: Raw = { ...defaults(FORWARD_SPEC), ...absoluteWeights(given) };
  const layerText = str(raw, "layer");
  const onlyLayer = raw["only-layer"] === true;
  forwardLayer(layerText, onlyLayer);
  const top = intOpt(raw, "top", 1);
  const model = modelSpec(raw);
  const out = checkOutPath(str(raw, "out"));
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const r = await runForward({
    out,
    source,
    model,
    imagePath,
    layer: (m) => forwardLayer(layerText, onlyLayer, m),
    onlyLayer,
    top,
    normalize: raw.normalize !== false,
    overwrite: raw.overwrite === true,
    options: {
      ...savedOptions(FORWARD_SPEC, raw),
      image: imagePath,
      model: modelKey(str(raw, "model")),
    },
  }, ctx);
  const what = r.layer === "logits"
    ? "logits"
    : onlyLayer
    ? `encoder ${r.layer} alone`
    : `layer ${r.layer}`;
  printForward(
    `${r.name}, ${weightsText(raw)}${
      r.tag ? ` (${r.tag})` : ""
    }: output of ${what}: dims [${r.dims.join(", ")}], L2 norm ${
      r.l2Norm.toPrecision(6)
    }`,
    r.classes,
    out,
  );
  return 0;
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

async function filtersCommand(given: Raw, ctx: Context): Promise<number> {
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
  const overwrite = raw.overwrite === true;
  const r = await runFilters(
    { out, source, weights: sets, seed, columns, scale, overwrite },
    ctx,
  );
  console.log(
    `${r.name}: ${r.count} patch-embedding filters of 3×${r.patch}×${r.patch}${
      r.weights.length > 1
        ? ` per weight set (${r.weights.join(" | ")})`
        : ` (${r.weights[0]})`
    }, each min-max normalized to [0, 1]`,
  );
  console.log(`wrote ${out}/filters.png (${r.width}×${r.height})`);
  return 0;
}

/** `filters`: the patch-embedding filters as a grid image. */
export const FILTERS_COMMAND: Command = {
  about:
    "the patch-embedding filters as a grid image, or several weight sets side by side",
  synopsis: "--model M --weights W [--compare W2] [options]",
  spec: FILTERS_SPEC,
  run: filtersCommand,
};
