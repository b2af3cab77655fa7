/**
 * Line plots for experiment reports: series against linear or log10 axes,
 * optional right axis, reference lines, ticks at "nice" values and a legend
 * placed where it hides the least data. Returns an {@linkcode ImageTensor},
 * to save with `writePng`.
 *
 * @example Plot a loss curve
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlot } from "./plot.ts";
 *
 * const steps = [0, 1, 2, 3, 4];
 * const img = linePlot({
 *   title: "Convergence",
 *   xLabel: "step",
 *   yLabel: "distance",
 *   logY: true,
 *   series: [{ label: "‖f(x) − f(x′)‖₂", x: steps, y: [10, 3, 1, 0.4, 0.2] }],
 *   hlines: [{ label: "noise σ", y: 0.3, dashed: true }],
 * });
 * assert.deepEqual([img.width, img.height], [640, 400]);
 * ```
 *
 * @module
 */

import type { ImageTensor } from "../io/mod.ts";
import {
  BLACK,
  checkColor,
  checkFigureSize,
  checkInt,
  checkNumber,
  type Color,
  FRAME,
  GRID,
  LEGEND_BORDER,
  type LineStyle,
  PALETTE,
  TEXT,
} from "./_canvas.ts";
import {
  CAP_HEIGHT,
  GLYPH_ROWS,
  measureText,
  warnMissingGlyphs,
  wrapText,
} from "./_font.ts";
import { type Pen, rasterPen, svgPen } from "./_pen.ts";
import {
  autoScale,
  labelInside,
  type Scale,
  type Tick,
  ticksFor,
  toUnits,
  validPoint,
} from "./_ticks.ts";

export type { Color } from "./_canvas.ts";
/** One curve of a {@linkcode linePlot}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlot, type PlotSeries } from "./plot.ts";
 *
 * const s: PlotSeries = { label: "loss", x: [0, 1, 2], y: [3, 2, 1.5] };
 * assert.equal(linePlot({ series: [s], width: 320 }).width, 320);
 * ```
 */
export interface PlotSeries {
  /** The legend label. */
  label: string;
  /** The x coordinates. */
  x: readonly number[];
  /** The y coordinates, as many as `x`. */
  y: readonly number[];
  /** The colour; by default the next one of matplotlib's "tab10". */
  color?: Color;
  /** The y axis the series uses (default `"left"`). A `"right"` series gets
   * its own axis on the right, labelled `y2Label`, and " (right)" in the
   * legend when both axes are used. */
  axis?: "left" | "right";
  /** The line width in pixels (default 2). */
  thickness?: number;
}

/** A horizontal reference line of a {@linkcode linePlot}, across the plot.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlot, type PlotHLine } from "./plot.ts";
 *
 * const noise: PlotHLine = { label: "noise floor", y: 0.01, dashed: true };
 * const series = [{ label: "loss", x: [0, 1], y: [1, 0.1] }];
 * assert.equal(linePlot({ series, hlines: [noise], logY: true }).height, 400);
 * ```
 */
export interface PlotHLine {
  /** The legend label. */
  label: string;
  /** The y value. */
  y: number;
  /** The colour; by default the next palette colour after the series'. */
  color?: Color;
  /** Draws the line dashed (default `false`). */
  dashed?: boolean;
  /** The y axis the value refers to (default `"left"`). */
  axis?: "left" | "right";
}

/** Options of {@linkcode linePlot}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlot, type LinePlotOptions } from "./plot.ts";
 *
 * const warnings: string[] = [];
 * const opts: LinePlotOptions = {
 *   series: [{ label: "Größe ж", x: [0, 1], y: [1, 2] }],
 *   onWarning: (m) => warnings.push(m),
 * };
 * linePlot(opts);
 * assert.match(warnings[0], /"ж" \(U\+0436\) not in the bitmap font/);
 * ```
 */
export interface LinePlotOptions {
  /** The image width in pixels (default 640, at least 160). */
  width?: number;
  /** The image height in pixels (default 400, at least 120). */
  height?: number;
  /** The title above the plot. */
  title?: string;
  /** The x axis label. */
  xLabel?: string;
  /** The (left) y axis label. */
  yLabel?: string;
  /** The right y axis label (when a series has `axis: "right"`). */
  y2Label?: string;
  /** A log10 left y axis (default `false`). */
  logY?: boolean;
  /** A log10 right y axis (default `false`). */
  logY2?: boolean;
  /** The curves; at least one. */
  series: readonly PlotSeries[];
  /** Horizontal reference lines. */
  hlines?: readonly PlotHLine[];
  /** Fixed x range `[min, max]` instead of the data's. */
  xRange?: readonly [number, number];
  /** Fixed left y range `[min, max]` instead of the data's. */
  yRange?: readonly [number, number];
  /** Fixed right y range `[min, max]` instead of the data's. */
  y2Range?: readonly [number, number];
  /** The text magnification of tick labels, axis labels and the legend
   * (default 1; the title is drawn twice as large). */
  textScale?: number;
  /** Called once with a message naming the characters of the title, labels
   * or legend that the built-in bitmap font lacks (they are drawn as "?"). */
  onWarning?: (message: string) => void;
}

function checkSeries(series: readonly PlotSeries[]): void {
  if (!Array.isArray(series) || series.length === 0) {
    throw new RangeError(
      `Invalid series "${series}": expected at least one series`,
    );
  }
  series.forEach((s, i) => {
    const name = `series ${i} ("${s?.label}")`;
    if (typeof s?.label !== "string") {
      throw new TypeError(`Invalid ${name} label: expected a string`);
    }
    if (!Array.isArray(s.x) || !Array.isArray(s.y)) {
      throw new TypeError(
        `Invalid ${name}: expected arrays of numbers for x and y`,
      );
    }
    if (s.x.length !== s.y.length) {
      throw new RangeError(
        `Invalid ${name} lengths "${s.x.length}" (x) and "${s.y.length}" (y): expected as many x as y values`,
      );
    }
    if (s.color !== undefined) checkColor(`${name} color`, s.color);
    if (s.axis !== undefined && s.axis !== "left" && s.axis !== "right") {
      throw new TypeError(
        `Invalid ${name} axis "${s.axis}": expected "left" or "right"`,
      );
    }
  });
}

/** A series or reference line with its colour and axis resolved. */
interface Resolved {
  series: (PlotSeries & { color: Color; right: boolean })[];
  lines: (PlotHLine & { color: Color; right: boolean })[];
  hasLeft: boolean;
  hasRight: boolean;
  logFor: (right: boolean) => boolean;
}

/** Checks the options and assigns palette colours and axes. */
function resolve(options: LinePlotOptions): Resolved {
  checkSeries(options.series);
  const hlines = options.hlines ?? [];
  hlines.forEach((h, i) => {
    checkNumber(`hline ${i} ("${h.label}") y`, h.y);
    if (h.color !== undefined) checkColor(`hline ${i} color`, h.color);
  });
  const series = options.series.map((ser, i) => ({
    ...ser,
    color: ser.color ?? PALETTE[i % PALETTE.length],
    right: ser.axis === "right",
  }));
  const lines = hlines.map((h, i) => ({
    ...h,
    color: h.color ?? PALETTE[(series.length + i) % PALETTE.length],
    right: h.axis === "right",
  }));
  return {
    series,
    lines,
    hasRight: series.some((ser) => ser.right) || lines.some((h) => h.right),
    hasLeft: series.some((ser) => !ser.right) || lines.some((h) => !h.right),
    logFor: (right: boolean) =>
      right ? options.logY2 ?? false : options.logY ?? false,
  };
}

/** The x, left y and right y scales: fixed ranges or the data's. */
function scalesOf(options: LinePlotOptions, r: Resolved) {
  const { series, lines, logFor } = r;
  const xs: number[] = [];
  const ysFor = (right: boolean) => {
    const out: number[] = [];
    const log = logFor(right);
    for (const ser of series) {
      ser.x.forEach((x, i) => {
        if (validPoint(x, ser.y[i], logFor(ser.right))) {
          if (ser.right === right) out.push(ser.y[i]);
        }
      });
    }
    for (const h of lines) {
      if (h.right === right && validPoint(0, h.y, log)) out.push(h.y);
    }
    return out;
  };
  for (const ser of series) {
    ser.x.forEach((x, i) => {
      if (validPoint(x, ser.y[i], logFor(ser.right))) xs.push(x);
    });
  }
  const y = ysFor(false), y2 = ysFor(true);
  return {
    x: autoScale(xs, false, 0.02, options.xRange, "xRange"),
    y: autoScale(y, logFor(false), 0.05, options.yRange, "yRange"),
    y2: autoScale(y2, logFor(true), 0.05, options.y2Range, "y2Range"),
    yData: y,
    y2Data: y2,
  };
}

type Scales = ReturnType<typeof scalesOf>;

/** Where everything goes: the plot area, text sizes and the ticks. */
interface Layout {
  width: number;
  height: number;
  s: number;
  lineH: number;
  gap: number;
  tickLen: number;
  pad: number;
  titleText: string;
  titleScale: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  xTicks: Tick[];
  yTicks: Tick[];
  y2Ticks: Tick[];
}

/** Margins from the text that goes around the plot area. */
function layoutOf(
  options: LinePlotOptions,
  r: Resolved,
  sc: Scales,
  [width, height, s]: [number, number, number],
): Layout {
  const lineH = GLYPH_ROWS * s, gap = 6 * s, tickLen = 4 * s, pad = 10;
  const title = options.title ?? "";
  const titleScale = 2 * s;
  const titleText = title ? wrapText(title, width - 2 * pad, titleScale) : "";
  const top = pad +
    (title ? measureText(titleText, titleScale).height + gap : 4);
  const bottomText = tickLen + 3 * s + lineH +
    (options.xLabel ? gap + lineH : 0);
  const plotH0 = height - top - bottomText - pad;
  const yTicks = r.hasLeft || !r.hasRight
    ? labelInside(ticksFor(sc.y, plotH0, 45 * s), sc.yData, sc.y)
    : [];
  const y2Ticks = r.hasRight
    ? labelInside(ticksFor(sc.y2, plotH0, 45 * s), sc.y2Data, sc.y2)
    : [];
  const labelWidth = (ticks: Tick[]) =>
    Math.max(0, ...ticks.map((t) => measureText(t.label, s).width));
  const left = pad + (options.yLabel ? lineH + gap : 0) + labelWidth(yTicks) +
    tickLen + 3 * s;
  let right = width - pad -
    (r.hasRight
      ? (options.y2Label ? lineH + gap : 0) + labelWidth(y2Ticks) + tickLen +
        3 * s
      : 0);
  const bottom = height - pad - bottomText;
  // Keep the last x tick label inside the image.
  const lastX = ticksFor(sc.x, right - left, 80 * s).at(-1);
  if (lastX && !r.hasRight) {
    right = Math.min(
      right,
      width - 2 - Math.ceil(measureText(lastX.label, s).width / 2),
    );
  }
  if (right - left < 40 || bottom - top < 40) {
    throw new RangeError(
      `Invalid size "${width}x${height}": too small for the labels (try a larger width/height or a smaller textScale)`,
    );
  }
  const xTicks = ticksFor(sc.x, right - left, 80 * s);
  return {
    ...{ width, height, s, lineH, gap, tickLen, pad, titleText, titleScale },
    ...{ left, right, top, bottom, xTicks, yTicks, y2Ticks },
  };
}

/** Maps data to pixels. */
function pixelsOf(L: Layout, sc: Scales) {
  const { left, right, top, bottom } = L;
  const pyFor = (scale: Scale) => (y: number) =>
    bottom - (toUnits(y, scale.log) - scale.lo) / (scale.hi - scale.lo) *
      (bottom - top);
  return {
    px: (x: number) =>
      left + (x - sc.x.lo) / (sc.x.hi - sc.x.lo) * (right - left),
    pyUnits: (scale: Scale) => (u: number) =>
      bottom - (u - scale.lo) / (scale.hi - scale.lo) * (bottom - top),
    py: pyFor(sc.y),
    py2: pyFor(sc.y2),
    rect: {
      x: left,
      y: top,
      width: right - left + 1,
      height: bottom - top + 1,
    },
  };
}

type Pixels = ReturnType<typeof pixelsOf>;

/** Grid, ticks, tick labels, axis labels and title. */
function drawAxes(
  pen: Pen,
  options: LinePlotOptions,
  r: Resolved,
  [L, sc, p]: [Layout, Scales, Pixels],
): void {
  const { left, right, top, bottom, s, tickLen, pad, lineH, gap } = L;
  for (const t of L.yTicks) {
    const y = Math.round(p.pyUnits(sc.y)(t.value));
    if (t.label) pen.fill(left + 1, y, right - left - 1, 1, GRID);
  }
  for (const t of L.xTicks) {
    const x = Math.round(p.px(t.value));
    if (x > left && x < right) {
      pen.fill(x, top + 1, 1, bottom - top - 1, GRID);
    }
  }
  const capMid = Math.round(CAP_HEIGHT * s / 2);
  for (const t of L.yTicks) {
    const y = Math.round(p.pyUnits(sc.y)(t.value));
    const len = t.label ? tickLen : Math.ceil(tickLen / 2);
    pen.fill(left - len, y, len, 1, FRAME);
    pen.text(left - tickLen - 3 * s, y - capMid, t.label, TEXT, s, "end");
  }
  for (const t of L.y2Ticks) {
    const y = Math.round(p.pyUnits(sc.y2)(t.value));
    const len = t.label ? tickLen : Math.ceil(tickLen / 2);
    pen.fill(right + 1, y, len, 1, FRAME);
    pen.text(right + tickLen + 3 * s, y - capMid, t.label, TEXT, s);
  }
  for (const t of L.xTicks) {
    const x = Math.round(p.px(t.value));
    pen.fill(x, bottom + 1, 1, tickLen, FRAME);
    const y = bottom + tickLen + 3 * s;
    pen.text(x, y, t.label, TEXT, s, "middle");
  }
  if (options.xLabel) {
    const y = bottom + tickLen + 3 * s + lineH + gap;
    pen.text((left + right) / 2, y, options.xLabel, TEXT, s, "middle");
  }
  const vertical = (label: string, x: number) =>
    pen.textUp(x, (top + bottom) / 2, label, TEXT, s);
  if (options.yLabel) vertical(options.yLabel, pad);
  if (options.y2Label && r.hasRight) {
    vertical(options.y2Label, L.width - pad - lineH);
  }
  if (L.titleText) {
    pen.text(L.width / 2, pad, L.titleText, BLACK, L.titleScale, "middle");
  }
}

/** Draws the reference lines and series; returns points along them (for
 * placing the legend where it covers the fewest). */
function drawData(
  pen: Pen,
  r: Resolved,
  L: Layout,
  p: Pixels,
): [number, number][] {
  const samples: [number, number][] = [];
  for (const h of r.lines) {
    if (!validPoint(0, h.y, r.logFor(h.right))) continue;
    const y = Math.round((h.right ? p.py2 : p.py)(h.y) - 0.5) + 0.5;
    pen.polyline([[L.left, y], [L.right, y]], h.color, {
      thickness: 2,
      clip: p.rect,
      dash: h.dashed ? [8, 5] : undefined,
    }, h.label);
    for (let x = L.left; x <= L.right; x += 4) samples.push([x, y]);
  }
  for (const ser of r.series) {
    const toPy = ser.right ? p.py2 : p.py;
    const log = r.logFor(ser.right);
    let run: [number, number][] = [];
    const flush = () => {
      drawRun(pen, run, ser, p.rect);
      for (let i = 0; i < run.length; i++) {
        const [ax, ay] = run[i],
          [bx, by] = run[Math.min(i + 1, run.length - 1)];
        const n = Math.max(Math.ceil(Math.hypot(bx - ax, by - ay) / 4), 1);
        for (let k = 0; k < n; k++) {
          samples.push([ax + (bx - ax) * k / n, ay + (by - ay) * k / n]);
        }
      }
      run = [];
    };
    ser.x.forEach((x, i) => {
      const y = ser.y[i];
      if (!validPoint(x, y, log)) return flush();
      // Clamp far-off points so huge values stay finite in pixels.
      run.push([
        Math.min(Math.max(p.px(x), -1e6), 1e6),
        Math.min(Math.max(toPy(y), -1e6), 1e6),
      ]);
    });
    flush();
  }
  return samples;
}

/** One unbroken run of a series; a lone point is drawn as a dot. */
function drawRun(
  pen: Pen,
  run: [number, number][],
  ser: PlotSeries & { color: Color },
  clip: LineStyle["clip"],
): void {
  if (run.length === 0) return;
  const { color, label } = ser;
  pen.polyline(run, color, { thickness: ser.thickness ?? 2, clip }, label);
  if (run.length === 1) pen.polyline(run, color, { thickness: 5, clip });
}

/** Draws a 1-pixel rectangle outline. */
function outline(
  pen: Pen,
  [x, y, w, h]: [number, number, number, number],
  color: Color,
): void {
  pen.fill(x, y, w, 1, color);
  pen.fill(x, y + h - 1, w, 1, color);
  pen.fill(x, y, 1, h, color);
  pen.fill(x + w - 1, y, 1, h, color);
}

/** The legend, where the fewest data samples are under it: corners first,
 * then edge middles and the centre; the first wins ties. */
function drawLegend(
  pen: Pen,
  r: Resolved,
  L: Layout,
  samples: [number, number][],
): void {
  const suffix = (right: boolean) => right && r.hasLeft ? " (right)" : "";
  const entries = [
    ...r.series.map((ser) => ({
      label: ser.label + suffix(ser.right),
      color: ser.color,
      dashed: false,
    })),
    ...r.lines.map((h) => ({
      label: h.label + suffix(h.right),
      color: h.color,
      dashed: h.dashed ?? false,
    })),
  ].filter((e) => e.label !== "");
  if (entries.length === 0) return;
  const { left, right, top, bottom, s } = L;
  const sample = 22 * s, rowH = L.lineH + 4 * s, inner = 6 * s;
  const boxW = inner * 2 + sample + 6 * s +
    Math.max(...entries.map((e) => measureText(e.label, s).width));
  const boxH = inner * 2 + entries.length * rowH - 4 * s;
  const margin = 8;
  const xs = [right - margin - boxW, left + margin, (left + right - boxW) / 2];
  const ys = [top + margin, bottom - margin - boxH, (top + bottom - boxH) / 2];
  const order = [[0, 0], [1, 0], [0, 1], [1, 1], [0, 2], [1, 2], [2, 0], [
    2,
    1,
  ], [2, 2]];
  let best = [xs[0], ys[0]], fewest = Infinity;
  for (const [i, j] of order) {
    const [bx, by] = [xs[i], ys[j]];
    const n = samples.filter(([x, y]) =>
      x >= bx - 4 && x <= bx + boxW + 4 && y >= by - 4 && y <= by + boxH + 4
    ).length;
    if (n < fewest) {
      [best, fewest] = [[bx, by], n];
    }
  }
  const [bx, by] = best.map(Math.round);
  pen.fill(bx, by, boxW, boxH, [1, 1, 1], 0.9);
  outline(pen, [bx, by, boxW, boxH], LEGEND_BORDER);
  entries.forEach((e, i) => {
    const ty = by + inner + i * rowH;
    const ly = ty + Math.round(CAP_HEIGHT * s / 2) - 0.5;
    pen.polyline([[bx + inner, ly], [bx + inner + sample, ly]], e.color, {
      thickness: 2,
      dash: e.dashed ? [6, 3] : undefined,
    });
    pen.text(bx + inner + sample + 6 * s, ty, e.label, TEXT, s);
  });
}

/** Draws a line plot: series as antialiased lines against shared x and one
 * or two y axes (linear or log10), optional horizontal reference lines, grid,
 * ticks at "nice" values, axis labels, a title and a legend placed in the
 * emptiest corner (or edge middle). Ranges fit the data unless fixed.
 *
 * Non-finite points, and non-positive ones on a log axis, are skipped and
 * break the line (a gap); a point without valid neighbours is drawn as a dot.
 *
 * For two quantities on different scales (a logit and its probability, say),
 * give one series `axis: "right"`: it gets its own axis, labelled `y2Label`.
 *
 * @param options The data and labels; see {@linkcode LinePlotOptions}.
 * @returns The plot as an image.
 * @throws {RangeError} If there is no series, a series' x and y differ in
 * length, a size is too small or a colour or range is invalid.
 * @throws {TypeError} If a series or label is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlot } from "./plot.ts";
 *
 * const steps = [0, 10, 20, 30];
 * const img = linePlot({
 *   title: "Generation",
 *   xLabel: "step",
 *   yLabel: "logit",
 *   y2Label: "probability",
 *   series: [
 *     { label: "target logit", x: steps, y: [-1, 4, 9, 12] },
 *     { label: "softmax p", x: steps, y: [0.001, 0.2, 0.9, 0.99], axis: "right" },
 *   ],
 * });
 * assert.equal(img.width, 640);
 * ```
 */
export function linePlot(options: LinePlotOptions): ImageTensor {
  return drawPlot(options, rasterPen, true).canvas;
}

/** {@linkcode linePlot} as an SVG document: the same layout, with vector
 * lines, real `<text>` elements (any Unicode label, escaped; none is
 * replaced, so `onWarning` is not called) and a `data-label` attribute on
 * each series' polyline. Save it with `writeAtomic` or `Deno.writeTextFile`.
 *
 * @param options The data and labels; see {@linkcode LinePlotOptions}.
 * @returns The SVG document.
 * @throws {RangeError} As {@linkcode linePlot}.
 * @throws {TypeError} As {@linkcode linePlot}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlotSvg } from "./plot.ts";
 *
 * const svg = linePlotSvg({
 *   title: "Größe δ in mm³",
 *   series: [{ label: "loss", x: [0, 1, 2], y: [3, 2, 1.5] }],
 * });
 * assert.match(svg, /<text [^>]*>Größe δ in mm³<\/text>/);
 * assert.match(svg, /<polyline points="(\S+ ){2}\S+" [^>]*data-label="loss"/);
 * ```
 */
export function linePlotSvg(options: LinePlotOptions): string {
  return drawPlot(options, svgPen, false).svg();
}

/** Checks the options, lays the plot out and draws it with a new pen. */
function drawPlot<P extends Pen>(
  options: LinePlotOptions,
  newPen: (width: number, height: number) => P,
  bitmapFont: boolean,
): P {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Invalid options "${options}": expected an object with a series array`,
    );
  }
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  checkInt("width", width, 160);
  checkInt("height", height, 120);
  checkFigureSize(width, height);
  const s = options.textScale ?? 1;
  checkInt("textScale", s, 1);
  const r = resolve(options);
  if (bitmapFont) {
    warnMissingGlyphs([
      options.title,
      options.xLabel,
      options.yLabel,
      r.hasRight ? options.y2Label : undefined,
      ...r.series.map((ser) => ser.label),
      ...r.lines.map((h) => h.label),
    ], options.onWarning);
  }
  const sc = scalesOf(options, r);
  const L = layoutOf(options, r, sc, [width, height, s]);
  const p = pixelsOf(L, sc);
  const pen = newPen(width, height);
  drawAxes(pen, options, r, [L, sc, p]);
  const samples = drawData(pen, r, L, p);
  // The frame on top of the data.
  const { left, right, top, bottom } = L;
  outline(pen, [left, top, right - left + 1, bottom - top + 1], FRAME);
  drawLegend(pen, r, L, samples);
  return pen;
}
