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

/**
 * A whole grid (`plan`: only its plan.json, computing nothing).
 *
 * @example
 * ```ts
 * import type { GridCall } from "./invocation.ts";
 * const c: GridCall = { command: "grid", grid: { model: "m", columns: { classes: [1] }, steps: 9, seed: 0, rows: [], out: "o" }, plan: true };
 * console.assert(c.plan);
 * ```
 */
export interface GridCall {
  /** The kind. */
  command: "grid";
  /** The grid. */
  grid: GridSpec;
  /** Plan only (plan.json), computing nothing. */
  plan?: boolean;
}

/**
 * One cell of a planned grid (as an array task runs it).
 *
 * @example
 * ```ts
 * import type { GridCellCall } from "./invocation.ts";
 * const c: GridCellCall = { command: "grid-cell", out: "out/grid", cell: 3 };
 * console.assert(c.cell === 3);
 * ```
 */
export interface GridCellCall {
  /** The kind. */
  command: "grid-cell";
  /** The grid's folder (holding plan.json). */
  out: string;
  /** The cell's index in plan.json. */
  cell: number;
  /** No progress lines. */
  quiet?: boolean;
  /** A snapshot every N steps. */
  saveEvery?: number;
}

/**
 * A planned grid's collect step: montage and tables from the cells there.
 *
 * @example
 * ```ts
 * import type { GridCollectCall } from "./invocation.ts";
 * const c: GridCollectCall = { command: "grid-collect", out: "out/grid" };
 * console.assert(c.out === "out/grid");
 * ```
 */
export interface GridCollectCall {
  /** The kind. */
  command: "grid-collect";
  /** The grid's folder (holding plan.json). */
  out: string;
  /** No progress lines. */
  quiet?: boolean;
}

/**
 * The `filters` command: a model's patch filters, compared with another
 * weight set's.
 *
 * @example
 * ```ts
 * import type { FiltersCall } from "./invocation.ts";
 * const c: FiltersCall = { command: "filters", model: "vit_b_32", weights: "IMAGENET1K_V1", compare: "untrained", out: "o" };
 * console.assert(c.compare === "untrained");
 * ```
 */
export interface FiltersCall {
  /** The kind. */
  command: "filters";
  /** The model as commands name it. */
  model: string;
  /** Its weight set. */
  weights: string;
  /** The weight set compared with. */
  compare: string;
  /** The output folder. */
  out: string;
}

/**
 * The `forward` command: an image through a model, the top classes at a
 * layer.
 *
 * @example
 * ```ts
 * import type { ForwardCall } from "./invocation.ts";
 * const c: ForwardCall = { command: "forward", model: "m", weights: "trained", image: "g.png", layer: "logits", top: 10, out: "o" };
 * console.assert(c.top === 10);
 * ```
 */
export interface ForwardCall {
  /** The kind. */
  command: "forward";
  /** The model as commands name it. */
  model: string;
  /** Its weight set. */
  weights: string;
  /** The image. */
  image: string;
  /** The layer (a number, a name, or `logits`). */
  layer: string;
  /** How many classes to list. */
  top: number;
  /** The output folder. */
  out: string;
}

/**
 * The `condition` command: a block's Jacobian conditioning.
 *
 * @example
 * ```ts
 * import type { ConditionCall } from "./invocation.ts";
 * const c: ConditionCall = { command: "condition", model: "vit_b_32", layer: 1, seed: 0, image: "cat.png", iterations: 40 };
 * console.assert(c.out === undefined);
 * ```
 */
export interface ConditionCall {
  /** The kind. */
  command: "condition";
  /** The model as commands name it. */
  model: string;
  /** The block. */
  layer: number;
  /** Parts removed. */
  remove?: readonly Removal[];
  /** The weight draw. */
  seed: number;
  /** The image whose activations it is measured at. */
  image: string;
  /** Lanczos iterations. */
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
