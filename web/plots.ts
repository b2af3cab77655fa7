/**
 * The page's plots, drawn in the worker with the figures module's
 * `linePlotSvg` (the CLI's convergence.svg and progress.svg): an inversion's
 * embedding and input distances against step (log axes) with the noise
 * baseline dashed, a generation's class probability and logit.
 *
 * @module
 */

import { linePlotSvg } from "../src/figures/mod.ts";
import type { Row } from "../src/io/mod.ts";

/** At most about `n` rows, evenly spaced, the last kept: a plot's polyline stays small. */
function thin(rows: readonly Row[], n = 1500): readonly Row[] {
  if (rows.length <= n) return rows;
  const k = Math.ceil(rows.length / n);
  return rows.filter((_, i) => i % k === 0 || i === rows.length - 1);
}

/**
 * The convergence plot of an inversion's trace rows (traces.csv's columns).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invertPlot } from "./plots.ts";
 *
 * const rows = [0, 1, 2].map((step) => ({
 *   step, embedding_distance: 10 / (step + 1), input_distance: 5 - step, noise_baseline: 4,
 * }));
 * assert.match(invertPlot(rows), /data-label="embedding"/);
 * ```
 */
export function invertPlot(rows: readonly Row[]): string {
  const ok = rows.filter((r) =>
    r.embedding_distance! > 0 && r.input_distance! > 0
  );
  const x = ok.map((r) => r.step!);
  return linePlotSvg({
    width: 260,
    height: 180,
    xLabel: "step",
    yLabel: "embedding distance",
    y2Label: "input distance",
    logY: true,
    logY2: true,
    series: [
      { label: "embedding", x, y: ok.map((r) => r.embedding_distance!) },
      {
        label: "input",
        x,
        y: ok.map((r) => r.input_distance!),
        axis: "right",
      },
    ],
    hlines: [{
      label: "noise baseline",
      y: rows[0]?.noise_baseline ?? 1,
      dashed: true,
    }],
  });
}

/**
 * The progress plot of a generation's trace rows: the class's softmax
 * probability (left) and logit (right) against step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generatePlot } from "./plots.ts";
 *
 * const rows = [0, 1].map((step) => ({ step, probability: 0.1 + step / 2, logit: step }));
 * assert.match(generatePlot(rows), /data-label="probability"/);
 * ```
 */
export function generatePlot(all: readonly Row[]): string {
  const rows = thin(all);
  const x = rows.map((r) => r.step!);
  return linePlotSvg({
    width: 260,
    height: 180,
    xLabel: "step",
    yLabel: "probability",
    y2Label: "logit",
    yRange: [0, 1],
    series: [
      { label: "probability", x, y: rows.map((r) => r.probability!) },
      {
        label: "logit",
        x,
        y: rows.map((r) => r.logit!),
        axis: "right",
      },
    ],
  });
}
