/**
 * What runs share below any command line: the options record a run keeps
 * (metrics.json, snapshot/state.json), the bounds of numeric settings, the
 * marking of errors that are the caller's input at fault (usage errors: exit
 * 2 on the command line), the repository root and a run's context. The
 * command line builds on these; nothing here knows an option's spelling.
 *
 * @module
 */

/**
 * Options as a run records them (metrics.json, snapshot/state.json): values
 * as typed (strings, switches, lists of a repeatable option).
 */
export type RunOptions = Record<
  string,
  string | boolean | string[] | undefined
>;

/** The types of the options a snapshot may hold, by name (`saved` options). */
export type SavedTypes = Readonly<Record<string, "string" | "boolean">>;

/** What a run gets besides its settings. */
export interface RunContext {
  /** Aborting it acts as Ctrl-C. */
  signal?: AbortSignal;
}

/** The repository root (for weights/ and assets/). */
export const ROOT: URL = new URL("../../", import.meta.url);

/**
 * Upper bounds of numeric settings, so that one typo cannot take the machine:
 * step counts bound the trace kept in memory (a row per step), the canvas
 * bounds generate's image buffer, threads bound what the CPU backends start.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LIMITS } from "./settings.ts";
 * assert.ok(LIMITS.steps === 1_000_000 && LIMITS.canvas === 4096);
 * ```
 */
export const LIMITS = {
  /** --steps, --stop-at, --save-every, --trace-every, --jitter-after. */
  steps: 1_000_000,
  /** --canvas (pixels per side). */
  canvas: 4096,
  /** --threads: four per logical core. */
  threads: 4 * Math.max(1, navigator.hardwareConcurrency ?? 1),
  /** --scale of filters (pixels per weight). */
  scale: 64,
  /** Pixels of one figure (filters): 4096². */
  figurePixels: 4096 * 4096,
};

// Errors: usage errors (exit 2) are marked; everything else exits 1.

const USAGE = new WeakSet<object>();

/**
 * Marks an error as a usage error (the caller's input at fault: exit 2) and
 * returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUsage, usage } from "./settings.ts";
 * assert.ok(isUsage(usage(new RangeError("Invalid --steps \"0\""))));
 * assert.ok(!isUsage(new TypeError("Cannot read model")));
 * ```
 */
export function usage<E extends Error>(err: E): E {
  USAGE.add(err);
  return err;
}

/** Runs `fn`, marking what it throws as a usage error. */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error) USAGE.add(err);
    throw err;
  }
}

/** Whether `err` was marked by {@linkcode usage}. */
export function isUsage(err: unknown): boolean {
  return err instanceof Error && USAGE.has(err);
}
