/**
 * Image montages: a labelled grid of images (title, column labels above, row
 * labels on the left), and one labelled row of images side by side.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sideBySide } from "./montage.ts";
 *
 * const px = (v: number) => ({ data: new Float32Array(3 * 8 * 8).fill(v), channels: 3 as const, height: 8, width: 8 });
 * const img = sideBySide([px(0), px(1)], ["before", "after"]);
 * // Cells widen to the widest label word, "before": 6 × 12 − 2 = 70 px.
 * assert.deepEqual([img.width, img.height], [4 + 2 * (70 + 4), 4 + 18 + 4 + 8 + 4]);
 * ```
 *
 * @module
 */

import { type ImageTensor, resizeBilinear } from "../io/mod.ts";
import {
  BLACK,
  checkColor,
  checkImage,
  checkInt,
  type Color,
  EMPTY_CELL,
  TEXT,
} from "./_canvas.ts";
import { measureText, warnMissingGlyphs, wrapText } from "./_font.ts";
import { type Pen, rasterPen, svgPen } from "./_pen.ts";

/** Options of {@linkcode montage}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { montage, type MontageOptions } from "./montage.ts";
 *
 * const opts: MontageOptions = { cells: [[null, null]], cellSize: [32, 32] };
 * assert.deepEqual([montage(opts).width, montage(opts).height], [4 + 2 * 36, 4 + 36]);
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
  /** Called once with a message naming the characters of the title or
   * labels that the built-in bitmap font lacks (they are drawn as "?"). */
  onWarning?: (message: string) => void;
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

/** Checks the cells; returns their row and column counts. */
function checkCells(cells: MontageOptions["cells"]): [number, number] {
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
  const cols = Math.max(...cells.map((row) => row.length));
  if (cols === 0) {
    throw new RangeError(
      `Invalid cells: every row is empty (expected at least one column)`,
    );
  }
  return [cells.length, cols];
}

/** The checked scalar options, with their defaults. */
function settingsOf(options: MontageOptions, rows: number, cols: number) {
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
  const images = options.cells.flat().filter((c): c is ImageTensor => !!c);
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
  return { padding, scale, background, resample, cellH, cellW, rowLabels };
}

/** Draws the title, the column labels and the row labels. */
function drawLabels(
  pen: Pen,
  [title, cols, rowLabels]: [string, string[], readonly string[]],
  [width, left, top, cellW, cellH, rowLabelW]: number[],
  padding: number,
  scale: number,
): void {
  if (title) pen.text(width / 2, padding, title, BLACK, scale, "middle");
  cols.forEach((label, c) => {
    const h = measureText(label, scale).height;
    const x = left + c * (cellW + padding) + cellW / 2;
    pen.text(x, top - padding - h, label, TEXT, scale, "middle");
  });
  rowLabels.forEach((label, r) => {
    const h = measureText(String(label), scale).height;
    const y0 = top + r * (cellH + padding) + Math.round((cellH - h) / 2);
    pen.text(padding + rowLabelW, y0, String(label), TEXT, scale, "end");
  });
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
 * import assert from "node:assert/strict";
 * import { montage } from "./montage.ts";
 *
 * const square = (n: number) => ({ data: new Float32Array(3 * n * n).fill(0.5), channels: 3 as const, height: n, width: n });
 * const img = montage({
 *   cells: [[square(32), square(16)], [square(16), null]],
 *   rowLabels: ["input", "layer 6"],
 *   colLabels: ["cat", "dog"],
 *   labelScale: 1,
 * });
 * // 4 + "layer 6" (41) + 4 + 2 × (32 + 4) wide, 4 + 9 + 4 + 2 × (32 + 4) high
 * assert.deepEqual([img.width, img.height], [121, 89]);
 * ```
 */
export function montage(options: MontageOptions): ImageTensor {
  return drawMontage(options, rasterPen, true).canvas;
}

/** {@linkcode montage} as an SVG document: the same layout, with real
 * `<text>` labels (any Unicode, escaped; `onWarning` is not called) and each
 * cell's image, scaled as in the PNG, embedded as a PNG data URI.
 *
 * @param options The cells and labels; see {@linkcode MontageOptions}.
 * @returns The SVG document.
 * @throws {RangeError} As {@linkcode montage}.
 * @throws {TypeError} As {@linkcode montage}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { montageSvg } from "./montage.ts";
 *
 * const grey = { data: new Float32Array(3 * 8 * 8).fill(0.5), channels: 3 as const, height: 8, width: 8 };
 * const svg = montageSvg({ cells: [[grey, null]], colLabels: ["Schrödinger", "δ³"] });
 * assert.equal(svg.match(/<image /g)?.length, 1);
 * assert.match(svg, />δ³<\/text>/);
 * ```
 */
export function montageSvg(options: MontageOptions): string {
  return drawMontage(options, svgPen, false).svg();
}

/** Checks the options, lays the montage out and draws it with a new pen. */
function drawMontage<P extends Pen>(
  options: MontageOptions,
  newPen: (width: number, height: number, background: Color) => P,
  bitmapFont: boolean,
): P {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Invalid options "${options}": expected an object with a cells array`,
    );
  }
  const { cells, title } = options;
  const [rows, cols] = checkCells(cells);
  const { padding, scale, background, resample, cellH, rowLabels, ...rest } =
    settingsOf(options, rows, cols);
  const colLabels = options.colLabels ?? [];
  if (bitmapFont) {
    warnMissingGlyphs([title, ...rowLabels, ...colLabels], options.onWarning);
  }
  const rowLabelW = Math.max(
    0,
    ...rowLabels.map((l) => measureText(String(l), scale).width),
  );
  // Widen the cells to the longest word of a column label, so no word breaks.
  let cellW = rest.cellW;
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
  const left = padding +
    (options.rowLabels !== undefined ? rowLabelW + padding : 0);
  const width = left + cols * (cellW + padding);
  const titleText = title ? wrapText(title, width - 2 * padding, scale) : "";
  const titleH = title ? measureText(titleText, scale).height : 0;
  const top = padding + (title ? titleH + padding : 0) +
    (options.colLabels !== undefined ? colLabelH + padding : 0);
  const height = top + rows * (cellH + padding);

  const pen = newPen(width, height, background);
  drawLabels(
    pen,
    [titleText, wrappedCols, rowLabels],
    [width, left, top, cellW, cellH, rowLabelW],
    padding,
    scale,
  );
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = left + c * (cellW + padding), y = top + r * (cellH + padding);
      const img = cells[r][c];
      if (!img) {
        pen.fill(x, y, cellW, cellH, EMPTY_CELL);
        continue;
      }
      const fitted = fitCell(img, cellH, cellW, resample);
      pen.image(
        fitted,
        x + Math.floor((cellW - fitted.width) / 2),
        y + Math.floor((cellH - fitted.height) / 2),
      );
    }
  }
  return pen;
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
 * import assert from "node:assert/strict";
 * import { sideBySide } from "./montage.ts";
 *
 * const solid = (v: number) => ({ data: new Float32Array(3 * 8 * 8).fill(v), channels: 3 as const, height: 8, width: 8 });
 * const img = sideBySide([solid(0), solid(1)], ["before", "after"]);
 * assert.equal(img.height, 4 + 18 + 4 + 8 + 4); // padding, label, padding, image, padding
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
