/**
 * Running a grid's plan: every cell in this process ({@linkcode runGrid}:
 * cells grouped by model load, then the collect step), or one cell of it as a
 * cluster task does ({@linkcode runPlannedCell}). Nothing is printed: what
 * happens to each cell is reported through callbacks, and the outcome comes
 * back typed, for the command line to print and turn into an exit code.
 *
 * @module
 */
import type { ImageTensor, LockInfo } from "../io/mod.ts";
import { loadTarget } from "../run/images.ts";
import { Stopper } from "../run/progress.ts";
import {
  type CellResult,
  type CellStatus,
  ModelPool,
  runCell,
} from "./cell.ts";
import { collectGrid, findCell } from "./collect.ts";
import { checkCell, type GridPlan, loadKey, targetHash } from "./plan.ts";

/** What a cell ended as in a whole-grid run: a {@linkcode CellStatus}, or not reached. */
export type GridCellStatus = CellStatus | "stopped" | "not run";

/** How {@linkcode runGrid} and {@linkcode runPlannedCell} run cells. */
export interface GridRunOptions {
  /** Models already open (by load key); released when the run ends. */
  pool?: ModelPool;
  /** Aborting it acts as Ctrl-C: the running cell stops after its step, with a snapshot. */
  signal?: AbortSignal;
  /** No progress bars on stderr. */
  quiet?: boolean;
  /** Snapshot every K steps (0: only when stopped). */
  saveEvery?: number;
  /** A cell is claimed and about to run (`from`: the step it continues from). */
  onStart?(cell: number, prefix: string, from: number | null): void;
  /** A cell's run ended (reused, computed, stopped, diverged or held by another process). */
  onEnd?(cell: number, prefix: string, result: CellResult): void;
}

/** What {@linkcode runGrid} did. */
export interface GridRun {
  /** Each cell's status, by index. */
  statuses: GridCellStatus[];
  /** Cells another process computes, and who. */
  holders: Map<number, LockInfo>;
  /** Whether Ctrl-C, SIGTERM or the signal stopped the run. */
  stopped: boolean;
  /** Whether cells are left to compute (stopped, not run or held). */
  interrupted: boolean;
  /** grid.md's text, as collected. */
  md: string;
}

/**
 * The cells in run order: grouped by model load (each model loaded once),
 * then by index.
 */
export function runOrder(plan: GridPlan): number[] {
  const keys = plan.rows.map((r) => loadKey(r.load));
  const first = (i: number) => keys.indexOf(keys[plan.cells[i].row]);
  return plan.cells.map((_, i) => i).sort((a, b) =>
    first(a) - first(b) || a - b
  );
}

/** The plan's target image at the model's size (null for a generate grid). */
export async function planTarget(plan: GridPlan): Promise<ImageTensor | null> {
  return plan.image === null
    ? null
    : await loadTarget(plan.image.path, plan.model.imageSize);
}

/** Refuses a target image whose pixels are not the ones the plan hashed (its cells' keys name that hash). */
function checkTarget(plan: GridPlan, sha256: string): void {
  if (plan.image === null || plan.image.sha256 === sha256) return;
  throw new TypeError(
    `Invalid image "${plan.image.path}" for ${plan.out}/plan.json: its pixels hash to ${sha256}, the plan's target to ${plan.image.sha256}: expected the image the grid was planned with (plan it again, with --replan, to use this one)`,
  );
}

/**
 * Runs every cell of `plan` here (finished ones reused, stopped ones
 * continued, ones another process holds skipped), grouped by model load, then
 * collects the figure and tables into `plan.out`. Ctrl-C and SIGTERM stop the
 * running cell after its step; the cells after it are marked stopped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planGrid, runGrid, targetHash } from "./mod.ts";
 * import { loadTarget } from "../run/images.ts";
 * import { loadModel } from "../model/mod.ts";
 * const source = `${Deno.cwd()}/tests/fixtures/tiny_vit`;
 * const out = await Deno.makeTempDir();
 * await Deno.mkdir(`${out}/cells`);
 * const load = { source, weights: "fixture", seed: 0, backend: "native" as const, swaps: [] };
 * const model = await loadModel(source, load);
 * const settings = {
 *   layer: 1, onlyLayer: false, loss: "l2" as const, steps: 2, seed: 0,
 *   lr: { start: 0.1, end: 0.1 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 * };
 * const path = `${Deno.cwd()}/assets/chelsea.png`;
 * const image = { path, sha256: await targetHash(await loadTarget(path, 32)) };
 * const plan = await planGrid({
 *   mode: "invert", out, modelKey: source, title: "tiny", image, traceEvery: 1, options: {},
 *   rows: [{
 *     label: "plain", text: "", load, weights: model.weights, removed: {}, normalize: true,
 *     variant: { ablations: [], positionEmbedding: true, swaps: [], tag: "" },
 *     settings, options: {},
 *   }],
 *   columns: [1, 2].map((l) => ({ value: l, label: `layer ${l}`, short: `layer ${l}` })),
 * }, model.manifest);
 * await model.release();
 * const run = await runGrid(plan, { quiet: true });
 * assert.deepEqual(run.statuses, ["computed", "computed"]);
 * assert.ok(run.md.includes("| plain | 2 |"));
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function runGrid(
  plan: GridPlan,
  opts: GridRunOptions = {},
): Promise<GridRun> {
  const pool = opts.pool ?? new ModelPool();
  const statuses: GridCellStatus[] = plan.cells.map(() => "not run");
  const holders = new Map<number, LockInfo>();
  const stopper = new Stopper(opts.signal);
  stopper.install();
  try {
    const img = await planTarget(plan);
    let done = 0;
    for (const i of runOrder(plan)) {
      const prefix = `[${++done}/${plan.cells.length}]`;
      if (stopper.requested) {
        statuses[i] = "stopped";
        continue;
      }
      const r = await runCell(plan, i, {
        pool,
        stopper,
        quiet: opts.quiet === true,
        saveEvery: opts.saveEvery ?? 0,
        target: img,
        prefix,
        onStart: (from) => opts.onStart?.(i, prefix, from),
      });
      opts.onEnd?.(i, prefix, r);
      if (r.holder) holders.set(i, r.holder);
      statuses[i] = r.status;
    }
  } finally {
    stopper.remove();
    await pool.release();
  }
  const interrupted = stopper.requested ||
    statuses.some((s) => s === "stopped" || s === "not run" || s === "held");
  const { md } = await collectGrid(plan, { statuses, interrupted });
  return { statuses, holders, stopped: stopper.requested, interrupted, md };
}

/**
 * Runs cell `i` of a plan read from disk, as a cluster task does: the target
 * image checked against the plan's hash and the cell against its key, then
 * the cell reused, claimed and run or continued, or left to the process
 * holding it. SIGTERM (a batch system's cancel or preemption) stops it after
 * the current step, with a snapshot the next task continues from.
 */
export async function runPlannedCell(
  plan: GridPlan,
  i: number,
  opts: GridRunOptions = {},
): Promise<CellResult> {
  const img = await planTarget(plan);
  if (img !== null) checkTarget(plan, await targetHash(img));
  await checkCell(plan, i);
  const stopper = new Stopper(opts.signal);
  stopper.install();
  // a batch system stops a task with SIGTERM (scancel, preemption, requeue): stop after this step
  const term = () => (stopper.requested = true);
  try {
    Deno.addSignalListener("SIGTERM", term);
  } catch {
    // no signals here
  }
  const pool = opts.pool ?? new ModelPool();
  const prefix = `[cell ${i}]`;
  try {
    const r = await runCell(plan, i, {
      pool,
      stopper,
      quiet: opts.quiet === true,
      saveEvery: opts.saveEvery ?? 0,
      target: img,
      prefix,
      onStart: (from) => opts.onStart?.(i, prefix, from),
    });
    opts.onEnd?.(i, prefix, r);
    return r;
  } finally {
    try {
      Deno.removeSignalListener("SIGTERM", term);
    } catch {
      // no signals here
    }
    stopper.remove();
    await pool.release();
  }
}

/** Whether two plans are the same grid: the same cells (keys) in the same rows and columns. */
export function sameGrid(a: GridPlan, b: GridPlan): boolean {
  const shape = (p: GridPlan) =>
    JSON.stringify([
      p.mode,
      p.cells.map((c) => [c.key, c.row, c.col]),
      p.rows.map((r) => r.label),
      p.columns.map((c) => c.label),
    ]);
  return shape(a) === shape(b);
}

/** What another plan holds, for a refusal to plan over it: its cells and how many finished. */
export async function planHolding(old: GridPlan | null): Promise<string> {
  if (old === null) return "a plan.json that is not a readable grid plan";
  const found = await Promise.all(old.cells.map((c) => findCell(old, c)));
  const done = found.filter((f) => f.kind === "done").length;
  return `another grid's plan.json (${old.cells.length} cells, ${done} finished)`;
}
