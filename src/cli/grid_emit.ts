/**
 * Internal to the command line: job files that run a grid's plan on a
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
import {
  intOpt,
  LIMITS,
  type Raw,
  ROOT,
  type Spec,
  str,
  usage,
} from "./options.ts";
import { commonSteps, type GridPlan } from "./grid_plan.ts";

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

/** Options of `grid` for the plan/cell/collect steps and the job files. */
export const CLUSTER_OPTS: Spec = {
  plan: {
    type: "boolean",
    help:
      "write OUT/plan.json (every cell: index, key, resolved options, estimated cost) and run nothing. An --out holding another grid's plan.json is refused (naming its finished cells) unless --replan; the same grid again just rewrites it",
  },
  replan: {
    type: "boolean",
    help:
      "with --plan: replace the plan.json of an --out that holds another grid's plan (tasks running it would then run the new plan's cells); finished cells with the same key are reused",
  },
  cell: {
    type: "string",
    arg: "I",
    defaultText: "$SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX",
    help:
      "run cell I of OUT/plan.json (a finished cell, or one another task holds, exits 0 at once; a snapshot is continued). The plan fixes the grid: only --out, --quiet and --save-every go with it; a cell whose key does not match its settings, or a target image whose pixels differ from the plan's sha256, is refused. A cluster task leaves it out: grid --out OUT takes the index from the environment (see --emit)",
  },
  collect: {
    type: "boolean",
    help:
      "build grid.png, grid.svg, grid.csv, grid.md and metrics.json of OUT/plan.json from its finished cells; missing or failed cells are listed (exit 1)",
  },
  emit: {
    type: "string",
    arg: "slurm|k8s",
    defaultText: "none",
    help:
      "with --plan: write OUT/job.sbatch (a Slurm array job) or OUT/job.yaml (a Kubernetes Indexed Job) running one cell per task, and print how to submit and collect",
  },
  parallel: {
    type: "string",
    default: "4",
    arg: "P",
    help: `--emit: at most P cells at once (1..${TASK_LIMITS.parallel})`,
  },
  cpus: {
    type: "string",
    default: "2",
    arg: "N",
    help: `--emit: CPUs per task (1..${TASK_LIMITS.cpus})`,
  },
  mem: {
    type: "string",
    arg: "MIB",
    defaultText: "estimated from the model",
    help: `--emit: memory per task in MiB (64..${TASK_LIMITS.memMiB})`,
  },
  time: {
    type: "string",
    arg: "MINUTES",
    defaultText: "estimated from the plan's costliest cell",
    help:
      `--emit: time limit per task in minutes (1..${TASK_LIMITS.minutes}, 30 days; an estimate is cut to it)`,
  },
  container: {
    type: "string",
    default: "vitrep:latest",
    arg: "IMAGE",
    help:
      "--emit k8s: the container image, built from the repository's Dockerfile",
  },
  volume: {
    type: "string",
    default: "vitrep-grid",
    arg: "CLAIM",
    help: "--emit k8s: the PersistentVolumeClaim holding OUT (ReadWriteMany)",
  },
  "save-every": {
    type: "string",
    arg: "K",
    defaultText: "0 here; a tenth of the steps in emitted jobs",
    help:
      "every K steps (0..1000000) a cell writes a snapshot, so a task stopped or requeued continues where it was",
  },
};

/** What a task needs: CPUs, memory (MiB), minutes, concurrency, snapshot interval. */
export interface TaskResources {
  cpus: number;
  memMiB: number;
  minutes: number;
  parallel: number;
  saveEvery: number;
}

/**
 * The resource options as given (`--parallel`, `--cpus`, `--mem`, `--time`,
 * `--save-every`), each checked against its range ({@linkcode TASK_LIMITS},
 * LIMITS.steps): a usage error naming the value, before anything is written.
 * Those not given are left out.
 */
export function resourceOpts(given: Raw): Partial<TaskResources> {
  const opt = (k: string, min: number, max: number) =>
    given[k] === undefined ? undefined : intOpt(given, k, min, max);
  return {
    parallel: opt("parallel", 1, TASK_LIMITS.parallel),
    cpus: opt("cpus", 1, TASK_LIMITS.cpus),
    memMiB: opt("mem", 64, TASK_LIMITS.memMiB),
    minutes: opt("time", 1, TASK_LIMITS.minutes),
    saveEvery: opt("save-every", 0, LIMITS.steps),
  };
}

/** The resources of the plan's tasks: given, else estimated (time: the costliest cell on `cpus` cores, ×2, +5 min, at most TASK_LIMITS.minutes). */
export function taskResources(plan: GridPlan, given: Raw): TaskResources {
  const r = resourceOpts(given);
  const cpus = r.cpus ?? 2;
  const worst = Math.max(...plan.cells.map((c) => c.cost.coreSeconds));
  const steps = commonSteps(plan) ??
    Math.max(...plan.cells.map((c) => c.settings.steps));
  return {
    cpus,
    parallel: r.parallel ?? 4,
    memMiB: r.memMiB ?? Math.min(plan.model.peakMiB, TASK_LIMITS.memMiB),
    minutes: r.minutes ??
      Math.min(Math.ceil((2 * worst) / cpus / 60) + 5, TASK_LIMITS.minutes),
    saveEvery: r.saveEvery ?? Math.max(1, Math.ceil(steps / 10)),
  };
}

function hhmmss(minutes: number): string {
  const d = Math.floor(minutes / 1440), h = Math.floor(minutes / 60) % 24;
  const m = minutes % 60;
  return `${d}-${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:00`;
}

/** mod.ts of this checkout, as a task runs it. */
function modPath(): string {
  const url = new URL("mod.ts", ROOT);
  return url.protocol === "file:" ? fromFileUrl(url) : url.href;
}

const quote = (s: string) =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;

/**
 * The Slurm array job: one task per cell (`--array=0-N%P`), each running
 * `grid --out OUT` with this Deno and this checkout (both on a shared
 * filesystem); requeued tasks continue from their snapshot.
 */
export function slurmScript(
  plan: GridPlan,
  r: TaskResources,
  deno = Deno.execPath(),
): string {
  const n = plan.cells.length;
  const cmd = [
    deno,
    "run",
    "-A",
    modPath(),
    "grid",
    "--out",
    plan.out,
    "--quiet",
  ]
    .concat(["--save-every", String(r.saveEvery)]).map(quote).join(" ");
  return [
    "#!/bin/bash",
    `# vitrep grid: ${n} cells of ${plan.out}/plan.json, one per array task.`,
    `# submit:  sbatch ${plan.out}/job.sbatch`,
    `# collect: ${quote(deno)} run -A ${quote(modPath())} grid --out ${
      quote(plan.out)
    } --collect`,
    "#SBATCH --job-name=vitrep-grid",
    `#SBATCH --array=0-${n - 1}%${r.parallel}`,
    "#SBATCH --ntasks=1",
    `#SBATCH --cpus-per-task=${r.cpus}`,
    `#SBATCH --mem=${r.memMiB}M`,
    `#SBATCH --time=${hhmmss(r.minutes)}`,
    "#SBATCH --requeue",
    "#SBATCH --open-mode=append",
    `#SBATCH --output=${plan.out}/logs/cell_%a.log`,
    "set -euo pipefail",
    // the cell index comes from SLURM_ARRAY_TASK_ID
    `exec ${cmd}`,
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

/**
 * The Kubernetes Job: `completionMode: Indexed` with one completion per
 * cell; each pod mounts the volume holding OUT at /grid and runs
 * `grid --out /grid`, its index in `JOB_COMPLETION_INDEX` (set by
 * Kubernetes in Indexed Jobs).
 */
export function k8sJob(
  plan: GridPlan,
  r: TaskResources,
  image: string,
  claim: string,
): Record<string, unknown> {
  const n = plan.cells.length;
  const resources = { cpu: String(r.cpus), memory: `${r.memMiB}Mi` };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: `vitrep-grid-${plan.cells[0]?.key.slice(0, 8) ?? "empty"}`,
    },
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
            name: "cell",
            image,
            args: [
              "grid",
              "--out",
              "/grid",
              "--quiet",
              "--save-every",
              String(r.saveEvery),
            ],
            resources: { requests: resources, limits: resources },
            volumeMounts: [{ name: "grid", mountPath: "/grid" }],
          }],
          volumes: [{
            name: "grid",
            persistentVolumeClaim: { claimName: claim },
          }],
        },
      },
    },
  };
}

/** Writes the job file `kind` for `plan`; returns the lines to print (how to submit and collect). */
export async function emitJob(
  plan: GridPlan,
  kind: EmitKind,
  given: Raw,
): Promise<string[]> {
  const r = taskResources(plan, given);
  const collect = `deno run -A ${modPath()} grid --out ${plan.out} --collect`;
  const about =
    `${plan.cells.length} tasks, ${r.cpus} CPU(s), ${r.memMiB} MiB, ${r.minutes} min each, ${r.parallel} at once`;
  if (kind === "slurm") {
    await Deno.mkdir(`${plan.out}/logs`, { recursive: true });
    await writeAtomic(`${plan.out}/job.sbatch`, slurmScript(plan, r));
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
  const image = str({ container: "vitrep:latest", ...given }, "container");
  const claim = str({ volume: "vitrep-grid", ...given }, "volume");
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
