/**
 * Internal to the command line (src/cli.ts): the `generate` command (input
 * generation for one class or a grid of classes), on one shared path,
 * {@linkcode runGenerate}, that `grid` uses too.
 *
 * @module
 */
import { GENERATE_DEFAULTS } from "../optimize/mod.ts";
import {
  absoluteWeights,
  type Command,
  type Context,
  MODEL_OPTS,
  optionTable,
  type Raw,
  RUN_OPTS,
  savedOptions,
  savedTypes,
  SCHEDULE_OPTS,
  type Spec,
  VARIANT_OPTS,
} from "./options.ts";
import { str } from "../run/read.ts";
import { usage } from "../run/settings.ts";
import { modelSource } from "../run/models.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import { prelude } from "../run/prelude.ts";
import {
  canonicalGenerate,
  generateRefinement,
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

async function generateCommand(given: Raw, ctx: Context): Promise<number> {
  given = absoluteWeights(given);
  const pre = await prelude(
    "generate",
    optionTable(GENERATE_SPEC),
    given,
    canonicalGenerate,
    (raw) => generateSettings(raw),
  );
  const { out, snap } = pre;
  const queries = classQueries(pre.raw);
  const source = modelSource(str(pre.raw, "model"));
  const resumed = snap?.options ?? null;
  const r = await callGenerate({
    out,
    source,
    model: pre.model,
    refine: generateRefinement(
      { settings: pre.settings, options: pre.raw, given, resumed, source },
      queries,
      (raw) => savedOptions(GENERATE_SPEC, raw),
      snap && given.class !== undefined
        ? {
          given: str(given, "class"),
          before: String(snap.options.class ?? ""),
          dir: String(pre.resumeDir),
        }
        : undefined,
    ),
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
