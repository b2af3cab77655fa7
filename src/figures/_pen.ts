/**
 * Internal: one set of drawing calls for both outputs of a figure. The
 * figure code draws through a {@linkcode Pen}; {@linkcode rasterPen} puts
 * the pixels on a canvas (bitmap font, antialiased lines), {@linkcode svgPen}
 * writes SVG elements at the same coordinates (real `<text>` in any script,
 * vector lines, images as PNG data URIs).
 *
 * @module
 */

import { encodePng, type ImageTensor } from "../io/mod.ts";
import {
  type Canvas,
  type Color,
  createCanvas,
  drawImage,
  drawPolyline,
  fill,
  type LineStyle,
} from "./_canvas.ts";
import {
  CAP_HEIGHT,
  drawCentered,
  drawText,
  GLYPH_ROWS,
  LINE_GAP,
  measureText,
  renderText,
} from "./_font.ts";

/** Where `x` is on a line of text: its left end, centre or right end. */
export type Align = "start" | "middle" | "end";

/** The drawing calls a figure makes. Coordinates are pixels of the figure. */
export interface Pen {
  /** A filled rectangle, optionally blended with `alpha`. */
  fill(x: number, y: number, w: number, h: number, c: Color, a?: number): void;
  /** A polyline (one point: a dot); `label` names it in the SVG. */
  polyline(
    points: readonly (readonly [number, number])[],
    color: Color,
    style: LineStyle,
    label?: string,
  ): void;
  /** Text whose lines' tops start at `y`, aligned on `x`. */
  text(
    x: number,
    y: number,
    text: string,
    color: Color,
    scale: number,
    align?: Align,
  ): void;
  /** One line of text reading upwards, its left edge at `x`, centred on `cy`. */
  textUp(
    x: number,
    cy: number,
    text: string,
    color: Color,
    scale: number,
  ): void;
  /** An image with its top-left corner at `(x, y)`. */
  image(img: ImageTensor, x: number, y: number): void;
}

/** Pixels from one line of text to the next. */
const lineStep = (scale: number) => (GLYPH_ROWS + LINE_GAP) * scale;

/** A pen drawing on a new canvas of the size and background. */
export function rasterPen(
  width: number,
  height: number,
  background: Color = [1, 1, 1],
): Pen & { canvas: Canvas & ImageTensor } {
  const canvas = createCanvas(width, height, background);
  return {
    canvas,
    fill: (x, y, w, h, c, a) => fill(canvas, x, y, w, h, c, a),
    polyline: (points, color, style) =>
      drawPolyline(canvas, points, color, style),
    text(x, y, text, color, scale, align = "start") {
      if (align === "start") drawText(canvas, x, y, text, color, scale);
      else if (align === "middle") {
        drawCentered(canvas, x, y, text, color, scale);
      } else {
        text.split("\n").forEach((line, i) => {
          const w = measureText(line, scale).width;
          drawText(canvas, x - w, y + i * lineStep(scale), line, color, scale);
        });
      }
    },
    textUp(x, cy, text, color, scale) {
      const w = measureText(text, scale).width;
      renderText(canvas, x, cy - w / 2, text, color, scale, true);
    },
    image: (img, x, y) => drawImage(canvas, img, x, y),
  };
}

/** A number for an SVG attribute: at most two decimals. */
const num = (v: number) => String(Math.round(v * 100) / 100);

/** A colour as `#rrggbb`. */
function hex(c: Color): string {
  return "#" +
    c.map((v) =>
      Math.round(Math.min(Math.max(v, 0), 1) * 255).toString(16).padStart(
        2,
        "0",
      )
    ).join("");
}

/** Text escaped for XML content and attribute values. */
function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
    // characters XML 1.0 does not allow
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "\ufffd");
}

/** Bytes as base64. */
function base64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

const FONT = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`;

/**
 * A pen writing SVG elements; `svg()` returns the document. A raster pixel
 * `(px, py)` is the unit square from `(px, py)`: rectangles and text keep
 * their coordinates, line vertices (pixel centres) move by half a pixel.
 */
export function svgPen(
  width: number,
  height: number,
  background: Color = [1, 1, 1],
): Pen & { svg(): string } {
  const body: string[] = [];
  const clips = new Map<string, string>();
  const clipId = (r: NonNullable<LineStyle["clip"]>) => {
    const rect = `x="${num(r.x)}" y="${num(r.y)}" width="${
      num(r.width)
    }" height="${num(r.height)}"`;
    if (!clips.has(rect)) clips.set(rect, `clip${clips.size}`);
    return clips.get(rect)!;
  };
  const textEl = (attrs: string, size: number, c: Color, s: string) =>
    `<text ${attrs} font-size="${num(size)}" ${FONT} fill="${hex(c)}">${
      escapeXml(s)
    }</text>`;
  return {
    fill(x, y, w, h, c, a = 1) {
      body.push(
        `<rect x="${num(x)}" y="${num(y)}" width="${num(w)}" height="${
          num(h)
        }" fill="${hex(c)}"${a === 1 ? "" : ` fill-opacity="${num(a)}"`}/>`,
      );
    },
    polyline(points, color, style, label) {
      const t = style.thickness ?? 1;
      const clip = style.clip ? ` clip-path="url(#${clipId(style.clip)})"` : "";
      const name = label === undefined
        ? ""
        : ` data-label="${escapeXml(label)}"`;
      if (points.length === 1) {
        const [x, y] = points[0].map((v) => v + 0.5);
        body.push(
          `<circle cx="${num(x)}" cy="${num(y)}" r="${num(t / 2)}" fill="${
            hex(color)
          }"${clip}${name}/>`,
        );
        return;
      }
      const dash = style.dash ? ` stroke-dasharray="${style.dash}"` : "";
      body.push(
        `<polyline points="${
          points.map(([x, y]) => `${num(x + 0.5)},${num(y + 0.5)}`).join(" ")
        }" fill="none" stroke="${hex(color)}" stroke-width="${
          num(t)
        }" stroke-linecap="round" stroke-linejoin="round"${dash}${clip}${name}/>`,
      );
    },
    text(x, y, text, color, scale, align = "start") {
      text.split("\n").forEach((line, i) => {
        const base = y + i * lineStep(scale) + CAP_HEIGHT * scale;
        const anchor = align === "start" ? "" : ` text-anchor="${align}"`;
        body.push(
          textEl(
            `x="${num(x)}" y="${num(base)}"${anchor}`,
            10 * scale,
            color,
            line,
          ),
        );
      });
    },
    textUp(x, cy, text, color, scale) {
      const at = `translate(${num(x + CAP_HEIGHT * scale)} ${num(cy)})`;
      body.push(
        textEl(
          `transform="${at} rotate(-90)" text-anchor="middle"`,
          10 * scale,
          color,
          text,
        ),
      );
    },
    image(img, x, y) {
      body.push(
        `<image x="${num(x)}" y="${
          num(y)
        }" width="${img.width}" height="${img.height}" preserveAspectRatio="none" style="image-rendering:pixelated" href="data:image/png;base64,${
          base64(encodePng(img))
        }"/>`,
      );
    },
    svg() {
      const defs = clips.size === 0
        ? ""
        : `<defs>${
          [...clips].map(([rect, id]) =>
            `<clipPath id="${id}"><rect ${rect}/></clipPath>`
          ).join("")
        }</defs>\n`;
      return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
${defs}<rect width="100%" height="100%" fill="${hex(background)}"/>
${body.join("\n")}
</svg>
`;
    },
  };
}
