/**
 * An array of tasks of different sizes (e.g. every grid cell of every
 * experiment of the essay) as one cluster job: each task's time limit from
 * its own estimate ({@linkcode arrayResources}), a table of the tasks by
 * group ({@linkcode taskTable}), and the job files ({@linkcode writeTaskArray}:
 * `OUT/job.sbatch` with `OUT/submit.sh`, which gives each Slurm task its own
 * limits, or `OUT/job.yaml`, a Kubernetes Indexed Job). What the tasks run
 * and what is printed are the caller's.
 *
 * @module
 */
import { writeAtomic } from "../io/mod.ts";
import {
  type EmitKind,
  indexedJob,
  type JobTarget,
  slurmArray,
  submitScript,
  TASK_LIMITS,
  type TaskLimit,
  type TaskResources,
  toYaml,
} from "./emit.ts";

/** One task of an array: its index, its group (e.g. its experiment) and estimates. */
export interface ArrayTask {
  /** Its index in the array (`SLURM_ARRAY_TASK_ID`, `JOB_COMPLETION_INDEX`). */
  index: number;
  /** The group it belongs to, e.g. its experiment; a group's tasks are consecutive. */
  group: string;
  /** Estimated seconds on 2 cores. */
  seconds: number;
  /** Estimated peak memory, MiB. */
  peakMiB: number;
}

/**
 * A duration for people: seconds, minutes or hours, one decimal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { durationText } from "./array.ts";
 * assert.equal(durationText(42), "42 s");
 * assert.equal(durationText(90), "1.5 min");
 * assert.equal(durationText(5400), "1.5 h");
 * ```
 */
export function durationText(s: number): string {
  return s >= 3600
    ? `${(s / 3600).toFixed(1)} h`
    : s >= 60
    ? `${(s / 60).toFixed(1)} min`
    : `${s.toFixed(0)} s`;
}

/** Minutes a task may take: twice its estimate (seconds on 2 cores) on `cpus` cores, plus 5, at most TASK_LIMITS.minutes. */
function taskMinutes(seconds: number, cpus: number): number {
  return Math.min(
    Math.ceil((2 * 2 * seconds) / cpus / 60) + 5,
    TASK_LIMITS.minutes,
  );
}

/** What an array's tasks ask for: the array's resources (the largest) and each task's own. */
export interface ArrayResources {
  /** The array's: its time limit and memory the largest of any task. */
  resources: TaskResources;
  /** Each task's own limits, by index. */
  limits: TaskLimit[];
}

/**
 * The resources of an array: `given`, else estimated — each task's time
 * limit twice its estimate on `cpus` cores plus 5 minutes, its memory its
 * peak; the array's limits the largest of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrayResources } from "./array.ts";
 * const tasks = [
 *   { index: 0, group: "a", seconds: 60, peakMiB: 300 },
 *   { index: 1, group: "b", seconds: 3000, peakMiB: 900 },
 * ];
 * const r = arrayResources(tasks, {});
 * assert.deepEqual(r.limits, [{ minutes: 7, memMiB: 300 }, { minutes: 105, memMiB: 900 }]);
 * assert.deepEqual(r.resources, { cpus: 2, parallel: 4, memMiB: 900, minutes: 105, saveEvery: 0 });
 * assert.equal(arrayResources(tasks, { minutes: 30 }).resources.minutes, 30);
 * ```
 */
export function arrayResources(
  tasks: readonly ArrayTask[],
  given: Partial<TaskResources>,
): ArrayResources {
  const cpus = given.cpus ?? 2;
  const minutes = tasks.map((x) =>
    given.minutes ?? taskMinutes(x.seconds, cpus)
  );
  const resources: TaskResources = {
    cpus,
    parallel: given.parallel ?? 4,
    memMiB: given.memMiB ??
      Math.min(Math.max(...tasks.map((x) => x.peakMiB)), TASK_LIMITS.memMiB),
    minutes: Math.max(...minutes),
    saveEvery: 0,
  };
  const limits = tasks.map((x, i) => ({
    minutes: minutes[i],
    memMiB: given.memMiB ?? Math.min(x.peakMiB, resources.memMiB),
  }));
  return { resources, limits };
}

const indexSpan = (xs: number[]) =>
  xs.length === 1 ? `${xs[0]}` : `${xs[0]}-${xs[xs.length - 1]}`;

/**
 * Per-group lines of an array's task table: index range, group, tasks,
 * estimate, time limits (`minutes` by index).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskTable } from "./array.ts";
 * const tasks = [0, 1, 2].map((index) => ({ index, group: index < 2 ? "depth" : "filters", seconds: 60, peakMiB: 1 }));
 * assert.deepEqual(taskTable(tasks, [7, 9, 7]), [
 *   "  0-1     depth              2 task(s), 2.0 min estimated, limit 7-9 min",
 *   "  2       filters            1 task(s), 1.0 min estimated, limit 7 min",
 * ]);
 * ```
 */
export function taskTable(
  tasks: readonly ArrayTask[],
  minutes: readonly number[],
): string[] {
  const ids = [...new Set(tasks.map((x) => x.group))];
  return ids.map((id) => {
    const mine = tasks.filter((x) => x.group === id);
    const ms = mine.map((x) => minutes[x.index]);
    const [lo, hi] = [Math.min(...ms), Math.max(...ms)];
    return `  ${indexSpan(mine.map((x) => x.index)).padEnd(7)} ${
      id.padEnd(18)
    } ${mine.length} task(s), ${
      durationText(mine.reduce((a, x) => a + x.seconds, 0))
    } estimated, limit ${lo === hi ? `${lo}` : `${lo}-${hi}`} min`;
  });
}

/** An array of tasks as one job: what each task runs and what the job files say. */
export interface TaskArrayJob {
  /** OUT: the folder of the job files and of `logs/`, shared by every task. */
  out: string;
  /** The tasks, in index order. */
  tasks: readonly ArrayTask[];
  /** The Slurm job's name, e.g. `vitrep-essay`. */
  name: string;
  /** The Kubernetes Job's name (a DNS label). */
  k8sName: string;
  /** Lines about the array atop the job files, without `# `. */
  about: readonly string[];
  /** The command that gathers the array's results once it is done. */
  report: string;
  /** What a group is called in the job file's table, e.g. `experiment`. */
  groupWord: string;
  /** A task's command after `mod.ts` with OUT at `dir`; its index is appended. */
  args(dir: string): string[];
  /** Where a pod mounts the volume holding OUT, e.g. `/essay`. */
  mount: string;
}

/** What {@linkcode writeTaskArray} wrote and asked for. */
export interface WrittenTaskArray {
  /** The job file: `OUT/job.sbatch` (with `OUT/submit.sh`) or `OUT/job.yaml`. */
  path: string;
  /** The array's resources and each task's limits. */
  resources: TaskResources;
  /** Each task's time limit, minutes, by index. */
  minutes: number[];
  /** The task table ({@linkcode taskTable}). */
  table: string[];
  /** One line: tasks, CPUs, memory, time limits, concurrency. */
  summary: string;
}

/**
 * Writes the job files of `kind` for the array `job`, its tasks asking for
 * `given` resources (the rest from their estimates: {@linkcode arrayResources})
 * and running on `target`: `OUT/job.sbatch` and `OUT/submit.sh` (each task its
 * own time limit and memory), or `OUT/job.yaml` (Kubernetes has no per-index
 * time limit: every pod gets the largest).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeTaskArray } from "./array.ts";
 * const out = await Deno.makeTempDir();
 * const w = await writeTaskArray("slurm", {
 *   out, name: "vitrep-x", k8sName: "vitrep-x", about: ["two tasks"], report: "echo done",
 *   groupWord: "group", mount: "/x", args: (dir) => ["essay", "--out", dir, "--task"],
 *   tasks: [
 *     { index: 0, group: "a", seconds: 60, peakMiB: 300 },
 *     { index: 1, group: "a", seconds: 3000, peakMiB: 900 },
 *   ],
 * }, {}, { deno: "deno", image: "vitrep:latest", claim: "v" });
 * assert.equal(w.path, `${out}/job.sbatch`);
 * assert.match(Deno.readTextFileSync(w.path), /^#SBATCH --array=0-1%4$/m);
 * assert.match(Deno.readTextFileSync(`${out}/submit.sh`), /TimeLimit=0-00:07:00 MinMemoryNode=300/);
 * ```
 */
export async function writeTaskArray(
  kind: EmitKind,
  job: TaskArrayJob,
  given: Partial<TaskResources>,
  target: JobTarget,
): Promise<WrittenTaskArray> {
  const { out, tasks } = job;
  const { resources: r, limits } = arrayResources(tasks, given);
  const minutes = limits.map((l) => l.minutes);
  const table = taskTable(tasks, minutes);
  const lo = Math.min(...minutes);
  const summary =
    `${tasks.length} tasks, ${r.cpus} CPU(s), up to ${r.memMiB} MiB, ${
      lo === r.minutes ? `${lo}` : `${lo}-${r.minutes}`
    } min each (by its estimate), ${r.parallel} at once`;
  const written = { resources: r, minutes, table, summary };
  if (kind === "slurm") {
    await Deno.mkdir(`${out}/logs`, { recursive: true });
    const path = `${out}/job.sbatch`;
    const about = [
      ...job.about,
      `submit:  bash ${out}/submit.sh   (each task its own time limit and memory; sbatch ${path} gives all ${r.minutes} min, ${r.memMiB} MiB)`,
      `report:  ${job.report}`,
      `tasks (index, ${job.groupWord}, count, estimate, time limit):`,
      ...table.map((l) => l.slice(2)),
    ];
    const { name } = job;
    const count = tasks.length;
    const args = job.args(out);
    const sbatch = { name, count, out, about, args, indexArg: true };
    await writeAtomic(
      path,
      slurmArray({ ...sbatch, log: "task_%a.log" }, r, target.deno),
    );
    await writeAtomic(`${out}/submit.sh`, submitScript(path, limits));
    return { path, ...written };
  }
  const k8s = indexedJob(
    {
      name: job.k8sName,
      count: tasks.length,
      args: [...job.args(job.mount), "$(JOB_COMPLETION_INDEX)"],
      mount: job.mount,
    },
    r,
    target.image,
    target.claim,
  );
  const path = `${out}/job.yaml`;
  await writeAtomic(
    path,
    `${
      job.about.map((l) => `# ${l}`).join("\n")
    }\n# OUT is the volume "${target.claim}", mounted at ${job.mount}; pod I runs task I. Submit: kubectl apply -f job.yaml\n${
      toYaml(k8s)
    }`,
  );
  return { path, ...written };
}
