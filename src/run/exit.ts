/**
 * Exit codes shared by the command line, the grid and the essay driver (one
 * definition each; the essay reads a child process's code against them).
 *
 * @module
 */

/**
 * Exit code of a run stopped by Ctrl-C or SIGTERM (after its snapshot): run
 * the same command again to continue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXIT_INTERRUPTED } from "./exit.ts";
 * assert.ok(EXIT_INTERRUPTED === 130); // 128 + SIGINT, the shell convention
 * ```
 */
export const EXIT_INTERRUPTED = 130;

/**
 * Exit code of a grid left incomplete because another process holds some of
 * its cells (run it again once they finish).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXIT_HELD } from "./exit.ts";
 * assert.ok(EXIT_HELD === 3);
 * ```
 */
export const EXIT_HELD = 3;
