/**
 * The work of `condition`: how poorly conditioned one encoder block is at the
 * tokens an image gives it — the Lanczos estimate of its Jacobian's
 * singular-value spread (`tokenCondition` in src/optimize/condition.ts) —
 * through the one run skeleton ({@linkcode runCommand}), written to
 * `condition.json`. The measurement is made before the output folder is
 * claimed, so a failed one leaves no file.
 *
 * @module
 */
import {
  normalize as normalizeImage,
  type PerChannel,
  writeFiles,
} from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import { type ConditionResult, tokenCondition } from "../optimize/mod.ts";
import { runCommand } from "./command.ts";
import { loadTarget } from "./images.ts";
import { progress } from "./progress.ts";
import { type RunContext, type RunOptions, usage } from "./settings.ts";
import { type ModelSpec, openVariant, type Variant } from "./variant.ts";
import { layerArg } from "./refine.ts";

/** The file `condition` writes into its output folder. */
export const CONDITION_FILE = "condition.json";

/** A `condition` run as typed settings. */
export interface ConditionRun {
  /** The output folder (checked). */
  out: string;
  /** Where the model is (see modelSource). */
  source: string;
  /** The model variant to load. */
  model: ModelSpec;
  /** The model as recorded (see modelKey). */
  modelKey: string;
  /** The weights as labels show them (`untrained:SEED`). */
  weightsText: string;
  /** The input image (absolute path or URL). */
  imagePath: string;
  /** The encoder block measured, resolved against the model's manifest (a usage error when it has none such). */
  block(manifest: Manifest): number;
  /** Lanczos steps (at most the block's dimension: a usage error otherwise). */
  iterations: number;
  /** Normalize the image with the model's mean/std. */
  normalize: boolean;
  /** No progress on stderr. */
  quiet: boolean;
  /** Replace another run's output in `out`. */
  overwrite: boolean;
  /** The options condition.json records (the image and model as run). */
  options: RunOptions;
}

/** What a `condition` run measured, for the caller to print. */
export interface ConditionDone {
  /** The model's name. */
  name: string;
  /** The variant's label ("" for the plain model). */
  tag: string;
  /** The result, as condition.json holds it. */
  result: ConditionResult;
}

/** What condition.json holds. */
function record(
  run: ConditionRun,
  r: ConditionResult,
  about: Record<string, unknown>,
): Record<string, unknown> {
  return {
    command: "condition",
    model: run.modelKey,
    weights: run.weightsText,
    seed: run.model.seed,
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

/** The tokens entering block `layer` for the run's image. */
async function blockInput(run: ConditionRun, model: Model, layer: number) {
  const m = model.manifest;
  const img = await loadTarget(run.imagePath, m.image_size);
  const x = run.normalize
    ? normalizeImage(
      img,
      m.input.mean as PerChannel,
      m.input.std as PerChannel,
    ).data
    : img.data;
  const tokens = await model.forward(x, { layer: layer - 1 });
  if (run.iterations > tokens.data.length) {
    throw usage(
      new RangeError(
        `Invalid --iterations "${run.iterations}": expected at most ${tokens.data.length}, the dimension of block ${layer}'s input [${tokens.dims}] for ${m.name}`,
      ),
    );
  }
  return tokens;
}

/** Measures the block's conditioning with a progress line on stderr. */
async function measure(
  run: ConditionRun,
  model: Model,
  variant: Variant,
): Promise<{ result: ConditionResult; json: Record<string, unknown> }> {
  const layer = run.block(model.manifest);
  const tokens = await blockInput(run, model, layer);
  const bar = progress(`condition block ${layer}`, run.quiet);
  const r = await tokenCondition(model, tokens, {
    layer,
    iterations: run.iterations,
    seed: run.model.seed,
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
  const json = record(run, r, {
    remove: variant.ablations,
    image: run.imagePath,
    normalize: run.normalize,
    backend: model.backend,
    options: run.options,
  });
  return { result: r, json };
}

/**
 * `condition`'s `--layer` (its text) as an encoder block 1..N (a usage error
 * naming the value otherwise); before the model's `manifest` is known, a
 * number is checked against 1 and a name gives NaN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { conditionBlock } from "./condition.ts";
 * assert.equal(conditionBlock("3"), 3);
 * assert.ok(Number.isNaN(conditionBlock("encoder_layer_0")));
 * assert.throws(() => conditionBlock("0"), /Invalid --layer "0": expected an encoder block 1..N/);
 * ```
 */
export function conditionBlock(text: string, manifest?: Manifest): number {
  const t = text.trim();
  const layer = layerArg(t, "layer", manifest);
  const top = manifest?.num_layers ?? Infinity;
  if (Number.isNaN(layer) && manifest === undefined) return layer;
  if (!(layer >= 1 && layer <= top)) {
    throw usage(
      new RangeError(
        `Invalid --layer "${t}": expected an encoder block 1..${
          manifest?.num_layers ?? "N"
        } (layer 0, input processing, has no block Jacobian)`,
      ),
    );
  }
  return layer;
}

/**
 * Runs `condition`: opens the model, measures the block (before any file),
 * then claims `run.out` and writes {@linkcode CONDITION_FILE}; the model is
 * released however it ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONDITION_FILE, runCondition } from "./condition.ts";
 * const out = `${await Deno.makeTempDir()}/cond`;
 * const done = await runCondition({
 *   out,
 *   source: "tests/fixtures/tiny_vit",
 *   model: {
 *     weights: "fixture", seed: 0, backend: "native", verify: true,
 *     removes: [], positionEmbedding: true, swaps: [],
 *   },
 *   modelKey: "tests/fixtures/tiny_vit",
 *   weightsText: "fixture",
 *   imagePath: "assets/chelsea.png",
 *   block: () => 1,
 *   iterations: 4,
 *   normalize: true,
 *   quiet: true,
 *   overwrite: false,
 *   options: {},
 * });
 * const json = JSON.parse(Deno.readTextFileSync(`${out}/${CONDITION_FILE}`));
 * assert.equal(json.layer, 1);
 * assert.ok(done.result.sigmaMax > 0 && json.sigma_max === done.result.sigmaMax);
 * ```
 */
export async function runCondition(
  run: ConditionRun,
  ctx: RunContext = {},
): Promise<ConditionDone> {
  return await runCommand({
    out: run.out,
    open: () => openVariant(run.source, run.model),
    ready: async ({ model, variant }) => {
      const { result, json } = await measure(run, model, variant);
      // The measurement is done: from here on, files.
      const claim = {
        command: "condition",
        options: run.options,
        overwrite: run.overwrite,
        continuing: false,
      };
      const work = async () => {
        await writeFiles(run.out, [
          { name: CONDITION_FILE, data: JSON.stringify(json, null, 2) + "\n" },
        ]);
        return { name: model.manifest.name, tag: variant.tag, result };
      };
      return { claim, work };
    },
  }, ctx);
}
