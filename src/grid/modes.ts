/**
 * The grid (src/grid): what differs between an invert grid (layers
 * as columns) and a generate grid (classes as columns), in one object per
 * mode — its options, how a cell's settings and key are made, how a cell runs
 * and is found finished, and its table — so the grid's plan, cells and
 * collect steps have no `mode ===` branches.
 *
 * @module
 */
import {
  npyBytes,
  readRegularFile,
  readRegularText,
  RECORD_BYTES,
} from "../io/mod.ts";
import type { ImageTensor } from "../io/mod.ts";
import { decodeNpy } from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import type { RunOptions, SavedTypes } from "../run/settings.ts";
import {
  type InvertResume,
  type InvertSettings,
  type InvertSummary,
  readInvertResume,
  runInvert,
} from "../run/invert.ts";
import {
  classState,
  type GenerateSettings,
  type GenerateSummary,
  runGenerate,
} from "../run/generate.ts";
import type { Control } from "../run/harness.ts";
import { hasSnapshot } from "../run/snapshot.ts";

/** An invert grid (`--layers`) or a generate grid (`--classes`). */
export type Mode = "invert" | "generate";

/** One generation of a class. */
export type ClassSettings = GenerateSettings & { index: number };

/** A cell's typed settings. */
export type CellSettings = InvertSettings | ClassSettings;

/** A finished cell's figures (without its image). */
export type Summary = InvertSummary | Omit<GenerateSummary, "image">;

/** A column: a layer number or a class index, with its names. */
export interface Column {
  /** The layer or class index. */
  value: number;
  /** The montage's column title. */
  label: string;
  /** The name in progress lines (`layer 2`, `class 5`). */
  short: string;
  /** A class's name (generate grids). */
  name?: string;
}

/** What a cell folder holds. */
export type CellState =
  | { kind: "done"; summary: Summary; image: Float32Array }
  | { kind: "snapshot"; step: number; resume: unknown }
  | { kind: "fresh" };

/** The result of running a cell. */
export interface CellRun {
  summary: Summary;
  image: Float32Array;
  interrupted: boolean;
}

/** A cell as the tables see it; `summary` undefined when it did not finish. */
export interface CellView {
  variant: string;
  column: Column;
  key: string;
  summary: Summary | undefined;
  /** How it ended: `ok`, `exploded at step 7`, `missing`, …. */
  outcome: string;
}

/** A column of grid.csv and how a cell fills it. */
export type CsvField = [
  name: string,
  get: (c: CellView) => string | number | null,
];
/** A column of grid.md and how a cell fills it. */
export type MdField = [title: string, get: (c: CellView) => string];

/** The columns both tables start with (variant, then the grid's column). */
const lead = (name: string): CsvField[] => [
  ["variant", (c) => c.variant],
  [name, (c) => c.column.value],
];
/** A csv column holding a summary's number (empty when the cell did not finish). */
const figure = (name: string, key: string): CsvField => [
  name,
  (c) =>
    (c.summary as Record<string, number | null> | undefined)?.[key] ?? null,
];
/** The columns both tables end with. */
const trail: CsvField[] = [figure("steps", "steps"), ["cell", (c) => c.key]];
const mdLead = (name: string): MdField[] => [
  ["variant", (c) => mdCell(c.variant)],
  [name, (c) => String(c.column.value)],
];

/** Everything that differs between the two kinds of grid. */
export interface ModeDef {
  /** The command each cell runs. */
  command: Mode;
  /** What the montage shows. */
  title: string;
  /** Whether the montage's first column is the target image. */
  targetColumn: boolean;
  /** The columns of the given layers or classes (`alone`: encoders represented alone). */
  columns(values: readonly number[], m: Manifest, alone: boolean): Column[];
  /** A row's settings for one column. */
  cellSettings(row: CellSettings, column: Column): CellSettings;
  /** The mode's part of a cell's key. */
  canonical(
    s: CellSettings,
    targetHash: string | null,
  ): Record<string, unknown>;
  /** The column's options as the cell's metrics.json records them. */
  savedColumn(column: Column, image: string | null): RunOptions;
  /** What the cell folder holds (a snapshot's options checked against `saved`). */
  state(
    dir: string,
    s: CellSettings,
    size: number,
    saved: SavedTypes,
  ): Promise<CellState>;
  /** Runs (or continues) the cell into `ctl.out`. */
  run(
    model: Model,
    s: CellSettings,
    ctl: Control,
    resume: unknown,
    target: ImageTensor | null,
  ): Promise<CellRun>;
  /** grid.csv's columns: the row, the column, the figures, the cell's key (then its outcome). */
  csv: readonly CsvField[];
  /** grid.md's columns. */
  md: readonly MdField[];
}

/**
 * A table cell in Markdown: pipes escaped, one line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mdCell } from "./modes.ts";
 * assert.ok(mdCell("a|b\nc") === "a\\|b c");
 * ```
 */
export function mdCell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/**
 * A number with `d` decimals; — for none, ∞ and NaN spelled out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fix } from "./modes.ts";
 * assert.ok(fix(1.23456, 2) === "1.23" && fix(null, 2) === "—" && fix(Infinity, 2) === "∞");
 * ```
 */
export const fix = (v: number | null | undefined, d: number): string =>
  v === null || v === undefined
    ? "—"
    : Number.isFinite(v)
    ? v.toFixed(d)
    : v > 0
    ? "∞"
    : "NaN";

/** A column's name: `layer 7`, and for a ResNet the block's own name, `layer2.3 (7)`. */
function layerLabel(m: Manifest, layer: number): string {
  return m.runtime.layer_labels === "name"
    ? `${m.layers[layer].name} (${layer})`
    : `layer ${layer}`;
}

async function invertState(
  dir: string,
  size: number,
  saved: SavedTypes,
): Promise<CellState> {
  try {
    const m = JSON.parse(
      await readRegularText(`${dir}/metrics.json`, RECORD_BYTES, "run record"),
    );
    if (m.interrupted === false && m.final) {
      const img = decodeNpy(
        await readRegularFile(
          `${dir}/representation.npy`,
          npyBytes(size),
          "image",
        ),
      );
      if (img.data.length === 3 * size * size) {
        return { kind: "done", summary: m.final, image: img.data };
      }
    }
  } catch {
    // not finished
  }
  if (!(await hasSnapshot(dir))) return { kind: "fresh" };
  try {
    const resume = await readInvertResume(dir, size, saved);
    return { kind: "snapshot", step: resume.step, resume };
  } catch {
    return { kind: "fresh" }; // an unreadable snapshot: start over
  }
}

const inv = (c: CellView) => c.summary as InvertSummary | undefined;
const gen = (c: CellView) => c.summary as GenerateSummary | undefined;

const INVERT_MODE: ModeDef = {
  command: "invert",
  title: "layer representations",
  targetColumn: true,
  columns: (layers, m, alone) =>
    layers.map((l) => ({
      value: l,
      label: alone ? `encoder ${l} alone` : layerLabel(m, l),
      short: layerLabel(m, l),
    })),
  cellSettings: (row, column) => ({
    ...row as InvertSettings,
    layer: column.value,
  }),
  canonical(cell, targetHash) {
    const s = cell as InvertSettings;
    return {
      target: targetHash,
      layer: s.layer,
      onlyLayer: s.onlyLayer,
      loss: s.loss,
      steps: s.steps,
      lr: s.lr,
      sigma: s.sigma,
      kernelSize: s.kernelSize,
    };
  },
  savedColumn: (column, image) => ({
    layer: String(column.value),
    image: image!,
  }),
  state: (dir, _s, size, saved) => invertState(dir, size, saved),
  async run(model, s, ctl, resume, target) {
    const r = await runInvert(
      model,
      target!,
      s as InvertSettings,
      ctl,
      resume as InvertResume | undefined,
    );
    return {
      summary: r.summary,
      image: r.image,
      interrupted: r.summary.interrupted,
    };
  },
  csv: [
    ...lead("layer"),
    figure("embedding_distance", "embeddingDistance"),
    figure("noise_baseline", "noiseBaseline"),
    ["criterion_met", (c) => inv(c) ? (inv(c)!.criterionMet ? 1 : 0) : null],
    figure("criterion_step", "criterionStep"),
    figure("input_distance", "inputDistance"),
    figure("psnr", "psnr"),
    figure("ssim", "ssim"),
    ...trail,
  ],
  md: [
    ...mdLead("layer"),
    ["‖O(a)−O(a_g)‖₂", (c) => fix(inv(c)?.embeddingDistance, 3)],
    ["noise baseline ‖O(a)−O(a′)‖₂", (c) => fix(inv(c)?.noiseBaseline, 3)],
    ["criterion met", (c) => {
      const s = inv(c);
      return !s
        ? c.outcome
        : s.criterionMet
        ? `yes (step ${s.criterionStep})`
        : "no";
    }],
    ["‖a−a_g‖₂", (c) => fix(inv(c)?.inputDistance, 2)],
    ["PSNR dB", (c) => fix(inv(c)?.psnr, 2)],
    ["SSIM", (c) => fix(inv(c)?.ssim, 3)],
  ],
};

const GENERATE_MODE: ModeDef = {
  command: "generate",
  title: "generated inputs",
  targetColumn: false,
  columns: (indices, m) =>
    indices.map((index) => ({
      value: index,
      label: m.categories
        ? `${index}: ${m.categories[index]}`
        : `class ${index}`,
      short: `class ${index}`,
      name: m.categories?.[index] ?? `class ${index}`,
    })),
  cellSettings: (row, column) => ({
    ...row as ClassSettings,
    index: column.value,
  }),
  canonical(cell) {
    const s = cell as ClassSettings;
    return {
      class: s.index,
      constant: s.constant,
      steps: s.steps,
      jitterAfter: s.jitterAfter,
      canvasSize: s.canvasSize,
      lr: s.lr,
      sigma: s.sigma,
      kernelSize: s.kernelSize,
    };
  },
  savedColumn: (column) => ({ class: String(column.value) }),
  async state(dir, cell, size, saved) {
    const s = cell as ClassSettings;
    const state = await classState(dir, s.index, size, s.canvasSize, saved)
      .catch(() => ({ kind: "fresh" as const }));
    if (state.kind === "fresh") return state;
    if (state.kind === "snapshot") {
      return {
        kind: "snapshot",
        step: state.resume.step,
        resume: state.resume,
      };
    }
    const { image, ...summary } = state.summary;
    return { kind: "done", summary, image };
  },
  async run(model, cell, ctl, resume) {
    const s = cell as ClassSettings;
    const r = await runGenerate(
      model,
      s.index,
      s,
      ctl,
      resume as Parameters<typeof runGenerate>[4],
    );
    const { image, ...summary } = r;
    return { summary, image, interrupted: r.interrupted };
  },
  csv: [
    ...lead("class"),
    ["name", (c) => c.column.name ?? ""],
    figure("logit", "logit"),
    figure("probability", "probability"),
    ...trail,
  ],
  md: [
    ...mdLead("class"),
    ["name", (c) => mdCell(c.column.name ?? "")],
    ["final logit", (c) => gen(c) ? fix(gen(c)!.logit, 3) : c.outcome],
    ["probability", (c) => fix(gen(c)?.probability, 4)],
  ],
};

/**
 * The types of the options a cell records, which its snapshot must hold.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { savedTypesOf } from "./modes.ts";
 * assert.deepEqual(savedTypesOf({ steps: "9", normalize: true }), { steps: "string", normalize: "boolean" });
 * ```
 */
export function savedTypesOf(options: RunOptions): SavedTypes {
  return Object.fromEntries(
    Object.entries(options).map(([k, v]) => [
      k,
      typeof v === "boolean" ? "boolean" : "string",
    ]),
  );
}

/** The two kinds of grid. */
export const MODES: Readonly<Record<Mode, ModeDef>> = {
  invert: INVERT_MODE,
  generate: GENERATE_MODE,
};
