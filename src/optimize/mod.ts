/**
 * src/optimize/: everything this folder exports, for the other folders and mod.ts.
 *
 * @module
 */
export * from "./metrics.ts";
export * from "./objective.ts";
export * from "./render.ts";
export * from "./transform.ts";
