/**
 * A generation as a run: its typed settings, its harness task (trace rows,
 * progress text), the files it writes and its summary; {@linkcode runGenerate}
 * is the path shared by `generate` and grid cells. Settings come typed
 * (src/cli/generate.ts parses them), refined once by the model's manifest
 * ({@linkcode refineGenerate}).
 *
 * @module
 */
import { type Manifest, type Model, resolveClass } from "../model/mod.ts";
import {
  decodeNpy,
  encodePng,
  npyBytes,
  readRegularFile,
  readRegularText,
  RECORD_BYTES,
  type Row,
} from "../io/mod.ts";
import { hasSnapshot, readSnapshotState } from "./snapshot.ts";
import { readResume } from "./run.ts";
import {
  asUsage,
  LIMITS,
  type RunOptions,
  type SavedTypes,
  usage,
} from "./settings.ts";
import {
  intOpt,
  kernelOpt,
  numOpt,
  schedOpt,
  scheduleSettings,
  stepsOpt,
  str,
} from "./read.ts";
import {
  checkCanvasSize,
  checkKernel,
  type FieldParser,
  type Refined,
  refineSettings,
  type Refining,
} from "./refine.ts";
import { modelKey } from "./models.ts";
import { canonicalModel } from "./model_options.ts";
import type { LinePlotOptions } from "../figures/mod.ts";
import { plotFiles } from "./invert.ts";
import {
  generate,
  type GenerateResult,
  type GenerateStepInfo,
  randomStart,
  type Schedule,
} from "../optimize/mod.ts";
import {
  type Control,
  finish,
  harness,
  npyFile,
  type Resume,
  type StopReason,
  type Task,
} from "./harness.ts";

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

/**
 * What a class folder holds when resuming: done (its summary and image), a
 * snapshot (its resume point; options checked against `saved`), or nothing.
 */
export async function classState(
  dir: string,
  index: number,
  size: number,
  canvas: number,
  saved?: SavedTypes,
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
    const snap = await readSnapshotState(dir, "generate", { saved });
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

/**
 * A generate run's typed settings from its options record (usage errors
 * naming the option; the canvas is checked against the model's size once the
 * model is known).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSettings } from "./generate.ts";
 * const raw = {
 *   constant: "100", steps: "10", "jitter-after": "2", canvas: "40",
 *   lr: "2:0", sigma: "1:0", "kernel-size": "1", seed: "0",
 * };
 * assert.equal(generateSettings(raw).canvasSize, 40);
 * assert.throws(() => generateSettings({ ...raw, steps: "0" }), /Invalid --steps "0"/);
 * ```
 */
export function generateSettings(raw: RunOptions): GenerateSettings {
  const canvasSize = intOpt(raw, "canvas", 1, LIMITS.canvas);
  return {
    constant: numOpt(raw, "constant"),
    steps: stepsOpt(raw, "steps", 1),
    jitterAfter: stepsOpt(raw, "jitter-after", 0),
    canvasSize,
    ...scheduleSettings(raw),
  };
}

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

/**
 * The one manifest-dependent refinement of a generate run's settings (read
 * once from its options): the model's recommended settings as defaults (see
 * refineSettings), the canvas and the blur kernel checked against its image
 * size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { generateSettings, refineGenerate } from "./generate.ts";
 * const source = "weights/fmnist_vit";
 * const file = `${source}/manifest.json`;
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * m.recommended = { generate: { canvas: 40 } };
 * const options = {
 *   constant: "100", steps: "10", "jitter-after": "2", canvas: "64",
 *   lr: "2:0", sigma: "1:0", "kernel-size": "1", seed: "0",
 * };
 * const run = { settings: generateSettings(options), options, given: {}, resumed: null, source };
 * assert.equal(refineGenerate(run, m).settings.canvasSize, 40);
 * const small = { ...options, canvas: "8" };
 * assert.throws(
 *   () => refineGenerate({ ...run, options: small, settings: generateSettings(small), given: { canvas: "8" } }, m),
 *   /Invalid --canvas "8"/,
 * );
 * ```
 */
export function refineGenerate(
  run: Refining<GenerateSettings>,
  m: Manifest,
): Refined<GenerateSettings> {
  const size = m.image_size;
  const r = refineSettings({
    ...run,
    manifest: m,
    command: "generate",
    field: generateField(size),
    file: `${run.source}/manifest.json`,
  });
  checkCanvasSize(r.settings.canvasSize, str(r.options, "canvas"), size);
  checkKernel(r.settings.kernelSize, size);
  return r;
}

/** A resumed generation's classes, which `--class` (given again) must repeat. */
export interface ResumedClasses {
  /** `--class` as given. */
  given: string;
  /** The snapshot's class indices, comma-separated. */
  before: string;
  /** The folder resumed. */
  dir: string;
}

/**
 * The class indices of `queries` (each an index or a unique part of a class
 * name; duplicates once), checked against a resumed run's (a usage error
 * naming `--class` otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { resolveClasses } from "./generate.ts";
 * const file = "weights/fmnist_vit/manifest.json";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * assert.deepEqual(resolveClasses(["1", "2", "1"], m), [1, 2]);
 * assert.throws(
 *   () => resolveClasses(["3"], m, { given: "3", before: "1", dir: "out/g" }),
 *   /Invalid --class "3" with --resume: the snapshot in "out\/g" is of class 1/,
 * );
 * ```
 */
export function resolveClasses(
  queries: readonly string[],
  m: Manifest,
  resumed?: ResumedClasses,
): number[] {
  const indices = [
    ...new Set(
      queries.map((q) =>
        asUsage(() => resolveClass(q, m.categories, m.num_classes))
      ),
    ),
  ];
  if (resumed !== undefined && indices.join(",") !== resumed.before) {
    throw usage(
      new RangeError(
        `Invalid --class "${resumed.given}" with --resume: the snapshot in "${resumed.dir}" is of class ${resumed.before}; leave --class out to continue that run`,
      ),
    );
  }
  return indices;
}

/**
 * A generate run's refinement by its model's manifest (see
 * {@linkcode refineGenerate}) with its classes (see
 * {@linkcode resolveClasses}) and the options record it keeps: `keep`'s
 * selection of the refined options, the class indices and the model's key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { generateRefinement, generateSettings } from "./generate.ts";
 * const source = "weights/fmnist_vit";
 * const file = `${source}/manifest.json`;
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * const options = {
 *   model: "fmnist_vit", constant: "100", steps: "10", "jitter-after": "2",
 *   canvas: "40", lr: "2:0", sigma: "1:0", "kernel-size": "1", seed: "0",
 * };
 * const run = { settings: generateSettings(options), options, given: {}, resumed: null, source };
 * const r = generateRefinement(run, ["2", "1"], (o) => ({ steps: o.steps }))(m);
 * assert.deepEqual(r.indices, [2, 1]);
 * // fmnist_vit's manifest recommends 300 steps; --steps was not given
 * assert.deepEqual(r.options, { steps: "300", class: "2,1", model: "fmnist_vit" });
 * assert.equal(r.settings.steps, 300);
 * ```
 */
export function generateRefinement(
  run: Refining<GenerateSettings>,
  queries: readonly string[],
  keep: (options: RunOptions) => RunOptions,
  resumed?: ResumedClasses,
): (m: Manifest) => Refined<GenerateSettings> & { indices: number[] } {
  return (m) => {
    const { settings, options: raw, modelDefaults } = refineGenerate(run, m);
    const indices = resolveClasses(queries, m, resumed);
    const options = {
      ...keep(raw),
      class: indices.join(","),
      model: modelKey(str(raw, "model")),
    };
    return { settings, indices, options, modelDefaults };
  };
}

/**
 * The options that fix a generate run's result, for --resume checks: the
 * model's (see canonicalModel), the constant, the jitter step, the canvas.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalGenerate } from "./generate.ts";
 * const raw = { model: "fmnist_vit", weights: "untrained", seed: "0", constant: "100", "jitter-after": "2", canvas: "40" };
 * assert.equal(canonicalGenerate(raw).canvas, 40);
 * assert.equal(canonicalGenerate({ ...raw, constant: "1e2" }).constant, 100);
 * ```
 */
export function canonicalGenerate(raw: RunOptions): Record<string, unknown> {
  return {
    ...canonicalModel(raw),
    constant: Number(str(raw, "constant")),
    "jitter-after": Number(str(raw, "jitter-after")),
    canvas: Number(str(raw, "canvas")),
  };
}
