/**
 * Internal to the command line (src/cli.ts): the `invert` command (the
 * essay's layer representation) and `demo` (invert for a few layers), on one
 * shared path, {@linkcode runInvert}, that `grid` uses too.
 *
 * @module
 */
import { INVERT_DEFAULTS } from "../optimize/mod.ts";
import {
  absoluteWeights,
  type Command,
  type Context,
  DEFAULT_IMAGE_TEXT,
  defaultImage,
  defaults,
  MODEL_OPTS,
  type Opt,
  optionTable,
  type Raw,
  RUN_OPTS,
  savedOptions,
  savedTypes,
  SCHEDULE_OPTS,
  type Spec,
  VARIANT_OPTS,
} from "./options.ts";
import { controlOpts, list, str } from "../run/read.ts";
import { modelSource } from "../run/models.ts";
import { usage } from "../run/settings.ts";
import { modelSpec, weightsText } from "../run/model_options.ts";
import { layerArg, type Refining } from "../run/refine.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import { bySignal } from "../run/harness.ts";
import { checkOutPath } from "../run/outdir.ts";
import { type Prelude, prelude } from "../run/prelude.ts";
import {
  canonicalInvert,
  demoRefinement,
  figuresTable,
  invertRefinement,
  type InvertSettings,
  invertSettings,
} from "../run/invert.ts";
import { batchRuns, MAX_BATCH, parseSeeds } from "../run/batch.ts";
import { callDemo, callInvert, callInvertBatch } from "../run/calls.ts";

/** Options of `invert`. */
export const INVERT_SPEC: Spec = {
  ...MODEL_OPTS,
  image: {
    type: "string",
    default: DEFAULT_IMAGE_TEXT,
    arg: "PATH",
    help:
      "target image (PNG or JPEG), resized and centre-cropped to the model's size. Repeatable: several images run as one batch, each into DIR/NAME/",
    multiple: true,
    saved: true,
    identity: true,
  },
  seeds: {
    type: "string",
    arg: "S-S|S,S",
    defaultText: "one run",
    help:
      `random starts of a batch, e.g. 0-7: each image once per seed, into DIR/NAME-seedS/ (at most ${MAX_BATCH} runs; the untrained weights keep --seed)`,
  },
  "start-seed": {
    type: "string",
    arg: "N",
    defaultText: "--seed",
    help:
      "seed of the random start and of the noise baseline alone (the untrained weights keep --seed)",
    saved: true,
    identity: true,
  },
  layer: {
    type: "string",
    default: String(INVERT_DEFAULTS.layer),
    arg: "L",
    help:
      "layer to represent, numbered from 1: 0 = input processing, 1..N = encoder N (a ResNet: block N). Also accepted: the manifest's layer name, numbered from 0 as torchvision's tensors (encoder_layer_0 = encoder 1, block_0, stem, layer2.3), or a ResNet stage layer1…layer4 (its last block). Printed as \"encoder 1 (encoder_layer_0)\"",
    saved: true,
    identity: true,
  },
  "only-layer": {
    type: "boolean",
    default: false,
    help:
      "represent encoder L alone: input processing, then encoder L (skipping 1..L−1)",
    saved: true,
    identity: true,
  },
  loss: {
    type: "string",
    default: INVERT_DEFAULTS.loss,
    arg: "l1|l2",
    help: "feature loss at the layer",
    saved: true,
    identity: true,
  },
  steps: {
    type: "string",
    default: String(INVERT_DEFAULTS.steps),
    arg: "N",
    help: "gradient steps",
    saved: true,
  },
  ...SCHEDULE_OPTS(INVERT_DEFAULTS),
  ...VARIANT_OPTS,
  ...RUN_OPTS("out/invert"),
};

/** Options of `demo`: those of invert, with --layers for --layer and no --resume. */
export const DEMO_SPEC: Spec = Object.fromEntries(
  Object.entries(INVERT_SPEC).flatMap(([k, o]): [string, Opt][] => {
    if (
      ["only-layer", "save-every", "stop-at", "resume", "seeds", "start-seed"]
        .includes(k)
    ) {
      return [];
    }
    if (k === "image") return [[k, { ...o, multiple: undefined }]];
    if (k === "layer") {
      return [["layers", {
        type: "string",
        default: "1,12",
        arg: "L,L",
        help:
          "layers to represent (numbers from 1, or names as --layer takes them), one run each, files in DIR/layerL/",
      }]];
    }
    if (k === "steps") {
      return [[k, { ...o, default: "300", help: "gradient steps per layer" }]];
    }
    if (k === "out") {
      return [[k, { ...o, default: "out/demo", help: "output folder" }]];
    }
    return [[k, o]];
  }),
);

/** What an invert run's refinement by its model starts from. */
function refining(
  pre: Prelude<InvertSettings>,
  given: Raw,
  source: string,
): Refining<InvertSettings> {
  const resumed = pre.snap?.options ?? null;
  return { settings: pre.settings, options: pre.raw, given, resumed, source };
}

/** The options an invert run's record keeps. */
const keepInvert = (raw: Raw): Raw => savedOptions(INVERT_SPEC, raw);

/** A batch starts afresh: --resume names one of its runs, not the batch. */
function noBatchResume(pre: Prelude<InvertSettings>): void {
  if (pre.resumeDir === undefined) return;
  throw usage(
    new TypeError(
      `Invalid --resume with several --image or --seeds: a batch starts afresh; resume one of its runs by its folder (--resume ${pre.out}/NAME)`,
    ),
  );
}

/** `invert` with several --image or --seeds: one batch through the chain (one image at a time where the graphs have no batch axis). */
async function invertBatchCommand(
  pre: Prelude<InvertSettings>,
  given: Raw,
  images: readonly string[],
  seeds: number[] | null,
  ctx: Context,
): Promise<number> {
  const { out } = pre;
  noBatchResume(pre);
  const runs = batchRuns(images, seeds);
  const paths = images.map((v) => defaultImage({ image: v }));
  const source = modelSource(str(pre.raw, "model"));
  const r = await callInvertBatch({
    out,
    source,
    model: pre.model,
    refine: invertRefinement(refining(pre, given, source), keepInvert),
    control: pre.control,
    overwrite: pre.raw.overwrite === true,
    runs,
    images: paths,
    seeds: pre.raw.seeds as string | undefined,
    log: (line) => console.error(line),
  }, ctx);
  console.log(r.table);
  console.log(
    `\nwrote ${out}/ (batch.md, metrics.json, ${
      r.runs.map((x) => `${x.name}/`).join(", ")
    })`,
  );
  return r.stopped ? EXIT_INTERRUPTED : 0;
}

async function invertCommand(given: Raw, ctx: Context): Promise<number> {
  given = absoluteWeights(given);
  const pre = await prelude(
    "invert",
    optionTable(INVERT_SPEC),
    given,
    (raw) => canonicalInvert(raw, defaultImage(raw)),
    (raw) => invertSettings(raw),
  );
  const images = list(pre.raw, "image");
  const seeds = pre.raw.seeds === undefined
    ? null
    : parseSeeds(str(pre.raw, "seeds"));
  if (images.length > 1 || seeds !== null) {
    return await invertBatchCommand(pre, given, images, seeds, ctx);
  }
  const { snap, resumeDir, out } = pre;
  const imagePath = defaultImage(pre.raw);
  const source = modelSource(str(pre.raw, "model"));
  const summary = await callInvert({
    out,
    source,
    model: pre.model,
    refine: invertRefinement(
      refining(pre, given, source),
      keepInvert,
      imagePath,
    ),
    control: pre.control,
    overwrite: pre.raw.overwrite === true,
    imagePath,
    resume: snap && resumeDir !== undefined
      ? { dir: resumeDir, saved: savedTypes(INVERT_SPEC) }
      : undefined,
    continuing: pre.continuing,
  }, ctx);
  console.log(figuresTable([summary]));
  console.log(
    summary.interrupted
      ? `\nstopped at step ${summary.steps} (${summary.stopReason}); wrote ${out}/ with a snapshot: continue with --resume ${out}`
      : `\nwrote ${out}/ (representation.png, target.png, side_by_side.png, convergence.png/.svg, traces.csv, representation.npy, metrics.json)`,
  );
  return bySignal(summary.stopReason) ? EXIT_INTERRUPTED : 0;
}

async function demoCommand(given: Raw, ctx: Context): Promise<number> {
  const parsed: Raw = { ...defaults(DEMO_SPEC), ...given };
  const layerText = str(parsed, "layers");
  const layers = layerText.split(",").map((t) => t.trim());
  for (const t of layers) layerArg(t, "layers", undefined, layerText);
  const base = invertSettings({ ...parsed, layer: "0" });
  const control = controlOpts({ ...parsed, "save-every": "0" });
  const model = modelSpec(parsed);
  const out = checkOutPath(str(parsed, "out"));
  const imagePath = defaultImage(parsed);
  const source = modelSource(str(parsed, "model"));
  const { rows, stopped } = await callDemo({
    out,
    source,
    model,
    refine: demoRefinement(
      { settings: base, options: parsed, given, resumed: null, source },
      layers,
      (raw) => savedOptions(DEMO_SPEC, raw),
    ),
    control,
    overwrite: parsed.overwrite === true,
    imagePath,
    weightsText: weightsText(parsed),
    log: (line) => console.error(line),
  }, ctx);
  console.log(figuresTable(rows));
  console.log(
    `\nwrote ${out}/ (demo.png, target.png, metrics.json, ${
      rows.map((r) => `layer${r.layer}/`).join(", ")
    })`,
  );
  return stopped ? EXIT_INTERRUPTED : 0;
}

/** `invert`: layer representation. */
export const INVERT_COMMAND: Command = {
  about:
    "layer representation: from noise, an image whose layer output matches the target's",
  synopsis: "--image IMG --layer L [options]",
  spec: INVERT_SPEC,
  run: invertCommand,
};

/** `demo`: invert a few layers of untrained ViT-B/32 for a photo. */
export const DEMO_COMMAND: Command = {
  about: "invert layers of untrained ViT-B/32 for a photo → out/demo/",
  synopsis: "[options]",
  spec: DEMO_SPEC,
  run: demoCommand,
};
