/**
 * Internal to the command line (src/cli.ts): the `generate` command (input
 * generation for one class or a grid of classes), on one shared path,
 * {@linkcode runGenerate}, that `grid` uses too.
 *
 * @module
 */
import {
  npyBytes,
  readRegularFile,
  readRegularText,
  RECORD_BYTES,
} from "../io/mod.ts";
import { resolve as resolvePath } from "node:path";
import { type Manifest, type Model, resolveClass } from "../model/mod.ts";
import {
  decodeNpy,
  encodePng,
  type ImageTensor,
  type Row,
  writeFiles,
} from "../io/mod.ts";
import { type LinePlotOptions, montage } from "../figures/mod.ts";
import { plotFiles } from "./invert.ts";
import {
  generate,
  GENERATE_DEFAULTS,
  type GenerateResult,
  type GenerateStepInfo,
  randomStart,
} from "../optimize/mod.ts";
import type { Schedule } from "../optimize/mod.ts";
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
  SCHEDULE_OPTS,
  scheduleSettings,
  type Spec,
  stepsOpt,
  str,
  usage,
  VARIANT_OPTS,
  withModelDefaults,
} from "./options.ts";
import { canonicalModel, modelAbout, openModel } from "./model.ts";
import { imageOf, labelledRow } from "./io.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import {
  bySignal,
  type Control,
  finish,
  harness,
  npyFile,
  type Resume,
  type StopReason,
  type Task,
} from "../run/harness.ts";
import {
  hasSnapshot,
  readSnapshotState,
  saveSnapshot,
  type Snapshot,
} from "../run/snapshot.ts";
import { inOut, type Prelude, prelude, readResume } from "../run/run.ts";

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

/** Typed settings of one generation. */
export interface GenerateSettings {
  constant: number;
  steps: number;
  jitterAfter: number;
  canvasSize: number;
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
  normalize: boolean;
  seed: number;
}

/** Final figures of a generate run, with its image. */
export interface GenerateSummary {
  index: number;
  name: string;
  logit: number;
  probability: number;
  steps: number;
  interrupted: boolean;
  stopReason: StopReason;
  image: Float32Array;
}

/** The columns of a generate run's traces.csv. */
export const GENERATE_COLUMNS: readonly string[] = [
  "step",
  "loss",
  "logit",
  "probability",
  "lr",
  "sigma",
  "crop_y",
  "crop_x",
];

/** The trace columns empty before the jitter phase. */
export const GENERATE_NULLABLE: readonly string[] = ["crop_y", "crop_x"];

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

/** Where a generation continues from. */
export type GenerateResume = Resume;

/** The harness task of a generation: its trace row and progress text. */
function generateTask(
  index: number,
  s: GenerateSettings,
  size: number,
  resume?: GenerateResume,
): Task<GenerateStepInfo> {
  return {
    command: "generate",
    columns: GENERATE_COLUMNS,
    nullable: GENERATE_NULLABLE,
    start: resume ? resume.image : randomStart(3 * size * size, s.seed),
    settings: { ...s, index },
    row: (info) => ({
      step: info.step,
      loss: info.loss,
      logit: info.logit,
      probability: info.probability,
      lr: info.lr,
      sigma: info.sigma,
      crop_y: info.crop?.[0] ?? null,
      crop_x: info.crop?.[1] ?? null,
    }),
    status: (info) =>
      `logit ${info.logit.toPrecision(4)} p ${info.probability.toPrecision(3)}`,
    // as the table prints it: the image after the last step's update
    final: (result) => {
      const f = (result as GenerateResult).final;
      return `final logit ${f.logit.toFixed(3)} p ${f.probability.toFixed(4)}`;
    },
  };
}

/** The logit/probability plot of a generation's trace rows. */
function progressPlot(
  title: string,
  written: readonly Row[],
): LinePlotOptions {
  const steps = written.map((r) => r.step as number);
  return {
    title,
    xLabel: "step",
    yLabel: "logit",
    y2Label: "softmax probability",
    series: [
      { label: "logit", x: steps, y: written.map((r) => r.logit as number) },
      {
        label: "probability",
        x: steps,
        y: written.map((r) => r.probability as number),
        axis: "right",
      },
    ],
    y2Range: [0, 1],
  };
}

/** Runs one generation into `ctl.out` and writes all its files: the path shared by generate and grid. */
export async function runGenerate(
  model: Model,
  index: number,
  s: GenerateSettings,
  ctl: Control,
  resume?: GenerateResume,
): Promise<GenerateSummary> {
  const name = model.manifest.categories?.[index] ?? `class ${index}`;
  const size = model.manifest.image_size;
  const task = generateTask(index, s, size, resume);
  const run = await harness(
    ctl,
    task,
    resume,
    (drive) => generate(model, index, { ...s, ...drive }),
  );
  const result = run.result;
  const written = run.written;
  const summary: GenerateSummary = {
    index,
    name,
    logit: result.final.logit,
    probability: result.final.probability,
    steps: result.final.steps,
    interrupted: run.interrupted,
    stopReason: run.reason,
    image: result.image.data,
  };
  const title = `Class ${index} (${name})${ctl.tag ? `, ${ctl.tag}` : ""}`;
  await finish(
    ctl,
    { ...task, settings: { ...s, index, canvasSize: result.canvasSize } },
    run,
    resume,
    [
      { name: "generated.png", data: encodePng(result.image) },
      npyFile("generated.npy", result.image.data),
      ...(result.canvas
        ? [{ name: "canvas.png", data: encodePng(result.canvas) }]
        : []),
      ...plotFiles("progress", progressPlot(title, written)),
    ],
    {
      class: { index, name },
      final: {
        logit: result.final.logit,
        probability: result.final.probability,
        steps: result.final.steps,
      },
      outcome: run.interrupted
        ? `stopped at step ${result.final.steps}`
        : "completed",
      trace: {
        step: written.map((r) => r.step),
        logit: written.map((r) => r.logit),
        probability: written.map((r) => r.probability),
      },
    },
  );
  return summary;
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

/** What a class folder holds when resuming: done, a snapshot, or nothing. */
export async function classState(
  dir: string,
  index: number,
  size: number,
  canvas: number,
): Promise<ClassState> {
  try {
    const m = JSON.parse(
      await readRegularText(`${dir}/metrics.json`, RECORD_BYTES, "run record"),
    );
    if (m.interrupted === false && m.class?.index === index) {
      const img = decodeNpy(
        await readRegularFile(
          `${dir}/generated.npy`,
          npyBytes(canvas),
          "image",
        ),
      );
      return {
        kind: "done",
        summary: {
          index,
          name: m.class.name,
          logit: m.final.logit,
          probability: m.final.probability,
          steps: m.final.steps,
          interrupted: false,
          stopReason: null,
          image: img.data,
        },
      };
    }
  } catch {
    // not finished
  }
  if (await hasSnapshot(dir)) {
    const snap = await readSnapshotState(dir, "generate", {
      spec: GENERATE_SPEC,
    });
    return {
      kind: "snapshot",
      resume: await readResume(
        dir,
        snap,
        [size, canvas],
        GENERATE_COLUMNS,
        GENERATE_NULLABLE,
      ),
    };
  }
  return { kind: "fresh" };
}

/** See {@linkcode classState}. */
export type ClassState =
  | { kind: "done"; summary: GenerateSummary }
  | { kind: "snapshot"; resume: GenerateResume }
  | { kind: "fresh" };

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
      multi ? await classState(`${resumeDir}/class_${i}`, i, size, canvas) : {
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
  const { model, variant } = await openModel(pre.raw, source);
  try {
    const m = model.manifest;
    const check = (r: Raw) =>
      checkKernel(generateSettings(r, m.image_size).kernelSize, m.image_size);
    const recommended = recommendedOptions(
      m,
      "generate",
      GENERATE_SPEC,
      check,
      `${source}/manifest.json`,
    );
    const { raw, modelDefaults } = withModelDefaults(
      pre.raw,
      given,
      recommended,
      pre.snap?.options ?? null,
    );
    check(raw);
    const s = generateSettings(raw, m.image_size);
    const indices = resolveClasses(raw, m, given, pre.snap, pre.resumeDir);
    warnZeroHead(model, raw.quiet === true);
    const multi = indices.length > 1;
    const states = await resumeStates(pre, indices, m.image_size, s.canvasSize);
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
    return await inOut(out, claim, ctx, async (stopper) => {
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
    });
  } finally {
    await model.release();
  }
}

/** `generate`: input generation. */
export const GENERATE_COMMAND: Command = {
  about: "input generation: an image driving a class logit towards a constant",
  synopsis: "--class C [options]",
  spec: GENERATE_SPEC,
  run: generateCommand,
};
