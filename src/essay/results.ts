/**
 * Reads what a grid run wrote (metrics.json, each cell's representation.npy,
 * target.png and traces.csv) into the numbers the claims are judged on, with
 * per-patch PSNR maps and explosion labels.
 *
 * @module
 */
import { join } from "node:path";
import { decodeNpy, decodePng, readCsv, writePng } from "../io/mod.ts";
import { patchPsnr, psnrHeatmap, type Spread, spread } from "./patches.ts";

/** One cell of an experiment's grid. */
export interface CellResult {
  /** The row's label. */
  row: string;
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
  /** Whether the embedding distance went below the noise baseline. */
  criterionMet: boolean | null;
  /** The step it did. */
  criterionStep: number | null;
  /** Steps run. */
  steps: number | null;
  /** Null, or why the run counts as exploded ("exploded at step 812", …). */
  exploded: string | null;
  /** Spread of per-patch PSNR (invert cells with a representation). */
  patches: Spread | null;
  /** The per-patch PSNR heatmap, relative to the report folder. */
  heatmap: string | null;
  /** Generate cells: the class's final logit and probability. */
  logit: number | null;
  /** Generate cells: the class's probability for the generated image. */
  probability: number | null;
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
  /** Numbers measured outside a grid (the filters' patterned fractions). */
  values?: Record<string, number>;
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

/** Per-patch PSNR of one cell: spread and heatmap (written to `mapPath`), or null without a representation. */
async function cellPatches(
  cellDir: string,
  patch: number,
  mapPath: string,
): Promise<Spread | null> {
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
  const p = patchPsnr(rep.data, target.data, size, Math.min(patch, size));
  await writePng(mapPath, psnrHeatmap(p, size));
  return spread(p.psnr);
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
    cells.push({
      row: c.row,
      column: typeof c.column === "number" ? c.column : c.column.index,
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
      steps: num(f.steps),
      exploded: explosion(c.status, c.error, emb, base, input, 3 * size * size),
      patches,
      heatmap: patches ? map : null,
      logit: num(f.logit),
      probability: num(f.probability),
      trace: await cellTrace(cellDir),
    });
  }
  return {
    id,
    status: metrics.interrupted ? "stopped" : "done",
    dir,
    cells,
  };
}
