/**
 * Internal to the command line: the options of `grid` and `essay` that run
 * a plan on a cluster (the steps `--plan`, `--cell`, `--collect`, the job
 * file `--emit` writes and what its tasks ask for), parsed into the typed
 * resources and job target of src/grid/emit.ts.
 *
 * @module
 */
import type { Raw, Spec } from "./options.ts";
import { intOpt, str } from "../run/read.ts";
import { LIMITS, usage } from "../run/settings.ts";
import {
  type JobTarget,
  TASK_LIMITS,
  type TaskResources,
} from "../grid/emit.ts";

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
  deno: {
    type: "string",
    arg: "PATH",
    defaultText: "$VITREP_DENO on the node, else deno on its PATH",
    help:
      "--emit slurm: the Deno a task runs, a path every node has (e.g. on the shared filesystem). Without it a task runs $VITREP_DENO, else the deno on the node's PATH (npx --yes deno@2.9.6 installs one; the Dockerfile's image has one); never this machine's own Deno, whose path (an npx cache) no node has",
  },
  "save-every": {
    type: "string",
    arg: "K",
    defaultText: "0 here; a tenth of the steps in emitted jobs",
    help:
      "every K steps (0..1000000) a cell writes a snapshot, so a task stopped or requeued continues where it was",
  },
};

/**
 * The resource options as given (`--parallel`, `--cpus`, `--mem`, `--time`,
 * `--save-every`), each checked against its range (TASK_LIMITS of src/grid/emit.ts,
 * LIMITS.steps): a usage error naming the value, before anything is written.
 * Those not given are left out.
 */
export function resourceOpts(given: Raw): Partial<TaskResources> {
  const opt = (k: string, min: number, max: number) =>
    given[k] === undefined ? undefined : intOpt(given, k, min, max);
  denoOpt(given);
  return {
    parallel: opt("parallel", 1, TASK_LIMITS.parallel),
    cpus: opt("cpus", 1, TASK_LIMITS.cpus),
    memMiB: opt("mem", 64, TASK_LIMITS.memMiB),
    minutes: opt("time", 1, TASK_LIMITS.minutes),
    saveEvery: opt("save-every", 0, LIMITS.steps),
  };
}

/**
 * The Deno an emitted task runs: `--deno PATH` as given, else `deno` (the
 * one on the node's PATH). Never `Deno.execPath()`: on the submitting
 * machine that is often an npx cache (`…/.npm/_npx/<hash>/…/deno`) that no
 * node has. A value with control characters is a usage error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoOpt } from "./cluster.ts";
 * assert.equal(denoOpt({}), "deno");
 * assert.equal(denoOpt({ deno: "/shared/bin/deno" }), "/shared/bin/deno");
 * assert.throws(() => denoOpt({ deno: "a\nb" }), /Invalid --deno/);
 * ```
 */
export function denoOpt(given: Raw): string {
  if (given.deno === undefined) return "deno";
  const v = str(given, "deno");
  // deno-lint-ignore no-control-regex
  if (v.trim() === "" || /[\x00-\x1f\x7f]/.test(v)) {
    throw usage(
      new TypeError(
        `Invalid --deno ${
          JSON.stringify(v)
        }: expected the path of the Deno every node runs, e.g. /shared/bin/deno (leave it out to use deno on the node's PATH)`,
      ),
    );
  }
  return v;
}

/**
 * Where an emitted job's tasks run: `--deno` (checked by
 * {@linkcode denoOpt}), `--container` and `--volume`, each as given, else
 * its default (`claim` the volume a command names by default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jobTarget } from "./cluster.ts";
 * assert.deepEqual(jobTarget({ volume: "v" }, "vitrep-grid"), {
 *   deno: "deno",
 *   image: "vitrep:latest",
 *   claim: "v",
 * });
 * ```
 */
export function jobTarget(given: Raw, claim: string): JobTarget {
  return {
    deno: denoOpt(given),
    image: str({ container: "vitrep:latest", ...given }, "container"),
    claim: str({ volume: claim, ...given }, "volume"),
  };
}
