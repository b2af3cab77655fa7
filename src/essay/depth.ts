/**
 * Representation quality against relative depth across architectures: for
 * each depth experiment (ViT-B/32, ResNet50, the MLP-Mixers, the FF-only ViT),
 * the PSNR of each layer's best row that keeps the layer norms (the learning
 * rates a budget tries), per weight draw, its mean over the draws (with the
 * range), at layer / the model's blocks. The essay's
 * "ResNet50 loses the input with depth while ViT does not", drawn.
 *
 * @module
 */
import { join } from "node:path";
import { linePlot, type LinePlotOptions, linePlotSvg } from "../figures/mod.ts";
import { encodePng, writeAtomic } from "../io/mod.ts";
import type { ModelInfo, Planned, RowId } from "./experiments.ts";
import type { ExperimentResult } from "./results.ts";

/** The experiments whose columns are the layers of one model. */
export const DEPTH_EXPERIMENTS: readonly string[] = [
  "vit_depth",
  "resnet_depth",
  "mixer_p16",
  "mixer_p8",
  "ffvit",
];

/** One model's line: a point per layer. */
export interface DepthLine {
  /** The model folder name. */
  model: string;
  /** The experiment it comes from. */
  experiment: string;
  /** Layer, layer / blocks, the best PSNR (mean over draws, with their lowest and highest) and the row it comes from (seed 0's best; the label). */
  points: {
    layer: number;
    depth: number;
    psnr: number;
    min: number;
    max: number;
    row: string;
  }[];
}

/** Rows without layer norms: left out of the depth lines. */
const NO_LN: readonly RowId[] = ["noLn", "noLnLr4"];

/**
 * The depth lines of the finished depth experiments (status "done"; a
 * stopped grid is left out): per layer and weight draw, the best PSNR among
 * rows that keep the layer norms, leaving out exploded cells and cells
 * without a PSNR; then the mean over the draws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { depthLines } from "./depth.ts";
 * const cell = (row: string, rowId: string, seed: number, column: number, psnr: number) => ({ row, rowId, seed, column, psnr, exploded: null });
 * const lines = depthLines(
 *   [{ id: "vit_depth", grid: { model: "vit_b_32" } }] as never,
 *   new Map([["vit_depth", { status: "done", cells: [cell("intact", "intact", 0, 1, 28), cell("no layer norms", "noLn", 0, 1, 30), cell("lr /4", "lr4", 0, 1, 29), cell("intact, seed 1", "intact", 1, 1, 27), cell("intact", "intact", 0, 12, 18)] }]]) as never,
 *   new Map([["vit_b_32", { layers: 12 }]]) as never,
 * );
 * assert.deepEqual(lines[0].points.map((p) => [p.layer, p.psnr, p.min, p.max, p.row]), [[1, 28, 27, 29, "lr /4"], [12, 18, 18, 18, "intact"]]);
 * ```
 */
export function depthLines(
  planned: readonly Planned[],
  results: ReadonlyMap<string, ExperimentResult>,
  models: ReadonlyMap<string, Pick<ModelInfo, "layers">>,
): DepthLine[] {
  const lines: DepthLine[] = [];
  for (const p of planned) {
    const r = results.get(p.id);
    const blocks = p.grid ? models.get(p.grid.model)?.layers : undefined;
    if (
      !DEPTH_EXPERIMENTS.includes(p.id) || r?.status !== "done" || !p.grid ||
      !blocks
    ) {
      continue;
    }
    // per layer, per seed: the best row
    const best = new Map<number, Map<number, { psnr: number; row: string }>>();
    for (const c of r.cells) {
      if (
        (c.rowId !== null && NO_LN.includes(c.rowId)) || c.exploded ||
        c.psnr === null
      ) {
        continue;
      }
      const perSeed = best.get(c.column) ?? new Map();
      best.set(c.column, perSeed);
      const have = perSeed.get(c.seed);
      if (!have || c.psnr > have.psnr) {
        perSeed.set(c.seed, { psnr: c.psnr, row: c.row });
      }
    }
    if (best.size === 0) continue;
    lines.push({
      model: p.grid.model,
      experiment: p.id,
      points: [...best].sort((a, b) => a[0] - b[0]).map(([layer, seeds]) => {
        const v = [...seeds.values()].map((x) => x.psnr);
        const first = seeds.get(Math.min(...seeds.keys()))!;
        return {
          layer,
          depth: layer / blocks,
          psnr: v.reduce((a, b) => a + b, 0) / v.length,
          min: Math.min(...v),
          max: Math.max(...v),
          row: first.row,
        };
      }),
    });
  }
  return lines;
}

/** The plot of {@linkcode depthLines}. */
function depthPlot(lines: readonly DepthLine[]): LinePlotOptions {
  return {
    title:
      "Representation against relative depth (best row with layer norms, mean over weight draws)",
    xLabel: "layer / blocks of the model",
    yLabel: "PSNR dB",
    xRange: [0, 1],
    series: lines.map((l) => ({
      label: l.model,
      x: l.points.map((p) => p.depth),
      y: l.points.map((p) => p.psnr),
    })),
  };
}

/**
 * Writes `OUT/depth.png` and `OUT/depth.svg` for the lines; returns the PNG's
 * path relative to `out`, or null when there is no line to draw.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeDepthPlot } from "./depth.ts";
 * const out = await Deno.makeTempDir();
 * const rel = await writeDepthPlot(out, [{ model: "m", experiment: "e", points: [{ layer: 1, depth: 0.5, psnr: 20, min: 19, max: 21, row: "intact" }, { layer: 2, depth: 1, psnr: 15, min: 15, max: 15, row: "intact" }] }]);
 * assert.equal(rel, "depth.png");
 * assert.ok((await Deno.stat(`${out}/depth.svg`)).size > 0);
 * assert.equal(await writeDepthPlot(out, []), null);
 * ```
 */
export async function writeDepthPlot(
  out: string,
  lines: readonly DepthLine[],
): Promise<string | null> {
  if (lines.length === 0) return null;
  const plot = depthPlot(lines);
  await writeAtomic(join(out, "depth.png"), encodePng(linePlot(plot)));
  await writeAtomic(join(out, "depth.svg"), linePlotSvg(plot));
  return "depth.png";
}
