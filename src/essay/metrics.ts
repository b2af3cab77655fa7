/**
 * The quantities claims are judged on, as data: a {@linkcode Metric} names
 * the experiment, typed row and column it reads (or combines other metrics),
 * and one function each evaluates it on a weight draw's cells, describes it
 * in words and gives its unit. Nothing here matches label strings: rows are
 * the ids the experiments export.
 *
 * @module
 */
import { type ExperimentId, type RowId, ROWS } from "./experiments.ts";
import type { CellResult, ExperimentResult } from "./results.ts";
import type { Unit } from "./rules.ts";

/** A number one cell gives. */
export type CellField =
  /** PSNR of the representation, dB. */
  | "psnr"
  /** Whether the final embedding distance is below the noise baseline. */
  | "criterion-end"
  /** Whether the run exploded. */
  | "exploded"
  /** Final embedding distance / noise baseline. */
  | "end-over-baseline"
  /** Lowest embedding distance of the run / noise baseline. */
  | "best-over-baseline"
  /** ‖a − a_g‖₂ at the end. */
  | "input-distance"
  /** The share of the error that a per-patch offset or gain explains (patch-to-patch offsets and gains). */
  | "patchwork"
  /** Median minus lowest per-patch PSNR, dB: how far the worst patch falls below a typical one. */
  | "worst-patch-gap"
  /** 1 − lag-1 spatial autocorrelation of a generated image: 0 smooth, about 1 for pixel noise. */
  | "roughness";

/** A quantity read from the results. */
export type Metric =
  | {
    kind: "cell";
    exp: ExperimentId;
    row: RowId;
    col: number;
    field: CellField;
  }
  /** The best PSNR at a column over rows (e.g. learning rates), exploded runs left out. */
  | { kind: "best"; exp: ExperimentId; rows: readonly RowId[]; col: number }
  /** A number an experiment measured outside a grid (the filters'). */
  | {
    kind: "value";
    exp: ExperimentId;
    key: string;
    unit: Unit;
    about: string;
  }
  /** Per class the best row's probability under the judging model; the lowest or highest over classes. */
  | { kind: "class-probability"; exp: ExperimentId; agg: "min" | "max" }
  /** Mean over the experiment's columns of best(`rows`) − best(`base`). */
  | {
    kind: "mean-gain";
    exp: ExperimentId;
    rows: readonly RowId[];
    base: readonly RowId[];
  }
  /** Mean of a cell field over every column of one row (e.g. the classes of a generation). */
  | { kind: "row-mean"; exp: ExperimentId; row: RowId; field: CellField }
  | { kind: "diff"; a: Metric; b: Metric }
  | { kind: "ratio"; a: Metric; b: Metric }
  | { kind: "abs"; a: Metric };

/** What a metric is evaluated on: one weight draw's cells of each experiment. */
export interface SeedView {
  /** The cells of `exp` for this draw (empty when it did not finish). */
  cells(exp: ExperimentId): readonly CellResult[];
  /** The numbers `exp` measured outside a grid. */
  values(exp: ExperimentId): Readonly<Record<string, number>> | undefined;
}

/**
 * The view of weight draw `seed` on the results: each experiment's cells
 * drawn with `seedOf(exp)` (an experiment without draws: 0), experiments
 * that did not finish ("failed", "stopped" keep their finished cells) empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { seedView } from "./metrics.ts";
 * const v = seedView(new Map(), () => 0);
 * assert.deepEqual(v.cells("vit_depth"), []);
 * ```
 */
export function seedView(
  results: ReadonlyMap<string, ExperimentResult>,
  seedOf: (exp: ExperimentId) => number,
): SeedView {
  return {
    cells: (exp) => {
      const r = results.get(exp);
      if (!r || r.status === "failed") return [];
      const s = seedOf(exp);
      return r.cells.filter((c) => c.seed === s);
    },
    values: (exp) => {
      const r = results.get(exp);
      return r?.valuesBySeed ? r.valuesBySeed[seedOf(exp)] : r?.values;
    },
  };
}

const bool = (v: boolean | null | undefined) =>
  v === null || v === undefined ? null : v ? 1 : 0;

/** A cell's field. */
function field(c: CellResult | undefined, f: CellField): number | null {
  if (!c) return null;
  const over = (v: number | null | undefined) =>
    v !== null && v !== undefined && c.noiseBaseline
      ? v / c.noiseBaseline
      : null;
  switch (f) {
    case "psnr":
      return c.psnr;
    case "criterion-end":
      return bool(c.criterionAtEnd);
    case "exploded":
      return c.exploded === null ? 0 : 1;
    case "end-over-baseline":
      return over(c.embeddingDistance);
    case "best-over-baseline":
      return over(c.bestEmbedding?.distance);
    case "input-distance":
      return c.inputDistance;
    case "patchwork":
      return c.patchError ? c.patchError.offset + c.patchError.gain : null;
    case "worst-patch-gap":
      return c.patches ? c.patches.median - c.patches.min : null;
    case "roughness":
      return c.roughness ?? null;
  }
}

/** Best PSNR over rows at a column, exploded cells left out. */
function best(
  cells: readonly CellResult[],
  rows: readonly RowId[],
  col: number,
): number | null {
  const v = cells.filter((c) =>
    c.rowId !== null && rows.includes(c.rowId) && c.column === col &&
    c.psnr !== null && c.exploded === null
  ).map((c) => c.psnr!);
  return v.length ? Math.max(...v) : null;
}

const sub = (a: number | null, b: number | null) =>
  a === null || b === null ? null : a - b;

/**
 * A metric's value on one weight draw, or null when a cell it needs is
 * missing (not run, not finished) or has no such number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate } from "./metrics.ts";
 * const cell = (rowId: string, column: number, psnr: number) => ({ rowId, column, psnr, exploded: null, seed: 0 });
 * const view = { cells: () => [cell("intact", 1, 28), cell("noLn", 1, 30)] as never, values: () => undefined };
 * const gain = { kind: "diff", a: { kind: "cell", exp: "vit_depth", row: "noLn", col: 1, field: "psnr" }, b: { kind: "cell", exp: "vit_depth", row: "intact", col: 1, field: "psnr" } } as const;
 * assert.equal(evaluate(gain, view), 2);
 * ```
 */
export function evaluate(m: Metric, v: SeedView): number | null {
  switch (m.kind) {
    case "cell":
      return field(
        v.cells(m.exp).find((c) => c.rowId === m.row && c.column === m.col),
        m.field,
      );
    case "best":
      return best(v.cells(m.exp), m.rows, m.col);
    case "value":
      return v.values(m.exp)?.[m.key] ?? null;
    case "class-probability": {
      const per = new Map<number, number>();
      for (const c of v.cells(m.exp)) {
        if (c.judgeProbability === null) continue;
        per.set(c.column, Math.max(per.get(c.column) ?? 0, c.judgeProbability));
      }
      const p = [...per.values()];
      return p.length ? (m.agg === "min" ? Math.min : Math.max)(...p) : null;
    }
    case "mean-gain": {
      const cells = v.cells(m.exp);
      const g = [...new Set(cells.map((c) => c.column))].map((col) =>
        sub(best(cells, m.rows, col), best(cells, m.base, col))
      ).filter((x): x is number => x !== null);
      return g.length ? g.reduce((a, b) => a + b, 0) / g.length : null;
    }
    case "row-mean": {
      const x = v.cells(m.exp).filter((c) => c.rowId === m.row).map((c) =>
        field(c, m.field)
      ).filter((x): x is number => x !== null);
      return x.length ? x.reduce((a, b) => a + b, 0) / x.length : null;
    }
    case "diff":
      return sub(evaluate(m.a, v), evaluate(m.b, v));
    case "ratio": {
      const a = evaluate(m.a, v), b = evaluate(m.b, v);
      return a === null || b === null || b === 0 ? null : a / b;
    }
    case "abs": {
      const a = evaluate(m.a, v);
      return a === null ? null : Math.abs(a);
    }
  }
}

const UNITS: Record<CellField, Unit> = {
  psnr: "dB",
  "criterion-end": "bool",
  exploded: "bool",
  "end-over-baseline": "ratio",
  "best-over-baseline": "ratio",
  "input-distance": "distance",
  patchwork: "share",
  "worst-patch-gap": "dB",
  roughness: "fraction",
};

/**
 * A metric's unit: dB for PSNRs and their differences, a ratio for
 * quotients, yes/no for flags.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unitOf } from "./metrics.ts";
 * assert.equal(unitOf({ kind: "best", exp: "mixer_p16", rows: ["intact"], col: 1 }), "dB");
 * assert.equal(unitOf({ kind: "cell", exp: "vit_depth", row: "noLn", col: 8, field: "exploded" }), "bool");
 * ```
 */
export function unitOf(m: Metric): Unit {
  switch (m.kind) {
    case "cell":
    case "row-mean":
      return UNITS[m.field];
    case "best":
    case "mean-gain":
      return "dB";
    case "value":
      return m.unit;
    case "class-probability":
      return "probability";
    case "diff":
    case "abs":
      return unitOf(m.a);
    case "ratio":
      return "ratio";
  }
}

const rowsText = (rows: readonly RowId[]) =>
  rows.map((r) => `«${ROWS[r]}»`).join(", ");

const FIELD_TEXT: Record<CellField, string> = {
  psnr: "PSNR",
  "criterion-end":
    "whether the final embedding distance is below the noise baseline, for",
  exploded: "whether the run exploded, for",
  "end-over-baseline": "final embedding distance / noise baseline of",
  "best-over-baseline":
    "lowest embedding distance during the run / noise baseline of",
  "input-distance": "‖a − a_g‖₂ at the end of",
  patchwork:
    "the share of the squared error that per-patch offsets and gains explain (patchwork) in",
  "worst-patch-gap":
    "median minus lowest per-patch PSNR (how far the worst patch falls below a typical one) of",
  roughness:
    "the roughness (1 − lag-1 spatial autocorrelation: 0 smooth, about 1 pixel noise) of",
};

/**
 * A metric in words, naming its experiment, rows and columns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describe } from "./metrics.ts";
 * assert.equal(describe({ kind: "cell", exp: "vit_depth", row: "intact", col: 12, field: "psnr" }), "PSNR of vit_depth «intact» at layer 12");
 * ```
 */
export function describe(m: Metric): string {
  switch (m.kind) {
    case "cell":
      return `${FIELD_TEXT[m.field]} ${
        m.field === "psnr" ? "of " : ""
      }${m.exp} «${ROWS[m.row]}» at layer ${m.col}`;
    case "best":
      return `the best PSNR of ${m.exp} at layer ${m.col} over the rows ${
        rowsText(m.rows)
      } (exploded runs left out)`;
    case "value":
      return m.about;
    case "class-probability":
      return `the ${
        m.agg === "min" ? "lowest" : "highest"
      } over classes of the judging model's probability for the class an image of ${m.exp} was generated for (each class's best row)`;
    case "mean-gain":
      return `the mean over ${m.exp}'s layers of (best PSNR over ${
        rowsText(m.rows)
      }) − (best PSNR over ${rowsText(m.base)})`;
    case "row-mean":
      return `the mean over ${m.exp}'s columns of ${FIELD_TEXT[m.field]} ${
        m.field === "psnr" ? "of " : ""
      }«${ROWS[m.row]}»`;
    case "diff":
      return `(${describe(m.a)}) − (${describe(m.b)})`;
    case "ratio":
      return `(${describe(m.a)}) / (${describe(m.b)})`;
    case "abs":
      return `|${describe(m.a)}|`;
  }
}

/**
 * The experiments a metric reads, each with the rows it reads (null: all of
 * them), in order of first use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reads } from "./metrics.ts";
 * const r = reads({ kind: "diff", a: { kind: "best", exp: "resnet_stem", rows: ["intact", "lr10"], col: 0 }, b: { kind: "cell", exp: "vit_stem", row: "intact", col: 0, field: "psnr" } });
 * assert.deepEqual([...r], [["resnet_stem", ["intact", "lr10"]], ["vit_stem", ["intact"]]]);
 * ```
 */
export function reads(
  m: Metric,
  into: Map<ExperimentId, RowId[] | null> = new Map(),
): Map<ExperimentId, RowId[] | null> {
  const add = (exp: ExperimentId, rows: readonly RowId[] | null) => {
    const have = into.get(exp);
    if (have === null) return;
    if (rows === null) into.set(exp, null);
    else into.set(exp, [...new Set([...(have ?? []), ...rows])]);
  };
  switch (m.kind) {
    case "cell":
    case "row-mean":
      add(m.exp, [m.row]);
      break;
    case "best":
      add(m.exp, m.rows);
      break;
    case "mean-gain":
      add(m.exp, [...m.rows, ...m.base]);
      break;
    case "value":
    case "class-probability":
      add(m.exp, null);
      break;
    case "diff":
    case "ratio":
      reads(m.a, into);
      reads(m.b, into);
      break;
    case "abs":
      reads(m.a, into);
  }
  return into;
}
