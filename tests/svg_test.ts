// SVG twins of the plots and montages: well-formed XML, labels as real text
// in any script, one polyline vertex per data point, cells equal to the PNG's
// pixels, and the CLI writing them beside the PNGs.
import { assert, assertEquals } from "./_assert.ts";
import { run, TINY, tmp } from "./_cli.ts";
import {
  linePlot,
  linePlotSvg,
  montage,
  montageSvg,
} from "../src/figures/mod.ts";
import { decodePng, type ImageTensor } from "../src/io/mod.ts";

/** Entities XML defines, and numeric character references. */
const ENTITY = /^&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/;

/**
 * A minimal well-formedness check (Deno has no DOMParser): one root element,
 * every tag closed in order, attributes quoted and unique, `&` only in
 * references, no `<` in text or attribute values. Returns the elements'
 * names in document order.
 */
function checkXml(xml: string): string[] {
  const names: string[] = [];
  const open: string[] = [];
  let i = xml.startsWith("<?xml") ? xml.indexOf("?>") + 2 : 0;
  let roots = 0;
  const text = (s: string, where: string) => {
    for (let k = s.indexOf("&"); k >= 0; k = s.indexOf("&", k + 1)) {
      assert(
        ENTITY.test(s.slice(k)),
        `bare & in ${where}: ${s.slice(k, k + 12)}`,
      );
    }
    assert(!s.includes("<"), `< in ${where}`);
  };
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const chunk = xml.slice(i, lt < 0 ? xml.length : lt);
    if (open.length === 0) {
      assertEquals(chunk.trim(), "", "text outside the root");
    } else text(chunk, `text of <${open.at(-1)}>`);
    if (lt < 0) break;
    const gt = xml.indexOf(">", lt);
    assert(gt > 0, "unterminated tag");
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith("/")) {
      assertEquals(tag.slice(1).trim(), open.pop(), "mismatched end tag");
    } else {
      const m = tag.match(
        /^([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+="[^"]*")*)\s*(\/?)$/,
      );
      assert(m, `malformed tag <${tag.slice(0, 80)}>`);
      const attrs = [...m[2].matchAll(/([\w.:-]+)="([^"]*)"/g)];
      const keys = attrs.map((a) => a[1]);
      assertEquals(
        new Set(keys).size,
        keys.length,
        `repeated attribute in <${m[1]}>`,
      );
      for (const a of attrs) text(a[2], `${m[1]}@${a[1]}`);
      if (open.length === 0) roots++;
      names.push(m[1]);
      if (m[3] !== "/") open.push(m[1]);
    }
    i = gt + 1;
  }
  assertEquals(open, [], "unclosed elements");
  assertEquals(roots, 1, "expected one root element");
  return names;
}

Deno.test("checkXml refuses what is not well-formed", () => {
  const bad = [
    "<svg><g></svg></g>",
    "<svg>a & b</svg>",
    '<svg x="1" x="2"/>',
    "<svg><text>x</svg>",
    "<svg/><svg/>",
    "<svg x=1/>",
  ];
  for (const b of bad) {
    let failed = false;
    try {
      checkXml(b);
    } catch {
      failed = true;
    }
    assert(failed, b);
  }
  assertEquals(checkXml('<svg a="&amp;"><g/><text>&#60;ö</text></svg>'), [
    "svg",
    "g",
    "text",
  ]);
});

/** Text of the `<text>` elements, references resolved. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1].replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
  );
}

/** The vertices of the polylines labelled `label`. */
function polylines(svg: string, label: string): [number, number][][] {
  return [
    ...svg.matchAll(/<polyline points="([^"]*)"[^>]*data-label="([^"]*)"/g),
  ]
    .filter((m) => m[2] === label)
    .map((m) =>
      m[1].split(" ").map((p) => p.split(",").map(Number) as [number, number])
    );
}

Deno.test("linePlotSvg: well-formed, Unicode labels verbatim, a vertex per point", () => {
  const n = 37;
  const x = Array.from({ length: n }, (_, i) => i * 10);
  const options = {
    title: "Größe ö <δ> & ³",
    xLabel: "step δ",
    yLabel: "‖O(a) − O(a_g)‖₂",
    y2Label: "ж ³",
    logY: true,
    series: [
      { label: "embedding ö", x, y: x.map((v) => 100 / (v + 1)) },
      {
        label: "input ³",
        x,
        y: x.map((v) => 2 + Math.sin(v)),
        axis: "right" as const,
      },
    ],
    hlines: [{ label: "noise δ", y: 0.5, dashed: true }],
  };
  const svg = linePlotSvg(options);
  const names = checkXml(svg);
  assertEquals(names[0], "svg");
  const img = linePlot(options);
  assert(svg.includes(`width="${img.width}" height="${img.height}"`));
  const t = texts(svg);
  for (const s of ["Größe ö <δ> & ³", "step δ", "‖O(a) − O(a_g)‖₂", "ж ³"]) {
    assert(t.includes(s), `${s} not in ${t}`);
  }
  // legend entries (the right-axis series says so)
  for (const s of ["embedding ö", "input ³ (right)", "noise δ"]) {
    assert(t.includes(s), `${s} not in ${t}`);
  }
  assertEquals(polylines(svg, "embedding ö").map((p) => p.length), [n]);
  assertEquals(polylines(svg, "input ³").map((p) => p.length), [n]);
  // x grows along the line; on a log axis y falls as the data falls
  const emb = polylines(svg, "embedding ö")[0];
  assert(emb.every(([px], i) => i === 0 || px > emb[i - 1][0]));
  assert(emb.every(([, py], i) => i === 0 || py > emb[i - 1][1]));
  // a gap (NaN) splits the line; a lone point is a dot
  const gap = linePlotSvg({
    series: [{ label: "g", x: [0, 1, 2, 3, 4], y: [1, 2, NaN, 3, 4] }],
  });
  assertEquals(polylines(gap, "g").map((p) => p.length), [2, 2]);
  const lone = linePlotSvg({
    series: [{ label: "d", x: [0, 1, 2], y: [1, NaN, 3] }],
  });
  assertEquals(lone.match(/<circle [^>]*data-label="d"/g)?.length, 2);
  checkXml(gap);
  checkXml(lone);
});

function solid(h: number, w: number, seed: number): ImageTensor {
  const data = new Float32Array(3 * h * w).map((_, i) =>
    ((i * 7919 + seed * 104729) % 251) / 250
  );
  return { data, channels: 3, height: h, width: w };
}

Deno.test("montageSvg: well-formed, labels as text, each cell the PNG's pixels", () => {
  const options = {
    cells: [[solid(16, 16, 1), null], [solid(8, 12, 2), solid(16, 16, 3)]],
    rowLabels: ["layer ³", "no δ"],
    colLabels: ["Schrödinger's cat", "ж"],
    title: "Montage <ö> & δ",
  };
  const svg = montageSvg(options);
  checkXml(svg);
  const png = montage(options);
  assert(svg.includes(`width="${png.width}" height="${png.height}"`));
  const t = texts(svg);
  for (const s of ["layer ³", "no δ", "ж", "Montage <ö> & δ"]) {
    assert(t.includes(s), `${s} not in ${t}`);
  }
  // the wrapped column label keeps its words
  assert(t.join(" ").includes("Schrödinger's"), t.join("|"));
  const images = [
    ...svg.matchAll(
      /<image x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"[^>]*href="data:image\/png;base64,([^"]+)"/g,
    ),
  ];
  assertEquals(images.length, 3);
  // the empty cell is a grey rectangle
  assert(/<rect [^>]*fill="#dbdbdb"/.test(svg), "no empty cell");
  const q = (v: number) => Math.fround(Math.round(v * 255) / 255);
  for (const [, xs, ys, ws, hs, b64] of images) {
    const [x, y, w, h] = [xs, ys, ws, hs].map(Number);
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const cell = decodePng(bytes);
    assertEquals([cell.width, cell.height], [w, h]);
    const crop = new Float32Array(3 * w * h);
    for (let c = 0; c < 3; c++) {
      for (let r = 0; r < h; r++) {
        for (let k = 0; k < w; k++) {
          crop[(c * h + r) * w + k] = q(
            png.data[(c * png.height + y + r) * png.width + x + k],
          );
        }
      }
    }
    assertEquals(cell.data, crop);
  }
});

Deno.test("SVG and PNG share one layout: a reference line lies on the PNG's rows", () => {
  const options = {
    series: [{ label: "a", x: [0, 1], y: [1, 2] }],
    hlines: [{ label: "ref", y: 1.9, color: [1, 0, 0] as const }],
    title: "t",
  };
  const [[from, to]] = polylines(linePlotSvg(options), "ref");
  assertEquals(from[1], to[1]);
  const png = linePlot(options);
  const x = Math.round(from[0] + (to[0] - from[0]) / 4);
  const plane = png.width * png.height;
  const red: number[] = [];
  for (let y = 0; y < png.height; y++) {
    const i = y * png.width + x;
    const [r, g, b] = [0, 1, 2].map((c) => png.data[c * plane + i]);
    if (r > 0.99 && g < 0.01 && b < 0.01) red.push(y);
  }
  // a 2-pixel line whose centre is the SVG's y covers the rows above and below it
  assertEquals(red, [from[1] - 1, from[1]]);
});

/** Polyline lengths of the series `label` in the SVG file. */
async function seriesLength(path: string, label: string): Promise<number[]> {
  const svg = await Deno.readTextFile(path);
  checkXml(svg);
  return polylines(svg, label).map((p) => p.length);
}

/** Data rows of a CSV file. */
async function csvRows(path: string): Promise<number> {
  return (await Deno.readTextFile(path)).trim().split("\n").length - 1;
}

Deno.test("the CLI writes convergence.svg, progress.svg and grid.svg beside the PNGs", async () => {
  const dir = await tmp();
  const inv = await run([
    "invert",
    ...TINY,
    ...["--layer", "1", "--steps", "12", "--trace-every", "3"],
    ...["--out", `${dir}/inv`],
  ]);
  assertEquals(inv.code, 0, inv.err);
  const rows = await csvRows(`${dir}/inv/traces.csv`);
  assert(rows >= 4, `${rows} rows`);
  assertEquals(
    await seriesLength(`${dir}/inv/convergence.svg`, "embedding distance"),
    [rows],
  );
  const m = JSON.parse(await Deno.readTextFile(`${dir}/inv/metrics.json`));
  assert(m.files.includes("convergence.svg"), m.files);

  const gen = await run([
    "generate",
    ...TINY,
    ...["--class", "2", "--steps", "6", "--jitter-after", "3"],
    ...["--canvas", "40", "--trace-every", "1", "--out", `${dir}/gen`],
  ]);
  assertEquals(gen.code, 0, gen.err);
  assertEquals(await seriesLength(`${dir}/gen/progress.svg`, "logit"), [
    await csvRows(`${dir}/gen/traces.csv`),
  ]);

  const grid = await run([
    "grid",
    ...TINY,
    ...["--steps", "2", "--layers", "1,2", "--variant", "plain="],
    ...["--variant", "no LN δ=--remove layernorm", "--out", `${dir}/grid`],
  ]);
  assertEquals(grid.code, 0, grid.err);
  const svg = await Deno.readTextFile(`${dir}/grid/grid.svg`);
  checkXml(svg);
  // target + 2 layers per row, 2 rows
  assertEquals(svg.match(/<image /g)?.length, 6);
  assert(texts(svg).includes("no LN δ"), texts(svg).join("|"));
});
