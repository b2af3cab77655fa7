/**
 * A generation as a run: its typed settings, its harness task (trace rows,
 * progress text), the files it writes and its summary; {@linkcode runGenerate}
 * is the path shared by `generate` and grid cells. Settings come typed
 * (src/cli/generate.ts parses them).
 *
 * @module
 */
import type { Model } from "../model/mod.ts";
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
import { LIMITS, type RunOptions, type SavedTypes } from "./settings.ts";
import { intOpt, numOpt, scheduleSettings, stepsOpt } from "./read.ts";
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
