/**
 * Internal drawing primitives of the figures: a CHW float canvas, filled
 * rectangles, antialiased lines and image blits, and the argument checks they
 * share. Not exported from the package: the figure functions are the API.
 *
 * @module
 */

import { type ImageTensor, MAX_IMAGE_PIXELS } from "../io/mod.ts";

/** An RGB colour, each component in [0, 1].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Color, linePlot } from "./plot.ts";
 *
 * const orange: Color = [1, 0.5, 0.05];
 * const img = linePlot({ series: [{ label: "", x: [0, 1], y: [0, 1], color: orange }] });
 * assert.ok(img.data.some((v, i) => v === 1 && img.data[i + img.data.length / 3] === 0.5));
 * ```
 */
export type Color = readonly [number, number, number];

/** A drawing surface: `3 * height * width` values in CHW order, like an
 * {@linkcode ImageTensor} (which is a Canvas too).
 *
 * @example
 * ```ts
 * import { type Canvas, createCanvas } from "./_canvas.ts";
 *
 * const canvas: Canvas = createCanvas(32, 16);
 * ```
 */
export interface Canvas {
  /** The width in pixels. */
  width: number;
  /** The height in pixels. */
  height: number;
  /** The three colour planes, one after another. */
  data: Float32Array;
}

export const BLACK: Color = [0, 0, 0];
export const TEXT: Color = [0.1, 0.1, 0.1];
export const FRAME: Color = [0.25, 0.25, 0.25];
export const GRID: Color = [0.91, 0.91, 0.91];
export const EMPTY_CELL: Color = [0.86, 0.86, 0.86];
export const LEGEND_BORDER: Color = [0.7, 0.7, 0.7];

/** Matplotlib's "tab10" colours, used in turn for series without a colour. */
export const PALETTE: readonly Color[] = [
  [0.122, 0.467, 0.706],
  [1.0, 0.498, 0.055],
  [0.173, 0.627, 0.173],
  [0.839, 0.153, 0.157],
  [0.58, 0.404, 0.741],
  [0.549, 0.337, 0.294],
  [0.89, 0.467, 0.761],
  [0.498, 0.498, 0.498],
  [0.737, 0.741, 0.133],
  [0.09, 0.745, 0.812],
];

export function checkInt(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Invalid ${name} "${value}": expected an integer of at least ${min}`,
    );
  }
}

export function checkNumber(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`Invalid ${name} "${value}": expected a finite number`);
  }
}

export function checkColor(name: string, color: Color): void {
  if (
    !Array.isArray(color) || color.length !== 3 ||
    color.some((v) => typeof v !== "number" || !(v >= 0 && v <= 1))
  ) {
    throw new RangeError(
      `Invalid ${name} "${color}": expected 3 numbers in [0, 1]`,
    );
  }
}

/** Refuses a figure larger than {@linkcode MAX_IMAGE_PIXELS} before it is
 * allocated (a typo in a scale or cell size would otherwise take gigabytes).
 */
export function checkFigureSize(width: number, height: number): void {
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new RangeError(
      `Invalid figure size "${width}×${height}": ${width}×${height} px exceeds the limit of ${
        MAX_IMAGE_PIXELS / 1e6
      } megapixels (MAX_IMAGE_PIXELS): use a smaller scale, cell size, padding or fewer columns`,
    );
  }
}

export function checkCanvas(canvas: Canvas): void {
  checkInt("canvas width", canvas.width, 1);
  checkInt("canvas height", canvas.height, 1);
  if (canvas.data.length !== 3 * canvas.width * canvas.height) {
    throw new RangeError(
      `Invalid canvas data length "${canvas.data.length}": expected ${
        3 * canvas.width * canvas.height
      } values for ${canvas.width}x${canvas.height}`,
    );
  }
}

export function checkImage(name: string, img: ImageTensor): void {
  if (
    img === null || typeof img !== "object" ||
    !(img.data instanceof Float32Array)
  ) {
    throw new TypeError(`Invalid ${name} "${img}": expected an ImageTensor`);
  }
  checkInt(`${name} width`, img.width, 1);
  checkInt(`${name} height`, img.height, 1);
  if (img.data.length !== 3 * img.width * img.height) {
    throw new RangeError(
      `Invalid ${name} data length "${img.data.length}": expected ${
        3 * img.width * img.height
      } values for ${img.height}x${img.width}`,
    );
  }
}

/** Creates a canvas filled with one colour.
 *
 * @param width The width in pixels.
 * @param height The height in pixels.
 * @param background The fill colour (default white).
 * @returns A new canvas, which is also an {@linkcode ImageTensor}.
 * @throws {RangeError} If a size is not a positive integer or the colour is
 * invalid.
 *
 * @example
 * ```ts
 * import { createCanvas } from "./_canvas.ts";
 *
 * const grey = createCanvas(64, 32, [0.5, 0.5, 0.5]);
 * grey.data.length; // 3 * 64 * 32
 * ```
 */
export function createCanvas(
  width: number,
  height: number,
  background: Color = [1, 1, 1],
): ImageTensor {
  checkInt("width", width, 1);
  checkInt("height", height, 1);
  checkFigureSize(width, height);
  checkColor("background", background);
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    data.fill(background[c], c * plane, (c + 1) * plane);
  }
  return { data, channels: 3, height, width };
}

/** Fills a rectangle, optionally blending with `alpha`. The rectangle covers
 * the pixels `x <= px < x + w`, `y <= py < y + h` (coordinates are rounded);
 * the part outside the canvas is ignored. The arguments are not checked:
 * callers pass finite numbers and a valid colour.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCanvas, fill } from "./_canvas.ts";
 *
 * const canvas = createCanvas(10, 10);
 * fill(canvas, 2, 2, 6, 3, [1, 0, 0]);
 * assert.equal(canvas.data[100 + 2 * 10 + 2], 0); // green plane, (2, 2)
 * ```
 */
export function fill(
  canvas: Canvas,
  x: number,
  y: number,
  w: number,
  h: number,
  color: Color,
  alpha = 1,
): void {
  const { width, height, data } = canvas;
  const x0 = Math.max(Math.round(x), 0);
  const y0 = Math.max(Math.round(y), 0);
  const x1 = Math.min(Math.round(x + w), width);
  const y1 = Math.min(Math.round(y + h), height);
  const plane = width * height;
  for (let c = 0; c < 3; c++) {
    const v = color[c] * alpha;
    for (let py = y0; py < y1; py++) {
      const row = c * plane + py * width;
      for (let px = x0; px < x1; px++) {
        data[row + px] = data[row + px] * (1 - alpha) + v;
      }
    }
  }
}

/** Options for {@linkcode drawLine} and {@linkcode drawPolyline}.
 *
 * @example
 * ```ts
 * import type { LineStyle } from "./_canvas.ts";
 *
 * const dashed: LineStyle = { thickness: 2, dash: [6, 4] };
 * ```
 */
export interface LineStyle {
  /** The line width in pixels (default 1). */
  thickness?: number;
  /** Dash and gap lengths in pixels, e.g. `[6, 4]`; solid when omitted. */
  dash?: readonly [number, number];
  /** Only pixels inside this rectangle are drawn. */
  clip?: { x: number; y: number; width: number; height: number };
}

/** Draws an antialiased polyline with round joins and caps. Pixel centres are
 * at integer coordinates, so a 1-pixel line at `y = 10` covers row 10 only
 * (and a 2-pixel line at `y = 10.5` covers rows 10 and 11 exactly).
 *
 * @param canvas The canvas to draw on.
 * @param points The vertices `[x, y]`; a single point draws a dot.
 * @param color The line colour.
 * @param style Thickness, dashes and clipping.
 * @throws {TypeError} If a coordinate is not finite.
 * @throws {RangeError} If the colour, thickness or dash is invalid.
 *
 * @example
 * ```ts
 * import { createCanvas, drawPolyline } from "./_canvas.ts";
 *
 * const canvas = createCanvas(40, 40);
 * drawPolyline(canvas, [[2, 30], [20, 5], [38, 30]], [0, 0, 1], { thickness: 2 });
 * ```
 */
export function drawPolyline(
  canvas: Canvas,
  points: readonly (readonly [number, number])[],
  color: Color,
  style: LineStyle = {},
): void {
  checkCanvas(canvas);
  checkColor("color", color);
  const t = style.thickness ?? 1;
  if (!(t > 0 && t < 1000)) {
    throw new RangeError(
      `Invalid thickness "${t}": expected a number in (0, 1000)`,
    );
  }
  const dash = style.dash;
  if (dash && !(dash.length === 2 && dash[0] > 0 && dash[1] >= 0)) {
    throw new RangeError(
      `Invalid dash "${dash}": expected [dash, gap] with dash > 0 and gap >= 0`,
    );
  }
  points.forEach(([x, y], i) => {
    checkNumber(`point ${i} x`, x);
    checkNumber(`point ${i} y`, y);
  });
  if (points.length === 0) return;
  const { width, height, data } = canvas;
  const clip = style.clip ?? { x: 0, y: 0, width, height };
  const cx0 = Math.max(Math.ceil(clip.x), 0);
  const cy0 = Math.max(Math.ceil(clip.y), 0);
  const cx1 = Math.min(Math.ceil(clip.x + clip.width), width);
  const cy1 = Math.min(Math.ceil(clip.y + clip.height), height);
  if (cx0 >= cx1 || cy0 >= cy1) return;
  // Coverage per pixel is the maximum over segments, so joins do not darken.
  const bw = cx1 - cx0;
  const cover = new Float32Array(bw * (cy1 - cy0));
  const half = t / 2 + 0.5;
  const period = dash ? dash[0] + dash[1] : 0;
  let along = 0;
  const segments = points.length === 1 ? 1 : points.length - 1;
  for (let s = 0; s < segments; s++) {
    const [ax, ay] = points[s];
    const [bx, by] = points[Math.min(s + 1, points.length - 1)];
    const dx = bx - ax, dy = by - ay;
    const len2 = dx * dx + dy * dy;
    const len = Math.sqrt(len2);
    const x0 = Math.max(Math.floor(Math.min(ax, bx) - half), cx0);
    const x1 = Math.min(Math.ceil(Math.max(ax, bx) + half), cx1 - 1);
    const y0 = Math.max(Math.floor(Math.min(ay, by) - half), cy0);
    const y1 = Math.min(Math.ceil(Math.max(ay, by) + half), cy1 - 1);
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        let u = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
        u = Math.min(Math.max(u, 0), 1);
        if (dash && ((along + u * len) % period) >= dash[0]) continue;
        const d = Math.hypot(px - ax - u * dx, py - ay - u * dy);
        const a = Math.min(half - d, 1);
        const i = (py - cy0) * bw + px - cx0;
        if (a > cover[i]) cover[i] = a;
      }
    }
    along += len;
  }
  const plane = width * height;
  for (let py = cy0; py < cy1; py++) {
    for (let px = cx0; px < cx1; px++) {
      const a = cover[(py - cy0) * bw + px - cx0];
      if (a <= 0) continue;
      const i = py * width + px;
      for (let c = 0; c < 3; c++) {
        const j = c * plane + i;
        data[j] = data[j] * (1 - a) + color[c] * a;
      }
    }
  }
}

/** Draws an antialiased line segment from `(x0, y0)` to `(x1, y1)`; see
 * {@linkcode drawPolyline} for the pixel convention.
 *
 * @param canvas The canvas to draw on.
 * @param x0 The start x.
 * @param y0 The start y.
 * @param x1 The end x.
 * @param y1 The end y.
 * @param color The line colour.
 * @param thickness The line width in pixels (default 1).
 * @param style Dashes and clipping.
 * @throws {TypeError} If a coordinate is not finite.
 * @throws {RangeError} If the colour, thickness or dash is invalid.
 *
 * @example
 * ```ts
 * import { createCanvas, drawLine } from "./_canvas.ts";
 *
 * const canvas = createCanvas(40, 40);
 * drawLine(canvas, 0, 20, 39, 20, [1, 0, 0], 1, { dash: [4, 3] });
 * ```
 */
export function drawLine(
  canvas: Canvas,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  color: Color,
  thickness = 1,
  style: Omit<LineStyle, "thickness"> = {},
): void {
  drawPolyline(canvas, [[x0, y0], [x1, y1]], color, { ...style, thickness });
}

/** Copies an image onto a canvas with its top-left corner at `(x, y)`
 * (rounded); the part outside the canvas is ignored.
 *
 * @param canvas The canvas to draw on.
 * @param img The image.
 * @param x The left edge.
 * @param y The top edge.
 * @throws {RangeError} If the image is malformed.
 *
 * @example
 * ```ts
 * import { createCanvas, drawImage } from "./_canvas.ts";
 *
 * const canvas = createCanvas(20, 10);
 * drawImage(canvas, createCanvas(5, 5, [0, 0, 0]), 2, 2);
 * ```
 */
export function drawImage(
  canvas: Canvas,
  img: ImageTensor,
  x: number,
  y: number,
): void {
  checkCanvas(canvas);
  checkImage("image", img);
  checkNumber("x", x);
  checkNumber("y", y);
  const left = Math.round(x), top = Math.round(y);
  const sx0 = Math.max(-left, 0),
    sx1 = Math.min(img.width, canvas.width - left);
  if (sx0 >= sx1) return;
  const plane = canvas.width * canvas.height, src = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    for (let sy = Math.max(-top, 0); sy < img.height; sy++) {
      if (top + sy >= canvas.height) break;
      const from = c * src + sy * img.width;
      canvas.data.set(
        img.data.subarray(from + sx0, from + sx1),
        c * plane + (top + sy) * canvas.width + left + sx0,
      );
    }
  }
}
