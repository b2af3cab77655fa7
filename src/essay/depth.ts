/**
 * Representation quality against relative depth across architectures: for
 * each depth experiment (ViT-B/32, ResNet50, the MLP-Mixers, the FF-only ViT),
 * the PSNR of each layer's best row that keeps the layer norms (the learning
 * rates a budget tries), at layer / the model's blocks. The essay's
 * "ResNet50 loses the input with depth while ViT does not", drawn.
 *
 * @module
 */
import { join } from "node:path";
import { linePlot, type LinePlotOptions, linePlotSvg } from "../figures/mod.ts";
import { encodePng, writeAtomic } from "../io/mod.ts";
import type { ModelInfo, Planned } from "./experiments.ts";
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
  /** Layer, layer / blocks, the best PSNR and the row it comes from. */
  points: { layer: number; depth: number; psnr: number; row: string }[];
}

/**
 * The depth lines of the finished depth experiments (status "done"; a
 * stopped grid is left out): per layer, the best
 * PSNR among rows without "no layer norms" in their label, leaving out
 * exploded cells and cells without a PSNR.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { depthLines } from "./depth.ts";
 * const cell = (row: string, column: number, psnr: number) => ({ row, column, psnr, exploded: null });
 * const lines = depthLines(
 *   [{ id: "vit_depth", grid: { model: "vit_b_32" } }] as never,
 *   new Map([["vit_depth", { status: "done", cells: [cell("intact", 1, 28), cell("no layer norms", 1, 30), cell("lr /4", 1, 29), cell("intact", 12, 18)] }]]) as never,
 *   new Map([["vit_b_32", { layers: 12 }]]) as never,
 * );
 * assert.deepEqual(lines[0].points.map((p) => [p.layer, p.psnr, p.row]), [[1, 29, "lr /4"], [12, 18, "intact"]]);
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
    const best = new Map<number, { psnr: number; row: string }>();
    for (const c of r.cells) {
      if (/no layer norms/.test(c.row) || c.exploded || c.psnr === null) {
        continue;
      }
      const have = best.get(c.column);
      if (!have || c.psnr > have.psnr) {
        best.set(c.column, { psnr: c.psnr, row: c.row });
      }
    }
    if (best.size === 0) continue;
    lines.push({
      model: p.grid.model,
      experiment: p.id,
      points: [...best].sort((a, b) => a[0] - b[0]).map(([layer, v]) => ({
        layer,
        depth: layer / blocks,
        ...v,
      })),
    });
  }
  return lines;
}

/** The plot of {@linkcode depthLines}. */
function depthPlot(lines: readonly DepthLine[]): LinePlotOptions {
  return {
    title: "Representation against relative depth (best row with layer norms)",
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
 * const rel = await writeDepthPlot(out, [{ model: "m", experiment: "e", points: [{ layer: 1, depth: 0.5, psnr: 20, row: "intact" }, { layer: 2, depth: 1, psnr: 15, row: "intact" }] }]);
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
