/**
 * The grid (src/grid): the commands a driver of grids (the essay) runs, as
 * typed values — a whole grid, its plan, one of its cells, its collect step,
 * and the commands that measure or score cells (`filters`, `forward`,
 * `condition`) — and the one function that makes their command lines,
 * {@linkcode invocationArgs}. A driver runs them through a process or in
 * process; it writes no option of its own.
 *
 * @module
 */
import { gridArgs, type GridSpec, type Removal, rowArgs } from "./spec.ts";

/** A whole grid (`plan`: only its plan.json, computing nothing). */
export interface GridCall {
  command: "grid";
  grid: GridSpec;
  plan?: boolean;
}

/** One cell of a planned grid (as an array task runs it). */
export interface GridCellCall {
  command: "grid-cell";
  /** The grid's folder (holding plan.json). */
  out: string;
  /** The cell's index in plan.json. */
  cell: number;
  quiet?: boolean;
  /** A snapshot every N steps. */
  saveEvery?: number;
}

/** A planned grid's collect step: montage and tables from the cells there. */
export interface GridCollectCall {
  command: "grid-collect";
  out: string;
  quiet?: boolean;
}

/** The `filters` command: a model's patch filters, compared with another weight set's. */
export interface FiltersCall {
  command: "filters";
  model: string;
  weights: string;
  compare: string;
  out: string;
}

/** The `forward` command: an image through a model, the top classes at a layer. */
export interface ForwardCall {
  command: "forward";
  model: string;
  weights: string;
  image: string;
  layer: string;
  top: number;
  out: string;
}

/** The `condition` command: a block's Jacobian conditioning. */
export interface ConditionCall {
  command: "condition";
  model: string;
  layer: number;
  remove?: readonly Removal[];
  seed: number;
  image: string;
  iterations: number;
  /** The output folder (absent: the command line has none, as a template). */
  out?: string;
}

/**
 * A command of vitrep's command line as a typed value (see
 * {@linkcode invocationArgs}).
 *
 * @example
 * ```ts
 * import type { Invocation } from "./invocation.ts";
 * const c: Invocation = { command: "grid-collect", out: "out/grid", quiet: true };
 * console.assert(c.command === "grid-collect");
 * ```
 */
export type Invocation =
  | GridCall
  | GridCellCall
  | GridCollectCall
  | FiltersCall
  | ForwardCall
  | ConditionCall;

/**
 * The command line (after `mod.ts`) of an invocation: the one place a driver's
 * commands become flags.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invocationArgs } from "./invocation.ts";
 * assert.deepEqual(
 *   invocationArgs({ command: "grid-cell", out: "/e/cells/x", cell: 3, quiet: true, saveEvery: 3 }),
 *   ["grid", "--out", "/e/cells/x", "--cell", "3", "--quiet", "--save-every", "3"],
 * );
 * assert.deepEqual(
 *   invocationArgs({ command: "filters", model: "m", weights: "w", compare: "untrained", out: "o" }),
 *   ["filters", "--model", "m", "--weights", "w", "--compare", "untrained", "--out", "o"],
 * );
 * ```
 */
export function invocationArgs(c: Invocation): string[] {
  switch (c.command) {
    case "grid":
      return ["grid", ...gridArgs(c.grid), ...(c.plan ? ["--plan"] : [])];
    case "grid-cell":
      return [
        ...["grid", "--out", c.out, "--cell", `${c.cell}`],
        ...(c.quiet ? ["--quiet"] : []),
        ...(c.saveEvery === undefined
          ? []
          : ["--save-every", `${c.saveEvery}`]),
      ];
    case "grid-collect":
      return [
        "grid",
        "--out",
        c.out,
        "--collect",
        ...(c.quiet ? ["--quiet"] : []),
      ];
    case "filters":
      return [
        ...["filters", "--model", c.model, "--weights", c.weights],
        ...["--compare", c.compare, "--out", c.out],
      ];
    case "forward":
      return [
        ...["forward", "--model", c.model, "--weights", c.weights],
        ...["--image", c.image, "--layer", c.layer],
        ...["--top", `${c.top}`, "--out", c.out],
      ];
    case "condition":
      return [
        ...["condition", "--model", c.model, "--layer", `${c.layer}`],
        ...rowArgs({ remove: c.remove }),
        ...["--seed", `${c.seed}`, "--image", c.image],
        ...["--iterations", `${c.iterations}`],
        ...(c.out === undefined ? [] : ["--out", c.out]),
      ];
  }
}
