/**
 * Job files that run a grid's plan (or any array of tasks) on a
 * cluster, one cell per task, with the batch system doing the scheduling —
 * `--emit slurm` writes `OUT/job.sbatch` (an array job), `--emit k8s` writes
 * `OUT/job.yaml` (a `batch/v1` Indexed Job). Each task runs
 * `grid --out OUT` and takes its cell index from `SLURM_ARRAY_TASK_ID` or
 * `JOB_COMPLETION_INDEX`.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { writeAtomic } from "../io/mod.ts";
import { ROOT, usage } from "../run/settings.ts";
import { commonSteps, type GridPlan } from "./plan.ts";

/** The job files `--emit` writes. */
export type EmitKind = "slurm" | "k8s";

/**
 * Upper bounds of what a job file asks per task, so that one typo cannot ask
 * a cluster for the impossible: P cells at once, CPUs, memory in MiB (4 TiB),
 * minutes (30 days; an estimate beyond it is cut to it).
 */
export const TASK_LIMITS = {
  parallel: 10_000,
  cpus: 256,
  memMiB: 4 * 1024 * 1024,
  minutes: 30 * 24 * 60,
} as const;

/** What a task needs: CPUs, memory (MiB), minutes, concurrency, snapshot interval. */
export interface TaskResources {
  /** CPU cores per task. */
  cpus: number;
  /** Memory per task, MiB. */
  memMiB: number;
  /** Time limit per task, minutes. */
  minutes: number;
  /** Tasks running at once. */
  parallel: number;
  /** A cell's snapshot interval, in steps. */
  saveEvery: number;
}

/**
 * The resources of the plan's tasks: `given`, else estimated (time: the
 * costliest cell on `cpus` cores, ×2, +5 min, at most TASK_LIMITS.minutes;
 * snapshots every tenth of the steps).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskResources } from "./emit.ts";
 * import type { GridPlan } from "./plan.ts";
 * const plan = {
 *   model: { peakMiB: 900 },
 *   cells: [{ cost: { coreSeconds: 600 }, settings: { steps: 100 } }],
 * } as unknown as GridPlan;
 * assert.deepEqual(taskResources(plan, { cpus: 4 }), {
 *   cpus: 4, parallel: 4, memMiB: 900, minutes: 10, saveEvery: 10,
 * });
 * ```
 */
export function taskResources(
  plan: GridPlan,
  given: Partial<TaskResources>,
): TaskResources {
  const cpus = given.cpus ?? 2;
  const worst = Math.max(...plan.cells.map((c) => c.cost.coreSeconds));
  const steps = commonSteps(plan) ??
    Math.max(...plan.cells.map((c) => c.settings.steps));
  return {
    cpus,
    parallel: given.parallel ?? 4,
    memMiB: given.memMiB ?? Math.min(plan.model.peakMiB, TASK_LIMITS.memMiB),
    minutes: given.minutes ??
      Math.min(Math.ceil((2 * worst) / cpus / 60) + 5, TASK_LIMITS.minutes),
    saveEvery: given.saveEvery ?? Math.max(1, Math.ceil(steps / 10)),
  };
}

/** Where an emitted job's tasks run. */
export interface JobTarget {
  /** The Deno a Slurm task runs, a path every node has, or `deno` (the one on the node's PATH). */
  deno: string;
  /** The container image of a Kubernetes Job's pods. */
  image: string;
  /** The PersistentVolumeClaim holding OUT (ReadWriteMany). */
  claim: string;
}

function hhmmss(minutes: number): string {
  const d = Math.floor(minutes / 1440), h = Math.floor(minutes / 60) % 24;
  const m = minutes % 60;
  return `${d}-${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:00`;
}

/**
 * mod.ts of this checkout, as a task runs it: a path (a URL when run by URL).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modPath } from "./emit.ts";
 * assert.match(modPath(), /mod\.ts$/);
 * ```
 */
export function modPath(): string {
  const url = new URL("mod.ts", ROOT);
  return url.protocol === "file:" ? fromFileUrl(url) : url.href;
}

/**
 * A word for bash: as it is when plain, else single-quoted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shellQuote } from "./emit.ts";
 * assert.equal(shellQuote("/a/b"), "/a/b");
 * assert.equal(shellQuote("it's"), `'it'"'"'s'`);
 * ```
 */
export const shellQuote = (s: string): string =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;

/** An array job: `count` tasks, each running `deno run -A mod.ts ARGS` with its index from the batch system. */
export interface ArrayJob {
  /** The job's name, e.g. `vitrep-grid`. */
  name: string;
  /** Tasks 0..count-1. */
  count: number;
  /** The folder of the job file and of `logs/`. */
  out: string;
  /** Comment lines at the top, without `# `. */
  about: string[];
  /** The command after `mod.ts`. */
  args: string[];
  /** Pass the index as the last argument (`"$SLURM_ARRAY_TASK_ID"`); else the task reads it from the environment. */
  indexArg: boolean;
  /** Log file per task under `OUT/logs/`, `%a` its index. */
  log: string;
}

/**
 * The Slurm array job script: `--array=0-N%P` and the resources `r` (time:
 * `r.minutes` for every task), each task running `job.args` with the Deno
 * in `$VITREP_DENO`, else `deno` (a path every node has, never
 * `Deno.execPath()`: on the submitting machine that is often an npx cache no
 * node has), and this checkout (on a shared filesystem).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slurmArray } from "./emit.ts";
 * const sb = slurmArray(
 *   { name: "vitrep-essay", count: 3, out: "/shared/e", about: ["an essay"], args: ["essay", "--out", "/shared/e", "--task"], indexArg: true, log: "task_%a.log" },
 *   { cpus: 2, memMiB: 512, minutes: 90, parallel: 2, saveEvery: 1 },
 * );
 * assert.match(sb, /^#SBATCH --array=0-2%2$/m);
 * assert.match(sb, /^#SBATCH --time=0-01:30:00$/m);
 * assert.match(sb, /^deno=\$\{VITREP_DENO:-deno\}$/m);
 * assert.match(sb, /^exec "\$deno" run -A .*mod\.ts essay --out \/shared\/e --task "\$SLURM_ARRAY_TASK_ID"$/m);
 * ```
 */
export function slurmArray(
  job: ArrayJob,
  r: TaskResources,
  deno = "deno",
): string {
  const cmd = ["run", "-A", modPath(), ...job.args].map(shellQuote).join(" ") +
    (job.indexArg ? ' "$SLURM_ARRAY_TASK_ID"' : "");
  return [
    "#!/bin/bash",
    ...job.about.map((l) => `# ${l}`),
    `# deno: $VITREP_DENO on the node, else ${
      deno === "deno" ? "deno on its PATH" : deno
    }`,
    `#SBATCH --job-name=${job.name}`,
    `#SBATCH --array=0-${job.count - 1}%${r.parallel}`,
    "#SBATCH --ntasks=1",
    `#SBATCH --cpus-per-task=${r.cpus}`,
    `#SBATCH --mem=${r.memMiB}M`,
    `#SBATCH --time=${hhmmss(r.minutes)}`,
    "#SBATCH --requeue",
    "#SBATCH --open-mode=append",
    `#SBATCH --output=${job.out}/logs/${job.log}`,
    "set -euo pipefail",
    `deno=\${VITREP_DENO:-${shellQuote(deno)}}`,
    `exec "$deno" ${cmd}`,
    "",
  ].join("\n");
}

/**
 * The Slurm array job of a grid: one task per cell, each running
 * `grid --out OUT` (the cell index from `SLURM_ARRAY_TASK_ID`) with the Deno
 * of {@linkcode slurmArray} and this checkout (both on a shared filesystem);
 * requeued tasks continue from their snapshot.
 */
export function slurmScript(
  plan: GridPlan,
  r: TaskResources,
  deno = "deno",
): string {
  const n = plan.cells.length;
  return slurmArray(
    {
      name: "vitrep-grid",
      count: n,
      out: plan.out,
      about: [
        `vitrep grid: ${n} cells of ${plan.out}/plan.json, one per array task.`,
        `submit:  sbatch ${plan.out}/job.sbatch`,
        `collect: deno run -A ${shellQuote(modPath())} grid --out ${
          shellQuote(plan.out)
        } --collect`,
      ],
      args: [
        "grid",
        "--out",
        plan.out,
        "--quiet",
        "--save-every",
        String(r.saveEvery),
      ],
      indexArg: false,
      log: "cell_%a.log",
    },
    r,
    deno,
  );
}

/**
 * Indices as Slurm writes an array: sorted runs joined by commas.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexRanges } from "./emit.ts";
 * assert.equal(indexRanges([7, 0, 1, 2, 5, 8]), "0-2,5,7-8");
 * ```
 */
export function indexRanges(indices: readonly number[]): string {
  const xs = [...indices].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    out.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

/** One task's own limits: minutes and memory (MiB). */
export interface TaskLimit {
  minutes: number;
  memMiB: number;
}

/**
 * A bash script that submits the array job `sbatch` held, gives each task
 * its own time limit and memory (`limits[i]` for task i; a pending task's
 * limits may be lowered, and the array's `--time` and `--mem` are the
 * largest), releases it and prints the job id. Its arguments go to sbatch
 * (`--partition`, …). An update the site refuses leaves that task at the
 * array's limits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { submitScript } from "./emit.ts";
 * const small = { minutes: 6, memMiB: 500 };
 * const sh = submitScript("/shared/e/job.sbatch", [small, small, small, { minutes: 90, memMiB: 4000 }, small]);
 * assert.match(sh, /^id="\$\(sbatch --parsable --hold "\$@" \/shared\/e\/job\.sbatch\)"$/m);
 * assert.match(sh, /^scontrol update JobId="\$\{id\}_\[0-2,4\]" TimeLimit=0-00:06:00 MinMemoryNode=500 /m);
 * assert.doesNotMatch(sh, /TimeLimit=0-01:30:00/);
 * ```
 */
export function submitScript(
  sbatch: string,
  limits: readonly TaskLimit[],
): string {
  const most = Math.max(...limits.map((l) => l.minutes));
  const mem = Math.max(...limits.map((l) => l.memMiB));
  const groups = new Map<string, number[]>();
  for (const [i, l] of limits.entries()) {
    const set = [
      ...(l.minutes < most ? [`TimeLimit=${hhmmss(l.minutes)}`] : []),
      ...(l.memMiB < mem ? [`MinMemoryNode=${l.memMiB}`] : []),
    ].join(" ");
    if (set !== "") groups.set(set, [...(groups.get(set) ?? []), i]);
  }
  return [
    "#!/bin/bash",
    `# Submits ${sbatch} held, gives each task its own time limit and memory (from its`,
    "# estimate; the array's --time and --mem are the largest), releases it and prints the job id.",
    "# Arguments go to sbatch (e.g. --partition=P).",
    "set -euo pipefail",
    `id="$(sbatch --parsable --hold "$@" ${shellQuote(sbatch)})"`,
    'id="${id%%;*}"',
    `trap 'scontrol release "$id"' EXIT`,
    ...[...groups].map(([set, idx]) => {
      const tasks = `\${id}_[${indexRanges(idx)}]`;
      return `scontrol update JobId="${tasks}" ${set} || echo "submit.sh: tasks ${tasks} keep the array's limits" >&2`;
    }),
    'echo "$id"',
    "",
  ].join("\n");
}

/** YAML for plain data (objects, arrays, strings, numbers, booleans): block style, strings quoted. */
export function toYaml(v: unknown, indent = ""): string {
  const scalar = (x: unknown) =>
    typeof x === "string" ? JSON.stringify(x) : String(x);
  if (Array.isArray(v)) {
    return v.map((x) =>
      x !== null && typeof x === "object"
        ? `${indent}- ${toYaml(x, indent + "  ").trimStart()}`
        : `${indent}- ${scalar(x)}\n`
    ).join("");
  }
  if (v !== null && typeof v === "object") {
    return Object.entries(v).map(([k, x]) =>
      x !== null && typeof x === "object"
        ? `${indent}${k}:\n${toYaml(x, indent + "  ")}`
        : `${indent}${k}: ${scalar(x)}\n`
    ).join("");
  }
  return `${indent}${scalar(v)}\n`;
}

/** A Kubernetes Indexed Job: `count` pods, each running the image's entrypoint (`deno run -A mod.ts`) with `args`. */
export interface IndexedJob {
  /** The Job's name (a DNS label). */
  name: string;
  /** Completions: indices 0..count-1. */
  count: number;
  /** The pod's arguments; `$(JOB_COMPLETION_INDEX)` in them is the pod's index (Kubernetes expands it). */
  args: string[];
  /** Where the volume is mounted, e.g. `/grid`. */
  mount: string;
}

/**
 * A Kubernetes Job of `completionMode: Indexed` with one completion per
 * task; each pod mounts the volume `claim` at `job.mount` and runs
 * `job.args`, its index in `JOB_COMPLETION_INDEX` (set by Kubernetes in
 * Indexed Jobs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexedJob } from "./emit.ts";
 * const j = indexedJob(
 *   { name: "vitrep-essay", count: 5, args: ["essay", "--out", "/essay", "--task", "$(JOB_COMPLETION_INDEX)"], mount: "/essay" },
 *   { cpus: 2, memMiB: 512, minutes: 10, parallel: 8, saveEvery: 1 },
 *   "vitrep:latest",
 *   "vitrep-essay",
 * );
 * assert.deepEqual((j.spec as { parallelism: number }).parallelism, 5);
 * ```
 */
export function indexedJob(
  job: IndexedJob,
  r: TaskResources,
  image: string,
  claim: string,
): Record<string, unknown> {
  const n = job.count;
  const resources = { cpu: String(r.cpus), memory: `${r.memMiB}Mi` };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: job.name },
    spec: {
      completionMode: "Indexed",
      completions: n,
      parallelism: Math.min(r.parallel, n),
      backoffLimitPerIndex: 2,
      maxFailedIndexes: n,
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "task",
            image,
            args: job.args,
            resources: { requests: resources, limits: resources },
            volumeMounts: [{ name: "data", mountPath: job.mount }],
          }],
          volumes: [{
            name: "data",
            persistentVolumeClaim: { claimName: claim },
          }],
        },
      },
    },
  };
}

/**
 * The Kubernetes Job of a grid: one pod per cell, each running
 * `grid --out /grid` with the volume holding OUT mounted at /grid.
 */
export function k8sJob(
  plan: GridPlan,
  r: TaskResources,
  image: string,
  claim: string,
): Record<string, unknown> {
  return indexedJob(
    {
      name: `vitrep-grid-${plan.cells[0]?.key.slice(0, 8) ?? "empty"}`,
      count: plan.cells.length,
      args: [
        "grid",
        "--out",
        "/grid",
        "--quiet",
        "--save-every",
        String(r.saveEvery),
      ],
      mount: "/grid",
    },
    r,
    image,
    claim,
  );
}

/**
 * Writes the job file `kind` for `plan`, its tasks asking for `given`
 * resources (the rest estimated: {@linkcode taskResources}) and running on
 * `target`; returns the lines to print (how to submit and collect).
 */
export async function emitJob(
  plan: GridPlan,
  kind: EmitKind,
  given: Partial<TaskResources>,
  target: JobTarget,
): Promise<string[]> {
  const r = taskResources(plan, given);
  const collect = `deno run -A ${shellQuote(modPath())} grid --out ${
    shellQuote(plan.out)
  } --collect`;
  const about =
    `${plan.cells.length} tasks, ${r.cpus} CPU(s), ${r.memMiB} MiB, ${r.minutes} min each, ${r.parallel} at once`;
  if (kind === "slurm") {
    await Deno.mkdir(`${plan.out}/logs`, { recursive: true });
    await writeAtomic(
      `${plan.out}/job.sbatch`,
      slurmScript(plan, r, target.deno),
    );
    return [
      `wrote ${plan.out}/job.sbatch (${about})`,
      `submit:  sbatch ${plan.out}/job.sbatch`,
      `collect: ${collect}   (after the array job; or sbatch --dependency=afterany:JOBID --wrap '${collect}')`,
    ];
  }
  if (kind !== "k8s") {
    throw usage(
      new TypeError(`Invalid --emit "${kind}": expected slurm or k8s`),
    );
  }
  const { image, claim } = target;
  const head = [
    `# vitrep grid: ${plan.cells.length} cells of plan.json in the volume "${claim}", mounted at /grid;`,
    "# each pod runs the cell JOB_COMPLETION_INDEX. Submit: kubectl apply -f job.yaml",
  ].join("\n");
  await writeAtomic(
    `${plan.out}/job.yaml`,
    `${head}\n${toYaml(k8sJob(plan, r, image, claim))}`,
  );
  return [
    `wrote ${plan.out}/job.yaml (${about})`,
    `build:   docker build -t ${image} .   (the repository's Dockerfile; push it where the cluster pulls from)`,
    `copy ${plan.out}/ into the volume "${claim}", then submit: kubectl apply -f ${plan.out}/job.yaml`,
    `collect: grid --out DIR --collect where DIR is the volume's copy`,
  ];
}
