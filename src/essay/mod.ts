/**
 * src/essay/: the essay re-run by one command — the claims as data, budgets,
 * planner, the verdict engine (rules, quantities, setups and their
 * deviations), per-patch PSNR maps and error decomposition, the HTML
 * report and the essay as one array job (tasks.ts) — for the other folders
 * and mod.ts. Commands run through a `CommandRunner` the caller passes in;
 * nothing here imports src/cli.
 *
 * @module
 */
export * from "./budgets.ts";
export * from "./claims.ts";
export * from "./depth.ts";
export * from "./experiments.ts";
export * from "./filters.ts";
export * from "./metrics.ts";
export * from "./patches.ts";
export * from "./publish.ts";
export * from "./report.ts";
export * from "./results.ts";
export * from "./rules.ts";
export * from "./run.ts";
export * from "./setup.ts";
export * from "./tasks.ts";
