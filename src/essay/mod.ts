/**
 * src/essay/: the essay re-run by one command — the claims table, budgets,
 * planner, verdict rules, per-patch PSNR maps and the HTML report — for the
 * other folders and mod.ts.
 *
 * @module
 */
export * from "./budgets.ts";
export * from "./claims.ts";
export * from "./depth.ts";
export * from "./experiments.ts";
export * from "./filters.ts";
export * from "./patches.ts";
export * from "./publish.ts";
export * from "./report.ts";
export * from "./results.ts";
export * from "./run.ts";
