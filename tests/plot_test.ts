import type { ImageTensor } from "../src/io/mod.ts";
import {
  type Color,
  linePlot,
  missingGlyphs,
  montage,
  sideBySide,
} from "../src/figures/mod.ts";
// The drawing primitives are internal to src/figures; tested here directly.
import { createCanvas, drawLine, fill } from "../src/figures/_canvas.ts";
import { drawText, measureText } from "../src/figures/_font.ts";
import { assert, assertClose, assertEquals, assertRejects } from "./_assert.ts";

function pixel(img: ImageTensor, x: number, y: number): number[] {
  const plane = img.width * img.height;
  return [0, 1, 2].map((c) => img.data[c * plane + y * img.width + x]);
}

/** Whether the pixel is close to `color` (antialiased edges are not). */
function near(img: ImageTensor, x: number, y: number, color: Color): boolean {
  return pixel(img, x, y).every((v, c) => Math.abs(v - color[c]) < 0.15);
}

/** The mean row of the pixels of `color` in column `x`, or NaN. */
function rowOf(img: ImageTensor, x: number, color: Color): number {
  let sum = 0, n = 0;
  for (let y = 0; y < img.height; y++) {
    if (near(img, x, y, color)) [sum, n] = [sum + y, n + 1];
  }
  return n > 0 ? sum / n : NaN;
}

/** The first and last column holding `color`. */
function columnsOf(img: ImageTensor, color: Color): [number, number] {
  const cols: number[] = [];
  for (let x = 0; x < img.width; x++) {
    if (!Number.isNaN(rowOf(img, x, color))) cols.push(x);
  }
  return [cols[0], cols.at(-1)!];
}

const RED: Color = [1, 0, 0];
const BLUE: Color = [0, 0, 1];

Deno.test("drawText() draws inside the box measureText() gives", () => {
  assertEquals(measureText("", 3), { width: 0, height: 0 });
  assertEquals(measureText("ab", 1), { width: 11, height: 9 });
  assertEquals(measureText("step\nx", 2), { width: 46, height: 40 });
  const canvas = createCanvas(80, 40);
  drawText(canvas, 10, 5, "Hg‖₂σ", [0, 0, 0], 2);
  const box = measureText("Hg‖₂σ", 2);
  let inside = 0, descender = 0;
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      if (pixel(canvas, x, y)[0] === 1) continue;
      assert(
        x >= 10 && x < 10 + box.width && y >= 5 && y < 5 + box.height,
        `ink at ${x},${y} outside the box`,
      );
      inside++;
      if (y >= 5 + 7 * 2) descender++; // Below the baseline: g and ₂.
    }
  }
  assert(inside > 100, `only ${inside} pixels drawn`);
  assert(descender > 0, "no descender drawn");
  // Unknown characters are drawn as "?".
  const a = createCanvas(12, 12), b = createCanvas(12, 12);
  drawText(a, 1, 1, "€");
  drawText(b, 1, 1, "?");
  assertEquals(a.data, b.data);
  // Text off the canvas is clipped, not an error.
  drawText(a, -20, 8, "clipped", [1, 0, 0], 3);
});

Deno.test("drawLine() and fill() draw crisp axis-aligned shapes", () => {
  const canvas = createCanvas(20, 20);
  drawLine(canvas, 2, 10, 17, 10, BLUE, 1);
  for (let x = 2; x <= 17; x++) assert(near(canvas, x, 10, BLUE));
  assertEquals(pixel(canvas, 5, 9), [1, 1, 1]);
  assertEquals(pixel(canvas, 5, 11), [1, 1, 1]);
  fill(canvas, 0, 0, 3, 2, RED);
  assertEquals(pixel(canvas, 2, 1), [1, 0, 0]);
  assertEquals(pixel(canvas, 3, 1), [1, 1, 1]);
  // Dashes leave gaps.
  const dashed = createCanvas(40, 5);
  drawLine(dashed, 0, 2, 39, 2, BLUE, 1, { dash: [4, 4] });
  const on = Array.from({ length: 40 }, (_, x) => near(dashed, x, 2, BLUE));
  assert(on.filter(Boolean).length > 12 && on.filter(Boolean).length < 28);
});

Deno.test("linePlot() with logY draws 10^x as a straight line", () => {
  const x = Array.from({ length: 41 }, (_, i) => i / 10);
  // Empty labels keep the legend (with its colour samples) out of the way.
  const img = linePlot({
    title: "10^x",
    xLabel: "x",
    yLabel: "y",
    logY: true,
    series: [{ label: "", x, y: x.map((v) => 10 ** v), color: RED }],
    hlines: [{ label: "", y: 100, color: BLUE }],
  });
  assertEquals([img.width, img.height, img.data.length], [
    640,
    400,
    3 * 640 * 400,
  ]);
  const [c0, c1] = columnsOf(img, RED);
  assert(c1 - c0 > 400, `series spans columns ${c0}..${c1}`);
  const at = (f: number) => {
    const col = Math.round(c0 + 10 + f * (c1 - c0 - 20));
    return { col, row: rowOf(img, col, RED) };
  };
  const first = at(0), last = at(1);
  assert(last.row < first.row - 200, "the line should rise steeply");
  for (const f of [0.2, 0.35, 0.65, 0.8]) {
    const p = at(f);
    const expected = first.row +
      (p.col - first.col) / (last.col - first.col) * (last.row - first.row);
    assertClose(p.row, expected, 1.5, `row at column ${p.col}`);
  }
  // The hline at 10^2 crosses the series half-way (x = 2), in log space.
  const hlineCol = Math.round(c0 + 0.1 * (c1 - c0));
  const hlineRow = rowOf(img, hlineCol, BLUE);
  const mid = (c0 + c1) / 2;
  const left = at((mid - 15 - c0 - 10) / (c1 - c0 - 20));
  const right = at((mid + 15 - c0 - 10) / (c1 - c0 - 20));
  assertClose(hlineRow, (left.row + right.row) / 2, 1.5, "hline row");
  // It spans the plot area.
  const [h0, h1] = columnsOf(img, BLUE);
  assert(h0 <= c0 + 2 && h1 >= c1 - 2, `hline spans ${h0}..${h1}`);
});

Deno.test("linePlot() skips non-finite and non-positive points", () => {
  const img = linePlot({
    width: 300,
    height: 200,
    logY: true,
    series: [{
      label: "",
      x: [0, 1, 2, 3, 4, NaN],
      y: [1, NaN, 10, -1, 100, 5],
      color: RED,
    }],
  });
  // Each valid point is an isolated dot: no line joins them.
  const [c0, c1] = columnsOf(img, RED);
  const dots = [];
  for (let x = c0; x <= c1; x++) {
    if (!Number.isNaN(rowOf(img, x, RED))) dots.push(x);
  }
  assert(dots.length < 20, `${dots.length} columns drawn: the gaps are joined`);
  // A plot with no valid points still renders, with default ranges.
  const empty = linePlot({ series: [{ label: "nan", x: [0], y: [NaN] }] });
  assertEquals(empty.width, 640);
});

Deno.test("linePlot() draws a legend and a right axis", () => {
  const base = {
    width: 400,
    height: 300,
    series: [
      { label: "", x: [0, 1, 2], y: [1, 3, 2], color: RED },
      { label: "", x: [0, 1, 2], y: [0.1, 0.5, 0.9], color: BLUE },
    ],
  };
  const plain = linePlot(base);
  const labelled = linePlot({
    ...base,
    series: base.series.map((s, i) => ({ ...s, label: `series ${i}` })),
  });
  assert(plain.data.some((v, i) => v !== labelled.data[i]), "no legend");
  // On a right axis from 0.1 to 0.9, the blue series spans the same height
  // as the red one on the left from 1 to 3, instead of a third of it.
  const twin = linePlot({
    ...base,
    series: [base.series[0], { ...base.series[1], axis: "right" }],
    y2Label: "p",
  });
  const spread = (img: ImageTensor, color: Color) => {
    const [c0, c1] = columnsOf(img, color);
    return Math.abs(rowOf(img, c0 + 3, color) - rowOf(img, c1 - 3, color));
  };
  const [flat, tall] = [spread(plain, BLUE), spread(twin, BLUE)];
  assert(tall > 2.5 * flat && tall > 150, `spreads ${flat} and ${tall}`);
});

Deno.test("linePlot() rejects bad options", async () => {
  const s = { label: "a", x: [0, 1], y: [1, 2] };
  await assertRejects(
    () => linePlot({ series: [] }),
    RangeError,
    "expected at least one series",
  );
  await assertRejects(
    () => linePlot({ series: [{ label: "loss", x: [0, 1, 2], y: [1, 2] }] }),
    RangeError,
    'series 0 ("loss") lengths "3" (x) and "2" (y): expected as many x as y',
  );
  await assertRejects(
    () => linePlot({ width: -640, series: [s] }),
    RangeError,
    'Invalid width "-640"',
  );
  await assertRejects(
    () => linePlot({ height: 20.5, series: [s] }),
    RangeError,
    'Invalid height "20.5"',
  );
  await assertRejects(
    () => linePlot({ series: [{ ...s, color: [2, 0, 0] }] }),
    RangeError,
    "expected 3 numbers in [0, 1]",
  );
  await assertRejects(
    () => linePlot({ series: [s], logY: true, yRange: [0, 10] }),
    RangeError,
    'Invalid yRange "[0,10]"',
  );
  await assertRejects(
    () => linePlot({ series: [s], hlines: [{ label: "h", y: NaN }] }),
    TypeError,
    'hline 0 ("h") y "NaN"',
  );
  await assertRejects(
    () => linePlot(undefined as never),
    TypeError,
    "expected an object",
  );
  await assertRejects(() => createCanvas(-1, 5), RangeError, '"-1"');
});

Deno.test("montage() size follows from cells, labels and padding", () => {
  const red = createCanvas(20, 10, RED); // 10 high, 20 wide.
  const blue = createCanvas(15, 30, BLUE); // 30 high, 15 wide.
  const rowLabels = ["a", "layer 11"];
  const colLabels = ["x", "y", "z"];
  const img = montage({
    cells: [[red, null, blue], [blue, red]],
    rowLabels,
    colLabels,
    title: "T",
    padding: 5,
    labelScale: 1,
  });
  const cellH = 30, cellW = 20;
  const rowLabelW = measureText("layer 11", 1).width;
  const left = 5 + rowLabelW + 5;
  const top = 5 + measureText("T", 1).height + 5 +
    measureText("x", 1).height + 5;
  assertEquals(img.width, left + 3 * (cellW + 5));
  assertEquals(img.height, top + 2 * (cellH + 5));
  // Red (10x20) fits unscaled, centred vertically in its 30x20 cell.
  assert(near(img, left + 10, top + 15, RED));
  assertEquals(pixel(img, left + 10, top + 5), [1, 1, 1]);
  // Blue (30x15) is centred horizontally; the null cell is grey.
  const c2 = left + 2 * (cellW + 5);
  assert(near(img, c2 + 10, top + 15, BLUE));
  const grey = pixel(img, left + cellW + 5 + 10, top + 15);
  assert(grey[0] > 0.5 && grey[0] < 0.95 && grey[0] === grey[2], `${grey}`);
  // The short second row ends in an empty cell too.
  assertEquals(pixel(img, c2 + 10, top + cellH + 5 + 15), grey);
  // Without labels and title: just cells and padding; small cells upscale.
  const bare = montage({ cells: [[red], [red]], cellSize: [20, 40] });
  assertEquals([bare.width, bare.height], [4 + 44, 4 + 2 * 24]);
  assert(near(bare, 4 + 39, 4 + 19, RED), "upscaled 2x to fill the cell");
  // A column label word wider than the cells widens them; spaces wrap.
  const wide = montage({
    cells: [[red, red]],
    colLabels: ["wide-label", "a b c d e f g h i j"],
    labelScale: 1,
  });
  const wordW = measureText("wide-label", 1).width;
  assertEquals(wide.width, 4 + 2 * (wordW + 4));
  assertEquals(wide.height, 4 + measureText("a\nb", 1).height + 4 + 10 + 4);
  // sideBySide: one row, default padding 4 and label scale 2.
  const big = createCanvas(100, 60, RED);
  const pair = sideBySide([big, big], ["before", "after"]);
  assertEquals([pair.width, pair.height], [
    4 + 2 * (100 + 4),
    4 + measureText("x", 2).height + 4 + 60 + 4,
  ]);
  assertEquals(sideBySide([big]).height, 4 + 60 + 4);
});

Deno.test("montage() and sideBySide() reject bad options", async () => {
  const img = createCanvas(4, 4);
  await assertRejects(
    () => montage({ cells: [] }),
    RangeError,
    "at least one row",
  );
  await assertRejects(
    () => montage({ cells: [[null, null]] }),
    RangeError,
    "give cellSize",
  );
  await assertRejects(
    () => montage({ cells: [[img]], colLabels: ["a", "b"] }),
    RangeError,
    'colLabels length "2": expected at most one per column (1)',
  );
  await assertRejects(
    () => montage({ cells: [[img]], padding: -1 }),
    RangeError,
    'Invalid padding "-1"',
  );
  await assertRejects(
    () => montage({ cells: [[{ ...img, data: new Float32Array(5) }]] }),
    RangeError,
    "cell [0][0] data length",
  );
  await assertRejects(
    () => sideBySide([img, img], ["one"]),
    RangeError,
    'labels length "1": expected one per image (2)',
  );
  await assertRejects(() => sideBySide([]), RangeError, "at least one image");
});

/** Ink of one character drawn alone (at scale 1). */
function glyph(ch: string): Float32Array {
  const canvas = createCanvas(7, 11);
  drawText(canvas, 1, 1, ch);
  return canvas.data;
}

Deno.test("drawText() has glyphs for accents, Greek and superscripts", () => {
  const unknown = glyph("€");
  const blank = glyph(" ");
  for (
    const ch of ["ö", "é", "Ä", "ñ", "ç", "δ", "θ", "ω", "Σ", "³", "₁", "⁻"]
  ) {
    const ink = glyph(ch);
    assert(ink.some((v, i) => v !== unknown[i]), `${ch} is drawn as "?"`);
    assert(ink.some((v, i) => v !== blank[i]), `${ch} is blank`);
  }
  // Accented letters differ from their base letter and from each other.
  const [e, eAcute, eGrave] = [glyph("e"), glyph("é"), glyph("è")];
  assert(
    eAcute.some((v, i) => v !== e[i]) && eAcute.some((v, i) => v !== eGrave[i]),
  );
  // A decomposed "é" (e + U+0301) is one character, drawn as the composed one.
  assertEquals(glyph("e\u0301"), eAcute);
  assertEquals(measureText("e\u0301", 1), measureText("é", 1));
  // ³ is not ² (the font had ² only), and superscripts differ from subscripts.
  assert(glyph("³").some((v, i) => v !== glyph("²")[i]));
  assert(glyph("³").some((v, i) => v !== glyph("₃")[i]));
  assertEquals(missingGlyphs("Größe δ=10³ é ₂"), []);
  assertEquals(missingGlyphs("€ 5 € ж"), ["€", "ж"]);
});

Deno.test("linePlot() and montage() warn about characters drawn as ?", () => {
  const warnings: string[] = [];
  const onWarning = (m: string) => warnings.push(m);
  const series = [{ label: "Größe ж", x: [0, 1], y: [1, 2] }];
  linePlot({ title: "δ in €", series, onWarning });
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes('"ж" (U+0436)'), warnings[0]);
  assert(warnings[0].includes('"€" (U+20AC)'), warnings[0]);
  assert(warnings[0].includes('"δ in €"') && warnings[0].includes('"Größe ж"'));
  assert(!warnings[0].includes('"δ"'), "δ has a glyph");
  // Covered text: no warning.
  linePlot({
    title: "δ = 10⁻³, é",
    series: [{ ...series[0], label: "ö" }],
    onWarning,
  });
  assertEquals(warnings.length, 1);
  const img = createCanvas(4, 4);
  montage({ cells: [[img]], rowLabels: ["ж"], colLabels: ["ok"], onWarning });
  assertEquals(warnings.length, 2);
  assert(warnings[1].includes('"ж" (U+0436)') && warnings[1].includes("?"));
});

Deno.test("linePlot() labels a log tick inside a short run's range", () => {
  // Five steps from 4.9 down to 2.05: the decade's labels 2 and 5 both fall
  // just outside the data, so the run itself would carry no number.
  const y = [4.9, 4.0, 3.1, 2.5, 2.05];
  const img = linePlot({
    width: 400,
    height: 300,
    logY: true,
    series: [{ label: "", x: [0, 1, 2, 3, 4], y, color: RED }],
  });
  const [c0, c1] = columnsOf(img, RED);
  const top = rowOf(img, c0 + 1, RED), bottom = rowOf(img, c1 - 1, RED);
  // Labelled ticks get a full-width grid line; look for one between the
  // series' first and last rows, in a column right of the series.
  const gridRows: number[] = [];
  for (let row = 0; row < img.height; row++) {
    const [r, g, b] = pixel(img, c1 - 1, row);
    if (Math.abs(r - 0.91) < 1e-6 && r === g && g === b) gridRows.push(row);
  }
  assert(
    gridRows.some((row) => row > top + 2 && row < bottom - 2),
    `no labelled tick between rows ${top} and ${bottom}: ${gridRows}`,
  );
});

Deno.test("linePlot() and montage() refuse figures over the pixel limit", async () => {
  const s = { label: "a", x: [0, 1], y: [1, 2] };
  await assertRejects(
    () => linePlot({ width: 100000, height: 100000, series: [s] }),
    RangeError,
    'Invalid figure size "100000×100000": 100000×100000 px exceeds the limit of 40 megapixels',
  );
  const img = createCanvas(4, 4);
  await assertRejects(
    () => montage({ cells: [[img, img]], cellSize: [20000, 20000] }),
    RangeError,
    "exceeds the limit of 40 megapixels (MAX_IMAGE_PIXELS)",
  );
  await assertRejects(
    () => montage({ cells: [[img]], padding: 1e6 }),
    RangeError,
    "exceeds the limit of 40 megapixels",
  );
});
