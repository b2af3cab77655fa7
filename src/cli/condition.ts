/**
 * Internal to the command line (src/cli.ts): the options of `condition` (how
 * poorly conditioned one encoder block is at the tokens an image gives it)
 * read into the typed run of src/run/condition.ts, and its result printed.
 *
 * @module
 */
import { CONDITION_DEFAULTS, MAX_ITERATIONS } from "../optimize/mod.ts";
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
import { intOpt, str } from "../run/read.ts";
import { modelKey, modelSource } from "../run/models.ts";
import { modelSpec, weightsText } from "../run/model_options.ts";
import { checkOutPath } from "../run/outdir.ts";
import {
  CONDITION_FILE,
  conditionBlock,
  runCondition,
} from "../run/condition.ts";

/** Options of `condition`. */
export const CONDITION_SPEC: Spec = {
  ...MODEL_OPTS,
  seed: {
    ...MODEL_OPTS.seed,
    help: "seed of the untrained weights and of the Lanczos start vector",
  },
  image: {
    type: "string",
    default: DEFAULT_IMAGE_TEXT,
    arg: "PATH",
    help:
      "input image (PNG or JPEG), resized and centre-cropped to the model's size: its tokens entering --layer are where the Jacobian is taken",
    saved: true,
  },
  layer: {
    type: "string",
    default: "1",
    arg: "L",
    help:
      "the encoder block whose Jacobian ∂block_L(x)/∂x is measured, 1..N (or its name, e.g. encoder_layer_0)",
    saved: true,
  },
  iterations: {
    type: "string",
    default: String(CONDITION_DEFAULTS.iterations),
    arg: "M",
    help:
      `Lanczos steps on JᵀJ (1..${MAX_ITERATIONS}, at most the block's dimension); more steps give a larger lower bound on κ`,
    saved: true,
  },
  ...VARIANT_OPTS,
  out: {
    type: "string",
    default: "out/condition",
    arg: "DIR",
    help: `output folder: ${CONDITION_FILE}`,
  },
  overwrite: {
    type: "boolean",
    default: false,
    help:
      "replace another run's output in --out (only the files it wrote; without it, a folder holding another run is refused)",
  },
  quiet: { type: "boolean", default: false, help: "no progress on stderr" },
  ...HELP_OPT,
};

async function conditionCommand(given: Raw, ctx: Context): Promise<number> {
  const raw: Raw = { ...defaults(CONDITION_SPEC), ...absoluteWeights(given) };
  const layer = str(raw, "layer");
  conditionBlock(layer);
  const iterations = intOpt(raw, "iterations", 1, MAX_ITERATIONS);
  const model = modelSpec(raw);
  const out = checkOutPath(str(raw, "out"));
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const key = modelKey(str(raw, "model"));
  const weights = weightsText(raw);
  const { name, tag, result: r } = await runCondition({
    out,
    source,
    model,
    modelKey: key,
    weightsText: weights,
    imagePath,
    block: (m) => conditionBlock(layer, m),
    iterations,
    normalize: raw.normalize !== false,
    quiet: raw.quiet === true,
    overwrite: raw.overwrite === true,
    options: {
      ...savedOptions(CONDITION_SPEC, raw),
      image: imagePath,
      model: key,
    },
  }, ctx);
  console.log(
    `${name}, ${weights}${
      tag ? ` (${tag})` : ""
    }: block ${r.layer}'s Jacobian (${
      r.dims.join("×")
    } tokens), ${r.iterations} Lanczos steps in ${
      r.seconds.toFixed(1)
    } s: σ_max ${r.sigmaMax.toPrecision(6)}, σ_min ≤ ${
      r.sigmaMinRitz.toPrecision(4)
    }, κ ≥ ${r.kappaLower.toPrecision(4)}`,
  );
  console.log(`wrote ${out}/${CONDITION_FILE}`);
  return 0;
}

/** `condition`: the singular-value spread of one encoder block's Jacobian at an image's tokens. */
export const CONDITION_COMMAND: Command = {
  about:
    "how poorly conditioned an encoder block is: σ_max and a lower bound on κ of its Jacobian at an image's tokens (Lanczos) → condition.json",
  synopsis: "--layer L [--image IMG] [--iterations M] [options]",
  spec: CONDITION_SPEC,
  run: conditionCommand,
};
