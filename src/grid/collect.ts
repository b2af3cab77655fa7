/**
 * The grid (src/grid): the collect step of a grid — from the
 * cells' folders (however and wherever they ran) to the montage `grid.png`
 * (and its vector twin `grid.svg`),
 * the tables `grid.csv` and `grid.md`, and `metrics.json`. Cells not finished
 * are marked: in the tables by their outcome (`exploded at step 7`,
 * `diverged at step 7`, `stopped at step 40`, `missing`), in the montage by an
 * empty cell and a line under the title.
 *
 * @module
 */
import { readRegularText, RECORD_BYTES } from "../io/mod.ts";
import { type ImageTensor, toCsv, writeAtomic, writePng } from "../io/mod.ts";
import { montage, type MontageOptions, montageSvg } from "../figures/mod.ts";
import { enlargedSide, imageOf, loadTarget } from "../run/images.ts";
import {
  type CellState,
  type CellView,
  type CsvField,
  MODES,
  savedTypesOf,
  type Summary,
} from "./modes.ts";
import { commonSteps, type GridPlan, type PlanCell } from "./plan.ts";
import { FAILED_FILE, type Failure, failureText } from "./cell.ts";
import { writeJson } from "../io/mod.ts";

/** A cell as found on disk. */
export interface Found {
  /** done, failed (diverged), stopped (a snapshot) or missing. */
  kind: "done" | "failed" | "stopped" | "missing";
  summary?: Summary;
  image?: Float32Array;
  failure?: Failure;
  /** The outcome column: `ok`, `exploded at step 7`, `stopped at step 40`, `missing`. */
  outcome: string;
}

/** What cell `cell` of `plan` left in its folder. */
export async function findCell(plan: GridPlan, cell: PlanCell): Promise<Found> {
  const dir = `${plan.out}/${cell.dir}`;
  const state: CellState = await MODES[plan.mode].state(
    dir,
    cell.settings,
    plan.model.imageSize,
    savedTypesOf(cell.options),
  );
  if (state.kind === "done") {
    return {
      kind: "done",
      summary: state.summary,
      image: state.image,
      outcome: "ok",
    };
  }
  try {
    const failure = JSON.parse(
      await readRegularText(
        `${dir}/${FAILED_FILE}`,
        RECORD_BYTES,
        "failure record",
      ),
    ) as Failure;
    return { kind: "failed", failure, outcome: failureText(failure) };
  } catch {
    // not failed
  }
  if (state.kind === "snapshot") {
    return { kind: "stopped", outcome: `stopped at step ${state.step}` };
  }
  return { kind: "missing", outcome: "missing" };
}

/** What collecting wrote and found. */
export interface Collected {
  found: Found[];
  /** grid.md's text. */
  md: string;
}

/** The montage: rows × (target +) cells, unfinished cells empty and listed under the title. */
async function writeMontage(
  plan: GridPlan,
  found: readonly Found[],
): Promise<void> {
  const def = MODES[plan.mode];
  const target = plan.image === null
    ? null
    : await loadTarget(plan.image.path, plan.model.imageSize);
  const images = found.map((f) => f.image ? imageOf(f.image) : null);
  const cells: (ImageTensor | null)[][] = plan.rows.map((_, r) => {
    const line = plan.cells.flatMap((c, i) => c.row === r ? [images[i]] : []);
    return def.targetColumn ? [target, ...line] : line;
  });
  const steps = commonSteps(plan);
  const marks = plan.cells.flatMap((c, i) =>
    found[i].kind === "done" ? [] : [
      `${plan.rows[c.row].label} × ${plan.columns[c.col].short}: ${
        found[i].outcome
      }`,
    ]
  );
  const figure: MontageOptions = {
    cells,
    rowLabels: plan.rows.map((r) => r.label),
    colLabels: [
      ...(def.targetColumn ? ["target"] : []),
      ...plan.columns.map((c) => c.label),
    ],
    title: `${plan.title}${steps === null ? "" : `, ${steps} steps`}${
      marks.length ? `. Not finished: ${marks.join("; ")}` : ""
    }`,
    cellSize: [
      enlargedSide([target, ...images]),
      enlargedSide([target, ...images]),
    ],
  };
  await writePng(`${plan.out}/grid.png`, montage(figure));
  await writeAtomic(`${plan.out}/grid.svg`, montageSvg(figure));
}

/**
 * Builds grid.png, grid.csv, grid.md and metrics.json from the cells'
 * folders. `statuses` (from a run in this process) name how each cell went;
 * without them a cell's status is what its folder holds.
 */
export async function collectGrid(
  plan: GridPlan,
  opts: { statuses?: readonly string[]; interrupted?: boolean } = {},
): Promise<Collected> {
  const def = MODES[plan.mode];
  const found: Found[] = [];
  for (const c of plan.cells) found.push(await findCell(plan, c));
  await writeMontage(plan, found);
  const views: CellView[] = plan.cells.map((c, i) => ({
    variant: plan.rows[c.row].label,
    column: plan.columns[c.col],
    key: c.key,
    summary: found[i].summary,
    outcome: found[i].outcome,
  }));
  const columns = [
    ...def.csv,
    ["outcome", (v: CellView) => v.outcome] as CsvField,
  ];
  const records = views.map((v) =>
    Object.fromEntries(columns.map(([k, get]) => [k, get(v)]))
  );
  await writeAtomic(
    `${plan.out}/grid.csv`,
    toCsv(columns.map(([k]) => k), records),
  );
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  const md = [
    line(def.md.map(([t]) => t)),
    line(def.md.map(() => "---")),
    ...views.map((v) => line(def.md.map(([, get]) => get(v)))),
  ].join("\n");
  await writeAtomic(`${plan.out}/grid.md`, md + "\n");
  const statuses = plan.cells.map((_, i) =>
    opts.statuses?.[i] ??
      (found[i].kind === "failed" ? "diverged" : found[i].kind)
  );
  await writeJson(
    `${plan.out}/metrics.json`,
    metricsOf(plan, found, statuses, records, opts),
  );
  return { found, md };
}

function metricsOf(
  plan: GridPlan,
  found: readonly Found[],
  statuses: readonly string[],
  records: readonly Record<string, unknown>[],
  opts: { interrupted?: boolean },
) {
  const count = (s: string) => statuses.filter((x) => x === s).length;
  return {
    command: "grid",
    mode: plan.mode,
    options: plan.options,
    model: {
      name: plan.model.name,
      source: plan.rows[0].load.source,
      imageSize: plan.model.imageSize,
      layers: plan.model.layers,
      classes: plan.model.classes,
    },
    rows: plan.rows.map((r) => ({
      label: r.label,
      options: r.text,
      weights: r.weights,
      ablations: r.variant.ablations,
      positionEmbedding: r.variant.positionEmbedding,
      swaps: r.variant.swaps,
      tag: r.variant.tag,
    })),
    columns: plan.columns.map((c) =>
      c.name === undefined ? c.value : { index: c.value, name: c.name }
    ),
    cells: plan.cells.map((c, i) => ({
      index: i,
      row: plan.rows[c.row].label,
      column: plan.columns[c.col].value,
      key: c.key,
      dir: c.dir,
      status: statuses[i],
      outcome: found[i].outcome,
      ...(found[i].failure ? { error: found[i].failure!.error } : {}),
      final: records[i],
    })),
    reused: count("reused"),
    computed: count("computed"),
    diverged: count("diverged"),
    finished: found.filter((f) => f.kind === "done").length,
    interrupted: opts.interrupted ??
      found.some((f) => f.kind === "stopped" || f.kind === "missing"),
    files: [
      "grid.png",
      "grid.svg",
      "grid.csv",
      "grid.md",
      "metrics.json",
      "plan.json",
      "cells/",
    ],
  };
}
