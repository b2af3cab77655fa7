/**
 * What runs do alike around the optimization: the resume point read from a
 * snapshot (image, step, trace rows, all checked), and the output folder
 * claimed (lock, other runs) with Ctrl-C listened to while the run goes.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import type { Row } from "../io/mod.ts";
import type { RunContext, RunOptions } from "./settings.ts";
import { claimOut } from "./outdir.ts";
import { Stopper } from "./progress.ts";
import {
  readSnapshotData,
  readSnapshotRows,
  type Snapshot,
} from "./snapshot.ts";
import type { Resume } from "./harness.ts";

/**
 * Reads a run's resume point from `dir`'s snapshot (state already read):
 * the image (of a side in `sides`), the step and the trace rows, all checked.
 */
export async function readResume(
  dir: string,
  snap: Snapshot,
  sides: readonly number[],
  columns: readonly string[],
  nullable: readonly string[] = [],
): Promise<Resume & { rows: Row[] }> {
  const step = snap.step;
  const traceEvery = Number(snap.options["trace-every"]);
  if (!Number.isSafeInteger(traceEvery) || traceEvery < 1) {
    throw new TypeError(
      `Invalid snapshot "${dir}/snapshot/state.json": "options.trace-every" is ${
        JSON.stringify(snap.options["trace-every"])
      }: expected a positive integer`,
    );
  }
  return {
    image: await readSnapshotData(dir, snap, sides),
    step,
    rows: await readSnapshotRows(dir, step, columns, traceEvery, nullable),
    from: resolvePath(dir),
  };
}

/**
 * Claims `out` (see claimOut), listens for Ctrl-C and SIGTERM while `fn` runs, and
 * releases both however it ends.
 */
export async function inOut<T>(
  out: string,
  claim: {
    command: string;
    options: RunOptions;
    overwrite: boolean;
    continuing: boolean;
  },
  ctx: RunContext,
  fn: (stopper: Stopper) => Promise<T>,
): Promise<T> {
  const folder = await claimOut(out, claim);
  const stopper = new Stopper(ctx.signal);
  stopper.install();
  try {
    return await fn(stopper);
  } finally {
    stopper.remove();
    await folder.release();
  }
}
