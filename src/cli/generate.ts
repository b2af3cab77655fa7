/**
 * Internal to the command line (src/cli.ts): the `generate` command (input
 * generation for one class or a grid of classes), on one shared path,
 * {@linkcode runGenerate}, that `grid` uses too.
 *
 * @module
 */
import { type Manifest, type Model, resolveClass } from "../model/mod.ts";
import { GENERATE_DEFAULTS } from "../optimize/mod.ts";
import {
  asUsage,
  checkKernel,
  type Command,
  type Context,
  intOpt,
  LIMITS,
  MODEL_OPTS,
  modelKey,
  modelSource,
  numOpt,
  type Raw,
  recommendedOptions,
  RUN_OPTS,
  savedOptions,
  savedTypes,
  SCHEDULE_OPTS,
  scheduleSettings,
  type Spec,
  stepsOpt,
  str,
  usage,
  VARIANT_OPTS,
  withModelDefaults,
} from "./options.ts";
import { canonicalModel, openModel } from "./model.ts";
import { modelAbout } from "../run/variant.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import type { Snapshot } from "../run/snapshot.ts";
import { type Prelude, prelude } from "./prelude.ts";
import type { GenerateSettings, GenerateSummary } from "../run/generate.ts";
import { runCommand } from "../run/command.ts";
import { classStates, runClasses, zeroHead } from "../run/classes.ts";
import type { Stopper } from "../run/progress.ts";

/** Options of `generate`. */
export const GENERATE_SPEC: Spec = {
  ...MODEL_OPTS,
  class: {
    type: "string",
    multiple: true,
    arg: "C[,C…]",
    defaultText: "required",
    help:
      "class index or name (unique part of one); several (comma-separated or repeated) give a grid",
    saved: true,
  },
  constant: {
    type: "string",
    default: String(GENERATE_DEFAULTS.constant),
    arg: "C",
    help: "the constant C of the objective |C − logit|",
    saved: true,
    identity: true,
  },
  steps: {
    type: "string",
    default: String(GENERATE_DEFAULTS.steps),
    arg: "N",
    help: "gradient steps",
    saved: true,
  },
  "jitter-after": {
    type: "string",
    default: String(GENERATE_DEFAULTS.jitterAfter),
    arg: "N",
    help:
      "steps at model size before the image is enlarged and updated in random crops",
    saved: true,
    identity: true,
  },
  canvas: {
    type: "string",
    default: String(GENERATE_DEFAULTS.canvasSize),
    arg: "PX",
    help: "side of the enlarged canvas the crops come from",
    saved: true,
    identity: true,
  },
  ...SCHEDULE_OPTS(GENERATE_DEFAULTS),
  ...VARIANT_OPTS,
  ...RUN_OPTS("out/generate"),
};

/** Typed settings of a generate run from raw options (usage errors for bad values; `size` checks --canvas). */
export function generateSettings(raw: Raw, size?: number): GenerateSettings {
  const canvasSize = intOpt(raw, "canvas", 1, LIMITS.canvas);
  if (size !== undefined && canvasSize < size) {
    throw usage(
      new RangeError(
        `Invalid --canvas "${
          str(raw, "canvas")
        }": expected at least the model's image size ${size}`,
      ),
    );
  }
  return {
    constant: numOpt(raw, "constant"),
    steps: stepsOpt(raw, "steps", 1),
    jitterAfter: stepsOpt(raw, "jitter-after", 0),
    canvasSize,
    ...scheduleSettings(raw),
  };
}

/** `--class` split into queries (comma-separated or repeated). */
export function classQueries(raw: Raw): string[] {
  const v = raw.class;
  const list = (Array.isArray(v) ? v : v === undefined ? [] : [String(v)])
    .flatMap((s) => s.split(",")).map((s) => s.trim());
  if (list.length === 0 || list.some((s) => s === "")) {
    throw usage(
      new TypeError(
        `Invalid --class "${
          v === undefined ? "" : str(raw, "class")
        }": expected a class index or name, e.g. --class 207 or --class dalmatian`,
      ),
    );
  }
  return list;
}

/** The options that fix a generate run's result, for --resume checks. */
export function canonicalGenerate(raw: Raw): Record<string, unknown> {
  return {
    ...canonicalModel(raw),
    constant: Number(str(raw, "constant")),
    "jitter-after": Number(str(raw, "jitter-after")),
    canvas: Number(str(raw, "canvas")),
  };
}

/** The class indices of `--class`, checked against a resumed run's. */
function resolveClasses(
  raw: Raw,
  m: Manifest,
  given: Raw,
  snap: Snapshot | null,
  resumeDir?: string,
): number[] {
  const indices = [
    ...new Set(
      classQueries(raw).map((q) =>
        asUsage(() => resolveClass(q, m.categories, m.num_classes))
      ),
    ),
  ];
  if (snap && given.class !== undefined) {
    const before = String(snap.options.class ?? "");
    if (indices.join(",") !== before) {
      throw usage(
        new RangeError(
          `Invalid --class "${
            str(given, "class")
          }" with --resume: the snapshot in "${resumeDir}" is of class ${before}; leave --class out to continue that run`,
        ),
      );
    }
  }
  return indices;
}

/** Warns when the model's head is all zeros (untrained torchvision ViTs): generation then only blurs. */
function warnZeroHead(model: Model, quiet: boolean): void {
  const head = zeroHead(model);
  if (head !== null && !quiet) {
    console.error(
      `warning: ${head} of ${model.weights} is all zeros (torchvision initializes ViT heads to zero): every logit is 0 and has no gradient, so generation only blurs the noise; use trained weights, or --swap heads=WEIGHTS`,
    );
  }
}

/** Prints the table of the classes run and where the files went. */
function printClasses(
  out: string,
  summaries: readonly GenerateSummary[],
  total: number,
): void {
  console.log("| class | name | logit | probability | steps |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const x of summaries) {
    console.log(
      `| ${x.index} | ${x.name} | ${x.logit.toFixed(3)} | ${
        x.probability.toFixed(4)
      } | ${x.steps}${x.interrupted ? " (stopped)" : ""} |`,
    );
  }
  const stopped = summaries.length < total ||
    summaries.some((x) => x.interrupted);
  console.log(
    stopped
      ? `\nstopped; wrote ${out}/ with snapshots: continue with --resume ${out}`
      : `\nwrote ${out}/ (${
        total > 1
          ? "generated_grid.png, metrics.json, class_*/"
          : "generated.png, canvas.png, progress.png/.svg, traces.csv, metrics.json"
      })`,
  );
}

/**
 * A generate run's options with the settings the model's manifest recommends
 * for `generate` as defaults (see withModelDefaults), checked against it.
 */
function generateModelDefaults(
  m: Manifest,
  source: string,
  pre: Prelude,
  given: Raw,
): { raw: Raw; modelDefaults: Raw } {
  const check = (r: Raw) =>
    checkKernel(generateSettings(r, m.image_size).kernelSize, m.image_size);
  const recommended = recommendedOptions(
    m,
    "generate",
    GENERATE_SPEC,
    check,
    `${source}/manifest.json`,
  );
  const out = withModelDefaults(
    pre.raw,
    given,
    recommended,
    pre.snap?.options ?? null,
  );
  check(out.raw);
  return out;
}

async function generateCommand(given: Raw, ctx: Context): Promise<number> {
  const pre = await prelude(
    "generate",
    GENERATE_SPEC,
    given,
    canonicalGenerate,
  );
  const { out } = pre;
  classQueries(pre.raw);
  generateSettings(pre.raw);
  const source = modelSource(str(pre.raw, "model"));
  return await runCommand({
    out,
    open: () => openModel(pre.raw, source),
    ready: async ({ model, variant }) => {
      const m = model.manifest;
      const { raw, modelDefaults } = generateModelDefaults(
        m,
        source,
        pre,
        given,
      );
      const s = generateSettings(raw, m.image_size);
      const indices = resolveClasses(raw, m, given, pre.snap, pre.resumeDir);
      warnZeroHead(model, raw.quiet === true);
      const states = await classStates(
        { snap: pre.snap, dir: pre.resumeDir, out },
        indices,
        m.image_size,
        s.canvasSize,
        savedTypes(GENERATE_SPEC),
      );
      await model.prepare("logits", { gradient: true });
      // Inputs are valid: from here on, files.
      const options = {
        ...savedOptions(GENERATE_SPEC, raw),
        class: indices.join(","),
        model: modelKey(str(raw, "model")),
      };
      const about = {
        ...modelAbout(model, source, s.normalize, variant),
        modelDefaults,
      };
      const claim = {
        command: "generate",
        options,
        overwrite: raw.overwrite === true,
        continuing: pre.continuing,
      };
      const work = async (stopper: Stopper) => {
        const r = await runClasses(model, {
          out,
          indices,
          states,
          settings: s,
          control: pre.control,
          options,
          about,
          tag: variant.tag,
        }, stopper);
        printClasses(out, r.summaries, indices.length);
        return r.bySignal ? EXIT_INTERRUPTED : 0;
      };
      return { claim, work };
    },
  }, ctx);
}

/** `generate`: input generation. */
export const GENERATE_COMMAND: Command = {
  about: "input generation: an image driving a class logit towards a constant",
  synopsis: "--class C [options]",
  spec: GENERATE_SPEC,
  run: generateCommand,
};
