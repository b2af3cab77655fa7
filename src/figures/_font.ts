/**
 * Internal text rendering of the figures: a 5×7 bitmap font with descenders,
 * measuring, drawing (upright or reading upwards), wrapping and centring.
 *
 * @module
 */

import {
  BLACK,
  type Canvas,
  checkCanvas,
  checkColor,
  checkInt,
  checkNumber,
  type Color,
  fill,
} from "./_canvas.ts";

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
  // Greek beyond the above.
  "β.##.. #..#. #..#. ###.. #...# #...# ####. #.... #....",
  "γ..... ..... #...# #...# .#.#. .#.#. ..#.. ..#.. ..#..",
  "δ.###. .#... ..#.. .###. #...# #...# .###.",
  "η..... ..... #.##. ##..# #...# #...# #...# ....# ....#",
  "θ.###. #...# #...# ##### #...# #...# .###.",
  "ι..... ..... .#... .#... .#... .#... ..##.",
  "κ..... ..... #..#. #.#.. ##... #.#.. #..#.",
  "ν..... ..... #...# #...# .#..# .#.#. ..#..",
  "π..... ..... ##### .#.#. .#.#. .#.#. .#..#",
  "ρ..... ..... .###. #...# #...# ##..# #.##. #.... #....",
  "τ..... ..... ##### ..#.. ..#.. ..#.. ...##",
  "φ..#.. ..#.. .###. #.#.# #.#.# .###. ..#.. ..#..",
  "χ..... ..... #...# .#.#. ..#.. .#.#. #...# ..... .....",
  "ψ..... ..... #.#.# #.#.# #.#.# .###. ..#.. ..#..",
  "ω..... ..... .#.#. #...# #.#.# #.#.# .#.#.",
  "Γ##### #.... #.... #.... #.... #.... #....",
  "Θ.###. #...# #...# #.#.# #...# #...# .###.",
  "Λ..#.. .#.#. .#.#. #...# #...# #...# #...#",
  "Π##### .#.#. .#.#. .#.#. .#.#. .#.#. .#.#.",
  "Σ##### #.... .#... ..#.. .#... #.... #####",
  "Φ..#.. .###. #.#.# #.#.# #.#.# .###. ..#..",
  "Ψ#.#.# #.#.# #.#.# .###. ..#.. ..#.. ..#..",
  "Ω.###. #...# #...# #...# .#.#. .#.#. ##.##",
  // Latin-1 and typography (accented letters are composed, see glyphFor).
  "ß.##.. #..#. #..#. #.#.. #..#. #..#. #.##.",
  "÷..... ..#.. ..... ##### ..... ..#.. .....",
  "–..... ..... ..... ####. ..... ..... .....",
  "—..... ..... ..... ##### ..... ..... .....",
  "‘...#. ..#.. ..#.. ..... ..... ..... .....",
  "’..#.. ..#.. .#... ..... ..... ..... .....",
  "“.#.#. #.#.. #.#.. ..... ..... ..... .....",
  "”.#.#. .#.#. #.#.. ..... ..... ..... .....",
  "≈..... .##.# #.##. ..... .##.# #.##. .....",
  "≠..... ...#. ##### ..#.. ##### .#... .....",
  "∞..... ..... .#.#. #.#.# .#.#. ..... .....",
  "∈..... .#### #.... ####. #.... .#### .....",
  "←..... ..#.. .#... ##### .#... ..#.. .....",
  "½#.... #.... #...# ...#. ..#.. .#.## #...#",
];

/** Small digits and signs, 3 wide and 5 high, for superscripts (rows 0–4)
 * and subscripts (rows 4–8); ² and ₂ above keep their own shapes. */
const SMALL: Record<string, string> = {
  "0": ".#. #.# #.# #.# .#.",
  "1": ".#. ##. .#. .#. ###",
  "2": "##. ..# .#. #.. ###",
  "3": "##. ..# .#. ..# ##.",
  "4": "#.# #.# ### ..# ..#",
  "5": "### #.. ##. ..# ##.",
  "6": ".## #.. ### #.# ###",
  "7": "### ..# .#. .#. .#.",
  "8": "### #.# ### #.# ###",
  "9": "### #.# ### ..# ##.",
  "+": "... .#. ### .#. ...",
  "−": "... ... ### ... ...",
};
const SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻";
const SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉₊₋";

/** Combining marks that compose with a letter: two rows above a lowercase
 * letter, one row above a capital (whose body is then squeezed into rows
 * 2–6), or two descender rows for the cedilla. */
const MARKS: Record<
  string,
  { above?: [string, string, string]; below?: [string, string] }
> = {
  "\u0300": { above: [".#...", "..#..", ".#..."] }, // grave
  "\u0301": { above: ["...#.", "..#..", "...#."] }, // acute
  "\u0302": { above: ["..#..", ".#.#.", "..#.."] }, // circumflex
  "\u0303": { above: [".##.#", "#..#.", ".####"] }, // tilde
  "\u0308": { above: [".#.#.", ".....", ".#.#."] }, // diaeresis
  "\u030a": { above: ["..#..", ".#.#.", "..#.."] }, // ring
  "\u030c": { above: [".#.#.", "..#..", "..#.."] }, // caron
  "\u0327": { below: ["..#..", ".##.."] }, // cedilla
};

/** Characters drawn with the glyph of another. */
const ALIASES: Record<string, string> = {
  "µ": "μ",
  "∆": "Δ",
  "ϵ": "ε",
  "\u00a0": " ",
  "‐": "-",
  "‑": "-",
  "\u2009": " ",
  "\u202f": " ",
};

const GLYPH_WIDTH = 5;
export const GLYPH_ROWS = 9;
export const CAP_HEIGHT = 7;
export const ADVANCE = 6;
export const LINE_GAP = 2;

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

function parseRows(rows: string[], into: Uint8Array, y0: number, x0 = 0) {
  rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) {
      if (row[x] === "#") into[y0 + y] |= 1 << (x0 + x);
    }
  });
}

/** A letter with a combining mark (NFD), e.g. "é" from "e" and U+0301. */
function composed(ch: string): Uint8Array | undefined {
  const [base, mark, ...rest] = [...ch.normalize("NFD")];
  const spec = mark === undefined ? undefined : MARKS[mark];
  const bits = base === undefined ? undefined : GLYPHS.get(base);
  if (!spec || !bits || rest.length > 0) return undefined;
  const out = bits.slice();
  if (spec.below) {
    if (out[7] || out[8]) return undefined;
    parseRows(spec.below, out, 7);
    return out;
  }
  const [lower0, lower1, capital] = spec.above!;
  if (base === "i" || base === "j") out[0] = 0; // Dotless, then marked.
  if (!out[0] && !out[1]) {
    parseRows([lower0, lower1], out, 0);
    return out;
  }
  // A capital: rows 0, 2, 3, 4, 6 of its body go to rows 2–6, under the mark.
  const body = [bits[0], bits[2], bits[3], bits[4], bits[6]];
  out.fill(0, 0, 7);
  out.set(body, 2);
  parseRows([capital], out, 0);
  return out;
}

/** A superscript or subscript digit or sign. */
function small(ch: string): Uint8Array | undefined {
  const sup = SUPERSCRIPTS.indexOf(ch), sub = SUBSCRIPTS.indexOf(ch);
  const k = sup >= 0 ? sup : sub;
  if (k < 0) return undefined;
  const key = k < 10 ? String(k) : k === 10 ? "+" : "−";
  const out = new Uint8Array(GLYPH_ROWS);
  parseRows(SMALL[key].split(" "), out, sup >= 0 ? 0 : 4, 1);
  return out;
}

/** The glyph of one character (a code point in NFC), if the font has one
 * or can compose it. */
function glyphFor(ch: string): Uint8Array | undefined {
  const own = GLYPHS.get(ALIASES[ch] ?? ch);
  return own ?? small(ch) ?? composed(ch);
}

const UNKNOWN = GLYPHS.get("?")!;

/** The characters of `text` that the figures' bitmap font can neither draw
 * nor compose (they are drawn as "?"), each once, in order of appearance.
 * The figure functions report them through their `onWarning` option.
 *
 * @param text The text.
 * @returns The missing characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { missingGlyphs } from "./_font.ts";
 *
 * assert.deepEqual(missingGlyphs("δ = 10⁻³ in Größe"), []);
 * assert.deepEqual(missingGlyphs("5 € / ж"), ["€", "ж"]);
 * ```
 */
export function missingGlyphs(text: string): string[] {
  const missing = new Set<string>();
  for (const ch of text.normalize("NFC")) {
    if (ch !== "\n" && !glyphFor(ch)) missing.add(ch);
  }
  return [...missing];
}

/** Calls `onWarning` once if any of `texts` has characters outside the
 * font, naming them (with their code points) and the texts they are in. */
export function warnMissingGlyphs(
  texts: readonly (string | undefined)[],
  onWarning: ((message: string) => void) | undefined,
): void {
  const missing = new Set<string>();
  const where: string[] = [];
  for (const text of texts) {
    if (!text) continue;
    const m = missingGlyphs(String(text));
    if (m.length === 0) continue;
    m.forEach((ch) => missing.add(ch));
    where.push(`"${text}"`);
  }
  if (missing.size === 0 || !onWarning) return;
  const chars = [...missing].map((ch) =>
    `"${ch}" (U+${
      ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
    })`
  );
  onWarning(
    `${chars.join(", ")} not in the bitmap font, drawn as "?" in ${
      where.join(", ")
    }: use ASCII, Greek letters, Latin-1 accents or ⁰–⁹ ₀–₉ instead`,
  );
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
 * import assert from "node:assert/strict";
 * import { measureText } from "./_font.ts";
 *
 * assert.deepEqual(measureText("step", 2), { width: 46, height: 18 });
 * ```
 */
export function measureText(
  text: string,
  scale = 1,
): { width: number; height: number } {
  checkInt("scale", scale, 1);
  if (text === "") return { width: 0, height: 0 };
  const lines = text.normalize("NFC").split("\n");
  const chars = Math.max(...lines.map((l) => [...l].length));
  return {
    width: chars > 0 ? (ADVANCE * chars - 1) * scale : 0,
    height: (lines.length * (GLYPH_ROWS + LINE_GAP) - LINE_GAP) * scale,
  };
}

/** Renders text, upright or rotated a quarter turn anticlockwise (reading
 * upwards); `(x, y)` is the top-left corner of the rotated box. */
export function renderText(
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
  text.normalize("NFC").split("\n").forEach((line, row) => {
    let col = 0;
    for (const ch of line) {
      const bits = glyphFor(ch) ?? UNKNOWN;
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
 * ASCII 32–126, most Greek letters, Latin letters with grave, acute,
 * circumflex, tilde, diaeresis, ring, caron or cedilla (é, ö, ñ, ç, Ä …),
 * superscript and subscript digits and signs, and `‖ ′ − × ÷ ≤ ≥ ≈ ≠ ± · →
 * ← … ° √ ∞ ∈ – — ‘ ’ “ ” ß ½`; other characters are drawn as `?` (see
 * {@linkcode missingGlyphs}). The box is measured by {@linkcode measureText}.
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
 * import { createCanvas } from "./_canvas.ts";
 * import { drawText } from "./_font.ts";
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
export function wrapText(
  text: string,
  maxWidth: number,
  scale: number,
): string {
  const maxChars = Math.max(Math.floor((maxWidth / scale + 1) / ADVANCE), 1);
  const out: string[] = [];
  for (const para of text.normalize("NFC").split("\n")) {
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
export function drawCentered(
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
