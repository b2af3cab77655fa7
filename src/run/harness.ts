/**
 * The run lifecycle (src/run): the one run harness of `invert`, `generate`
 * (and grid cells). A command supplies its trace row, its progress text and a
 * function that starts the library procedure with an `onStep`; the harness
 * records the run's start as a snapshot at step 0 (so `--resume` restarts a
 * run killed before its first snapshot exactly), keeps the trace, reports
 * progress, writes `--save-every` snapshots, stops on Ctrl-C, SIGTERM or
 * `--stop-at` (and snapshots there), records a divergence the
 * library's guard reports (non-finite or exploded) as the run's outcome, and
 * writes the final files as one set with metrics.json last.
 *
 * @module
 */
import {
  encodeNpy,
  type FileData,
  type Row,
  toCsv,
  writeAtomic,
  writeFiles,
  writeJson,
} from "../io/mod.ts";
import { DivergedError } from "../optimize/mod.ts";
import type { RunOptions } from "./settings.ts";
import { progress, type Stopper } from "./progress.ts";
import {
  recoverSnapshot,
  removeSnapshot,
  saveSnapshot,
  SNAPSHOT_DIR,
} from "./snapshot.ts";

/** How a run is driven: where it writes, how often, and what it records. */
export interface Control {
  /** Output folder of this run. */
  out: string;
  quiet: boolean;
  saveEvery: number;
  stopAt: number | null;
  traceEvery: number;
  stopper: Stopper;
  /** Saved options for the snapshot and metrics.json. */
  options: RunOptions;
  /** Model and run description for metrics.json. */
  about: Record<string, unknown>;
  /** Progress-bar label. */
  label: string;
  /** The model variant (ablations, swaps) for figure labels; "" for none. */
  tag?: string;
}

/** Why a run stopped early: Ctrl-C (or an abort), SIGTERM, --stop-at, or not at all. */
export type StopReason = null | "SIGINT" | "SIGTERM" | "stop-at";

/**
 * Whether a run stopped for a signal (Ctrl-C, SIGTERM): the command then
 * exits with EXIT_INTERRUPTED (a `--stop-at` stop is a success).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bySignal } from "./harness.ts";
 * assert.equal(bySignal("SIGTERM"), true);
 * assert.equal(bySignal("stop-at"), false);
 * assert.equal(bySignal(null), false);
 * ```
 */
export function bySignal(reason: StopReason): boolean {
  return reason === "SIGINT" || reason === "SIGTERM";
}

/** Whether the run stops before step `next` of `steps`, and why. */
export function stopReason(
  ctl: Control,
  next: number,
  steps: number,
): StopReason {
  if (next >= steps) return null;
  if (ctl.stopper.requested) return ctl.stopper.signal ?? "SIGINT";
  if (ctl.stopAt !== null && next >= ctl.stopAt) return "stop-at";
  return null;
}

/**
 * Every k-th row and the last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { thin } from "./harness.ts";
 * const rows = [0, 1, 2, 3, 4].map((step) => ({ step }));
 * assert.ok(thin(rows, 2).map((r) => r.step).join() === "0,2,4");
 * assert.ok(thin(rows.slice(0, 4), 2).map((r) => r.step).join() === "0,2,3");
 * ```
 */
export function thin(rows: readonly Row[], k: number): Row[] {
  const last = rows.at(-1)?.step;
  return rows.filter((r) => (r.step as number) % k === 0 || r.step === last);
}

/** Where a run continues from: a snapshot's image, step and trace rows. */
export interface Resume {
  image: Float32Array;
  step: number;
  rows: Row[];
  /** The folder resumed from (absolute). */
  from: string;
}

/** What the library reports per step, as the harness needs it. */
export interface StepLike {
  step: number;
  steps: number;
  /** The image after this step (model-sized, or a canvas). */
  image: Float32Array;
}

/** What a command adds to the harness. */
export interface Task<I extends StepLike> {
  command: "invert" | "generate";
  /** traces.csv's columns. */
  columns: readonly string[];
  /** Columns that may be empty (null). */
  nullable?: readonly string[];
  /** The image the first step starts from (`before` of the first row). */
  start: Float32Array;
  /** The trace row of a step; `before` is the image before it. */
  row(info: I, before: Float32Array): Row;
  /** Progress text after a step (measured before that step's update). */
  status(info: I): string;
  /** The progress report's last line: the final evaluation of the library's result, as the table and metrics.json give it. */
  final?(result: unknown): string;
  /** Extra fields of the snapshot's state (e.g. the criterion step). */
  state?(): Record<string, unknown>;
  /** The settings part of metrics.json. */
  settings: Record<string, unknown>;
}

/** What a harnessed run gives the command. */
export interface Harnessed<R> {
  result: R;
  /** Every trace row, resumed ones included. */
  rows: Row[];
  /** The rows traces.csv holds (every --trace-every-th and the last). */
  written: Row[];
  reason: StopReason;
  interrupted: boolean;
  /** Seconds this process ran. */
  seconds: number;
  /**
   * Whether the folder's snapshot is still the start record (step 0), which
   * {@linkcode finish} removes once a finished run's files are written.
   */
  startRecord: boolean;
}

/** Options passed to the library procedure. */
export interface Drive<I> {
  resume?: { image: Float32Array; step: number };
  onStep: (info: I) => Promise<boolean>;
}

/**
 * A square [1, 3, S, S] shape for an image of 3·S² values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { squareShape } from "./harness.ts";
 * assert.ok(squareShape(new Float32Array(3 * 32 * 32)).join() === "1,3,32,32");
 * ```
 */
export function squareShape(data: Float32Array): number[] {
  const side = Math.round(Math.sqrt(data.length / 3));
  return [1, 3, side, side];
}

/**
 * One run under the harness, step by step: what {@linkcode harness} drives
 * with one library call, and a batch drives one per image (each image its
 * own folder, trace, snapshots and outcome).
 */
export interface RunSession<I> {
  /** Where the library procedure starts from (a resumed run's image and step). */
  resume?: { image: Float32Array; step: number };
  /** The library's onStep: records the step; false stops the run. */
  onStep(info: I): Promise<boolean>;
  /**
   * Records a divergence (snapshot and metrics.json) when `err` is one; `pick`
   * takes this run's image out of the error's (a batch's) image.
   */
  fail(
    err: unknown,
    pick?: (image: Float32Array) => Float32Array,
  ): Promise<void>;
  /** Ends the run: a snapshot when it stopped early; what the command writes from. */
  close<R>(result: R): Promise<Harnessed<R>>;
}

/**
 * Opens a run (see {@linkcode RunSession}). The caller holds `ctl.out` (its
 * lock, or its parent's): temporaries there are removed, and a run without
 * `resume` replaces an old snapshot by the record of its start: a snapshot at
 * step 0 holding its options and start image, so that `--resume` restarts it
 * exactly when it is killed before its first `--save-every` snapshot.
 */
export async function openRun<I extends StepLike>(
  ctl: Control,
  task: Task<I>,
  resume: Resume | undefined,
): Promise<RunSession<I>> {
  // temporaries a killed writer left go; a new run starts without a snapshot
  await recoverSnapshot(ctl.out);
  // the step of the snapshot in the folder (null: none)
  let saved = resume ? resume.step : null;
  if (!resume) {
    await removeSnapshot(ctl.out);
    await saveSnapshot(ctl.out, {
      command: task.command,
      step: 0,
      options: ctl.options,
      ...task.state?.(),
    }, {
      image: task.start,
      shape: squareShape(task.start),
      traces: toCsv(task.columns, []),
    });
    saved = 0;
  }
  const rows: Row[] = resume
    ? resume.rows.filter((r) => (r.step as number) < resume.step)
    : [];
  let prev = resume ? resume.image : task.start;
  let reason = null as StopReason;
  let last = { image: prev, step: resume?.step ?? 0 };
  const bar = progress(ctl.label, ctl.quiet);
  const started = performance.now();
  const traces = () => toCsv(task.columns, thin(rows, ctl.traceEvery));
  const snapshot = async (image: Float32Array, step: number) => {
    const text = traces();
    await saveSnapshot(ctl.out, {
      command: task.command,
      step,
      options: ctl.options,
      ...task.state?.(),
    }, { image, shape: squareShape(image), traces: text });
    await writeAtomic(`${ctl.out}/traces.csv`, text);
    saved = step;
  };
  return {
    resume: resume ? { image: resume.image, step: resume.step } : undefined,
    async onStep(info) {
      rows.push(task.row(info, prev));
      prev = info.image;
      bar.update(info.step, info.steps, task.status(info));
      const next = info.step + 1;
      last = { image: info.image, step: next };
      if (
        ctl.saveEvery > 0 && next % ctl.saveEvery === 0 && next < info.steps
      ) {
        await snapshot(info.image, next);
      }
      reason = stopReason(ctl, next, info.steps);
      return reason === null;
    },
    async fail(err, pick = (image) => image) {
      bar.done();
      if (!(err instanceof DivergedError)) return;
      await snapshot(pick(err.lastImage), err.step);
      const kind = err.kind;
      await writeJson(`${ctl.out}/metrics.json`, {
        ...metricsHead(ctl, task, resume, started),
        outcome: `${kind} at step ${err.step}`,
        error: err.message,
        interrupted: true,
        stopReason: kind,
        files: ["traces.csv", `${SNAPSHOT_DIR}/`],
      });
      console.error(
        `vitrep: kept the image before step ${err.step} in ${ctl.out}/${SNAPSHOT_DIR}/; continue with --resume ${ctl.out} and a lower --lr`,
      );
    },
    async close(result) {
      bar.done(task.final?.(result));
      const interrupted = reason !== null;
      if (interrupted) await snapshot(last.image, last.step);
      return {
        result,
        rows,
        written: thin(rows, ctl.traceEvery),
        reason,
        interrupted,
        seconds: (performance.now() - started) / 1000,
        startRecord: saved === 0,
      };
    },
  };
}

/**
 * Runs the library procedure `start` under the harness: trace, progress,
 * snapshots, stops and the divergence record (see the module doc and
 * {@linkcode openRun}).
 */
export async function harness<I extends StepLike, R>(
  ctl: Control,
  task: Task<I>,
  resume: Resume | undefined,
  start: (drive: Drive<I>) => Promise<R>,
): Promise<Harnessed<R>> {
  const run = await openRun(ctl, task, resume);
  let result: R;
  try {
    result = await start({ resume: run.resume, onStep: run.onStep });
  } catch (err) {
    await run.fail(err);
    throw err;
  }
  return run.close(result);
}

/** The fields every metrics.json of a run starts with. */
function metricsHead<I extends StepLike>(
  ctl: Control,
  task: Task<I>,
  resume: Resume | undefined,
  started: number,
): Record<string, unknown> {
  return {
    command: task.command,
    options: ctl.options,
    ...ctl.about,
    settings: task.settings,
    resumedFrom: resume ? { dir: resume.from, step: resume.step } : null,
    seconds: (performance.now() - started) / 1000,
  };
}

/** An npy file of a square image for {@linkcode finish}. */
export function npyFile(name: string, data: Float32Array): FileData {
  return { name, data: encodeNpy(data, squareShape(data)) };
}

/**
 * Writes a finished (or stopped) run's files and its metrics.json as one set
 * (metrics.json last): `metrics` holds the command's own fields (final
 * figures, outcome); the common ones (command, options, model, settings,
 * resume, time, files) are added. A finished run's start record (a snapshot
 * still at step 0) goes once they are written.
 */
export async function finish<I extends StepLike, R>(
  ctl: Control,
  task: Task<I>,
  run: Harnessed<R>,
  resume: Resume | undefined,
  files: readonly FileData[],
  metrics: Record<string, unknown>,
): Promise<void> {
  const traces = { name: "traces.csv", data: toCsv(task.columns, run.written) };
  const all = [...files, traces];
  const record = {
    command: task.command,
    options: ctl.options,
    ...ctl.about,
    settings: task.settings,
    ...metrics,
    interrupted: run.interrupted,
    stopReason: run.reason,
    resumedFrom: resume ? { dir: resume.from, step: resume.step } : null,
    seconds: run.seconds,
    files: [
      ...all.map((f) => f.name),
      ...(run.interrupted ? [`${SNAPSHOT_DIR}/`] : []),
    ],
  };
  await writeFiles(ctl.out, [
    ...all,
    { name: "metrics.json", data: JSON.stringify(record, null, 2) + "\n" },
  ]);
  if (!run.interrupted && run.startRecord) await removeSnapshot(ctl.out);
}
