/**
 * Internal to the command line (src/cli.ts): `condition`, how poorly
 * conditioned one encoder block is at the tokens an image gives it — the
 * Lanczos estimate of its Jacobian's singular-value spread
 * (`blockCondition` in src/optimize/condition.ts), written to `condition.json`.
 *
 * @module
 */
import { normalize as normalizeImage, type PerChannel } from "../io/mod.ts";
import { writeFiles } from "../io/mod.ts";
import type { Manifest } from "../model/mod.ts";
import {
  CONDITION_DEFAULTS,
  type ConditionResult,
  MAX_ITERATIONS,
  tokenCondition,
} from "../optimize/mod.ts";
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
import { loadTarget } from "../run/images.ts";
import { checkOutPath, claimOut } from "../run/outdir.ts";
import { progress } from "../run/progress.ts";

/** The file `condition` writes into `--out`. */
export const CONDITION_FILE = "condition.json";

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

/**
 * --layer as an encoder block 1..N (usage error naming the value otherwise);
 * before the model is known, a number is checked against 1 and a name gives
 * NaN.
 */
function blockOpt(raw: Raw, manifest?: Manifest): number {
  const text = str(raw, "layer").trim();
  const layer = layerArg(text, "layer", manifest);
  const top = manifest?.num_layers ?? Infinity;
  if (Number.isNaN(layer) && manifest === undefined) return layer;
  if (!(layer >= 1 && layer <= top)) {
    throw usage(
      new RangeError(
        `Invalid --layer "${text}": expected an encoder block 1..${
          manifest?.num_layers ?? "N"
        } (layer 0, input processing, has no block Jacobian)`,
      ),
    );
  }
  return layer;
}

/** What condition.json holds. */
function record(
  raw: Raw,
  r: ConditionResult,
  about: Record<string, unknown>,
): Record<string, unknown> {
  return {
    command: "condition",
    model: modelKey(str(raw, "model")),
    weights: weightsText(raw),
    seed: Number(str(raw, "seed")),
    layer: r.layer,
    ...about,
    iterations: r.iterations,
    sigma_max: r.sigmaMax,
    sigma_min_ritz: r.sigmaMinRitz,
    kappa_lower: Number.isFinite(r.kappaLower) ? r.kappaLower : null,
    ritz: r.ritz,
    dims: r.dims,
    step: r.step,
    tokens_norm: r.tokensNorm,
    seconds: r.seconds,
    note:
      "Lanczos on JᵀJ: sigma_max converges fast; sigma_min_ritz is an upper bound on σ_min, so kappa_lower = sigma_max / sigma_min_ritz is a lower bound on the condition number",
  };
}

async function conditionCommand(given: Raw, _ctx: Context): Promise<number> {
  const raw: Raw = { ...defaults(CONDITION_SPEC), ...absoluteWeights(given) };
  blockOpt(raw);
  const iterations = intOpt(raw, "iterations", 1, MAX_ITERATIONS);
  const seed = intOpt(raw, "seed", 0);
  checkVariantOpts(raw);
  backendOpt(raw);
  threadsOpt(raw);
  const out = checkOutPath(str(raw, "out"));
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const { model, variant } = await openModel(raw, source);
  try {
    const m = model.manifest;
    const layer = blockOpt(raw, m);
    const img = await loadTarget(imagePath, m.image_size);
    const normalize = raw.normalize !== false;
    const x = normalize
      ? normalizeImage(
        img,
        m.input.mean as PerChannel,
        m.input.std as PerChannel,
      )
        .data
      : img.data;
    const tokens = await model.forward(x, { layer: layer - 1 });
    if (iterations > tokens.data.length) {
      throw usage(
        new RangeError(
          `Invalid --iterations "${iterations}": expected at most ${tokens.data.length}, the dimension of block ${layer}'s input [${tokens.dims}] for ${m.name}`,
        ),
      );
    }
    const bar = progress(`condition block ${layer}`, raw.quiet === true);
    const r = await tokenCondition(model, tokens, {
      layer,
      iterations,
      seed,
      onIteration: (p) =>
        bar.update(
          p.iteration - 1,
          p.iterations,
          `σmax ${p.sigmaMax.toPrecision(5)} σmin_ritz ${
            p.sigmaMinRitz.toPrecision(4)
          }`,
        ),
    });
    bar.done(`κ ≥ ${r.kappaLower.toPrecision(4)}`);
    // Inputs are valid and the measurement done: from here on, files.
    const options = {
      ...savedOptions(CONDITION_SPEC, raw),
      image: imagePath,
      model: modelKey(str(raw, "model")),
    };
    const json = record(raw, r, {
      remove: variant.ablations,
      image: imagePath,
      normalize,
      backend: model.backend,
      options,
    });
    const folder = await claimOut(out, {
      command: "condition",
      options,
      overwrite: raw.overwrite === true,
      continuing: false,
    });
    try {
      await writeFiles(out, [
        { name: CONDITION_FILE, data: JSON.stringify(json, null, 2) + "\n" },
      ]);
    } finally {
      await folder.release();
    }
    console.log(
      `${m.name}, ${weightsText(raw)}${
        variant.tag ? ` (${variant.tag})` : ""
      }: block ${layer}'s Jacobian (${
        r.dims.join("×")
      } tokens), ${r.iterations} Lanczos steps in ${
        r.seconds.toFixed(1)
      } s: σ_max ${r.sigmaMax.toPrecision(6)}, σ_min ≤ ${
        r.sigmaMinRitz.toPrecision(4)
      }, κ ≥ ${r.kappaLower.toPrecision(4)}`,
    );
    console.log(`wrote ${out}/${CONDITION_FILE}`);
    return 0;
  } finally {
    await model.release();
  }
}

/** `condition`: the singular-value spread of one encoder block's Jacobian at an image's tokens. */
export const CONDITION_COMMAND: Command = {
  about:
    "how poorly conditioned an encoder block is: σ_max and a lower bound on κ of its Jacobian at an image's tokens (Lanczos) → condition.json",
  synopsis: "--layer L [--image IMG] [--iterations M] [options]",
  spec: CONDITION_SPEC,
  run: conditionCommand,
};
