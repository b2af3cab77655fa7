/**
 * The grid (src/grid): a grid's plan — every cell with its fully
 * resolved, typed options, its key and its estimated cost — made by a pure
 * function from typed inputs, and written to and read from `DIR/plan.json` so
 * that other processes (a Slurm array task, a Kubernetes Indexed Job pod) can
 * run single cells of it.
 *
 * @module
 */
import { PLAN_BYTES, PLAN_FORMAT_NAME, readRegularText } from "../io/mod.ts";
import type { Ablation, BackendName, Manifest, Swap } from "../model/mod.ts";
import { type ImageTensor, sha256Hex as sha256, writeJson } from "../io/mod.ts";
import { fileURLToPath as fromFileUrl } from "node:url";
import { ROOT, type RunOptions } from "../run/settings.ts";
import type { Variant } from "../run/variant.ts";
import { type CellSettings, type Column, type Mode, MODES } from "./modes.ts";

/** plan.json's format tag. */
export const PLAN_FORMAT = `${PLAN_FORMAT_NAME}/1` as const;
const CELL_FORMAT = "vitrep-grid-cell/1";

/**
 * Sustained GFLOP/s of one core on the forward + VJP chain, for cost
 * estimates: ViT-B/32 to encoder 12 is about 26 GFLOP a step by the count
 * below and takes 176 ms on 2 native threads (README, Speed): 74 per core,
 * halved for slower cluster cores and memory-bound blocks.
 */
const GFLOPS_PER_CORE = 37;

/** How a row's model is loaded (its ablations are applied after). */
export interface ModelLoad {
  source: string;
  weights: string;
  seed: number;
  backend: BackendName;
  threads?: number;
  swaps: Swap[];
  /** Check sha256s and finiteness on load (false with --no-verify). */
  verify?: boolean;
}

/** A row: a model variant with its typed settings. */
export interface PlanRow {
  label: string;
  /** The --variant OPTIONS as given ("" for none). */
  text: string;
  load: ModelLoad;
  variant: Variant;
  /** The weights as the model names them, e.g. `fixture + conv_proj from fixture2`. */
  weights: string;
  /** The removed parts per layer, as keys record them. */
  removed: unknown;
  normalize: boolean;
  /** The row's settings; each cell puts its column in. */
  settings: CellSettings;
  /** The options each cell's metrics.json records. */
  options: RunOptions;
}

/** What a plan is made from: everything resolved and checked. */
export interface GridInput {
  mode: Mode;
  /** The output folder, absolute. */
  out: string;
  /** The model as options and keys name it. */
  modelKey: string;
  /** The montage's title. */
  title: string;
  /** The target image (invert grids) and its hash. */
  image: { path: string; sha256: string } | null;
  rows: PlanRow[];
  columns: Column[];
  traceEvery: number;
  /** The grid's options as given, for metrics.json. */
  options: RunOptions;
}

/** A cell of the plan. */
export interface PlanCell {
  index: number;
  row: number;
  col: number;
  key: string;
  /** Its folder, relative to the grid's. */
  dir: string;
  /** The resolved options its key hashes. */
  canonical: Record<string, unknown>;
  settings: CellSettings;
  /** The options its metrics.json records. */
  options: RunOptions;
  /** Estimated work: GFLOP in all, and seconds on one core. */
  cost: { gflop: number; coreSeconds: number };
}

/** A grid's plan, as in plan.json. */
export interface GridPlan extends GridInput {
  format: typeof PLAN_FORMAT;
  model: {
    name: string;
    imageSize: number;
    layers: number;
    classes: number;
    /** Estimated peak memory of one cell's process, MiB. */
    peakMiB: number;
  };
  cells: PlanCell[];
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${
          canonicalJson((v as Record<string, unknown>)[k])
        }`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/** Parameters per layer of the chain (input processing, blocks, head). */
function layerParams(m: Manifest): number[] {
  const counts = m.layers.map(() => 0);
  for (const [name, t] of Object.entries(m.tensors)) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    let i = m.layers.findIndex((l) =>
      l.prefix !== "" && name.startsWith(l.prefix)
    );
    if (i < 0) {
      i = name.startsWith("heads") || name.startsWith("fc")
        ? m.layers.length - 1
        : 0;
    }
    counts[i] += size;
  }
  return counts;
}

/**
 * GFLOP of one step (forward, VJP: three times the forward) through the
 * layers a cell runs: 2 × parameters × positions per layer, positions being
 * the tokens (a ResNet: its 56² stage-1 grid, an overestimate further down).
 */
function positions(m: Manifest): number {
  return m.seq_length ?? (m.image_size / 4) ** 2;
}

function stepGflop(m: Manifest, s: CellSettings): number {
  const params = layerParams(m);
  const tokens = positions(m);
  const last = params.length - 1;
  const layers = "layer" in s
    ? (s.onlyLayer
      ? [0, s.layer]
      : [...params.keys()].filter((l) => l <= s.layer))
    : [...params.keys()];
  const fwd = layers.reduce(
    (a, l) => a + 2 * params[l] * (l === last ? 1 : tokens),
    0,
  );
  return 3 * fwd / 1e9;
}

/** Estimated peak memory of one cell's process in MiB: runtime, weights (several copies), activations. */
function peakMiB(m: Manifest): number {
  const params = layerParams(m).reduce((a, b) => a + b, 0);
  const acts = positions(m) * Math.max(m.hidden_dim ?? 256, 64) * 4 * 24 *
    (m.num_layers + 2);
  return Math.ceil((512 * 2 ** 20 + 6 * 4 * params + acts) / 2 ** 20);
}

/**
 * What the weight sets a row loads from the model folder contain (the
 * manifest's per-tensor sha256s, hashed), so cells of retrained weights with
 * the same name are new cells, not stale ones; nothing for generated
 * (untrained) weights, whose name and seed say it all.
 */
export async function weightSetHashes(
  manifest: Manifest,
  row: PlanRow,
): Promise<{ weightSets?: Record<string, string> }> {
  const names = [row.load.weights, ...row.variant.swaps.map((s) => s.weights)];
  const sets: Record<string, string> = {};
  for (const name of names) {
    const ws = manifest.weight_sets[name];
    if (ws) sets[name] = (await sha256(canonicalJson(ws.sha256))).slice(0, 16);
  }
  return Object.keys(sets).length > 0 ? { weightSets: sets } : {};
}

/** What a cell's key hashes: its row's model variant, its settings, the target's hash. */
function cellCanonical(
  grid: Pick<GridInput, "mode" | "modelKey" | "image">,
  row: PlanRow,
  settings: CellSettings,
  sets: { weightSets?: Record<string, string> },
): Record<string, unknown> {
  const mode = MODES[grid.mode];
  return {
    format: CELL_FORMAT,
    command: mode.command,
    model: grid.modelKey,
    weights: row.load.weights,
    seed: row.load.seed,
    normalize: row.normalize,
    removed: row.removed,
    positionEmbedding: row.variant.positionEmbedding,
    swaps: row.load.swaps,
    ...sets,
    ...mode.canonical(settings, grid.image?.sha256 ?? null),
  };
}

/** A cell's key: the first 16 hex digits of the sha256 of its canonical options. */
async function cellKey(canonical: Record<string, unknown>): Promise<string> {
  return (await sha256(canonicalJson(canonical))).slice(0, 16);
}

/** What a cell's key looks like. */
const KEY = /^[0-9a-f]{16}$/;

/** A cell's folder, relative to the grid's: always `cells/KEY`. */
function cellDir(key: string): string {
  return `cells/${key}`;
}

/**
 * The plan of a grid: every row × column cell with its settings, the key
 * hashing its resolved options (a cell with the same key is the same run,
 * wherever and whenever it ran) and its cost. Pure: the same inputs give the
 * same plan.
 */
export async function planGrid(
  input: GridInput,
  manifest: Manifest,
): Promise<GridPlan> {
  const mode = MODES[input.mode];
  const cells: PlanCell[] = [];
  for (const [r, row] of input.rows.entries()) {
    const sets = await weightSetHashes(manifest, row);
    for (const [c, column] of input.columns.entries()) {
      const settings = mode.cellSettings(row.settings, column);
      const canonical = cellCanonical(input, row, settings, sets);
      const key = await cellKey(canonical);
      const gflop = settings.steps * stepGflop(manifest, settings);
      cells.push({
        index: cells.length,
        row: r,
        col: c,
        key,
        dir: cellDir(key),
        canonical,
        settings,
        options: {
          ...row.options,
          ...mode.savedColumn(column, input.image?.path ?? null),
          model: input.modelKey,
        },
        cost: { gflop, coreSeconds: gflop / GFLOPS_PER_CORE },
      });
    }
  }
  return {
    format: PLAN_FORMAT,
    ...input,
    model: {
      name: manifest.name,
      imageSize: manifest.image_size,
      layers: manifest.num_layers,
      classes: manifest.num_classes,
      peakMiB: peakMiB(manifest),
    },
    cells,
  };
}

const REPO = "vitrep:";

/** This checkout's folder, with a trailing slash (null when run by URL). */
function repoDir(): string | null {
  return ROOT.protocol === "file:" ? fromFileUrl(ROOT) : null;
}

/** A path inside this checkout as `vitrep:REL`, so a task with the checkout elsewhere (a container) finds it. */
function portable(path: string): string {
  const r = repoDir();
  return r !== null && path.startsWith(r) ? REPO + path.slice(r.length) : path;
}

function local(path: string): string {
  const r = repoDir();
  return path.startsWith(REPO) && r !== null
    ? r + path.slice(REPO.length)
    : path;
}

/** The plan with its paths mapped (the output folder is where plan.json lies). */
function mapPaths(
  plan: GridPlan,
  f: (p: string) => string,
  out: string,
): GridPlan {
  return {
    ...plan,
    out,
    image: plan.image === null
      ? null
      : { ...plan.image, path: f(plan.image.path) },
    rows: plan.rows.map((r) => ({
      ...r,
      load: { ...r.load, source: f(r.load.source) },
    })),
  };
}

/** Writes `DIR/plan.json`: paths inside this checkout relative to it, the output folder as ".". */
export function writePlan(plan: GridPlan): Promise<void> {
  return writeJson(`${plan.out}/plan.json`, mapPaths(plan, portable, "."));
}

/** Reads `DIR/plan.json` (a TypeError naming the file when it is missing or not a plan). */
export async function readPlan(dir: string): Promise<GridPlan> {
  const path = `${dir}/plan.json`;
  let plan: GridPlan;
  try {
    plan = JSON.parse(await readRegularText(path, PLAN_BYTES, "grid plan"));
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new TypeError(
      `Invalid --out "${dir}": cannot read ${path} (${why}): expected a folder written by grid --plan`,
    );
  }
  if (plan?.format !== PLAN_FORMAT || !Array.isArray(plan.cells)) {
    throw new TypeError(
      `Invalid plan ${path}: format "${plan?.format}": expected ${PLAN_FORMAT}`,
    );
  }
  checkCells(plan, path, dir);
  return mapPaths(plan, local, dir);
}

/**
 * Every cell of a plan read from `path` in range and confined to a folder of
 * its own, `cells/KEY` inside `dir` (a tampered `"dir": "../../x"` would send
 * a run anywhere): a TypeError naming the cell, the field and its value.
 */
function checkCells(plan: GridPlan, path: string, dir: string): void {
  if (!Array.isArray(plan.rows) || !Array.isArray(plan.columns)) {
    throw new TypeError(
      `Invalid plan ${path}: no "rows" or "columns": expected a plan written by grid --plan`,
    );
  }
  const inRange = (v: unknown, n: number) =>
    Number.isInteger(v) && (v as number) >= 0 && (v as number) < n;
  for (const [i, c] of plan.cells.entries()) {
    const bad = (field: string, value: unknown, want: string) =>
      new TypeError(
        `Invalid plan ${path}: cell ${i} "${field}": ${
          JSON.stringify(value)
        }: expected ${want}`,
      );
    if (c === null || typeof c !== "object") throw bad("cell", c, "a cell");
    if (c.index !== i) throw bad("index", c.index, `${i}`);
    if (typeof c.key !== "string" || !KEY.test(c.key)) {
      throw bad("key", c.key, "16 hex digits");
    }
    if (c.dir !== cellDir(c.key)) {
      throw bad(
        "dir",
        c.dir,
        `"${
          cellDir(c.key)
        }": a cell runs in a folder of its own inside ${dir}/cells`,
      );
    }
    if (!inRange(c.row, plan.rows.length)) {
      throw bad("row", c.row, `a row 0..${plan.rows.length - 1}`);
    }
    if (!inRange(c.col, plan.columns.length)) {
      throw bad("col", c.col, `a column 0..${plan.columns.length - 1}`);
    }
  }
}

/** What an ablation list removes, per part, as {@linkcode PlanRow.removed} records it. */
function removedOf(
  ablations: readonly Ablation[],
  numLayers: number,
): Record<string, number[]> {
  const out: Record<string, Set<number>> = {};
  for (const a of ablations) {
    const parts = typeof a.remove === "string" ? [a.remove] : a.remove;
    const layers = Array.isArray(a.layers)
      ? a.layers
      : Array.from({ length: numLayers }, (_, i) => i + 1);
    for (const p of parts) {
      out[p] ??= new Set();
      for (const l of layers) out[p].add(l);
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([p, ls]) => [p, [...ls].sort((a, b) => a - b)]),
  );
}

/**
 * Checks cell `i` of a plan read from disk before it runs: what runs is what
 * its key names (its settings are its column's, its row's ablations its
 * removed parts, its swaps, seed and normalization the key's), and its key is
 * the hash of all that, computed as {@linkcode planGrid} does; the weight
 * sets' hashes are taken from the cell (checked against the model when it
 * loads). A TypeError naming the cell and what differs otherwise.
 */
export async function checkCell(plan: GridPlan, i: number): Promise<void> {
  const cell = plan.cells[i];
  const row = plan.rows[cell.row];
  const s = cell.settings;
  const differs = (what: string, a: unknown, b: unknown) =>
    new TypeError(
      `Invalid plan ${plan.out}/plan.json: cell ${i} (${cell.key}): ${what} ${
        JSON.stringify(a)
      } but ${
        JSON.stringify(b)
      }: expected the cell as grid --plan wrote it (plan the grid again, with --replan)`,
    );
  const same = (a: unknown, b: unknown) =>
    canonicalJson(a) === canonicalJson(b);
  const column = plan.columns[cell.col];
  const own = MODES[plan.mode].cellSettings(s, column);
  if (!same(own, s)) {
    throw differs(`its column is ${column.short}, its settings`, own, s);
  }
  if (s.normalize !== row.normalize || s.seed !== row.load.seed) {
    throw differs(
      "its settings' normalize and seed are",
      [s.normalize, s.seed],
      [row.normalize, row.load.seed],
    );
  }
  const removed = removedOf(row.variant.ablations, plan.model.layers);
  if (!same(removed, row.removed)) {
    throw differs("its row's ablations remove", removed, row.removed);
  }
  if (!same(row.variant.swaps, row.load.swaps)) {
    throw differs("its row swaps", row.variant.swaps, row.load.swaps);
  }
  const sets = cell.canonical?.weightSets === undefined
    ? {}
    : { weightSets: cell.canonical.weightSets as Record<string, string> };
  const canonical = cellCanonical(plan, row, s, sets);
  const key = await cellKey(canonical);
  if (key !== cell.key || !same(canonical, cell.canonical)) {
    throw new TypeError(
      `Invalid plan ${plan.out}/plan.json: cell ${i} has key "${cell.key}" but its settings give key "${key}": expected the cell as grid --plan wrote it (plan the grid again, with --replan)`,
    );
  }
}

/**
 * Checks that the model loaded for cell `i` is the one its key names: the
 * weight sets' contents as hashed at planning (retrained weights under the
 * same name would otherwise run under the old key) and the model's size.
 */
export async function checkModel(
  plan: GridPlan,
  i: number,
  manifest: Manifest,
): Promise<void> {
  const cell = plan.cells[i];
  const row = plan.rows[cell.row];
  const now = (await weightSetHashes(manifest, row)).weightSets ?? null;
  const then = cell.canonical?.weightSets ?? null;
  if (canonicalJson(now) !== canonicalJson(then)) {
    throw new TypeError(
      `Invalid plan ${plan.out}/plan.json: cell ${i} (${cell.key}): the model's weight sets hash to ${
        JSON.stringify(now)
      }, the plan's to ${
        JSON.stringify(then)
      }: expected the weights the grid was planned with (plan it again, with --replan, to use these)`,
    );
  }
  const size = [manifest.image_size, manifest.num_layers];
  const planned = [plan.model.imageSize, plan.model.layers];
  if (canonicalJson(size) !== canonicalJson(planned)) {
    throw new TypeError(
      `Invalid plan ${plan.out}/plan.json: the model has image size and layers ${
        JSON.stringify(size)
      }, the plan ${
        JSON.stringify(planned)
      }: expected the model the grid was planned with`,
    );
  }
}

/** The sha256 of a target image's pixels at the model's size, as plan.json records it. */
export function targetHash(t: ImageTensor): Promise<string> {
  return sha256(
    new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  );
}

/** Steps per cell when all cells take the same number, else null. */
export function commonSteps(plan: GridPlan): number | null {
  const steps = new Set(plan.cells.map((c) => c.settings.steps));
  return steps.size === 1 ? [...steps][0] : null;
}

/** Whether a load needs its own model (the seed matters only for untrained weights). */
export function loadKey(load: ModelLoad): string {
  return JSON.stringify([
    load.source,
    load.weights,
    load.weights === "untrained" ? load.seed : null,
    load.swaps,
    load.backend,
    load.threads ?? null,
  ]);
}
