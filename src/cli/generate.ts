/**
 * Internal to the command line (src/cli.ts): the `generate` command (input
 * generation for one class or a grid of classes), on one shared path,
 * {@linkcode runGenerate}, that `grid` uses too.
 *
 * @module
 */
import { type Manifest, resolveClass } from "../model/mod.ts";
import { GENERATE_DEFAULTS } from "../optimize/mod.ts";
import {
  type Command,
  type Context,
  MODEL_OPTS,
  type Raw,
  RUN_OPTS,
  savedOptions,
  savedTypes,
  SCHEDULE_OPTS,
  type Spec,
  VARIANT_OPTS,
} from "./options.ts";
import {
  intOpt,
  kernelOpt,
  numOpt,
  schedOpt,
  stepsOpt,
  str,
} from "../run/read.ts";
import { asUsage, LIMITS, usage } from "../run/settings.ts";
import { modelKey, modelSource } from "../run/models.ts";
import { canonicalModel } from "../run/model_options.ts";
import {
  checkCanvasSize,
  checkKernel,
  type FieldParser,
  type Refined,
  refineSettings,
} from "../run/refine.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import type { Snapshot } from "../run/snapshot.ts";
import { type Prelude, prelude } from "./prelude.ts";
import {
  type GenerateSettings,
  generateSettings,
  type GenerateSummary,
} from "../run/generate.ts";
import { callGenerate } from "../run/calls.ts";

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

/**
 * One setting a manifest may recommend for `generate`, read from its text
 * (usage errors as the option's own; `size`: the model's image size, which
 * the canvas must hold and the blur kernel fit).
 */
function generateField(size: number): FieldParser<GenerateSettings> {
  return (name, text) => {
    const raw = { [name]: text };
    switch (name) {
      case "steps":
        return { steps: stepsOpt(raw, name, 1) };
      case "lr":
      case "sigma":
        return { [name]: schedOpt(raw, name) };
      case "constant":
        return { constant: numOpt(raw, name) };
      case "jitter-after":
        return { jitterAfter: stepsOpt(raw, name, 0) };
      case "canvas": {
        const canvasSize = intOpt(raw, name, 1, LIMITS.canvas);
        checkCanvasSize(canvasSize, text, size);
        return { canvasSize };
      }
    }
    const kernelSize = kernelOpt(raw);
    checkKernel(kernelSize, size);
    return { kernelSize };
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
 * The one manifest-dependent refinement of a generate run's settings (read
 * once from its options by the prelude): the model's recommended settings as
 * defaults (see refineSettings), the canvas and the blur kernel checked
 * against its image size.
 */
function refineGenerate(
  m: Manifest,
  source: string,
  pre: Prelude<GenerateSettings>,
  given: Raw,
): Refined<GenerateSettings> {
  const size = m.image_size;
  const r = refineSettings({
    settings: pre.settings,
    options: pre.raw,
    given,
    resumed: pre.snap?.options ?? null,
    manifest: m,
    command: "generate",
    field: generateField(size),
    file: `${source}/manifest.json`,
  });
  checkCanvasSize(r.settings.canvasSize, str(r.options, "canvas"), size);
  checkKernel(r.settings.kernelSize, size);
  return r;
}

async function generateCommand(given: Raw, ctx: Context): Promise<number> {
  const pre = await prelude(
    "generate",
    GENERATE_SPEC,
    given,
    canonicalGenerate,
    (raw) => generateSettings(raw),
  );
  const { out } = pre;
  classQueries(pre.raw);
  const source = modelSource(str(pre.raw, "model"));
  const r = await callGenerate({
    out,
    source,
    model: pre.model,
    refine: (m) => {
      const { settings, options: raw, modelDefaults } = refineGenerate(
        m,
        source,
        pre,
        given,
      );
      const indices = resolveClasses(raw, m, given, pre.snap, pre.resumeDir);
      const options = {
        ...savedOptions(GENERATE_SPEC, raw),
        class: indices.join(","),
        model: modelKey(str(raw, "model")),
      };
      return { settings, indices, options, modelDefaults };
    },
    control: pre.control,
    overwrite: pre.raw.overwrite === true,
    resume: { snap: pre.snap, dir: pre.resumeDir },
    saved: savedTypes(GENERATE_SPEC),
    continuing: pre.continuing,
    warn: (line) => console.error(line),
  }, ctx);
  printClasses(out, r.summaries, r.indices.length);
  return r.bySignal ? EXIT_INTERRUPTED : 0;
}

/** `generate`: input generation. */
export const GENERATE_COMMAND: Command = {
  about: "input generation: an image driving a class logit towards a constant",
  synopsis: "--class C [options]",
  spec: GENERATE_SPEC,
  run: generateCommand,
};
