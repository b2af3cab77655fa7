/**
 * src/optimize/: everything this folder exports, for the other folders and mod.ts.
 *
 * The one optimization loop ({@linkcode optimize}, loop.ts) and its parts:
 * parameterizations (param.ts), the transform list and schedules
 * (transform.ts), objectives (objective.ts) and their weighted sums
 * (compose.ts), the guard (guard.ts); the two procedures built on it
 * (invert.ts, generate.ts); image metrics (metrics.ts).
 *
 * @module
 */
export * from "./compose.ts";
export * from "./condition.ts";
export * from "./generate.ts";
export * from "./guard.ts";
export * from "./invert.ts";
export * from "./loop.ts";
export * from "./metrics.ts";
export * from "./objective.ts";
export * from "./param.ts";
export * from "./transform.ts";
