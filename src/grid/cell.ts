/**
 * The grid (src/grid): running one cell of a grid's plan, in this
 * process or in a cluster task. A cell is an ordinary invert or generate run
 * in `OUT/cells/KEY/`: a finished cell is reused, a snapshot is continued, and
 * the cell is claimed with a lock (`cell.lock`, see src/io/lock.ts) so that
 * two tasks never compute it at once. A run that diverges leaves
 * `failed.json` (why, at which step) for the collect step.
 *
 * A cell shares the run itself with `invert` and `generate`: its mode's `run`
 * is runInvert or runGenerate (src/run/invert.ts, src/run/generate.ts), and
 * through them the one harness (src/run/harness.ts: progress, snapshots,
 * resume, outcome, metrics.json). It does not go through the commands'
 * skeleton, runCommand (src/run/command.ts), whose other steps a cell does
 * differently: its model comes from the grid's {@linkcode ModelPool}, shared
 * by the cells of one load and released by the pool, not after each run; its
 * settings come typed and refined in the plan (plan.json), with nothing to
 * parse or refine; it claims the cell with its lock (reuse, continuation,
 * tasks on several machines), not with an output-folder marker, which the
 * grid takes once for its folder; Ctrl-C and SIGTERM are listened to once
 * for the whole grid (its Stopper), not per cell.
 *
 * @module
 */
import {
  acquireLock,
  type ImageTensor,
  LockedError,
  type LockInfo,
  writeJson,
} from "../io/mod.ts";
import { loadModel, type Model } from "../model/mod.ts";
import { DivergedError } from "../optimize/mod.ts";
import { modelAbout, VERIFIED } from "../run/variant.ts";
import { recoverSnapshot } from "../run/snapshot.ts";
import type { Control } from "../run/harness.ts";
import type { Stopper } from "../run/progress.ts";
import { MODES, savedTypesOf } from "./modes.ts";
import { checkModel, type GridPlan, loadKey, type PlanRow } from "./plan.ts";

/** The lock file in a cell's folder. */
export const CELL_LOCK = "cell.lock";
/** What a diverged cell leaves in its folder. */
export const FAILED_FILE = "failed.json";

/** How a cell's run ended. */
export type CellStatus =
  | "reused"
  | "computed"
  | "stopped"
  | "diverged"
  | "held";

/** What running a cell did. */
export interface CellResult {
  status: CellStatus;
  /** Diverged cells: the error, its kind (`exploded`, `non-finite`) and step. */
  failure?: Failure;
  /** Held cells: who computes it. */
  holder?: LockInfo;
  /** Where a continued run started. */
  from?: number;
}

/** Why a cell failed, as in failed.json. */
export interface Failure {
  error: string;
  kind: string;
  step: number | null;
}

/**
 * What the outcome column and montage call a failure: `exploded at step 7`, `diverged at step 7`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failureText } from "./cell.ts";
 * assert.ok(failureText({ error: "…", kind: "exploded", step: 7 }) === "exploded at step 7");
 * assert.ok(failureText({ error: "…", kind: "non-finite", step: null }) === "diverged");
 * ```
 */
export function failureText(f: Failure): string {
  const what = f.kind === "exploded" ? "exploded" : "diverged";
  return f.step === null ? what : `${what} at step ${f.step}`;
}

/**
 * Models for cells, loaded once per load (weights, seed, swaps) and shared by
 * rows that differ only in ablations; a model is released when a cell asks
 * for another load (so run cells grouped by load).
 */
export class ModelPool {
  #models: Map<string, Model>;
  constructor(opened: Map<string, Model> = new Map()) {
    this.#models = new Map(opened);
  }
  /** The model of a row, its ablations applied. */
  async get(row: PlanRow): Promise<Model> {
    const key = loadKey(row.load);
    for (const [k, m] of this.#models) {
      if (k === key) continue;
      this.#models.delete(k);
      if (![...this.#models.values()].includes(m)) await m.release();
    }
    let base = this.#models.get(key);
    if (base === undefined) {
      const { source, weights, seed, backend, threads, swaps, verify } =
        row.load;
      base = await loadModel(source, {
        weights,
        seed,
        backend,
        threads,
        swaps,
        verify,
        verifyCache: VERIFIED,
      });
      this.#models.set(key, base);
    }
    const { ablations, positionEmbedding } = row.variant;
    return ablations.length > 0 || !positionEmbedding
      ? base.withAblations(ablations, positionEmbedding)
      : base;
  }
  /** Releases every model. */
  async release(): Promise<void> {
    for (const m of new Set(this.#models.values())) await m.release();
    this.#models.clear();
  }
}

/** How to run a cell. */
export interface CellOptions {
  pool: ModelPool;
  stopper: Stopper;
  quiet: boolean;
  /** `--save-every` for the cell's run (0: snapshots only when stopped). */
  saveEvery: number;
  /** The target image (invert grids). */
  target: ImageTensor | null;
  /** The progress label's prefix, e.g. `[3/6]`. */
  prefix: string;
  /** Called once the cell is claimed and about to run (`from`: the step it continues from). */
  onStart?(from: number | null): void;
  /** A lock not refreshed for this long is taken over (default: the lock's). */
  staleAfterMs?: number;
}

/** Refuses a cell folder that resolves (through a symlink) outside the grid's cells/. */
async function confined(plan: GridPlan, dir: string): Promise<void> {
  const [real, cells] = await Promise.all([
    Deno.realPath(dir),
    Deno.realPath(`${plan.out}/cells`),
  ]);
  if (!real.startsWith(`${cells}/`)) {
    throw new TypeError(
      `Invalid cell folder "${dir}": it resolves to "${real}": expected a folder inside ${cells}`,
    );
  }
}

/** Cell `i` of `plan`: reused when finished, else claimed, then run or continued. */
export async function runCell(
  plan: GridPlan,
  i: number,
  opts: CellOptions,
): Promise<CellResult> {
  const cell = plan.cells[i];
  const def = MODES[plan.mode];
  const dir = `${plan.out}/${cell.dir}`;
  const size = plan.model.imageSize;
  const saved = savedTypesOf(cell.options);
  if ((await def.state(dir, cell.settings, size, saved)).kind === "done") {
    return { status: "reused" };
  }
  await Deno.mkdir(dir, { recursive: true });
  await confined(plan, dir);
  let lock;
  try {
    lock = await acquireLock(`${dir}/${CELL_LOCK}`, {
      purpose: `grid cell ${i} (${cell.key})`,
      staleAfterMs: opts.staleAfterMs,
    });
  } catch (err) {
    if (err instanceof LockedError) {
      return { status: "held", holder: err.holder };
    }
    throw err;
  }
  try {
    // a task killed mid-write may have left a snapshot half swapped and temporaries
    await recoverSnapshot(dir);
    // another task may have finished it meanwhile
    const state = await def.state(dir, cell.settings, size, saved);
    if (state.kind === "done") return { status: "reused" };
    const from = state.kind === "snapshot" ? state.step : null;
    const row = plan.rows[cell.row];
    const model = await opts.pool.get(row);
    await checkModel(plan, i, model.manifest);
    opts.onStart?.(from);
    await Deno.remove(`${dir}/${FAILED_FILE}`).catch(() => {});
    await writeJson(`${dir}/cell.json`, { key: cell.key, ...cell.canonical });
    const ctl: Control = {
      out: dir,
      quiet: opts.quiet,
      saveEvery: opts.saveEvery,
      stopAt: null,
      traceEvery: plan.traceEvery,
      stopper: opts.stopper,
      options: cell.options,
      about: modelAbout(model, row.load.source, row.normalize, row.variant),
      label: `${opts.prefix} ${row.label}, ${plan.columns[cell.col].short}`,
      tag: row.variant.tag,
    };
    try {
      const resume = state.kind === "snapshot" ? state.resume : undefined;
      const r = await def.run(model, cell.settings, ctl, resume, opts.target);
      return {
        status: r.interrupted ? "stopped" : "computed",
        from: from ?? undefined,
      };
    } catch (err) {
      if (!(err instanceof DivergedError)) throw err;
      const failure: Failure = {
        error: err.message,
        kind: (err as { kind?: string }).kind ?? "non-finite",
        step: err.step,
      };
      await writeJson(`${dir}/${FAILED_FILE}`, failure);
      return { status: "diverged", failure };
    }
  } finally {
    await lock.release();
  }
}
