/**
 * The grid (src/grid): a grid as typed values — {@linkcode GridSpec} (model,
 * columns, steps, grid-wide settings, rows) and {@linkcode RowSpec} (a row's
 * label and its typed changes) — and the one place besides the command line's
 * parser that knows the `grid` command's flags: {@linkcode gridArgs} makes a
 * spec's command line (for a process or a cluster task), {@linkcode rowText}
 * a row's `--variant` OPTIONS. The command line reads `--variant` into the
 * same types (src/cli/grid_args.ts); the essay builds them.
 *
 * @module
 */
import type { Schedule } from "../optimize/mod.ts";
export type { Schedule } from "../optimize/mod.ts";

/**
 * The names `--remove` accepts (src/run/model_options.ts `REMOVE_NAMES` maps each to block parts):
 * `residual` (= res1, res2), `layernorm` (= ln1, ln2), `attention` (= attn),
 * `batchnorm` (= bn) and the parts themselves.
 */
export const REMOVE_NAME_LIST = [
  "residual",
  "layernorm",
  "ln1",
  "ln2",
  "attention",
  "mlp",
  "attn",
  "res1",
  "res2",
  "batchnorm",
  "bn",
] as const;

/**
 * A name `--remove` accepts.
 *
 * @example
 * ```ts
 * import type { RemoveName } from "./spec.ts";
 * const parts: RemoveName[] = ["residual", "attention"];
 * console.assert(parts.length === 2);
 * ```
 */
export type RemoveName = typeof REMOVE_NAME_LIST[number];

/**
 * Encoder layers (1-based): `"all"`, or inclusive ranges `[from, to]`
 * (`[[1, 4]]` is `1-4`, `[[3, 3], [7, 7]]` is `3,7`).
 *
 * @example
 * ```ts
 * import type { LayerSet } from "./spec.ts";
 * const first4: LayerSet = [[1, 4]];
 * console.assert(first4[0][1] === 4);
 * ```
 */
export type LayerSet = "all" | readonly (readonly [number, number])[];

/**
 * One removal: parts removed from encoder blocks, in `layers` (every layer
 * when absent).
 *
 * @example
 * ```ts
 * import type { Removal } from "./spec.ts";
 * const noResidual: Removal = { parts: ["residual"], layers: [[1, 4]] };
 * console.assert(noResidual.parts[0] === "residual");
 * ```
 */
export interface Removal {
  /** The parts, e.g. `["residual", "attention"]`. */
  parts: readonly RemoveName[];
  /** The layers; absent: all. */
  layers?: LayerSet;
}

/**
 * A component's tensors taken from another weight set, e.g. the trained stem
 * `{ part: "conv_proj", weights: "IMAGENET1K_V1" }`.
 *
 * @example
 * ```ts
 * import type { SwapSpec } from "./spec.ts";
 * const stem: SwapSpec = { part: "conv_proj", weights: "IMAGENET1K_V1" };
 * console.assert(stem.part === "conv_proj");
 * ```
 */
export interface SwapSpec {
  /** The component, e.g. `conv_proj`, `pos_embedding`, `encoder.layers.0.ln_1`. */
  part: string;
  /** The weight set, as for a model's weights (`untrained:SEED` included). */
  weights: string;
}

/**
 * What a row changes from the grid's settings (every field optional; absent:
 * the grid's). A row's `remove` comes with its own layers.
 *
 * @example
 * ```ts
 * import type { RowChanges } from "./spec.ts";
 * const c: RowChanges = { weights: "untrained", remove: [{ parts: ["mlp"] }], seed: 1 };
 * console.assert(c.seed === 1);
 * ```
 */
export interface RowChanges {
  /** The weight set (`untrained` draws weights with the seed). */
  weights?: string;
  /** Parts removed. */
  remove?: readonly Removal[];
  /** Without `remove`: the layers of the grid's removals (one for all, or one per removal). */
  removeLayers?: readonly LayerSet[];
  /** False: leave the position embedding out of input processing. */
  positionEmbedding?: boolean;
  /** Components from other weight sets, in order (later ones win). */
  swaps?: readonly SwapSpec[];
  /** Steps of this row's cells. */
  steps?: number;
  /** The learning-rate schedule. */
  lr?: Schedule;
  /** The blur's σ schedule. */
  sigma?: Schedule;
  /** The blur kernel's side (odd). */
  kernelSize?: number;
  /** Normalize the image as the model expects. */
  normalize?: boolean;
  /** Invert grids: match the column's layer alone (not the whole chain to it). */
  onlyLayer?: boolean;
  /** Invert grids: the loss. */
  loss?: string;
  /** Generate grids: the constant of the logit objective. */
  constant?: number;
  /** Generate grids: steps before jitter starts. */
  jitterAfter?: number;
  /** Generate grids: the canvas side, pixels. */
  canvas?: number;
  /** The weight draw (0 is the grid's own). */
  seed?: number;
}

/**
 * A grid row: its label (the montage's, and the key of its results) and
 * what it changes.
 *
 * @example
 * ```ts
 * import type { RowSpec } from "./spec.ts";
 * const r: RowSpec = { label: "no layer norms", changes: { remove: [{ parts: ["layernorm"] }] } };
 * console.assert(r.label === "no layer norms");
 * ```
 */
export interface RowSpec {
  /** The label (no `=`). */
  label: string;
  /** What it changes. */
  changes: RowChanges;
}

/**
 * Settings of every cell of a grid (each optional; absent: the command's
 * default).
 *
 * @example
 * ```ts
 * import type { GridSettings } from "./spec.ts";
 * const s: GridSettings = { normalize: false, lr: { start: 0.006, end: 0.006 } };
 * console.assert(s.normalize === false);
 * ```
 */
export interface GridSettings {
  /** Normalize the image as the model expects. */
  normalize?: boolean;
  /** The learning-rate schedule. */
  lr?: Schedule;
  /** Generate grids: steps before jitter starts. */
  jitterAfter?: number;
  /** Generate grids: the canvas side, pixels. */
  canvas?: number;
  /** A trace row every N steps. */
  traceEvery?: number;
  /** A snapshot every N steps (0: none). */
  saveEvery?: number;
}

/**
 * A grid's columns: layers of an inversion of `image`, or classes to
 * generate.
 *
 * @example
 * ```ts
 * import type { GridColumns } from "./spec.ts";
 * const c: GridColumns = { layers: [1, 4, 12], image: "assets/chelsea.png" };
 * console.assert("layers" in c);
 * ```
 */
export type GridColumns =
  | { layers: readonly (number | string)[]; image: string }
  | { classes: readonly (number | string)[] };

/**
 * A whole grid as typed values: what `grid` is given.
 *
 * @example
 * ```ts
 * import type { GridSpec } from "./spec.ts";
 * const g: GridSpec = {
 *   model: "vit_b_32",
 *   columns: { layers: [1, 4], image: "cat.png" },
 *   steps: 100,
 *   seed: 0,
 *   rows: [{ label: "intact", changes: {} }],
 *   out: "out/grid",
 * };
 * console.assert(g.rows.length === 1);
 * ```
 */
export interface GridSpec {
  /** The model as commands name it: a folder's path or a name under weights/. */
  model: string;
  /** The weight set (the command's default when absent). */
  weights?: string;
  /** The columns. */
  columns: GridColumns;
  /** Steps per cell. */
  steps: number;
  /** The weight draw of untrained weights. */
  seed: number;
  /** The rows, in order. */
  rows: readonly RowSpec[];
  /** Settings of every cell. */
  settings?: GridSettings;
  /** No progress lines. */
  quiet?: boolean;
  /** The grid's folder. */
  out: string;
}

/**
 * A schedule as the command line writes it: `START:END`, one number when
 * constant.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scheduleText } from "./spec.ts";
 * assert.equal(scheduleText({ start: 0.01, end: 0.001 }), "0.01:0.001");
 * assert.equal(scheduleText({ start: 0.006, end: 0.006 }), "0.006");
 * ```
 */
export function scheduleText(s: Schedule): string {
  return s.start === s.end ? `${s.start}` : `${s.start}:${s.end}`;
}

/**
 * Layers as the command line writes them: `all`, or ranges such as `1-4,7`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerSetText } from "./spec.ts";
 * assert.equal(layerSetText([[1, 4], [7, 7]]), "1-4,7");
 * assert.equal(layerSetText("all"), "all");
 * ```
 */
export function layerSetText(l: LayerSet): string {
  if (l === "all") return "all";
  return l.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");
}

/** A word for the option splitter (and a POSIX shell): as it is when plain, else single-quoted. */
const word = (s: string) =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;

/** The `--remove` and `--remove-layers` options of removals (one `--remove-layers` when all share it). */
function removeArgs(remove: readonly Removal[]): string[] {
  if (remove.length === 0) return [];
  const texts = remove.map((r) => r.layers && layerSetText(r.layers));
  const shared = texts.every((t) => t === texts[0]);
  const layers = shared
    ? (texts[0] === undefined ? [] : [texts[0]])
    : texts.map((t) => t ?? "all");
  return [
    ...remove.flatMap((r) => ["--remove", r.parts.join(",")]),
    ...layers.flatMap((t) => ["--remove-layers", t]),
  ];
}

/** A boolean option: `--name` when true, `--no-name` when false, nothing when absent. */
const flag = (name: string, v: boolean | undefined) =>
  v === undefined ? [] : [v ? `--${name}` : `--no-${name}`];

/** A valued option, nothing when absent. */
const opt = (name: string, v: string | number | undefined) =>
  v === undefined ? [] : [`--${name}`, `${v}`];

/**
 * A row's changes as the options of a command line (in a fixed order).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowArgs } from "./spec.ts";
 * assert.deepEqual(rowArgs({ remove: [{ parts: ["mlp"] }], seed: 2 }), ["--remove", "mlp", "--seed", "2"]);
 * ```
 */
export function rowArgs(c: RowChanges): string[] {
  return [
    ...opt("weights", c.weights),
    ...removeArgs(c.remove ?? []),
    ...(c.remove ? [] : (c.removeLayers ?? []).flatMap((l) => [
      "--remove-layers",
      layerSetText(l),
    ])),
    ...flag("pos-embedding", c.positionEmbedding),
    ...(c.swaps ?? []).flatMap((s) => ["--swap", `${s.part}=${s.weights}`]),
    ...opt("steps", c.steps),
    ...opt("lr", c.lr && scheduleText(c.lr)),
    ...opt("sigma", c.sigma && scheduleText(c.sigma)),
    ...opt("kernel-size", c.kernelSize),
    ...flag("normalize", c.normalize),
    ...flag("only-layer", c.onlyLayer),
    ...opt("loss", c.loss),
    ...opt("constant", c.constant),
    ...opt("jitter-after", c.jitterAfter),
    ...opt("canvas", c.canvas),
    ...opt("seed", c.seed),
  ];
}

/**
 * A row's changes as `--variant` OPTIONS text (words quoted where they need
 * it; "" for none): what `grid` reads back into the same changes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowText } from "./spec.ts";
 * const c = { remove: [{ parts: ["residual", "attention"] as const, layers: [[1, 4]] as const }], seed: 1 };
 * assert.equal(rowText(c), "--remove residual,attention --remove-layers 1-4 --seed 1");
 * assert.equal(rowText({ swaps: [{ part: "conv_proj", weights: "trained" }] }), "--swap conv_proj=trained");
 * assert.equal(rowText({}), "");
 * ```
 */
export function rowText(c: RowChanges): string {
  return rowArgs(c).map(word).join(" ");
}

/**
 * Grid-wide settings as options of the command line (in a fixed order).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settingArgs } from "./spec.ts";
 * assert.deepEqual(settingArgs({ normalize: false, lr: { start: 0.006, end: 0.006 } }), ["--no-normalize", "--lr", "0.006"]);
 * assert.deepEqual(settingArgs({ traceEvery: 6, saveEvery: 300 }), ["--trace-every", "6", "--save-every", "300"]);
 * ```
 */
export function settingArgs(s: GridSettings): string[] {
  return [
    ...flag("normalize", s.normalize),
    ...opt("lr", s.lr && scheduleText(s.lr)),
    ...opt("jitter-after", s.jitterAfter),
    ...opt("canvas", s.canvas),
    ...opt("trace-every", s.traceEvery),
    ...opt("save-every", s.saveEvery),
  ];
}

/**
 * The `grid` command line (after `grid`) of a spec: the one function that
 * writes one, for a process or a cluster task. A label with `=` is a
 * TypeError (the label ends at the first `=`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gridArgs } from "./spec.ts";
 * const args = gridArgs({
 *   model: "weights/vit_b_32",
 *   columns: { layers: [1, 4], image: "cat.png" },
 *   steps: 10,
 *   seed: 0,
 *   rows: [{ label: "intact", changes: {} }, { label: "no LN", changes: { remove: [{ parts: ["layernorm"] }] } }],
 *   quiet: true,
 *   out: "out/x",
 * });
 * assert.deepEqual(args, [
 *   "--model", "weights/vit_b_32", "--layers", "1,4", "--image", "cat.png",
 *   "--steps", "10", "--seed", "0",
 *   "--variant", "intact=", "--variant", "no LN=--remove layernorm",
 *   "--quiet", "--out", "out/x",
 * ]);
 * ```
 */
export function gridArgs(g: GridSpec): string[] {
  for (const r of g.rows) {
    if (r.label.includes("=") || r.label.trim() === "") {
      throw new TypeError(
        `Invalid row label "${r.label}": expected a label without "=" (it ends at the first "=")`,
      );
    }
  }
  const c = g.columns;
  return [
    ...["--model", g.model],
    ...opt("weights", g.weights),
    ...("layers" in c
      ? ["--layers", c.layers.join(","), "--image", c.image]
      : ["--classes", c.classes.join(",")]),
    ...["--steps", `${g.steps}`, "--seed", `${g.seed}`],
    ...g.rows.flatMap((r) => ["--variant", `${r.label}=${rowText(r.changes)}`]),
    ...settingArgs(g.settings ?? {}),
    ...(g.quiet ? ["--quiet"] : []),
    ...["--out", g.out],
  ];
}
