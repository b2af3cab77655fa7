/**
 * src/grid/: the grid orchestrator, for the `grid` command and the essay.
 *
 * A grid runs invert over model variants × layers, or generate over variants
 * × classes: plan.ts makes a pure, serializable plan (every cell with its
 * resolved settings and key), run.ts runs a plan (every cell here, or one as
 * a cluster task), cell.ts runs one claimed cell (an ordinary run
 * in `OUT/cells/KEY/`, cached and resumable), collect.ts builds the montage
 * and tables from finished cells, modes.ts describes invert and generate as
 * data, emit.ts writes Slurm and Kubernetes job files, array.ts an array of
 * tasks of different sizes (the essay's) as one such job; spec.ts is a grid
 * as typed values (what the command line reads `--variant` into and the essay
 * builds) and its command line, invocation.ts the commands a driver runs;
 * resolve.ts a grid read once into typed values (a request) resolved against
 * its models into a plan's input; steps.ts the steps a command runs apart
 * (plan, a cluster task's cell, collect) as typed outcomes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalJson, indexRanges } from "./mod.ts";
 * assert.ok(canonicalJson({ b: 1, a: [2] }) === '{"a":[2],"b":1}');
 * assert.ok(indexRanges([0, 1, 2, 5]) === "0-2,5");
 * ```
 *
 * @module
 */
export * from "./array.ts";
export * from "./cell.ts";
export * from "./collect.ts";
export * from "./emit.ts";
export * from "./invocation.ts";
export * from "./modes.ts";
export * from "./plan.ts";
export * from "./resolve.ts";
export * from "./run.ts";
export * from "./spec.ts";
export * from "./steps.ts";
