/**
 * Draws representation quality against relative depth for the architecture
 * grids of `tools/experiments.sh architectures`: PSNR of each cell's image
 * against the target, at layer / depth of its model, one line per grid row.
 *
 *     deno run -A tools/depth_plot.ts OUT.png "TITLE" GRID_DIR[=LABEL][@ROW] …
 *
 * Each GRID_DIR is a `grid` output folder (its metrics.json); LABEL names its
 * model in the legend (default: the model's name); @ROW draws only the row
 * (variant) of that label, @ROW1|ROW2… one line of the best PSNR among those
 * rows at each layer (e.g. the better of two learning rates); without @ every
 * row is a line. OUT.md gets the same points as a table.
 *
 * @module
 */
import { linePlot, writePng } from "../mod.ts";

interface GridMetrics {
  model: { name: string; layers: number };
  cells: {
    row: string;
    column: number;
    final?: { psnr: number; ssim: number };
  }[];
}

const [out, title, ...grids] = Deno.args;
if (!out?.endsWith(".png") || grids.length === 0) {
  console.error(
    'usage: deno run -A tools/depth_plot.ts OUT.png "TITLE" GRID_DIR[=LABEL][@ROW] …',
  );
  Deno.exit(2);
}
const series = [];
/** The table beside the plot: each line's points, with the row each comes from. */
const table = [
  "| line | layer: PSNR dB / SSIM (row) |",
  "| --- | --- |",
];
for (const arg of grids) {
  const [spec, only] = arg.split("@");
  const [dir, label] = spec.split("=");
  const m: GridMetrics = JSON.parse(
    await Deno.readTextFile(`${dir}/metrics.json`),
  );
  const all = [...new Set(m.cells.map((c) => c.row))];
  const picked = only === undefined ? all : only.split("|");
  const missing = picked.filter((r) => !all.includes(r));
  if (missing.length > 0) {
    console.error(
      `error: ${dir} has no row "${missing[0]}": expected one of ${
        all.join(", ")
      }`,
    );
    Deno.exit(2);
  }
  // one line per row, or one line of the best of the picked rows
  const lines = only === undefined ? all.map((r) => [r]) : [picked];
  for (const rows of lines) {
    const best = new Map<number, GridMetrics["cells"][number]>();
    for (const c of m.cells) {
      if (!rows.includes(c.row) || typeof c.final?.psnr !== "number") continue;
      const had = best.get(c.column);
      if (!had || c.final.psnr > had.final!.psnr) best.set(c.column, c);
    }
    const cols = [...best.keys()].sort((a, b) => a - b);
    const name = label ?? m.model.name;
    const line = only === undefined && all.length > 1
      ? `${name}, ${rows[0]}`
      : name;
    series.push({
      label: line,
      x: cols.map((c) => c / m.model.layers),
      y: cols.map((c) => best.get(c)!.final!.psnr),
    });
    table.push(
      `| ${line} | ${
        cols.map((col) => {
          const c = best.get(col)!;
          return `${col}: ${c.final!.psnr.toFixed(1)} / ${
            c.final!.ssim.toFixed(2)
          }${rows.length > 1 ? ` (${c.row})` : ""}`;
        }).join(" · ")
      } |`,
    );
  }
}
await writePng(
  out,
  linePlot({
    title,
    xLabel: "layer / depth of the model",
    yLabel: "PSNR dB of the representation",
    series,
    width: 900,
    height: 560,
  }),
);
const md = out.replace(/\.png$/, ".md");
await Deno.writeTextFile(md, table.join("\n") + "\n");
console.error(`wrote ${out} and ${md}`);
