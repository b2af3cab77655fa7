/**
 * The essay as one array job around `planTasks` and {@linkcode readTasks}
 * (run.ts): the job of an emitted task list (src/grid/array.ts writes its
 * files), the command line a task runs, and the budget and experiments an
 * emitted array was planned for (what its report must use); the plan step
 * that emits it ({@linkcode emitEssay}) and the task a cluster task picks
 * ({@linkcode essayTask}). The command line's words (a task's own command,
 * the report's, the option an index came from) are the caller's.
 *
 * @module
 */
import {
  type ArrayTask,
  type TaskArrayJob,
  writeTaskArray,
  type WrittenTaskArray,
} from "../grid/array.ts";
import type { EmitKind, JobTarget, TaskResources } from "../grid/emit.ts";
import { invocationArgs } from "../grid/invocation.ts";
import { usage } from "../run/settings.ts";
import type { BudgetName } from "./budgets.ts";
import {
  type EssayOptions,
  type EssayTask,
  type EssayTasks,
  planTasks,
  readTasks,
  taskCall,
} from "./run.ts";

export type {
  ArrayTask,
  EmitKind,
  JobTarget,
  TaskArrayJob,
  TaskResources,
  WrittenTaskArray,
};

/** The name of the essay's array job (Slurm), and of the volume holding OUT by default (Kubernetes). */
export const ESSAY_JOB = "vitrep-essay";

/**
 * The essay's array job (for `writeTaskArray` of src/grid/array.ts) of the
 * tasks `t` emitted into `out` (written by `planTasks`, run.ts): a task per
 * grid cell, grouped by experiment, each with its own time limit and memory
 * from its estimate; pods mount the volume at `/essay`. `report` is the
 * command that writes the report once the array is done, `args` a task's
 * command after `mod.ts` with OUT at `dir` (its index is appended).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { essayArray } from "./tasks.ts";
 * const task = { experiment: "vit_depth", cell: 0, what: "intact × layer 1", steps: 30, seconds: 60, peakMiB: 900 };
 * const tasks = [{ index: 0, ...task }, { index: 1, ...task, cell: 1 }];
 * const job = essayArray("/e", { format: "vitrep-essay-tasks/1", budget: "smoke", only: [], tasks }, {
 *   report: "echo report",
 *   args: (dir) => ["essay", dir],
 * });
 * assert.equal(job.name, "vitrep-essay");
 * assert.equal(job.k8sName, "vitrep-essay-smoke");
 * assert.deepEqual(job.tasks.map((x) => x.group), ["vit_depth", "vit_depth"]);
 * assert.match(job.about[0], /2 tasks over 1 experiments/);
 * ```
 */
export function essayArray(
  out: string,
  t: EssayTasks,
  o: { report: string; args(dir: string): string[] },
): TaskArrayJob {
  const n = t.tasks.length;
  const hours = t.tasks.reduce((a, x) => a + x.seconds, 0) / 3600;
  const about = [
    `vitrep essay, budget ${t.budget}: ${n} tasks over ${
      new Set(t.tasks.map((x) => x.experiment)).size
    } experiments, one per grid cell (the filters command one), about ${
      hours.toFixed(hours < 1 ? 3 : 1)
    } hours on 2 cores in all;`,
    `${out}/tasks.json maps each task to its experiment, cell and estimate.`,
  ];
  return {
    out,
    tasks: t.tasks.map((x) => ({ ...x, group: x.experiment })),
    name: ESSAY_JOB,
    k8sName: `${ESSAY_JOB}-${t.budget}`,
    about,
    report: o.report,
    groupWord: "experiment",
    args: o.args,
    mount: "/essay",
  };
}

/**
 * The command line (after `mod.ts`) that task `t` of the array emitted into
 * `out` runs: its typed command's ({@linkcode taskCall}), or the command line
 * a task list of an earlier version holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskArgs } from "./tasks.ts";
 * const t = { index: 0, experiment: "vit_depth", cell: 3, what: "intact × layer 12", steps: 30, seconds: 9, peakMiB: 2000 };
 * assert.deepEqual(taskArgs(t, "/e").slice(0, 1), ["grid"]);
 * const old = { ...t, cell: null, args: ["condition", "x"] };
 * assert.deepEqual(taskArgs(old, "/e"), ["condition", "x"]);
 * ```
 */
export function taskArgs(t: EssayTask, out: string): readonly string[] {
  return t.cell === null && !t.call && t.args
    ? t.args
    : invocationArgs(taskCall(t, out));
}

/**
 * The budget and experiments of the array emitted into `out`: null when it
 * holds no task list, or none that reads (a report then goes by what it is
 * given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emittedSelection } from "./tasks.ts";
 * assert.equal(await emittedSelection(await Deno.makeTempDir()), null);
 * ```
 */
export async function emittedSelection(
  out: string,
): Promise<{ budget: BudgetName; only: string[] } | null> {
  const t = await readTasks(out).catch(() => null);
  return t && { budget: t.budget, only: t.only };
}

/** The job file {@linkcode emitEssay} writes, and the command lines it holds. */
export interface EssayJobFile {
  /** Slurm or Kubernetes. */
  kind: EmitKind;
  /** The resources given (each task's own time limit and memory unless given). */
  resources: Partial<TaskResources>;
  /** The job's name, image, volume and Deno. */
  target: JobTarget;
  /** The command that writes the report once the array is done. */
  report: string;
  /** A task's command after `mod.ts` with OUT at `dir` (its index is appended). */
  args(dir: string): string[];
}

/** What {@linkcode emitEssay} wrote. */
export interface EmittedEssay {
  /** `OUT/tasks.json`'s task list. */
  tasks: EssayTasks;
  /** The job files. */
  written: WrittenTaskArray;
}

/**
 * The essay as one array job: every grid of `o` planned into
 * `OUT/cells/<experiment>/` (`planTasks`, run.ts), `OUT/tasks.json`, and the
 * job files of {@linkcode essayArray}; runs no cell. Null when no experiment
 * of the budget can run with the models at hand (nothing is emitted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUDGETS, emitEssay } from "./mod.ts";
 * const out = await Deno.makeTempDir();
 * const env = { models: new Map(), root: out, weights: [], image: "assets/chelsea.png" };
 * const job = {
 *   kind: "slurm" as const, report: "echo report", args: (dir: string) => ["essay", dir],
 *   resources: {}, target: { deno: "deno", image: "vitrep:latest", claim: "v" },
 * };
 * const run = () => Promise.resolve(0);
 * assert.equal(await emitEssay({ out, budget: BUDGETS.smoke, env, run }, job), null);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function emitEssay(
  o: EssayOptions,
  job: EssayJobFile,
): Promise<EmittedEssay | null> {
  const tasks = await planTasks(o);
  if (tasks.tasks.length === 0) return null;
  const array = essayArray(o.out, tasks, job);
  const written = await writeTaskArray(
    job.kind,
    array,
    job.resources,
    job.target,
  );
  return { tasks, written };
}

/** A task of an emitted array, picked by {@linkcode essayTask}. */
export interface PickedTask {
  /** Its index. */
  index: number;
  /** The task. */
  task: EssayTask;
  /** Its command line after `mod.ts` ({@linkcode taskArgs}). */
  args: readonly string[];
}

/**
 * Task `text` (an index as given, e.g. `$SLURM_ARRAY_TASK_ID`) of the array
 * emitted into `out`; null when `out` holds no task list. An index outside
 * the list is a usage error naming `option`, where it came from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { essayTask } from "./tasks.ts";
 * assert.equal(await essayTask(await Deno.makeTempDir(), "0", "the index"), null);
 * ```
 */
export async function essayTask(
  out: string,
  text: string,
  option: string,
): Promise<PickedTask | null> {
  const tasks = await readTasks(out);
  if (tasks === null) return null;
  const n = tasks.tasks.length;
  const i = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(i < n)) {
    throw usage(
      new RangeError(
        `Invalid ${option} "${text}": expected a task index 0..${
          n - 1
        } of ${out}/tasks.json`,
      ),
    );
  }
  const task = tasks.tasks[i];
  return { index: i, task, args: taskArgs(task, out) };
}
