/**
 * Dependency-free raster plots for experiment reports: line plots with
 * linear or log axes, image montages with row and column titles, and the
 * drawing primitives and bitmap font they are built from. Every function
 * returns an {@linkcode ImageTensor}, to save with `writePng`.
 *
 * @example Plot a loss curve and save it
 * ```ts ignore
 * import { linePlot } from "./plot.ts";
 * import { writePng } from "../io/mod.ts";
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
 * await writePng("convergence.png", img);
 * ```
 *
 * @module
 */

import { type ImageTensor, resizeBilinear } from "../io/mod.ts";

/** An RGB colour, each component in [0, 1].
 *
 * @example
 * ```ts
 * import type { Color } from "./plot.ts";
 *
 * const orange: Color = [1, 0.5, 0.05];
 * ```
 */
export type Color = readonly [number, number, number];

/** A drawing surface: `3 * height * width` values in CHW order, like an
 * {@linkcode ImageTensor} (which is a Canvas too).
 *
 * @example
 * ```ts
 * import { type Canvas, createCanvas } from "./plot.ts";
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

/** Glyphs drawn 5 pixels wide: 7 rows from the cap line to the baseline,
 * then up to 2 descender rows. Unknown characters are drawn as "?". */
const GLYPH_SOURCE = [
  " ..... ..... ..... ..... ..... ..... .....",
  "!..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
  '".#.#. .#.#. .#.#. ..... ..... ..... .....',
  "#.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
  "$..#.. .#### #.#.. .###. ..#.# ####. ..#..",
  "%##... ##..# ...#. ..#.. .#... #..## ...##",
  "&.##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
  "'..#.. ..#.. .#... ..... ..... ..... .....",
  "(...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ").#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "*..... ..#.. #.#.# .###. #.#.# ..#.. .....",
  "+..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  ",..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...",
  "-..... ..... ..... .###. ..... ..... .....",
  "...... ..... ..... ..... ..... .##.. .##..",
  "/..... ....# ...#. ..#.. .#... #.... .....",
  "0.###. #...# #..## #.#.# ##..# #...# .###.",
  "1..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2.###. #...# ....# ...#. ..#.. .#... #####",
  "3##### ...#. ..#.. ...#. ....# #...# .###.",
  "4...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5##### #.... ####. ....# ....# #...# .###.",
  "6..##. .#... #.... ####. #...# #...# .###.",
  "7##### ....# ...#. ..#.. .#... .#... .#...",
  "8.###. #...# #...# .###. #...# #...# .###.",
  "9.###. #...# #...# .#### ....# ...#. .##..",
  ":..... .##.. .##.. ..... .##.. .##.. .....",
  ";..... .##.. .##.. ..... .##.. .##.. ..#.. .#...",
  "<...#. ..#.. .#... #.... .#... ..#.. ...#.",
  "=..... ..... ##### ..... ##### ..... .....",
  ">.#... ..#.. ...#. ....# ...#. ..#.. .#...",
  "?.###. #...# ....# ...#. ..#.. ..... ..#..",
  "@.###. #...# ....# .##.# #.#.# #.#.# .###.",
  "A.###. #...# #...# ##### #...# #...# #...#",
  "B####. #...# #...# ####. #...# #...# ####.",
  "C.###. #...# #.... #.... #.... #...# .###.",
  "D###.. #..#. #...# #...# #...# #..#. ###..",
  "E##### #.... #.... ####. #.... #.... #####",
  "F##### #.... #.... ####. #.... #.... #....",
  "G.###. #...# #.... #.### #...# #...# .####",
  "H#...# #...# #...# ##### #...# #...# #...#",
  "I.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "J..### ...#. ...#. ...#. ...#. #..#. .##..",
  "K#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  "L#.... #.... #.... #.... #.... #.... #####",
  "M#...# ##.## #.#.# #.#.# #...# #...# #...#",
  "N#...# #...# ##..# #.#.# #..## #...# #...#",
  "O.###. #...# #...# #...# #...# #...# .###.",
  "P####. #...# #...# ####. #.... #.... #....",
  "Q.###. #...# #...# #...# #.#.# #..#. .##.#",
  "R####. #...# #...# ####. #.#.. #..#. #...#",
  "S.#### #.... #.... .###. ....# ....# ####.",
  "T##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "U#...# #...# #...# #...# #...# #...# .###.",
  "V#...# #...# #...# #...# #...# .#.#. ..#..",
  "W#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  "X#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  "Y#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  "Z##### ....# ...#. ..#.. .#... #.... #####",
  "[.###. .#... .#... .#... .#... .#... .###.",
  "\\..... #.... .#... ..#.. ...#. ....# .....",
  "].###. ...#. ...#. ...#. ...#. ...#. .###.",
  "^..#.. .#.#. #...# ..... ..... ..... .....",
  "_..... ..... ..... ..... ..... ..... ..... #####",
  "`.#... ..#.. ...#. ..... ..... ..... .....",
  "a..... ..... .###. ....# .#### #...# .####",
  "b#.... #.... #.##. ##..# #...# #...# ####.",
  "c..... ..... .###. #.... #.... #...# .###.",
  "d....# ....# .##.# #..## #...# #...# .####",
  "e..... ..... .###. #...# ##### #.... .###.",
  "f..##. .#..# .#... ###.. .#... .#... .#...",
  "g..... ..... .#### #...# #...# #...# .#### ....# .###.",
  "h#.... #.... #.##. ##..# #...# #...# #...#",
  "i..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  "j...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
  "k#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  "l.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "m..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
  "n..... ..... #.##. ##..# #...# #...# #...#",
  "o..... ..... .###. #...# #...# #...# .###.",
  "p..... ..... ####. #...# #...# #...# ####. #.... #....",
  "q..... ..... .#### #...# #...# #...# .#### ....# ....#",
  "r..... ..... #.##. ##..# #.... #.... #....",
  "s..... ..... .#### #.... .###. ....# ####.",
  "t.#... .#... ###.. .#... .#... .#..# ..##.",
  "u..... ..... #...# #...# #...# #..## .##.#",
  "v..... ..... #...# #...# #...# .#.#. ..#..",
  "w..... ..... #...# #...# #.#.# #.#.# .#.#.",
  "x..... ..... #...# .#.#. ..#.. .#.#. #...#",
  "y..... ..... #...# #...# #...# #...# .#### ....# .###.",
  "z..... ..... ##### ...#. ..#.. .#... #####",
  "{...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
  "|..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "}.#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
  "~..... ..... .#... #.#.# ...#. ..... .....",
  "‖.#.#. .#.#. .#.#. .#.#. .#.#. .#.#. .#.#.",
  "₂..... ..... ..... ..... .##.. ...#. ..#.. .#... .###.",
  "′...#. ..#.. ..#.. ..... ..... ..... .....",
  "−..... ..... ..... ##### ..... ..... .....",
  "×..... #...# .#.#. ..#.. .#.#. #...# .....",
  "σ..... ..... .#### #..#. #...# #...# .###.",
  "≤...#. ..#.. .#... ..#.. ...#. ..... .####",
  "≥.#... ..#.. ...#. ..#.. .#... ..... ####.",
  "±..#.. ..#.. ##### ..#.. ..#.. ..... #####",
  "·..... ..... ..... .##.. .##.. ..... .....",
  "².##.. ...#. ..#.. .###. ..... ..... .....",
  "→..... ..#.. ...#. ##### ...#. ..#.. .....",
  "…..... ..... ..... ..... ..... ..... #.#.#",
  "°.##.. #..#. #..#. .##.. ..... ..... .....",
  "α..... ..... .##.# #..#. #..#. #..#. .##.#",
  "ε..... ..... .###. #.... .##.. #.... .###.",
  "λ.#... ..#.. ..#.. .#.#. .#.#. #...# #...#",
  "μ..... ..... #...# #...# #...# ##..# #.##. #.... #....",
  "Δ..... ..#.. .#.#. .#.#. #...# #...# #####",
  "√..### ..#.. ..#.. ..#.. #.#.. .##.. ..#..",
];

const GLYPH_WIDTH = 5;
const GLYPH_ROWS = 9;
const CAP_HEIGHT = 7;
const ADVANCE = 6;
const LINE_GAP = 2;

const GLYPHS: ReadonlyMap<string, Uint8Array> = new Map(
  GLYPH_SOURCE.map((line) => {
    const rows = line.slice(1).split(" ");
    const bits = new Uint8Array(GLYPH_ROWS);
    rows.forEach((row, y) => {
      for (let x = 0; x < GLYPH_WIDTH; x++) {
        if (row[x] === "#") bits[y] |= 1 << x;
      }
    });
    return [line[0], bits];
  }),
);

const BLACK: Color = [0, 0, 0];
const TEXT: Color = [0.1, 0.1, 0.1];
const FRAME: Color = [0.25, 0.25, 0.25];
const GRID: Color = [0.91, 0.91, 0.91];
const EMPTY_CELL: Color = [0.86, 0.86, 0.86];
const LEGEND_BORDER: Color = [0.7, 0.7, 0.7];

/** Matplotlib's "tab10" colours, used in turn for series without a colour. */
const PALETTE: readonly Color[] = [
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

function checkInt(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Invalid ${name} "${value}": expected an integer of at least ${min}`,
    );
  }
}

function checkNumber(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`Invalid ${name} "${value}": expected a finite number`);
  }
}

function checkColor(name: string, color: Color): void {
  if (
    !Array.isArray(color) || color.length !== 3 ||
    color.some((v) => typeof v !== "number" || !(v >= 0 && v <= 1))
  ) {
    throw new RangeError(
      `Invalid ${name} "${color}": expected 3 numbers in [0, 1]`,
    );
  }
}

function checkCanvas(canvas: Canvas): void {
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

function checkImage(name: string, img: ImageTensor): void {
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
 * import { createCanvas } from "./plot.ts";
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
 * the part outside the canvas is ignored.
 *
 * @param canvas The canvas to draw on.
 * @param x The left edge.
 * @param y The top edge.
 * @param w The width.
 * @param h The height.
 * @param color The fill colour.
 * @param alpha The opacity in [0, 1] (default 1).
 * @throws {RangeError} If the colour or alpha is invalid.
 *
 * @example
 * ```ts
 * import { createCanvas, fillRect } from "./plot.ts";
 *
 * const canvas = createCanvas(10, 10);
 * fillRect(canvas, 2, 2, 6, 3, [1, 0, 0]);
 * ```
 */
export function fillRect(
  canvas: Canvas,
  x: number,
  y: number,
  w: number,
  h: number,
  color: Color,
  alpha = 1,
): void {
  checkCanvas(canvas);
  checkColor("color", color);
  [x, y, w, h].forEach((v, k) => checkNumber(["x", "y", "w", "h"][k], v));
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(
      `Invalid alpha "${alpha}": expected a number in [0, 1]`,
    );
  }
  fill(canvas, x, y, w, h, color, alpha);
}

/** {@linkcode fillRect} without the argument checks. */
function fill(
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
 * import type { LineStyle } from "./plot.ts";
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
 * import { createCanvas, drawPolyline } from "./plot.ts";
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
 * import { createCanvas, drawLine } from "./plot.ts";
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
 * import { createCanvas, drawImage } from "./plot.ts";
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

/** Measures text drawn by {@linkcode drawText}: each character advances
 * `6 * scale` pixels (5 of glyph, 1 of spacing, none after the last); a line
 * is `9 * scale` high (7 above the baseline, 2 for descenders) and lines are
 * `11 * scale` apart. Empty text measures 0 × 0.
 *
 * @param text The text; `\n` starts a new line.
 * @param scale The integer magnification (default 1).
 * @returns The size of the drawn box in pixels.
 * @throws {RangeError} If the scale is not a positive integer.
 *
 * @example
 * ```ts
 * import { measureText } from "./plot.ts";
 *
 * measureText("step", 2); // { width: 46, height: 18 }
 * ```
 */
export function measureText(
  text: string,
  scale = 1,
): { width: number; height: number } {
  checkInt("scale", scale, 1);
  if (text === "") return { width: 0, height: 0 };
  const lines = text.split("\n");
  const chars = Math.max(...lines.map((l) => [...l].length));
  return {
    width: chars > 0 ? (ADVANCE * chars - 1) * scale : 0,
    height: (lines.length * (GLYPH_ROWS + LINE_GAP) - LINE_GAP) * scale,
  };
}

/** Renders text, upright or rotated a quarter turn anticlockwise (reading
 * upwards); `(x, y)` is the top-left corner of the rotated box. */
function renderText(
  canvas: Canvas,
  x: number,
  y: number,
  text: string,
  color: Color,
  scale: number,
  upwards: boolean,
): void {
  const { width: boxWidth } = measureText(text, scale);
  const left = Math.round(x), top = Math.round(y);
  text.split("\n").forEach((line, row) => {
    let col = 0;
    for (const ch of line) {
      const bits = GLYPHS.get(ch) ?? GLYPHS.get("?")!;
      for (let gy = 0; gy < GLYPH_ROWS; gy++) {
        for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
          if (!(bits[gy] >> gx & 1)) continue;
          const tx = (col * ADVANCE + gx) * scale;
          const ty = (row * (GLYPH_ROWS + LINE_GAP) + gy) * scale;
          if (upwards) {
            fill(
              canvas,
              left + ty,
              top + boxWidth - tx - scale,
              scale,
              scale,
              color,
            );
          } else fill(canvas, left + tx, top + ty, scale, scale, color);
        }
      }
      col++;
    }
  });
}

/** Draws text in the built-in 5×7 bitmap font (with descenders), which covers
 * ASCII 32–126 and `‖ ₂ ′ − × σ ≤ ≥ ± · ² → … ° α ε λ μ Δ √`; other characters
 * are drawn as `?`. The box is measured by {@linkcode measureText}.
 *
 * @param canvas The canvas to draw on.
 * @param x The left edge of the text box (rounded).
 * @param y The top edge of the text box (rounded).
 * @param text The text; `\n` starts a new line.
 * @param color The text colour (default black).
 * @param scale The integer magnification (default 1).
 * @throws {RangeError} If the colour or scale is invalid.
 *
 * @example
 * ```ts
 * import { createCanvas, drawText } from "./plot.ts";
 *
 * const canvas = createCanvas(120, 30);
 * drawText(canvas, 4, 4, "‖x − x′‖₂ ≤ σ", [0, 0, 0], 2);
 * ```
 */
export function drawText(
  canvas: Canvas,
  x: number,
  y: number,
  text: string,
  color: Color = BLACK,
  scale = 1,
): void {
  checkCanvas(canvas);
  checkColor("color", color);
  checkNumber("x", x);
  checkNumber("y", y);
  checkInt("scale", scale, 1);
  renderText(canvas, x, y, String(text), color, scale, false);
}

/** Splits text into lines of at most `maxWidth` pixels, at spaces where
 * possible (explicit `\n` is kept). */
function wrapText(text: string, maxWidth: number, scale: number): string {
  const maxChars = Math.max(Math.floor((maxWidth / scale + 1) / ADVANCE), 1);
  const out: string[] = [];
  for (const para of text.split("\n")) {
    let line = "";
    for (const word of para.split(" ")) {
      const candidate = line === "" ? word : `${line} ${word}`;
      if ([...candidate].length <= maxChars) {
        line = candidate;
        continue;
      }
      if (line !== "") out.push(line);
      let rest = [...word];
      while (rest.length > maxChars) {
        out.push(rest.slice(0, maxChars).join(""));
        rest = rest.slice(maxChars);
      }
      line = rest.join("");
    }
    out.push(line);
  }
  return out.join("\n");
}

/** Draws each line of `text` centred on `cx`. */
function drawCentered(
  canvas: Canvas,
  cx: number,
  y: number,
  text: string,
  color: Color,
  scale: number,
): void {
  text.split("\n").forEach((line, i) => {
    const w = measureText(line, scale).width;
    drawText(
      canvas,
      Math.round(cx - w / 2),
      y + i * (GLYPH_ROWS + LINE_GAP) * scale,
      line,
      color,
      scale,
    );
  });
}

// ---------------------------------------------------------------- line plots

/** One curve of a {@linkcode linePlot}.
 *
 * @example
 * ```ts
 * import type { PlotSeries } from "./plot.ts";
 *
 * const s: PlotSeries = { label: "loss", x: [0, 1, 2], y: [3, 2, 1.5] };
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
 * import type { PlotHLine } from "./plot.ts";
 *
 * const noise: PlotHLine = { label: "noise floor", y: 0.01, dashed: true };
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
 * import type { LinePlotOptions } from "./plot.ts";
 *
 * const opts: LinePlotOptions = { series: [{ label: "a", x: [0, 1], y: [1, 2] }] };
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
}

interface Scale {
  log: boolean;
  lo: number; // In log10 units when log.
  hi: number;
}

function toUnits(v: number, log: boolean): number {
  return log ? Math.log10(v) : v;
}

function validPoint(x: number, y: number, log: boolean): boolean {
  return Number.isFinite(x) && Number.isFinite(y) && (!log || y > 0);
}

/** Picks the range of the values (in axis units), padded by `pad` of it. */
function autoScale(
  values: number[],
  log: boolean,
  pad: number,
  fixed?: readonly [number, number],
  name = "range",
): Scale {
  if (fixed) {
    const [a, b] = fixed;
    if (
      !Number.isFinite(a) || !Number.isFinite(b) || !(a < b) ||
      (log && !(a > 0))
    ) {
      throw new RangeError(
        `Invalid ${name} "[${fixed}]": expected finite [min, max] with min < max${
          log ? " and min > 0 (log axis)" : ""
        }`,
      );
    }
    return { log, lo: toUnits(a, log), hi: toUnits(b, log) };
  }
  const us = values.map((v) => toUnits(v, log));
  if (us.length === 0) return { log, lo: 0, hi: 1 };
  let lo = Infinity, hi = -Infinity;
  for (const u of us) [lo, hi] = [Math.min(lo, u), Math.max(hi, u)];
  if (hi - lo < 1e-12 * Math.max(Math.abs(lo), Math.abs(hi), 1e-300)) {
    const d = log ? 0.5 : Math.max(Math.abs(lo) * 0.1, 0.5);
    return { log, lo: lo - d, hi: hi + d };
  }
  const d = (hi - lo) * pad;
  return { log, lo: lo - d, hi: hi + d };
}

/** Formats a number with `decimals` digits after the point, or in
 * exponential notation for very large or small magnitudes. */
function formatNumber(v: number, decimals: number, exponential: boolean) {
  let s: string;
  if (v === 0) s = exponential ? "0" : (0).toFixed(Math.max(decimals, 0));
  else if (exponential) {
    const [m, e] = v.toExponential(Math.max(decimals, 0)).split("e");
    s = `${m.replace(/\.?0+$/, "")}e${e.replace("+", "")}`;
  } else s = v.toFixed(Math.max(decimals, 0));
  return s.replaceAll("-", "−");
}

interface Tick {
  value: number; // In axis units.
  label: string; // Empty for a minor tick.
}

function linearTicks(lo: number, hi: number, target: number): Tick[] {
  const raw = (hi - lo) / Math.max(target, 1);
  const e = Math.floor(Math.log10(raw));
  const f = raw / 10 ** e;
  const m = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  const step = m * 10 ** e;
  const decimals = -Math.floor(Math.log10(step) + 1e-9);
  const big = Math.max(Math.abs(lo), Math.abs(hi));
  const exponential = big >= 1e6 || big < 1e-3;
  const digits = exponential
    ? Math.max(Math.floor(Math.log10(big)) - Math.floor(Math.log10(step)), 0)
    : decimals;
  const ticks: Tick[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    const value = k * step;
    ticks.push({ value, label: formatNumber(value, digits, exponential) });
  }
  return ticks;
}

function formatPower(mantissa: number, e: number): string {
  if (e >= -4 && e <= 5) {
    return formatNumber(mantissa * 10 ** e, Math.max(-e, 0), false);
  }
  return `${mantissa}e${e}`.replaceAll("-", "−");
}

/** Ticks of a log axis: labelled powers of ten (every `stride`-th decade
 * when there are many), labelled 2× and 5× when under ~2.5 decades, and
 * unlabelled 2×–9× minor ticks when under ~8 decades. */
function logTicks(lo: number, hi: number, target: number): Tick[] {
  const decades = hi - lo;
  const stride = Math.max(Math.ceil(decades / Math.max(target, 1)), 1);
  const ticks: Tick[] = [];
  const inside = (u: number) => u >= lo - 1e-9 && u <= hi + 1e-9;
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    if (e % stride === 0 && inside(e)) {
      ticks.push({ value: e, label: formatPower(1, e) });
    }
    if (decades > 8) continue;
    for (let m = 2; m <= 9; m++) {
      const u = e + Math.log10(m);
      if (!inside(u)) continue;
      const labelled = decades <= 2.5 && (m === 2 || m === 5);
      ticks.push({ value: u, label: labelled ? formatPower(m, e) : "" });
    }
  }
  // Too few labels (less than a decade): fall back to linear ticks.
  if (ticks.filter((t) => t.label).length < 2) {
    return linearTicks(10 ** lo, 10 ** hi, target).filter((t) => t.value > 0)
      .map((t) => ({ value: Math.log10(t.value), label: t.label }));
  }
  return ticks;
}

function ticksFor(scale: Scale, pixels: number, spacing: number): Tick[] {
  const target = Math.max(Math.floor(pixels / spacing), 2);
  return scale.log
    ? logTicks(scale.lo, scale.hi, target)
    : linearTicks(scale.lo, scale.hi, target);
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
 * img.width; // 640
 * ```
 */
export function linePlot(options: LinePlotOptions): ImageTensor {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Invalid options "${options}": expected an object with a series array`,
    );
  }
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  checkInt("width", width, 160);
  checkInt("height", height, 120);
  const s = options.textScale ?? 1;
  checkInt("textScale", s, 1);
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
  const hasRight = series.some((ser) => ser.right) ||
    lines.some((h) => h.right);
  const hasLeft = series.some((ser) => !ser.right) ||
    lines.some((h) => !h.right);
  const logFor = (right: boolean) =>
    right ? options.logY2 ?? false : options.logY ?? false;

  // Ranges.
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
  const xScale = autoScale(xs, false, 0.02, options.xRange, "xRange");
  const yScale = autoScale(
    ysFor(false),
    logFor(false),
    0.05,
    options.yRange,
    "yRange",
  );
  const y2Scale = autoScale(
    ysFor(true),
    logFor(true),
    0.05,
    options.y2Range,
    "y2Range",
  );

  // Layout: margins from the text that goes around the plot area.
  const lineH = GLYPH_ROWS * s, gap = 6 * s, tickLen = 4 * s, pad = 10;
  const title = options.title ?? "";
  const titleScale = 2 * s;
  const titleText = title ? wrapText(title, width - 2 * pad, titleScale) : "";
  const top = pad +
    (title ? measureText(titleText, titleScale).height + gap : 4);
  const bottomText = tickLen + 3 * s + lineH +
    (options.xLabel ? gap + lineH : 0);
  const plotH0 = height - top - bottomText - pad;
  const yTicks = hasLeft || !hasRight ? ticksFor(yScale, plotH0, 45 * s) : [];
  const y2Ticks = hasRight ? ticksFor(y2Scale, plotH0, 45 * s) : [];
  const labelWidth = (ticks: Tick[]) =>
    Math.max(0, ...ticks.map((t) => measureText(t.label, s).width));
  const left = pad + (options.yLabel ? lineH + gap : 0) + labelWidth(yTicks) +
    tickLen + 3 * s;
  let right = width - pad -
    (hasRight
      ? (options.y2Label ? lineH + gap : 0) + labelWidth(y2Ticks) + tickLen +
        3 * s
      : 0);
  const bottom = height - pad - bottomText;
  const xTicks0 = ticksFor(xScale, right - left, 80 * s);
  // Keep the last x tick label inside the image.
  const lastX = xTicks0.at(-1);
  if (lastX && !hasRight) {
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
  const xTicks = ticksFor(xScale, right - left, 80 * s);
  const px = (x: number) =>
    left + (x - xScale.lo) / (xScale.hi - xScale.lo) * (right - left);
  const pyFor = (scale: Scale) => (y: number) =>
    bottom - (toUnits(y, scale.log) - scale.lo) / (scale.hi - scale.lo) *
      (bottom - top);
  const pyUnits = (scale: Scale) => (u: number) =>
    bottom - (u - scale.lo) / (scale.hi - scale.lo) * (bottom - top);
  const py = pyFor(yScale), py2 = pyFor(y2Scale);

  const canvas = createCanvas(width, height);
  const plotRect = {
    x: left,
    y: top,
    width: right - left + 1,
    height: bottom - top + 1,
  };

  // Grid, frame, ticks and tick labels.
  for (const t of yTicks) {
    const y = Math.round(pyUnits(yScale)(t.value));
    if (t.label) fill(canvas, left + 1, y, right - left - 1, 1, GRID);
  }
  for (const t of xTicks) {
    const x = Math.round(px(t.value));
    if (x > left && x < right) {
      fill(canvas, x, top + 1, 1, bottom - top - 1, GRID);
    }
  }
  const capMid = Math.round(CAP_HEIGHT * s / 2);
  for (const t of yTicks) {
    const y = Math.round(pyUnits(yScale)(t.value));
    const len = t.label ? tickLen : Math.ceil(tickLen / 2);
    fill(canvas, left - len, y, len, 1, FRAME);
    const w = measureText(t.label, s).width;
    drawText(canvas, left - tickLen - 3 * s - w, y - capMid, t.label, TEXT, s);
  }
  for (const t of y2Ticks) {
    const y = Math.round(pyUnits(y2Scale)(t.value));
    const len = t.label ? tickLen : Math.ceil(tickLen / 2);
    fill(canvas, right + 1, y, len, 1, FRAME);
    drawText(canvas, right + tickLen + 3 * s, y - capMid, t.label, TEXT, s);
  }
  for (const t of xTicks) {
    const x = Math.round(px(t.value));
    fill(canvas, x, bottom + 1, 1, tickLen, FRAME);
    const w = measureText(t.label, s).width;
    drawText(
      canvas,
      x - Math.floor(w / 2),
      bottom + tickLen + 3 * s,
      t.label,
      TEXT,
      s,
    );
  }

  // Axis labels and title.
  if (options.xLabel) {
    drawCentered(
      canvas,
      (left + right) / 2,
      bottom + tickLen + 3 * s + lineH + gap,
      options.xLabel,
      TEXT,
      s,
    );
  }
  const vertical = (label: string, x: number) => {
    const w = measureText(label, s).width;
    renderText(canvas, x, (top + bottom) / 2 - w / 2, label, TEXT, s, true);
  };
  if (options.yLabel) vertical(options.yLabel, pad);
  if (options.y2Label && hasRight) {
    vertical(options.y2Label, width - pad - lineH);
  }
  if (titleText) {
    drawCentered(canvas, width / 2, pad, titleText, BLACK, titleScale);
  }

  // Data.
  const samples: [number, number][] = []; // For placing the legend.
  for (const h of lines) {
    if (!validPoint(0, h.y, logFor(h.right))) continue;
    const y = Math.round((h.right ? py2 : py)(h.y) - 0.5) + 0.5;
    drawLine(canvas, left, y, right, y, h.color, 2, {
      clip: plotRect,
      dash: h.dashed ? [8, 5] : undefined,
    });
    for (let x = left; x <= right; x += 4) samples.push([x, y]);
  }
  for (const ser of series) {
    const toPy = ser.right ? py2 : py;
    const log = logFor(ser.right);
    let run: [number, number][] = [];
    const flush = () => {
      if (run.length > 0) {
        drawPolyline(canvas, run, ser.color, {
          thickness: ser.thickness ?? 2,
          clip: plotRect,
        });
        if (run.length === 1) {
          drawPolyline(canvas, run, ser.color, {
            thickness: 5,
            clip: plotRect,
          });
        }
      }
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
      const p: [number, number] = [
        Math.min(Math.max(px(x), -1e6), 1e6),
        Math.min(Math.max(toPy(y), -1e6), 1e6),
      ];
      run.push(p);
    });
    flush();
  }

  // Frame on top of the data.
  fill(canvas, left, top, right - left + 1, 1, FRAME);
  fill(canvas, left, bottom, right - left + 1, 1, FRAME);
  fill(canvas, left, top, 1, bottom - top + 1, FRAME);
  fill(canvas, right, top, 1, bottom - top + 1, FRAME);

  // Legend where the fewest data samples are under it.
  const entries = [
    ...series.map((ser) => ({
      label: ser.label + (ser.right && hasLeft ? " (right)" : ""),
      color: ser.color,
      dashed: false,
    })),
    ...lines.map((h) => ({
      label: h.label + (h.right && hasLeft ? " (right)" : ""),
      color: h.color,
      dashed: h.dashed ?? false,
    })),
  ].filter((e) => e.label !== "");
  if (entries.length > 0) {
    const sample = 22 * s, rowH = lineH + 4 * s, inner = 6 * s;
    const boxW = inner * 2 + sample + 6 * s +
      Math.max(...entries.map((e) => measureText(e.label, s).width));
    const boxH = inner * 2 + entries.length * rowH - 4 * s;
    const margin = 8;
    const [xr, xl, xc] = [
      right - margin - boxW,
      left + margin,
      (left + right - boxW) / 2,
    ];
    const [yt, yb, yc] = [
      top + margin,
      bottom - margin - boxH,
      (top + bottom - boxH) / 2,
    ];
    // Corners first, then edge middles and the centre; the first wins ties.
    const corners = [
      [xr, yt],
      [xl, yt],
      [xr, yb],
      [xl, yb],
      [xr, yc],
      [xl, yc],
      [xc, yt],
      [xc, yb],
      [xc, yc],
    ];
    let best = corners[0], fewest = Infinity;
    for (const [bx, by] of corners) {
      const n = samples.filter(([x, y]) =>
        x >= bx - 4 && x <= bx + boxW + 4 && y >= by - 4 && y <= by + boxH + 4
      ).length;
      if (n < fewest) {
        [best, fewest] = [[bx, by], n];
      }
    }
    const [bx, by] = best.map(Math.round);
    fill(canvas, bx, by, boxW, boxH, [1, 1, 1], 0.9);
    fill(canvas, bx, by, boxW, 1, LEGEND_BORDER);
    fill(
      canvas,
      bx,
      by + boxH - 1,
      boxW,
      1,
      LEGEND_BORDER,
    );
    fill(canvas, bx, by, 1, boxH, LEGEND_BORDER);
    fill(
      canvas,
      bx + boxW - 1,
      by,
      1,
      boxH,
      LEGEND_BORDER,
    );
    entries.forEach((e, i) => {
      const ty = by + inner + i * rowH;
      const ly = ty + Math.round(CAP_HEIGHT * s / 2) - 0.5;
      drawLine(canvas, bx + inner, ly, bx + inner + sample, ly, e.color, 2, {
        dash: e.dashed ? [6, 3] : undefined,
      });
      drawText(canvas, bx + inner + sample + 6 * s, ty, e.label, TEXT, s);
    });
  }
  return canvas;
}

// ------------------------------------------------------------------ montages

/** Options of {@linkcode montage}.
 *
 * @example
 * ```ts
 * import type { MontageOptions } from "./plot.ts";
 *
 * const opts: MontageOptions = { cells: [[null, null]], cellSize: [32, 32] };
 * ```
 */
export interface MontageOptions {
  /** The images, row by row; `null` (or a missing entry in a short row) is
   * an empty grey cell. */
  cells: readonly (readonly (ImageTensor | null)[])[];
  /** Labels left of the rows, right-aligned (at most one per row). */
  rowLabels?: readonly string[];
  /** Labels above the columns, centred and wrapped to the cell width at
   * spaces (at most one per column; a longer word widens the cells). */
  colLabels?: readonly string[];
  /** A title above everything, wrapped to the image width. */
  title?: string;
  /** The gap around and between cells and labels in pixels (default 4). */
  padding?: number;
  /** The text magnification of labels and title (default 2). */
  labelScale?: number;
  /** The cell size `[height, width]`; by default the largest image's height
   * and width. */
  cellSize?: readonly [number, number];
  /** How images are scaled to the cell: `"auto"` (default) uses nearest
   * neighbour for whole-number enlargements (crisp pixels) and bilinear
   * otherwise (antialiased when shrinking). */
  resample?: "auto" | "nearest" | "bilinear";
  /** The background colour (default white). */
  background?: Color;
}

function resizeNearest(img: ImageTensor, h: number, w: number): ImageTensor {
  const out = new Float32Array(3 * h * w);
  const plane = img.height * img.width;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const sy = Math.min(
        Math.floor((y + 0.5) * img.height / h),
        img.height - 1,
      );
      for (let x = 0; x < w; x++) {
        const sx = Math.min(
          Math.floor((x + 0.5) * img.width / w),
          img.width - 1,
        );
        out[(c * h + y) * w + x] = img.data[c * plane + sy * img.width + sx];
      }
    }
  }
  return { data: out, channels: 3, height: h, width: w };
}

function fitCell(
  img: ImageTensor,
  cellH: number,
  cellW: number,
  resample: "auto" | "nearest" | "bilinear",
): ImageTensor {
  const k = Math.min(cellH / img.height, cellW / img.width);
  const h = Math.max(Math.min(Math.round(img.height * k), cellH), 1);
  const w = Math.max(Math.min(Math.round(img.width * k), cellW), 1);
  if (h === img.height && w === img.width) return img;
  const nearest = resample === "nearest" ||
    (resample === "auto" && h % img.height === 0 && w % img.width === 0);
  return nearest ? resizeNearest(img, h, w) : resizeBilinear(img, h, w);
}

/** Arranges images in a labelled grid, like a figure in an essay: an
 * optional title, column labels above, row labels on the left. Each image is
 * scaled to fit the cell size, keeping its aspect ratio, and centred.
 *
 * The cell size `cellH` × `cellW` is `cellSize`, or the largest image
 * height and width; `cellW` grows to the widest word of a column label, so
 * labels wrap only between words. The output is `padding + (rowLabels ? L +
 * padding : 0) + cols * (cellW + padding)` wide, with `L` the widest row
 * label's {@linkcode measureText} width, and `padding + (title ? T + padding
 * : 0) + (colLabels ? C + padding : 0) + rows * (cellH + padding)` high,
 * with `T` and `C` the heights of the (wrapped) title and tallest column
 * label.
 *
 * @param options The cells and labels; see {@linkcode MontageOptions}.
 * @returns The montage as an image.
 * @throws {RangeError} If there are no cells, every cell is empty and no
 * `cellSize` is given, there are more labels than rows or columns, or a
 * size or colour is invalid.
 * @throws {TypeError} If a cell is not an image or null.
 *
 * @example
 * ```ts
 * import { createCanvas, montage } from "./plot.ts";
 *
 * const a = createCanvas(32, 32, [1, 0, 0]), b = createCanvas(16, 16, [0, 0, 1]);
 * const img = montage({
 *   cells: [[a, b], [b, null]],
 *   rowLabels: ["input", "layer 6"],
 *   colLabels: ["cat", "dog"],
 *   labelScale: 1,
 * });
 * ```
 */
export function montage(options: MontageOptions): ImageTensor {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Invalid options "${options}": expected an object with a cells array`,
    );
  }
  const { cells, title } = options;
  if (!Array.isArray(cells) || cells.length === 0) {
    throw new RangeError(
      `Invalid cells "${cells}": expected at least one row of images`,
    );
  }
  cells.forEach((row, r) => {
    if (!Array.isArray(row)) {
      throw new TypeError(`Invalid cells row ${r} "${row}": expected an array`);
    }
    row.forEach((img, c) => {
      if (img !== null && img !== undefined) {
        checkImage(`cell [${r}][${c}]`, img);
      }
    });
  });
  const rows = cells.length;
  const cols = Math.max(...cells.map((row) => row.length));
  if (cols === 0) {
    throw new RangeError(
      `Invalid cells: every row is empty (expected at least one column)`,
    );
  }
  const padding = options.padding ?? 4;
  const scale = options.labelScale ?? 2;
  checkInt("padding", padding, 0);
  checkInt("labelScale", scale, 1);
  const background = options.background ?? [1, 1, 1];
  checkColor("background", background);
  const resample = options.resample ?? "auto";
  if (!["auto", "nearest", "bilinear"].includes(resample)) {
    throw new TypeError(
      `Invalid resample "${resample}": expected "auto", "nearest" or "bilinear"`,
    );
  }
  const images = cells.flat().filter((c): c is ImageTensor => !!c);
  let cellH: number, cellW: number;
  if (options.cellSize) {
    [cellH, cellW] = options.cellSize;
    checkInt("cellSize height", cellH, 1);
    checkInt("cellSize width", cellW, 1);
  } else if (images.length > 0) {
    cellH = Math.max(...images.map((i) => i.height));
    cellW = Math.max(...images.map((i) => i.width));
  } else {
    throw new RangeError(
      `Invalid cells: all ${
        rows * cols
      } are empty (null); give cellSize to draw an empty grid`,
    );
  }
  const rowLabels = options.rowLabels ?? [];
  const colLabels = options.colLabels ?? [];
  if (rowLabels.length > rows) {
    throw new RangeError(
      `Invalid rowLabels length "${rowLabels.length}": expected at most one per row (${rows})`,
    );
  }
  if (colLabels.length > cols) {
    throw new RangeError(
      `Invalid colLabels length "${colLabels.length}": expected at most one per column (${cols})`,
    );
  }
  const hasRowLabels = options.rowLabels !== undefined;
  const hasColLabels = options.colLabels !== undefined;
  const rowLabelW = Math.max(
    0,
    ...rowLabels.map((l) => measureText(String(l), scale).width),
  );
  // Widen the cells to the longest word of a column label, so no word breaks.
  for (const label of colLabels) {
    for (const word of String(label).split(/[ \n]/)) {
      cellW = Math.max(cellW, measureText(word, scale).width);
    }
  }
  const wrappedCols = colLabels.map((l) => wrapText(String(l), cellW, scale));
  const colLabelH = Math.max(
    0,
    ...wrappedCols.map((l) => measureText(l, scale).height),
  );
  const left = padding + (hasRowLabels ? rowLabelW + padding : 0);
  const width = left + cols * (cellW + padding);
  const titleText = title ? wrapText(title, width - 2 * padding, scale) : "";
  const titleH = title ? measureText(titleText, scale).height : 0;
  const top = padding + (title ? titleH + padding : 0) +
    (hasColLabels ? colLabelH + padding : 0);
  const height = top + rows * (cellH + padding);

  const canvas = createCanvas(width, height, background);
  if (titleText) {
    drawCentered(canvas, width / 2, padding, titleText, BLACK, scale);
  }
  wrappedCols.forEach((label, c) => {
    const h = measureText(label, scale).height;
    drawCentered(
      canvas,
      left + c * (cellW + padding) + cellW / 2,
      top - padding - h,
      label,
      TEXT,
      scale,
    );
  });
  rowLabels.forEach((label, r) => {
    const h = measureText(String(label), scale).height;
    const y0 = top + r * (cellH + padding) + Math.round((cellH - h) / 2);
    String(label).split("\n").forEach((line, i) => {
      const lw = measureText(line, scale).width;
      drawText(
        canvas,
        padding + rowLabelW - lw,
        y0 + i * (GLYPH_ROWS + LINE_GAP) * scale,
        line,
        TEXT,
        scale,
      );
    });
  });
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = left + c * (cellW + padding), y = top + r * (cellH + padding);
      const img = cells[r][c];
      if (!img) {
        fill(canvas, x, y, cellW, cellH, EMPTY_CELL);
        continue;
      }
      const fitted = fitCell(img, cellH, cellW, resample);
      drawImage(
        canvas,
        fitted,
        x + Math.floor((cellW - fitted.width) / 2),
        y + Math.floor((cellH - fitted.height) / 2),
      );
    }
  }
  return canvas;
}

/** Places images in one row with a label above each: a one-row
 * {@linkcode montage} (padding 4, label scale 2).
 *
 * @param images The images, left to right.
 * @param labels One label per image, or none (default).
 * @returns The combined image.
 * @throws {RangeError} If there are no images, or labels are given but not
 * one per image.
 *
 * @example
 * ```ts
 * import { createCanvas, sideBySide } from "./plot.ts";
 *
 * const a = createCanvas(8, 8, [1, 0, 0]), b = createCanvas(8, 8, [0, 1, 0]);
 * sideBySide([a, b], ["before", "after"]).height; // 4 + 18 + 4 + 8 + 4
 * ```
 */
export function sideBySide(
  images: readonly ImageTensor[],
  labels: readonly string[] = [],
): ImageTensor {
  if (!Array.isArray(images) || images.length === 0) {
    throw new RangeError(
      `Invalid images "${images}": expected at least one image`,
    );
  }
  if (labels.length !== 0 && labels.length !== images.length) {
    throw new RangeError(
      `Invalid labels length "${labels.length}": expected one per image (${images.length}) or none`,
    );
  }
  return montage({
    cells: [images],
    colLabels: labels.length > 0 ? labels : undefined,
  });
}
