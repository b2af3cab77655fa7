/**
 * The one run skeleton of `invert` (one run or a batch), `demo` and
 * `generate`: open the model, refine the settings with its manifest and
 * check every input (usage errors leave no file), claim the output folder,
 * run under Ctrl-C / SIGTERM handling, and release the model however it ends.
 *
 * @module
 */
import type { RunContext } from "./settings.ts";
import type { OutClaim } from "./outdir.ts";
import type { Stopper } from "./progress.ts";
import { inOut } from "./run.ts";

/** What an open model must offer the skeleton: a way to let it go. */
export interface Releasable {
  /** Frees the model's sessions. */
  release(): Promise<void>;
}

/** A command's run once its model is open and its inputs are checked. */
export interface Ready<T> {
  /** How the run claims its output folder (its command and saved options). */
  claim: OutClaim;
  /** The run itself, once the folder is held: files from here on. */
  work(stopper: Stopper): Promise<T>;
}

/** One command's run, as the skeleton drives it. */
export interface RunJob<M extends { model: Releasable }, T> {
  /** The output folder (already checked by the prelude). */
  out: string;
  /** Opens the model (and whatever comes with it); releases it itself when it fails. */
  open(): Promise<M>;
  /**
   * With the model open: the settings refined by its manifest, the inputs
   * loaded and checked, the claim and the work. Throws before any file.
   */
  ready(opened: M): Promise<Ready<T>>;
}

/**
 * Runs `job`: opens its model, gets it ready, claims `job.out` and runs the
 * work with Ctrl-C and SIGTERM listened to (`ctx.signal` acts as Ctrl-C),
 * then releases the folder and the model, on success or failure alike.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCommand } from "./command.ts";
 * const out = `${await Deno.makeTempDir()}/run`;
 * let released = false;
 * const model = { release: () => Promise.resolve(void (released = true)) };
 * const code = await runCommand({
 *   out,
 *   open: () => Promise.resolve({ model }),
 *   ready: () =>
 *     Promise.resolve({
 *       claim: { command: "demo", options: {}, overwrite: false, continuing: false },
 *       work: async () => {
 *         await Deno.writeTextFile(`${out}/result.txt`, "done\n");
 *         return 0;
 *       },
 *     }),
 * }, {});
 * assert.ok(code === 0 && released);
 * assert.ok(Deno.readTextFileSync(`${out}/result.txt`) === "done\n");
 * ```
 */
export async function runCommand<M extends { model: Releasable }, T>(
  job: RunJob<M, T>,
  ctx: RunContext,
): Promise<T> {
  const opened = await job.open();
  try {
    const ready = await job.ready(opened);
    return await inOut(job.out, ready.claim, ctx, ready.work);
  } finally {
    await opened.model.release();
  }
}
