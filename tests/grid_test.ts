// The forward, grid and filters commands and the ablation and swap options,
// run in-process through main() on the tiny fixture model (32×32, 3 encoders).
import { assert, assertEquals } from "./_assert.ts";
import { run, tmp } from "./_cli.ts";
import { relErr } from "./_fixtures.ts";
import {
  filterGrid,
  fitToSize,
  loadModel,
  type LoadOptions,
  readImage,
} from "../mod.ts";
import { decodeNpy, normalize, type PerChannel } from "../src/io/mod.ts";
import { sideBySide } from "../src/figures/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MODEL = `${ROOT}tests/fixtures/tiny_vit`;
const TINY = ["--model", MODEL, "--weights", "fixture"];
const PHOTO = `${ROOT}assets/chelsea.png`;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const json = async (path: string) => JSON.parse(await Deno.readTextFile(path));
const npy = async (path: string) => decodeNpy(await Deno.readFile(path));

/** The photo as the CLI feeds it to the model: fitted to 32² and normalized. */
async function input(): Promise<Float32Array> {
  const img = fitToSize(await readImage(PHOTO), 32);
  return normalize(
    img,
    [0.485, 0.456, 0.406] as PerChannel,
    [0.229, 0.224, 0.225] as PerChannel,
  ).data;
}

/** What the library gives for `options` at `layer`. */
async function library(
  options: LoadOptions,
  layer: number | "logits",
  blocks?: number[],
): Promise<Float32Array> {
  const model = await loadModel(MODEL, {
    weights: "fixture",
    backend: "native",
    ...options,
  });
  try {
    return (await model.forward(await input(), { layer, blocks })).data;
  } finally {
    await model.release();
  }
}

/** Runs `forward` with `args`, returning output.npy and metrics.json. */
async function forward(args: string[]) {
  const out = `${await tmp()}/fwd`;
  const r = await run(["forward", ...TINY, ...args, "--out", out]);
  assertEquals(r.code, 0, r.err);
  return {
    r,
    output: await npy(`${out}/output.npy`),
    metrics: await json(`${out}/metrics.json`),
  };
}

Deno.test("forward writes a layer's output as the library computes it, with top-5 for logits", async () => {
  const logits = await forward([]);
  assertEquals(logits.output.shape, [1, 10]);
  assert(relErr(logits.output.data, await library({}, "logits")) < 1e-6);
  const p = logits.metrics.top.map((c: { probability: number }) =>
    c.probability
  );
  assertEquals(p.length, 5);
  assert(p.every((v: number, i: number) => i === 0 || v <= p[i - 1]), `${p}`);
  assert(/L2 norm \d/.test(logits.r.out), logits.r.out);
  assert(logits.r.out.includes("| 1 | "), logits.r.out);
  assert(logits.r.out.includes("class "), logits.r.out);
  const tokens = await forward(["--layer", "2"]);
  assertEquals(tokens.output.shape, [1, 17, 16]);
  assertEquals(tokens.metrics.top, null);
  assertEquals(tokens.metrics.blocks, [1, 2]);
  assert(tokens.r.out.includes("dims [1, 17, 16]"), tokens.r.out);
  const only = await forward(["--layer", "3", "--only-layer"]);
  assert(relErr(only.output.data, await library({}, 3, [3])) < 1e-6);
});

Deno.test("--remove, --remove-layers and --no-pos-embedding reach the model", async () => {
  const plain = await library({}, 3);
  const cases: [string[], LoadOptions][] = [
    [["--remove", "layernorm"], {
      ablations: [{ remove: ["ln1", "ln2"], layers: "all" }],
    }],
    [["--remove", "residual", "--remove-layers", "2-3"], {
      ablations: [{ remove: ["res1", "res2"], layers: [2, 3] }],
    }],
    [["--remove", "attention,mlp", "--remove-layers", "1,3"], {
      ablations: [{ remove: ["attn", "mlp"], layers: [1, 3] }],
    }],
    [[
      ...["--remove", "ln1", "--remove-layers", "1"],
      ...["--remove", "attn,res2", "--remove-layers", "2-3"],
    ], {
      ablations: [
        { remove: "ln1", layers: [1] },
        { remove: ["attn", "res2"], layers: [2, 3] },
      ],
    }],
    [["--no-pos-embedding"], { positionEmbedding: false }],
  ];
  for (const [args, options] of cases) {
    const { output, metrics } = await forward([...args, "--layer", "3"]);
    const want = await library(options, 3);
    assert(relErr(output.data, want) < 1e-6, args.join(" "));
    assert(relErr(output.data, plain) > 1e-3, `${args.join(" ")}: no effect`);
    assertEquals(
      metrics.positionEmbedding,
      options.positionEmbedding ?? true,
    );
  }
  const { metrics } = await forward([
    ...["--remove", "layernorm", "--remove-layers", "1-2"],
    "--layer",
    "1",
  ]);
  assertEquals(metrics.ablations, [{ remove: ["ln1", "ln2"], layers: [1, 2] }]);
});

Deno.test("--swap takes a part's tensors from another weight set", async () => {
  const plain = await library({}, "logits");
  const cases: [string[], LoadOptions][] = [
    [["--swap", "conv_proj=fixture2"], {
      swaps: [{ part: "conv_proj", weights: "fixture2" }],
    }],
    [["--swap", "encoder.layers.0.ln_1=untrained:1"], {
      swaps: [{ part: "encoder.layers.0.ln_1", weights: "untrained:1" }],
    }],
    [["--swap", "pos_embedding=fixture2", "--swap", "heads=untrained"], {
      swaps: [
        { part: "pos_embedding", weights: "fixture2" },
        { part: "heads", weights: "untrained:0" },
      ],
    }],
    [["--swap", "encoder.layers.1=fixture2", "--remove", "mlp"], {
      swaps: [{ part: "encoder.layers.1", weights: "fixture2" }],
      ablations: [{ remove: "mlp" }],
    }],
  ];
  for (const [args, options] of cases) {
    const { output, metrics } = await forward(args);
    const want = await library(options, "logits");
    assert(relErr(output.data, want) < 1e-6, args.join(" "));
    assert(relErr(output.data, plain) > 1e-4, `${args.join(" ")}: no effect`);
    assertEquals(metrics.swaps.length, options.swaps!.length);
  }
  // The untrained main weights with a trained stem: the essay's experiment.
  const { output, metrics } = await forward([
    ...["--weights", "untrained", "--seed", "4"],
    ...["--swap", "conv_proj=fixture", "--layer", "1"],
  ]);
  const want = await library({
    weights: "untrained",
    seed: 4,
    swaps: [{ part: "conv_proj", weights: "fixture" }],
  }, 1);
  assert(relErr(output.data, want) < 1e-6);
  assertEquals(metrics.weights, "untrained:4 + conv_proj from fixture");
  assertEquals(metrics.swaps, [{ part: "conv_proj", weights: "fixture" }]);
});

Deno.test("invert and generate record ablations and swaps; --resume keeps them", async () => {
  const dir = await tmp();
  const inv = (out: string, ...more: string[]) => [
    "invert",
    ...TINY,
    "--quiet",
    ...["--layer", "2", "--steps", "8", "--trace-every", "2"],
    ...["--remove", "attention", "--remove-layers", "1"],
    ...["--swap", "conv_proj=fixture2", "--out", out, ...more],
  ];
  const full = await run(inv(`${dir}/full`));
  assertEquals(full.code, 0, full.err);
  const m = await json(`${dir}/full/metrics.json`);
  assertEquals(m.ablations, [{ remove: ["attn"], layers: [1] }]);
  assertEquals(m.swaps, [{ part: "conv_proj", weights: "fixture2" }]);
  assertEquals(m.options.remove, ["attention"]);
  assertEquals(m.options["remove-layers"], ["1"]);
  // without the ablation the result differs
  const plain = await run([
    "invert",
    ...TINY,
    "--quiet",
    ...["--layer", "2", "--steps", "8", "--out", `${dir}/plain`],
  ]);
  assertEquals(plain.code, 0, plain.err);
  assert(
    relErr(
      (await npy(`${dir}/plain/representation.npy`)).data,
      (await npy(`${dir}/full/representation.npy`)).data,
    ) > 1e-4,
  );
  // stop, then resume: the same as the whole run
  const part = await run(inv(`${dir}/part`, "--stop-at", "3"));
  assertEquals(part.code, 0, part.err);
  const clash = await run([
    "invert",
    "--quiet",
    ...["--remove", "mlp", "--resume", `${dir}/part`],
  ]);
  assertEquals(clash.code, 2, clash.err);
  assert(clash.err.includes("--remove"), clash.err);
  const clash2 = await run([
    "invert",
    "--quiet",
    ...["--remove-layers", "2", "--resume", `${dir}/part`],
  ]);
  assertEquals(clash2.code, 2, clash2.err);
  assert(clash2.err.includes("--remove-layers"), clash2.err);
  const resumed = await run(["invert", "--quiet", "--resume", `${dir}/part`]);
  assertEquals(resumed.code, 0, resumed.err);
  assertEquals(
    await Deno.readFile(`${dir}/part/representation.npy`),
    await Deno.readFile(`${dir}/full/representation.npy`),
  );
  // generate
  const gen = await run([
    "generate",
    ...TINY,
    "--quiet",
    ...[
      "--class",
      "2",
      "--steps",
      "4",
      "--jitter-after",
      "2",
      "--canvas",
      "40",
    ],
    ...["--no-pos-embedding", "--remove", "residual", "--remove-layers", "3"],
    ...["--out", `${dir}/gen`],
  ]);
  assertEquals(gen.code, 0, gen.err);
  const g = await json(`${dir}/gen/metrics.json`);
  assertEquals(g.positionEmbedding, false);
  assertEquals(g.ablations, [{ remove: ["res1", "res2"], layers: [3] }]);
});

// ---------------------------------------------------------------------------
// grid

const GRID = (out: string, layers: string, ...more: string[]) => [
  "grid",
  ...TINY,
  "--quiet",
  ...["--steps", "4", "--layers", layers],
  ...["--variant", "plain=", "--variant", "no LN=--remove layernorm"],
  ...["--out", out, ...more],
];

function csvRows(text: string): Record<string, string>[] {
  const [head, ...lines] = text.trim().split("\n");
  const cols = head.split(",");
  return lines.map((l) =>
    Object.fromEntries(l.split(",").map((v, i) => [cols[i], v]))
  );
}

Deno.test("grid: 2 variants × 2 layers write the montage, csv and md; a rerun reuses every cell", async () => {
  const dir = await tmp();
  const out = `${dir}/grid`;
  const first = await run(GRID(out, "1,2"));
  assertEquals(first.code, 0, first.err);
  for (const f of ["grid.png", "grid.csv", "grid.md", "metrics.json"]) {
    assert(await exists(`${out}/${f}`), f);
  }
  const rows = csvRows(await Deno.readTextFile(`${out}/grid.csv`));
  assertEquals(rows.length, 4);
  assertEquals(rows.map((r) => [r.variant, r.layer]), [
    ["plain", "1"],
    ["plain", "2"],
    ["no LN", "1"],
    ["no LN", "2"],
  ]);
  for (const r of rows) {
    for (
      const c of [
        "embedding_distance",
        "noise_baseline",
        "input_distance",
        "psnr",
        "ssim",
      ]
    ) assert(Number.isFinite(Number(r[c])) && r[c] !== "", `${c}: ${r[c]}`);
    assert(["0", "1"].includes(r.criterion_met));
    assertEquals(r.steps, "4");
  }
  const md = (await Deno.readTextFile(`${out}/grid.md`)).trim().split("\n");
  assertEquals(md.length, 2 + 4);
  assert(md[0].includes("noise baseline") && md[0].includes("SSIM"), md[0]);
  assert(md[4].startsWith("| no LN | 1 |"), md[4]);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.cells.map((c: { status: string }) => c.status), [
    "computed",
    "computed",
    "computed",
    "computed",
  ]);
  assertEquals(m.rows[1].ablations, [{
    remove: ["ln1", "ln2"],
    layers: [1, 2, 3],
  }]);
  // every cell is an ordinary invert run in cells/KEY/
  const keys = m.cells.map((c: { key: string }) => c.key);
  assertEquals(new Set(keys).size, 4);
  for (const k of keys) {
    for (
      const f of [
        "cell.json",
        "metrics.json",
        "representation.npy",
        "traces.csv",
      ]
    ) assert(await exists(`${out}/cells/${k}/${f}`), `${k}/${f}`);
  }
  const alone = await run([
    "invert",
    ...TINY,
    "--quiet",
    ...["--steps", "4", "--layer", "2", "--remove", "layernorm"],
    ...["--out", `${dir}/alone`],
  ]);
  assertEquals(alone.code, 0, alone.err);
  assertEquals(
    await Deno.readFile(`${out}/cells/${keys[3]}/representation.npy`),
    await Deno.readFile(`${dir}/alone/representation.npy`),
  );
  // the montage: a title, column titles, row titles; target + 2 layers per row
  const png = await readImage(`${out}/grid.png`);
  assert(png.width > 3 * 128 && png.height > 2 * 128, `${png.width}`);
  assert(png.width < 3 * 128 + 400 && png.height < 2 * 128 + 200);
  // the same grid again: every cell reused, the same table
  const csv = await Deno.readTextFile(`${out}/grid.csv`);
  const again = await run(GRID(out, "1,2"));
  assertEquals(again.code, 0, again.err);
  assert(again.out.includes("reused 4 of 4 cells"), again.out);
  assert(again.out.includes("plain × layer 1"), again.out);
  assertEquals((await json(`${out}/metrics.json`)).reused, 4);
  assertEquals(await Deno.readTextFile(`${out}/grid.csv`), csv);
  assertEquals((await readImage(`${out}/grid.png`)).data, png.data);
  // --remove ln1,ln2 --remove-layers all is the same ablation: still reused
  const same = await run([
    ...GRID(out, "1,2").slice(0, -4),
    ...["--variant", "no LN=--remove ln1,ln2 --remove-layers all"],
    ...["--out", out],
  ]);
  assertEquals(same.code, 0, same.err);
  assert(same.out.includes("reused 4 of 4 cells"), same.out);
  // a layer more: only its 2 cells are computed
  const more = await run(GRID(out, "1,2,3"));
  assertEquals(more.code, 0, more.err);
  const mm = await json(`${out}/metrics.json`);
  assertEquals(mm.reused, 4);
  assertEquals(mm.computed, 2);
  assertEquals(
    mm.cells.filter((c: { status: string }) => c.status === "computed")
      .map((c: { row: string; column: number }) => `${c.row} ${c.column}`),
    ["plain 3", "no LN 3"],
  );
  assertEquals(
    csvRows(await Deno.readTextFile(`${out}/grid.csv`)).length,
    6,
  );
  const wider = await readImage(`${out}/grid.png`);
  assert(wider.width > png.width);
});

Deno.test("grid: generate over classes; swaps and weight sets as rows", async () => {
  const out = `${await tmp()}/gen`;
  const r = await run([
    "grid",
    ...TINY,
    "--quiet",
    ...["--classes", "3,class 5", "--steps", "6", "--jitter-after", "3"],
    ...["--canvas", "40", "--lr", "5"],
    ...["--variant", "fixture="],
    ...["--variant", "fixture2 stem=--swap conv_proj=fixture2"],
    ...["--variant", "untrained 3='--weights' untrained --seed \"3\""],
    ...["--out", out],
  ]);
  assertEquals(r.code, 0, r.err);
  const rows = csvRows(await Deno.readTextFile(`${out}/grid.csv`));
  assertEquals(rows.map((x) => [x.variant, x.class, x.name]), [
    ["fixture", "3", "class 3"],
    ["fixture", "5", "class 5"],
    ["fixture2 stem", "3", "class 3"],
    ["fixture2 stem", "5", "class 5"],
    ["untrained 3", "3", "class 3"],
    ["untrained 3", "5", "class 5"],
  ]);
  for (const x of rows) {
    const p = Number(x.probability);
    assert(p > 0 && p < 1 && Number.isFinite(Number(x.logit)), x.probability);
  }
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.mode, "generate");
  assertEquals(m.rows.map((x: { weights: string }) => x.weights), [
    "fixture",
    "fixture + conv_proj from fixture2",
    "untrained:3",
  ]);
  const cell = await json(`${out}/cells/${m.cells[2].key}/metrics.json`);
  assertEquals(cell.command, "generate");
  assertEquals(cell.swaps, [{ part: "conv_proj", weights: "fixture2" }]);
  const png = await readImage(`${out}/grid.png`);
  assert(png.width > 2 * 128 && png.height > 3 * 128);
});

Deno.test("grid: a stop (as Ctrl-C) writes what is done; the rerun continues", async () => {
  const out = `${await tmp()}/stop`;
  const ac = new AbortController();
  ac.abort();
  const r = await run(GRID(out, "1"), ac.signal);
  assertEquals(r.code, 130, r.err);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.interrupted, true);
  assert(await exists(`${out}/grid.png`));
  const again = await run(GRID(out, "1"));
  assertEquals(again.code, 0, again.err);
  const m2 = await json(`${out}/metrics.json`);
  assertEquals(m2.interrupted, false);
  assertEquals(m2.computed, 2);
});

Deno.test("grid: a diverging cell is reported, the others kept, exit 1", async () => {
  const out = `${await tmp()}/div`;
  const r = await run([
    "grid",
    ...TINY,
    "--quiet",
    ...["--layers", "2", "--steps", "6"],
    ...["--variant", "ok=", "--variant", "boom=--lr 1e38", "--out", out],
  ]);
  assertEquals(r.code, 1, r.err);
  assert(/boom × layer 2: .*diverged at step \d+/.test(r.err), r.err);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.cells.map((c: { status: string }) => c.status), [
    "computed",
    "diverged",
  ]);
  const rows = csvRows(await Deno.readTextFile(`${out}/grid.csv`));
  assert(
    rows[0].embedding_distance !== "" && rows[1].embedding_distance === "",
  );
  assert((await Deno.readTextFile(`${out}/grid.md`)).includes("diverged"));
});

/** [args after `grid`, exit code, text the message must contain]: each must leave no --out. */
const BAD_GRID: [string[], number, string][] = [
  [[], 2, "--layers"],
  [["--layers", "1", "--classes", "2"], 2, "both"],
  [["--layers", "1,x"], 2, '"1,x"'],
  [["--layers", "1,4"], 2, "layer 4"],
  [["--layers", "0", "--only-layer"], 2, "only-layer"],
  [["--layers", "1", "--constant", "3"], 2, "--constant"],
  [["--classes", "2", "--loss", "l2"], 2, "--loss"],
  [["--classes", "zebra"], 2, "zebra"],
  [["--layers", "1", "--variant", "nolabel"], 2, "LABEL=OPTIONS"],
  [["--layers", "1", "--variant", "=--remove mlp"], 2, "LABEL=OPTIONS"],
  [["--layers", "1", "--variant", "a=--bogus"], 2, "--bogus"],
  [["--layers", "1", "--variant", "a=--out x"], 2, "--out"],
  [["--layers", "1", "--variant", "a=--layer 2"], 2, "--layer"],
  [["--layers", "1", "--variant", "a=--remove bogus"], 2, "bogus"],
  [
    ["--layers", "1", "--variant", "a=--remove mlp --remove-layers 4"],
    2,
    "1..3",
  ],
  [["--layers", "1", "--variant", "a=--swap nope=fixture2"], 2, '"nope"'],
  [["--layers", "1", "--variant", "a=--swap 'conv_proj=x"], 2, "quote"],
  [["--layers", "1", "--variant", "a=--weights nope"], 1, '"a"'],
  [["--layers", "1", "--variant", "a=", "--variant", "a=--seed 2"], 2, '"a"'],
  [["--layers", "1", "--variant", "a=--steps 0"], 2, '--variant "a"'],
  [["--layers", "1", "--remove", "mlp", "--remove-layers", "9"], 2, "1..3"],
];

Deno.test("grid: bad input gives the right exit code, names the value, writes nothing", async (t) => {
  const dir = await tmp();
  for (const [args, code, text] of BAD_GRID) {
    await t.step(args.join(" ") || "(no columns)", async () => {
      const out = `${dir}/out_${crypto.randomUUID()}`;
      const r = await run(["grid", ...TINY, ...args, "--out", out]);
      assertEquals(r.code, code, r.err);
      assert(r.err.includes(text), `"${r.err}" lacks ${text}`);
      assert(!(await exists(out)), `${out} was created`);
    });
  }
});

// ---------------------------------------------------------------------------
// filters

Deno.test("filters writes the filter grid; --compare puts weight sets side by side", async () => {
  const dir = await tmp();
  const one = await run([
    "filters",
    ...TINY,
    ...["--columns", "4", "--scale", "3", "--out", `${dir}/one`],
  ]);
  assertEquals(one.code, 0, one.err);
  const a = await loadModel(MODEL, { weights: "fixture" });
  const b = await loadModel(MODEL, { weights: "fixture2" });
  const want = filterGrid(a, { columns: 4, scale: 3 });
  // 16 filters of 3×8×8 at scale 3 in a 4×4 grid with 1-pixel gaps
  assertEquals([want.height, want.width], [4 * 24 + 5, 4 * 24 + 5]);
  const png = await readImage(`${dir}/one/filters.png`);
  assertEquals([png.height, png.width], [want.height, want.width]);
  const q = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);
  assert(png.data.every((v, i) => q(v) === q(want.data[i])));
  const two = await run([
    "filters",
    ...TINY,
    ...["--compare", "fixture2", "--columns", "8", "--out", `${dir}/two`],
  ]);
  assertEquals(two.code, 0, two.err);
  const pair = sideBySide(
    [filterGrid(a, { columns: 8 }), filterGrid(b, { columns: 8 })],
    ["fixture", "fixture2"],
  );
  const png2 = await readImage(`${dir}/two/filters.png`);
  assertEquals([png2.height, png2.width], [pair.height, pair.width]);
  assert(png2.data.every((v, i) => q(v) === q(pair.data[i])));
  assert(two.out.includes("fixture | fixture2"), two.out);
  await a.release();
  await b.release();
});
