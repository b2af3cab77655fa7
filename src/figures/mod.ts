/**
 * src/figures/: everything this folder exports, for the other folders and mod.ts.
 *
 * @module
 */
export * from "./filters.ts";
export * from "./plot.ts";
