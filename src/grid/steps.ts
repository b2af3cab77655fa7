/**
 * The steps of a grid as its command runs them apart — `--plan`, `--cell I`,
 * `--collect` — as typed outcomes: which cell a cluster task runs (its index
 * from `--cell` or the task's environment), whether a folder may be planned
 * again, the plan written with its job file, the cells a collect lacks, and
 * each outcome's exit code. Nothing is printed: the command line prints.
 *
 * @module
 */
import { existsSync } from "../io/files.ts";
import type { LockInfo } from "../io/mod.ts";
import { EXIT_HELD, EXIT_INTERRUPTED } from "../run/exit.ts";
import { usage } from "../run/settings.ts";
import type { CellResult } from "./cell.ts";
import { collectGrid } from "./collect.ts";
import { type GridPlan, type PlanCell, readPlan, writePlan } from "./plan.ts";
import { type GridRun, planHolding, sameGrid } from "./run.ts";

/** Reads an environment variable (`Deno.env.get` by default). */
export type EnvGet = (name: string) => string | undefined;

const denoEnv: EnvGet = (name) => Deno.env.get(name);

/** The environment variables a cluster task's cell index is read from, in order: a Slurm array task's, a Kubernetes Indexed Job pod's. */
export const TASK_INDEX_VARS = [
  "SLURM_ARRAY_TASK_ID",
  "JOB_COMPLETION_INDEX",
] as const;

/**
 * The cell index the environment of a cluster task names, as text, with the
 * variable it came from: `$SLURM_ARRAY_TASK_ID`, else
 * `$JOB_COMPLETION_INDEX`; null when neither is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { envTaskIndex } from "./steps.ts";
 * const env = { JOB_COMPLETION_INDEX: "4" } as Record<string, string>;
 * assert.deepEqual(envTaskIndex((k) => env[k]), ["4", "JOB_COMPLETION_INDEX"]);
 * assert.equal(envTaskIndex(() => undefined), null);
 * ```
 */
export function envTaskIndex(
  get: EnvGet = denoEnv,
): [text: string, from: string] | null {
  for (const k of TASK_INDEX_VARS) {
    const v = get(k);
    if (v !== undefined) return [v, k];
  }
  return null;
}

/**
 * Whether a grid command given no grid (no layers, classes or rows) is a
 * cell task: a cell index in the environment, or a plan.json in `out` (then
 * the missing index is the error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isCellTask } from "./steps.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal(isCellTask(dir, () => undefined), false);
 * assert.equal(isCellTask(null, () => "0"), true);
 * await Deno.writeTextFile(`${dir}/plan.json`, "{}");
 * assert.equal(isCellTask(dir, () => undefined), true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function isCellTask(out: string | null, get: EnvGet = denoEnv): boolean {
  if (envTaskIndex(get) !== null) return true;
  return out !== null && existsSync(`${out}/plan.json`);
}

/**
 * The cell of `plan` a task runs: `given` (`--cell`'s text), else the
 * environment's index ({@linkcode envTaskIndex}). A missing index or one
 * outside the plan is a usage error naming where it came from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellIndex } from "./steps.ts";
 * import type { GridPlan } from "./plan.ts";
 * const plan = { out: "/g", cells: [{}, {}] } as unknown as GridPlan;
 * assert.equal(cellIndex(plan, "1", () => undefined), 1);
 * assert.equal(cellIndex(plan, undefined, () => "0"), 0);
 * assert.throws(() => cellIndex(plan, "2", () => undefined), RangeError);
 * assert.throws(() => cellIndex(plan, undefined, () => undefined), TypeError);
 * ```
 */
export function cellIndex(
  plan: GridPlan,
  given: string | undefined,
  get: EnvGet = denoEnv,
): number {
  const [text, from] = given !== undefined
    ? [given, "--cell"]
    : envTaskIndex(get) ?? [null, ""];
  const n = plan.cells.length;
  if (text === null) {
    throw usage(
      new TypeError(
        `Invalid grid --out "${plan.out}" without a cell index: expected --cell I (0..${
          n - 1
        }) to run a cell of its plan.json, SLURM_ARRAY_TASK_ID (a Slurm array task) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) in the environment, or --layers/--classes for a new grid`,
      ),
    );
  }
  const i = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(i < n)) {
    throw usage(
      new RangeError(
        `Invalid ${from} "${text}": expected a cell index 0..${
          n - 1
        } of ${plan.out}/plan.json`,
      ),
    );
  }
  return i;
}

/**
 * A cell's name in messages: its row's label × its column's short label.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellLabel } from "./steps.ts";
 * import type { GridPlan } from "./plan.ts";
 * const plan = {
 *   cells: [{ row: 0, col: 1 }], rows: [{ label: "plain" }],
 *   columns: [{ short: "L1" }, { short: "L2" }],
 * } as unknown as GridPlan;
 * assert.equal(cellLabel(plan, 0), "plain × L2");
 * ```
 */
export function cellLabel(plan: GridPlan, i: number): string {
  const c = plan.cells[i];
  return `${plan.rows[c.row].label} × ${plan.columns[c.col].short}`;
}

/**
 * The exit code of a whole-grid run: {@linkcode EXIT_INTERRUPTED} when
 * stopped, 1 when a cell diverged, {@linkcode EXIT_HELD} when another process
 * computes cells, else 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type GridRun, gridExit } from "./mod.ts";
 * const run: GridRun = { statuses: ["computed"], holders: new Map(), stopped: false, interrupted: false, md: "" };
 * assert.equal(gridExit(run), 0);
 * assert.equal(gridExit({ ...run, statuses: ["diverged"] }), 1);
 * ```
 */
export function gridExit(run: GridRun): number {
  if (run.stopped) return EXIT_INTERRUPTED;
  if (run.statuses.includes("diverged")) return 1;
  return run.holders.size > 0 ? EXIT_HELD : 0;
}

/**
 * The exit code of one cell run as a task: 1 when it diverged,
 * {@linkcode EXIT_INTERRUPTED} when stopped (a snapshot is saved), else 0 —
 * a finished cell, or one another process holds, is nothing to do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellExit } from "./steps.ts";
 * assert.equal(cellExit({ status: "computed" }), 0);
 * assert.equal(cellExit({ status: "diverged" }), 1);
 * ```
 */
export function cellExit(r: Pick<CellResult, "status">): number {
  return r.status === "diverged"
    ? 1
    : r.status === "stopped"
    ? EXIT_INTERRUPTED
    : 0;
}

/**
 * The cells of `plan` another process computes, each named with its key,
 * label and holder (for the message of an incomplete grid).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { heldCells } from "./steps.ts";
 * import type { GridPlan } from "./plan.ts";
 * const plan = {
 *   cells: [{ key: "k0", row: 0, col: 0 }], rows: [{ label: "a" }], columns: [{ short: "L1" }],
 * } as unknown as GridPlan;
 * const h = { pid: 7, host: "n1", started: "t" };
 * assert.deepEqual(heldCells(plan, new Map([[0, h]])), ["cell 0 (k0, a × L1) by pid 7 on n1 since t"]);
 * ```
 */
export function heldCells(
  plan: GridPlan,
  holders: ReadonlyMap<number, Pick<LockInfo, "pid" | "host" | "started">>,
): string[] {
  return [...holders].map(([i, h]) =>
    `cell ${i} (${plan.cells[i].key}, ${
      cellLabel(plan, i)
    }) by pid ${h.pid} on ${h.host} since ${h.started}`
  );
}

/**
 * Refuses to plan `plan` over a folder holding another grid's plan.json
 * (tasks of it may be running, cells of it finished), naming the folder and
 * its finished cells, unless `replan`; the same grid planned again is not a
 * change (it rewrites the plan, e.g. to emit another job file).
 *
 * @example
 * ```ts
 * import { checkReplan } from "./steps.ts";
 * import type { GridPlan } from "./plan.ts";
 * const out = await Deno.makeTempDir();
 * await checkReplan({ out } as GridPlan, false); // no plan.json there: nothing to refuse
 * await Deno.remove(out);
 * ```
 */
export async function checkReplan(
  plan: GridPlan,
  replan: boolean,
): Promise<void> {
  if (replan || !existsSync(`${plan.out}/plan.json`)) return;
  const old = await readPlan(plan.out).catch(() => null);
  if (old !== null && sameGrid(old, plan)) return;
  throw usage(
    new TypeError(
      `Invalid --plan with --out "${plan.out}": it holds ${await planHolding(
        old,
      )}: expected a new --out, or --replan to replace that plan (finished cells with the same key are reused)`,
    ),
  );
}

/**
 * The plan step: `plan.out/plan.json` (by `write`), and the cells' estimated
 * cost in all, in CPU-hours; runs no cell. The job file that runs its cells
 * as an array is `emitJob`'s (emit.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planStep } from "./steps.ts";
 * import type { GridPlan } from "./plan.ts";
 * const out = await Deno.makeTempDir();
 * const plan = { out, cells: [{ cost: { coreSeconds: 1800 } }] } as unknown as GridPlan;
 * const hours = await planStep(plan, async (p) => {
 *   await Deno.writeTextFile(`${p.out}/plan.json`, "{}");
 * });
 * assert.equal(hours, 0.5);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function planStep(
  plan: GridPlan,
  write: (plan: GridPlan) => Promise<void> = writePlan,
): Promise<number> {
  await Deno.mkdir(plan.out, { recursive: true });
  await write(plan);
  return plan.cells.reduce((a, c) => a + c.cost.coreSeconds, 0) / 3600;
}

/** What {@linkcode collectStep} collected. */
export interface CollectedGrid {
  /** grid.md's text. */
  md: string;
  /** The cells not done, each with what was found. */
  missing: { cell: PlanCell; outcome: string }[];
}

/**
 * The collect step: the figure and tables from the finished cells of `plan`,
 * and the cells that are not finished.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collectStep, planGrid } from "./mod.ts";
 * import { loadModel } from "../model/mod.ts";
 * const source = `${Deno.cwd()}/tests/fixtures/tiny_vit`;
 * const out = await Deno.makeTempDir();
 * const load = { source, weights: "fixture", seed: 0, backend: "native" as const, swaps: [] };
 * const model = await loadModel(source, load);
 * const settings = {
 *   index: 1, constant: 1, steps: 2, seed: 0, lr: { start: 0.1, end: 0.1 },
 *   sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true, jitterAfter: 0, canvasSize: 32,
 * };
 * const plan = await planGrid({
 *   mode: "generate", out, modelKey: source, title: "tiny", image: null, traceEvery: 1, options: {},
 *   rows: [{
 *     label: "plain", text: "", load, weights: model.weights, removed: {}, normalize: true,
 *     variant: { ablations: [], positionEmbedding: true, swaps: [], tag: "" },
 *     settings, options: {},
 *   }],
 *   columns: [{ value: 1, label: "class 1", short: "1" }],
 * }, model.manifest);
 * await model.release();
 * const { missing } = await collectStep(plan); // no cell computed
 * assert.deepEqual(missing.map((m) => m.outcome), ["missing"]);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function collectStep(plan: GridPlan): Promise<CollectedGrid> {
  const { found, md } = await collectGrid(plan);
  const missing = plan.cells.flatMap((cell) =>
    found[cell.index].kind === "done"
      ? []
      : [{ cell, outcome: found[cell.index].outcome }]
  );
  return { md, missing };
}
