/**
 * Internal to the command line (src/cli.ts): the `generate` command (input
 * generation for one class or a grid of classes), on one shared path,
 * {@linkcode runGenerate}, that `grid` uses too.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { type Manifest, type Model, resolveClass } from "../model/mod.ts";
import { encodePng, type ImageTensor, writeFiles } from "../io/mod.ts";
import { montage } from "../figures/mod.ts";
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
import { imageOf, labelledRow } from "../run/images.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import { bySignal } from "../run/harness.ts";
import { saveSnapshot, type Snapshot } from "../run/snapshot.ts";
import { readResume } from "../run/run.ts";
import { type Prelude, prelude } from "./prelude.ts";
import {
  type ClassState,
  classState,
  GENERATE_COLUMNS,
  GENERATE_NULLABLE,
  type GenerateSettings,
  type GenerateSummary,
  runGenerate,
} from "../run/generate.ts";
import { runCommand } from "../run/command.ts";
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
  const m = model.manifest;
  const head = ["heads.head.weight", "head.weight", "fc.weight"].find((k) =>
    m.tensors[k]
  );
  if (head && !quiet && model.tensor(head).every((v) => v === 0)) {
    console.error(
      `warning: ${head} of ${model.weights} is all zeros (torchvision initializes ViT heads to zero): every logit is 0 and has no gradient, so generation only blurs the noise; use trained weights, or --swap heads=WEIGHTS`,
    );
  }
}

/** Where each class continues from on --resume (reads only). */
async function resumeStates(
  pre: Prelude,
  indices: readonly number[],
  size: number,
  canvas: number,
): Promise<Map<number, ClassState>> {
  const states = new Map<number, ClassState>();
  const { snap, resumeDir } = pre;
  if (snap === null || resumeDir === undefined) return states;
  const multi = indices.length > 1;
  if (multi && resolvePath(pre.out) !== resolvePath(resumeDir)) {
    throw usage(
      new RangeError(
        `Invalid --out "${pre.out}" with --resume "${resumeDir}": a run of several classes continues in its own folder: leave --out out`,
      ),
    );
  }
  for (const i of indices) {
    states.set(
      i,
      multi
        ? await classState(
          `${resumeDir}/class_${i}`,
          i,
          size,
          canvas,
          savedTypes(GENERATE_SPEC),
        )
        : {
          kind: "snapshot",
          resume: await readResume(
            resumeDir,
            snap,
            [size, canvas],
            GENERATE_COLUMNS,
            GENERATE_NULLABLE,
          ),
        },
    );
  }
  return states;
}

/** The montage and metrics.json of a run of several classes. */
async function writeClassGrid(
  out: string,
  m: Manifest,
  indices: readonly number[],
  summaries: readonly GenerateSummary[],
  record: Record<string, unknown>,
): Promise<void> {
  const byIndex = new Map(summaries.map((x) => [x.index, x]));
  const cols = indices.length <= 4
    ? indices.length
    : Math.ceil(Math.sqrt(indices.length));
  const cells = indices.map((i) => {
    const x = byIndex.get(i);
    const label = m.categories ? `${i}: ${m.categories[i]}` : `${i}`;
    return labelledRow([x ? imageOf(x.image) : null], [label]);
  });
  const grid: (ImageTensor | null)[][] = [];
  for (let r = 0; r < cells.length; r += cols) {
    grid.push(cells.slice(r, r + cols));
  }
  const classes = indices.map((i) => {
    const x = byIndex.get(i);
    return {
      index: i,
      name: m.categories?.[i] ?? null,
      dir: `class_${i}`,
      final: x
        ? { logit: x.logit, probability: x.probability, steps: x.steps }
        : null,
      interrupted: x ? x.interrupted : true,
    };
  });
  const metrics = {
    ...record,
    classes,
    interrupted: summaries.length < indices.length ||
      summaries.some((x) => x.interrupted),
    files: ["generated_grid.png", "snapshot/"],
  };
  await writeFiles(out, [
    { name: "generated_grid.png", data: encodePng(montage({ cells: grid })) },
    { name: "metrics.json", data: JSON.stringify(metrics, null, 2) + "\n" },
  ]);
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
      const multi = indices.length > 1;
      const states = await resumeStates(
        pre,
        indices,
        m.image_size,
        s.canvasSize,
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
        if (multi) {
          // The run's descriptor, so --resume finds the classes.
          await saveSnapshot(out, {
            command: "generate",
            step: null,
            options,
            classes: indices.map((i) => ({ index: i, dir: `class_${i}` })),
          });
        }
        const summaries: GenerateSummary[] = [];
        let sigint = false;
        for (const i of indices) {
          const state = states.get(i) ?? { kind: "fresh" as const };
          if (state.kind === "done") {
            summaries.push(state.summary);
            continue;
          }
          if (sigint) break;
          const dir = multi ? `${out}/class_${i}` : out;
          await Deno.mkdir(dir, { recursive: true });
          const summary = await runGenerate(model, i, s, {
            out: dir,
            ...pre.control,
            stopper,
            options: { ...options, class: String(i) },
            about,
            label: `class ${i}${m.categories ? ` (${m.categories[i]})` : ""}`,
            tag: variant.tag,
          }, state.kind === "snapshot" ? state.resume : undefined);
          summaries.push(summary);
          if (bySignal(summary.stopReason)) sigint = true;
        }
        if (multi) {
          await writeClassGrid(out, m, indices, summaries, {
            command: "generate",
            options,
            ...about,
            settings: s,
          });
        }
        printClasses(out, summaries, indices.length);
        return sigint ? EXIT_INTERRUPTED : 0;
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
