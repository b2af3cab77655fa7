/**
 * src/model/: everything this folder exports, for the other folders and mod.ts.
 *
 * @module
 */
export * from "./backend.ts";
export * from "./classes.ts";
export type { BlockChain, ManifestRuntime } from "./family.ts";
export * from "./manifest.ts";
export * from "./model.ts";
export * from "./rng.ts";
export * from "./weights.ts";
