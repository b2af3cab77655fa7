/**
 * Reads what a grid run wrote (metrics.json, each cell's representation.npy,
 * target.png and traces.csv) into the numbers the claims are judged on, with
 * per-patch PSNR maps and explosion labels.
 *
 * @module
 */
import type { ForwardCall } from "../grid/mod.ts";
import { join } from "node:path";
import { decodeNpy, decodePng, readCsv, writePng } from "../io/mod.ts";
import { parseRowLabel, type RowId } from "./experiments.ts";
import { autocorrelation } from "./filters.ts";
import {
  patchError,
  type PatchErrorShares,
  patchPsnr,
  psnrHeatmap,
  type Spread,
  spread,
} from "./patches.ts";

/** One cell of an experiment's grid. */
export interface CellResult {
  /** The row's label. */
  row: string;
  /** The row's typed id (null: a label no experiment defines). */
  rowId: RowId | null;
  /** The row's weight draw. */
  seed: number;
  /** The column: a layer number (invert) or a class index (generate). */
  column: number;
  /** The grid's status: reused, computed, diverged, stopped, not run. */
  status: string;
  /** The cell folder, relative to the report folder. */
  dir: string;
  /** PSNR of the representation, dB. */
  psnr: number | null;
  /** SSIM of the representation. */
  ssim: number | null;
  /** ‖O(a) − O(a_g)‖₂ at the end. */
  embeddingDistance: number | null;
  /** ‖O(a) − O(a′)‖₂, a′ the target plus N(0, 1/18) noise. */
  noiseBaseline: number | null;
  /** ‖a − a_g‖₂ at the end. */
  inputDistance: number | null;
  /** Whether the embedding distance went below the noise baseline (at some step). */
  criterionMet: boolean | null;
  /** The step it did. */
  criterionStep: number | null;
  /** Whether the final embedding distance is below the noise baseline: the criterion met at the end. */
  criterionAtEnd: boolean | null;
  /** The lowest embedding distance in the trace and its step. */
  bestEmbedding: { distance: number; step: number } | null;
  /** Steps run. */
  steps: number | null;
  /** Null, or why the run counts as exploded ("exploded at step 812", …). */
  exploded: string | null;
  /** Spread of per-patch PSNR (invert cells with a representation). */
  patches: Spread | null;
  /** The error split per patch into offset, gain and residual shares. */
  patchError: PatchErrorShares | null;
  /** The per-patch PSNR heatmap, relative to the report folder. */
  heatmap: string | null;
  /** Generate cells: the class's final logit and probability. */
  logit: number | null;
  /** Generate cells: the class's probability for the generated image. */
  probability: number | null;
  /** Generate cells: the class's probability under another trained model (the judge). */
  judgeProbability: number | null;
  /** Generate cells: 1 − lag-1 spatial autocorrelation of the generated image (0 smooth, about 1 pixel noise). */
  roughness: number | null;
  /** (step, embedding distance, input distance) from traces.csv. */
  trace: { step: number; embedding: number; input: number }[];
}

/** One experiment's outcome. */
export interface ExperimentResult {
  /** The experiment's identifier. */
  id: string;
  /** "done" when its grid finished (cells may have exploded), else why not. */
  status: "done" | "failed" | "stopped";
  /** What failed. */
  error?: string;
  /** The grid folder, relative to the report folder. */
  dir: string;
  /** Its cells. */
  cells: CellResult[];
  /** Numbers measured outside a grid (the filters' patterned fractions); a value experiment's: weight draw 0's. */
  values?: Record<string, number>;
  /** A value experiment's numbers per weight draw. */
  valuesBySeed?: Record<number, Record<string, number>>;
  /** Its figure, relative to the report folder, when it is not the grid's montage. */
  figure?: string;
}

/**
 * Why a cell counts as exploded, or null: the grid stopped it as diverged or
 * exploded ("… at step N"), its final embedding distance is more than 1000
 * times the noise baseline, or its image moved more than 10 (RMS per value,
 * in model input units) from the target.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explosion } from "./results.ts";
 * assert.equal(explosion("diverged", "Run exploded at step 812 (x): lower the learning rate", null, null, null, 3), "exploded at step 812");
 * assert.equal(explosion("computed", undefined, 5e6, 300, 1e4, 150528), "exploded (embedding distance 16667× the noise baseline)");
 * assert.equal(explosion("computed", undefined, 50, 60, 30, 150528), null);
 * ```
 */
export function explosion(
  status: string,
  error: string | undefined,
  embedding: number | null,
  baseline: number | null,
  input: number | null,
  values: number,
): string | null {
  if (status === "diverged") {
    const m = /(exploded|diverged) at step (\d+)/.exec(error ?? "");
    return m ? `exploded at step ${m[2]}` : "exploded";
  }
  if (embedding !== null && baseline !== null && baseline > 0) {
    const r = embedding / baseline;
    if (!Number.isFinite(r) || r > 1000) {
      return `exploded (embedding distance ${
        Number.isFinite(r) ? r.toFixed(0) : "∞"
      }× the noise baseline)`;
    }
  }
  if (
    input !== null &&
    (!Number.isFinite(input) || input / Math.sqrt(values) > 10)
  ) {
    return `exploded (input distance ${input.toPrecision(3)})`;
  }
  return null;
}

const num = (v: unknown): number | null =>
  typeof v === "number" ? v : v === "inf" ? Infinity : null;

interface GridCell {
  row: string;
  column: number | { index: number };
  key: string;
  dir: string;
  status: string;
  error?: string;
  final?: Record<string, unknown>;
}

/** Per-patch PSNR (spread and heatmap, written to `mapPath`) and error decomposition of one cell, or null without a representation. */
async function cellPatches(
  cellDir: string,
  patch: number,
  mapPath: string,
): Promise<{ spread: Spread; error: PatchErrorShares } | null> {
  let rep, target;
  try {
    rep = decodeNpy(await Deno.readFile(join(cellDir, "representation.npy")));
    target = decodePng(await Deno.readFile(join(cellDir, "target.png")));
  } catch {
    return null;
  }
  const size = target.width;
  if (rep.data.length !== target.data.length || target.height !== size) {
    return null;
  }
  const side = Math.min(patch, size);
  const p = patchPsnr(rep.data, target.data, size, side);
  await writePng(mapPath, psnrHeatmap(p, size));
  return {
    spread: spread(p.psnr),
    error: patchError(rep.data, target.data, size, side),
  };
}

/** 1 − the lag-1 autocorrelation of a cell's square generated.png, or null without one. */
async function roughnessOf(cellDir: string): Promise<number | null> {
  try {
    const img = decodePng(
      await Deno.readFile(join(cellDir, "generated.png")),
    );
    if (img.width !== img.height) return null;
    return 1 - autocorrelation(img.data, img.width);
  } catch {
    return null;
  }
}

/**
 * The lowest embedding distance of a trace and its step, or null for an
 * empty trace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bestOfTrace } from "./results.ts";
 * const t = [{ step: 1, embedding: 9, input: 1 }, { step: 5, embedding: 3, input: 1 }, { step: 9, embedding: 4, input: 1 }];
 * assert.deepEqual(bestOfTrace(t), { distance: 3, step: 5 });
 * ```
 */
export function bestOfTrace(
  trace: CellResult["trace"],
): CellResult["bestEmbedding"] {
  let best: CellResult["bestEmbedding"] = null;
  for (const t of trace) {
    if (
      Number.isFinite(t.embedding) && (!best || t.embedding < best.distance)
    ) {
      best = { distance: t.embedding, step: t.step };
    }
  }
  return best;
}

/** The lower of a trace's best and the final embedding distance (the trace records the steps before the last update). */
function lowest(
  best: CellResult["bestEmbedding"],
  final: number | null,
  steps: number | null,
): CellResult["bestEmbedding"] {
  if (final === null || !Number.isFinite(final)) return best;
  return !best || final < best.distance
    ? { distance: final, step: steps ?? best?.step ?? 0 }
    : best;
}

/** The judge's probability of class `column` for a generated image (`judge/metrics.json` in the cell), or null. */
async function judged(cellDir: string, column: number): Promise<number | null> {
  try {
    const m = JSON.parse(
      await Deno.readTextFile(join(cellDir, "judge", "metrics.json")),
    );
    const hit = (m.top as { index: number; probability: number }[]).find((
      t,
    ) => t.index === column);
    return hit ? hit.probability : 0;
  } catch {
    return null;
  }
}

async function cellTrace(cellDir: string): Promise<CellResult["trace"]> {
  try {
    const rows = await readCsv(join(cellDir, "traces.csv"));
    return rows.map((r) => ({
      step: r.step ?? 0,
      embedding: r.embedding_distance ?? NaN,
      input: r.input_distance ?? NaN,
    }));
  } catch {
    return [];
  }
}

/**
 * Reads experiment `id`'s grid folder `OUT/cells/<id>` (written by `grid`):
 * every cell's numbers from metrics.json, per-patch PSNR maps (written to
 * `OUT/maps/`, patch side `patch` pixels), traces and explosion labels.
 *
 * @example
 * ```ts ignore
 * import { readExperiment } from "./results.ts";
 * const r = await readExperiment("out/essay", "vit_depth", 32);
 * console.log(r.cells.map((c) => [c.row, c.column, c.psnr]));
 * ```
 */
export async function readExperiment(
  out: string,
  id: string,
  patch: number,
): Promise<ExperimentResult> {
  const dir = join("cells", id);
  let metrics;
  try {
    metrics = JSON.parse(
      await Deno.readTextFile(join(out, dir, "metrics.json")),
    );
  } catch (err) {
    return {
      id,
      status: "failed",
      error: `no grid results in ${join(out, dir)}: ${
        err instanceof Error ? err.message : err
      }`,
      dir,
      cells: [],
    };
  }
  await Deno.mkdir(join(out, "maps"), { recursive: true });
  const size = metrics.model?.imageSize ?? 224;
  const cells: CellResult[] = [];
  for (const c of metrics.cells as GridCell[]) {
    const f = c.final ?? {};
    const cellDir = join(out, dir, c.dir);
    const map = join("maps", `${id}_${c.key}.png`);
    const patches = metrics.mode === "invert"
      ? await cellPatches(cellDir, patch || 32, join(out, map))
      : null;
    const emb = num(f.embedding_distance), base = num(f.noise_baseline);
    const input = num(f.input_distance);
    const column = typeof c.column === "number" ? c.column : c.column.index;
    const trace = await cellTrace(cellDir);
    const { row, seed } = parseRowLabel(c.row);
    cells.push({
      row: c.row,
      rowId: row,
      seed,
      column,
      status: c.status,
      dir: join(dir, c.dir),
      psnr: num(f.psnr),
      ssim: num(f.ssim),
      embeddingDistance: emb,
      noiseBaseline: base,
      inputDistance: input,
      criterionMet: f.criterion_met === undefined || f.criterion_met === null
        ? null
        : f.criterion_met === 1 || f.criterion_met === true,
      criterionStep: num(f.criterion_step),
      criterionAtEnd: emb !== null && base !== null ? emb < base : null,
      bestEmbedding: lowest(bestOfTrace(trace), emb, num(f.steps)),
      steps: num(f.steps),
      exploded: explosion(c.status, c.error, emb, base, input, 3 * size * size),
      patches: patches?.spread ?? null,
      patchError: patches?.error ?? null,
      heatmap: patches ? map : null,
      logit: num(f.logit),
      probability: num(f.probability),
      judgeProbability: metrics.mode === "invert"
        ? null
        : await judged(cellDir, column),
      roughness: metrics.mode === "invert" ? null : await roughnessOf(cellDir),
      trace,
    });
  }
  return {
    id,
    status: metrics.interrupted ? "stopped" : "done",
    dir,
    cells,
  };
}

/**
 * The `forward` commands that score a finished generation grid's
 * images (each cell's generated.png) with another trained model, `judge`
 * (`model`: as commands name it), into each cell's `judge/` folder, which
 * {@linkcode readExperiment} then reads as the cell's `judgeProbability`.
 * Cells already scored since their image was written are left out; empty
 * when the grid wrote no metrics.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeCommands } from "./results.ts";
 * const out = await Deno.makeTempDir();
 * await Deno.mkdir(`${out}/cells/generation`, { recursive: true });
 * await Deno.writeTextFile(`${out}/cells/generation/metrics.json`, JSON.stringify({ cells: [{ dir: "cells/k1" }] }));
 * const [call] = await judgeCommands(out, "generation", { model: "fmnist_resnet", weights: "trained", classes: 10 });
 * assert.equal(call.command, "forward");
 * assert.equal(call.model, "fmnist_resnet");
 * assert.equal(call.out, `${out}/cells/generation/cells/k1/judge`);
 * ```
 */
export async function judgeCommands(
  out: string,
  id: string,
  judge: { model: string; weights: string; classes: number },
): Promise<ForwardCall[]> {
  const dir = join(out, "cells", id);
  let cells: { dir: string }[];
  try {
    cells = JSON.parse(await Deno.readTextFile(join(dir, "metrics.json")))
      .cells;
  } catch {
    return [];
  }
  const mtime = (p: string) =>
    Deno.stat(p).then((s) => s.mtime?.getTime() ?? 0, () => null);
  const todo = [];
  for (const c of cells) {
    const done = await mtime(join(dir, c.dir, "judge", "metrics.json"));
    const made = await mtime(join(dir, c.dir, "generated.png"));
    // scored already, and the image has not changed since
    if (done === null || made === null || made > done) todo.push(c);
  }
  return todo.map((c) => ({
    command: "forward",
    model: judge.model,
    weights: judge.weights,
    image: join(dir, c.dir, "generated.png"),
    layer: "logits",
    top: judge.classes,
    out: join(dir, c.dir, "judge"),
  }));
}
