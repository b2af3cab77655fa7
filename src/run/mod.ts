/**
 * src/run/: the run lifecycle every command shares, for src/cli and src/grid.
 *
 * A run claims its output folder (outdir.ts: path check, lock, marker), reads
 * a snapshot to resume (snapshot.ts), drives the optimization with a progress
 * report and Ctrl-C / SIGTERM handling (progress.ts, harness.ts), and writes
 * its outputs atomically; run.ts is the skeleton around it (resume point,
 * the folder's claim for the run's duration) and command.ts the one skeleton
 * of every command ({@linkcode runCommand}), calls.ts the typed calls of
 * invert, its batch form, demo and generate through it; invert.ts and generate.ts are the
 * two kinds of run (typed settings → harness task → files and summary),
 * batch.ts, demo.ts and classes.ts the work of the commands built on them
 * (invert's batch form, demo, generate over classes), condition.ts and
 * inspect.ts that of `condition`, `forward` and `filters`,
 * images.ts the images in and out of runs; exit.ts holds the exit codes,
 * process.ts a child `deno run` process as a function of its arguments,
 * settings.ts what runs share below the command line (the options record,
 * limits, usage errors), read.ts the options record read into typed values
 * one option at a time, models.ts where a named model is found, refine.ts
 * the one manifest-dependent refinement of a run's settings, variant.ts model
 * variants as typed settings and model_options.ts the options that give them. Nothing here imports src/cli.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOutPath, EXIT_INTERRUPTED } from "./mod.ts";
 * assert.ok(EXIT_INTERRUPTED === 130);
 * assert.ok(checkOutPath("out/run1").endsWith("run1"));
 * ```
 *
 * @module
 */
export * from "./batch.ts";
export * from "./classes.ts";
export * from "./calls.ts";
export * from "./command.ts";
export * from "./condition.ts";
export * from "./demo.ts";
export * from "./exit.ts";
export * from "./generate.ts";
export * from "./harness.ts";
export * from "./images.ts";
export * from "./inspect.ts";
export * from "./invert.ts";
export * from "./model_options.ts";
export * from "./models.ts";
export * from "./outdir.ts";
export * from "./process.ts";
export * from "./progress.ts";
export * from "./read.ts";
export * from "./refine.ts";
export * from "./run.ts";
export * from "./settings.ts";
export * from "./snapshot.ts";
