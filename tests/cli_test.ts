// The command line, run in-process through main() (and as a subprocess where
// the exit code or a real Ctrl-C matters), on the tiny fixture model.
import { assert, assertEquals } from "./_assert.ts";
import { run, tmp } from "./_cli.ts";
import { COMMANDS } from "../src/cli/main.ts";
import { GENERATE_DEFAULTS, INVERT_DEFAULTS, readImage, ssim } from "../mod.ts";
import { decodeNpy } from "../src/io/mod.ts";
import { MARKER_FILE, readMarker } from "../src/io/paths.ts";
import jpeg from "jpeg-js";

const ROOT = new URL("../", import.meta.url).pathname;
const P4 = `${ROOT}tests/fixtures/tiny_vit_p4`;
const TINY = [
  "--model",
  `${ROOT}tests/fixtures/tiny_vit`,
  "--weights",
  "fixture",
  "--quiet",
];
const PHOTO = `${ROOT}assets/chelsea.png`;
/** A schedule as the help prints it. */
const sched = (s: { start: number; end: number }) => `${s.start}:${s.end}`;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Files under dir, relative, sorted (vitrep's marker, checked apart, left out). */
async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name === MARKER_FILE) continue;
    if (e.isDirectory) {
      out.push(...await listFiles(`${dir}/${e.name}`, `${prefix}${e.name}/`));
    } else out.push(prefix + e.name);
  }
  return out.sort();
}

async function json(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

async function npy(path: string) {
  return decodeNpy(await Deno.readFile(path));
}

function csv(text: string): Record<string, number>[] {
  const [head, ...lines] = text.trim().split("\n");
  const cols = head.split(",");
  return lines.map((l) =>
    Object.fromEntries(l.split(",").map((v, i) => [cols[i], Number(v)]))
  );
}

const INVERT_FILES = [
  "convergence.png",
  "convergence.svg",
  "metrics.json",
  "representation.npy",
  "representation.png",
  "side_by_side.png",
  "target.png",
  "traces.csv",
];

Deno.test("invert writes every output file with sensible metrics", async () => {
  const out = `${await tmp()}/run`;
  const r = await run([
    "invert",
    ...TINY,
    "--image",
    PHOTO,
    "--layer",
    "2",
    "--steps",
    "25",
    "--lr",
    "0.05:0.005",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  assertEquals(await listFiles(out), INVERT_FILES);
  // vitrep's marker lists what the run wrote
  const marker = await readMarker(out);
  assertEquals([marker?.kind, marker?.command], ["run", "invert"]);
  assertEquals(marker?.files, INVERT_FILES);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.command, "invert");
  assertEquals(m.weights, "fixture");
  assertEquals(m.backend, "native");
  assertEquals(m.model.name, "tiny_vit");
  assertEquals(m.normalize, true);
  assertEquals(m.normalization.mean, [0.485, 0.456, 0.406]);
  assertEquals(m.options.layer, "2");
  assertEquals(m.options.image, PHOTO);
  assertEquals(m.settings.blocks, [1, 2]);
  assertEquals(m.interrupted, false);
  assertEquals(m.final.steps, 25);
  const rows = csv(await Deno.readTextFile(`${out}/traces.csv`));
  assertEquals(rows.map((x) => x.step), [0, 10, 20, 24]);
  assert(
    m.final.embeddingDistance < rows[0].embedding_distance / 2,
    `embedding distance ${
      rows[0].embedding_distance
    } → ${m.final.embeddingDistance}`,
  );
  assert(m.final.noiseBaseline > 0);
  // The CLI's per-row baseline is the library's.
  for (const x of rows) assertEquals(x.noise_baseline, m.final.noiseBaseline);
  for (const x of rows) {
    assertEquals(
      x.below_noise_baseline,
      x.embedding_distance < x.noise_baseline ? 1 : 0,
    );
  }
  assertEquals(
    m.final.criterionMet,
    m.final.criterionStep !== null,
  );
  assert(Number.isFinite(m.final.psnr) && m.final.psnr > rows[0].psnr);
  assert(m.final.ssim > -1 && m.final.ssim <= 1);
  const rep = await npy(`${out}/representation.npy`);
  assertEquals(rep.shape, [1, 3, 32, 32]);
  assert(rep.data.every(Number.isFinite));
  const png = await readImage(`${out}/representation.png`);
  assertEquals([png.height, png.width], [32, 32]);
  const target = await readImage(`${out}/target.png`);
  assertEquals([target.height, target.width], [32, 32]);
  const side = await readImage(`${out}/side_by_side.png`);
  assert(side.width > 2 * 32);
  assert((await readImage(`${out}/convergence.png`)).width >= 320);
  assert(r.out.includes("| encoder 2 (encoder_layer_1) |"), r.out);
  assertEquals(m.final.layer, 2);
  assertEquals(m.final.layerName, "encoder_layer_1");
  assertEquals(m.final.layerLabel, "encoder 2 (encoder_layer_1)");
});

Deno.test("invert: layer 0, --only-layer, --loss l2, --no-normalize, JPEG input", async () => {
  const dir = await tmp();
  const rgba = new Uint8Array(48 * 40 * 4).map((_, i) =>
    i % 4 === 3 ? 255 : (i * 37) % 256
  );
  const jpg = jpeg.encode({ data: rgba, width: 48, height: 40 }, 90).data;
  await Deno.writeFile(`${dir}/in.jpg`, jpg);
  const zero = await run([
    "invert",
    ...TINY,
    "--image",
    `${dir}/in.jpg`,
    "--layer",
    "0",
    "--steps",
    "3",
    "--loss",
    "l2",
    "--no-normalize",
    "--out",
    `${dir}/zero`,
  ]);
  assertEquals(zero.code, 0, zero.err);
  const m0 = await json(`${dir}/zero/metrics.json`);
  assertEquals(m0.settings.blocks, []);
  assertEquals(m0.settings.loss, "l2");
  assertEquals(m0.normalize, false);
  assertEquals(m0.normalization, null);
  const t = await readImage(`${dir}/zero/target.png`);
  assertEquals([t.height, t.width], [32, 32]);
  const only = await run([
    "invert",
    ...TINY,
    "--layer",
    "3",
    "--only-layer",
    "--steps",
    "3",
    "--out",
    `${dir}/only`,
  ]);
  assertEquals(only.code, 0, only.err);
  const m3 = await json(`${dir}/only/metrics.json`);
  assertEquals(m3.settings.blocks, [3]);
  assertEquals(m3.settings.onlyLayer, true);
});

Deno.test("generate with two classes writes the grid and per-class files", async () => {
  const out = `${await tmp()}/gen`;
  const r = await run([
    "generate",
    ...TINY,
    "--class",
    "3,class 5",
    "--steps",
    "30",
    "--jitter-after",
    "15",
    "--canvas",
    "48",
    "--constant",
    "20",
    "--lr",
    "20",
    "--sigma",
    "0.5:0",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  const perClass = [
    "canvas.png",
    "generated.npy",
    "generated.png",
    "metrics.json",
    "progress.png",
    "progress.svg",
    "traces.csv",
  ];
  assertEquals(await listFiles(out), [
    ...perClass.map((f) => `class_3/${f}`),
    ...perClass.map((f) => `class_5/${f}`),
    "generated_grid.png",
    "metrics.json",
    "snapshot/state.json",
  ]);
  const top = await json(`${out}/metrics.json`);
  assertEquals(top.classes.map((c: { index: number }) => c.index), [3, 5]);
  assertEquals(top.interrupted, false);
  const m = await json(`${out}/class_3/metrics.json`);
  assertEquals(m.class, { index: 3, name: "class 3" });
  assertEquals(m.trace.step, [0, 10, 20, 29]);
  assertEquals(m.trace.logit.length, 4);
  assert(m.trace.probability.every((p: number) => p > 0 && p < 1));
  assert(m.final.logit > m.trace.logit[0] + 1, `logit ${m.trace.logit}`);
  assertEquals(m.normalize, true);
  const canvas = await readImage(`${out}/class_3/canvas.png`);
  assertEquals([canvas.height, canvas.width], [48, 48]);
  const grid = await readImage(`${out}/generated_grid.png`);
  assert(grid.width > 2 * 128 && grid.height > 128);
  assert(r.out.includes("| 5 | class 5 |"), r.out);
});

Deno.test("generate with one class writes its files into --out", async () => {
  const out = `${await tmp()}/gen1`;
  const r = await run([
    "generate",
    ...TINY,
    "--class",
    "7",
    "--steps",
    "12",
    "--jitter-after",
    "6",
    "--canvas",
    "40",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  assertEquals(await listFiles(out), [
    "canvas.png",
    "generated.npy",
    "generated.png",
    "metrics.json",
    "progress.png",
    "progress.svg",
    "traces.csv",
  ]);
});

/** Every command, as the help must list it. */
const COMMAND_NAMES = [
  "invert",
  "generate",
  "demo",
  "forward",
  "grid",
  "filters",
  "essay",
];

Deno.test("--help is short and lists the commands; -h, --version", async () => {
  const top = await run(["--help"]);
  assertEquals(top.code, 0);
  assert(top.out.split("\n").length < 40, top.out);
  for (
    const cmd of COMMAND_NAMES
  ) assert(new RegExp(`^ {2}${cmd} +\\S`, "m").test(top.out), cmd);
  assert(top.out.includes("<command> --help"), top.out);
  assertEquals((await run(["-h"])).out, top.out);
  const noArgs = await run([]);
  assertEquals([noArgs.code, noArgs.err], [2, top.out]);
  const deno = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  for (const flag of ["--version", "-V"]) {
    assertEquals(await run([flag]), {
      code: 0,
      out: `vitrep ${deno.version}`,
      err: "",
    });
  }
});

Deno.test("each command's --help lists every option with its default", async () => {
  for (
    const cmd of COMMAND_NAMES
  ) {
    const h = await run([cmd, "--help"]);
    assertEquals(h.code, 0);
    assertEquals((await run([cmd, "-h"])).out, h.out);
    const flags = [...h.out.matchAll(/^ {2}(--[a-z0-9-]+)/gm)].map((x) => x[1]);
    // every option of the command's table, and nothing else
    assertEquals(
      flags.sort(),
      Object.keys(COMMANDS[cmd].spec).map((n) => `--${n}`).sort(),
    );
    for (const f of flags) {
      const text = h.out.slice(h.out.indexOf(`  ${f}`));
      const entry = text.split(/\n {2}--/)[0];
      if (f !== "--help") assert(entry.includes("(default:"), entry);
    }
  }
  // the help's lines are wrapped: compare with single spaces
  const flat = (s: string) => s.replace(/\s+/g, " ");
  const inv = flat((await run(["invert", "--help"])).out);
  for (
    const s of [
      "--steps N",
      `(default: ${INVERT_DEFAULTS.steps}, or the model's recommended`,
      `(default: ${sched(INVERT_DEFAULTS.lr)}, or the model's recommended`,
      `(default: ${sched(INVERT_DEFAULTS.sigma)}, or the model's`,
      "(default: 3, or the model's",
      "(default: 10)",
      "--no-normalize",
      "--only-layer",
      "--resume DIR",
      "--save-every K",
      "--remove PART[,PART…]",
      "--remove-layers 1-4|all|3,7",
      "--pos-embedding, --no-pos-embedding",
      "--swap PART=WEIGHTS",
    ]
  ) assert(inv.includes(s), s);
  const gen = flat((await run(["generate", "--help"])).out);
  for (
    const s of [
      `(default: ${GENERATE_DEFAULTS.canvasSize}, or the model's`,
      `(default: ${GENERATE_DEFAULTS.steps}, or the model's`,
      `(default: ${GENERATE_DEFAULTS.constant}, or the model's`,
      `(default: ${GENERATE_DEFAULTS.jitterAfter}, or the model's`,
      "--remove PART[,PART…]",
      "--swap PART=WEIGHTS",
    ]
  ) assert(gen.includes(s), s);
  const fwd = (await run(["forward", "--help"])).out;
  for (
    const s of ["--layer L|logits", "logits = the head", "--no-pos-embedding"]
  ) {
    assert(fwd.includes(s), s);
  }
  const grid = (await run(["grid", "--help"])).out;
  for (const s of ["--variant LABEL=OPTIONS", "--layers L,L…", "--classes"]) {
    assert(grid.includes(s), s);
  }
  const filters = (await run(["filters", "--help"])).out;
  for (const s of ["--compare W2", "--columns N", "--scale K"]) {
    assert(filters.includes(s), s);
  }
  assert((await run(["demo", "--help"])).out.includes("(default: 1,12)"));
});

/** [args, exit code, text the message must contain] — each must leave no --out. */
const BAD: [string[], number, string][] = [
  [["invert", "--foo"], 2, "--foo"],
  [["invert", "stray"], 2, "stray"],
  [["invert", "--steps", "0"], 2, '"0"'],
  [["invert", "--steps", "1.5"], 2, "1.5"],
  [["invert", "--steps", "many"], 2, "many"],
  [["invert", "--steps", "-1"], 2, 'Invalid --steps "-1": expected a positive'],
  [["invert", "--steps=-1"], 2, 'Invalid --steps "-1": expected a positive'],
  [["invert", "--bogus"], 2, 'Unknown option "--bogus" for invert'],
  [["invert", "-x"], 2, 'Unknown option "-x" for invert'],
  [["invert", "--stpes", "3"], 2, "did you mean --steps?"],
  [["invert", "--model", "vit_b32"], 1, "did you mean vit_b_32"],
  [["invert", "--steps"], 2, "Missing value for --steps: expected --steps N"],
  [["invert", "--steps", "--quiet"], 2, 'expected --steps N before "--quiet"'],
  [["invert", "--quiet=yes"], 2, 'Invalid --quiet "yes": a switch takes no'],
  [["invert", "--normalize=0"], 2, "(--normalize or --no-normalize)"],
  [["invert", "--lr=-0.1:0"], 2, "-0.1"],
  [["invert", "--lr", "0.1:x"], 2, "0.1:x"],
  [["invert", "--sigma", "1:2:3"], 2, "1:2:3"],
  [["invert", "--trace-every", "0"], 2, "trace-every"],
  [["invert", "--kernel-size", "4"], 2, '"4"'],
  [["invert", "--layer", "4"], 2, '"4"'],
  [["invert", "--layer", "x"], 2, '"x"'],
  [["invert", "--layer", "0", "--only-layer"], 2, "only-layer"],
  [["invert", "--loss", "l3"], 2, "l3"],
  [["invert", "--backend", "cuda"], 2, "cuda"],
  [["invert", "--seed", "-1"], 2, "--seed"],
  [["invert", "--threads", "0"], 2, "threads"],
  [["invert", "--image", "/nonexistent/nope.png"], 1, "nope.png"],
  [["invert", "--weights", "nope"], 1, "nope"],
  [["generate", "--class", "zebra"], 2, "zebra"],
  [["generate", "--class", "class"], 2, "Ambiguous"],
  [["generate", "--class", "10"], 2, '"10"'],
  [["generate"], 2, "--class"],
  [["generate", "--class", "1", "--canvas", "16"], 2, '"16"'],
  [["generate", "--class", "1", "--constant", "inf"], 2, "inf"],
  [["invert", "--remove", "foo"], 2, '"foo"'],
  [["invert", "--remove", "attention,bogus"], 2, "bogus"],
  [["invert", "--remove", "attn", "--remove-layers", "4"], 2, "1..3"],
  [["invert", "--remove", "attn", "--remove-layers", "2-x"], 2, "2-x"],
  [["invert", "--remove-layers", "1"], 2, "without --remove"],
  [
    ["invert", "--remove", "a", "--remove", "b", "--remove-layers", "1"],
    2,
    '"a"',
  ],
  [
    [
      "invert",
      ...["--remove", "mlp", "--remove", "ln1", "--remove", "ln2"],
      ...["--remove-layers", "1", "--remove-layers", "2"],
    ],
    2,
    "2 given for 3",
  ],
  [["invert", "--swap", "nope=fixture2"], 2, 'Unknown part "nope"'],
  [["invert", "--swap", "conv_proj"], 2, "PART=WEIGHTS"],
  [["invert", "--swap", "conv_proj=nope"], 1, 'Unknown weights "nope"'],
  [
    ["invert", "--swap", `conv_proj=${P4}/fixture.safetensors`],
    2,
    "[32,3,4,4]: expected [16,3,8,8]",
  ],
  [
    ["generate", "--class", "1", "--remove", "mlp", "--remove-layers", "0"],
    2,
    '"0"',
  ],
  [["generate", "--class", "1", "--swap", "heads=x=y"], 1, '"x=y"'],
  [["forward", "--layer", "7"], 2, '"7"'],
  [["forward", "--layer", "0", "--only-layer"], 2, "only-layer"],
  [["forward", "--layer", "input", "--only-layer"], 2, "only-layer"],
  [["forward", "--layer", "layer2"], 2, 'Invalid --layer "layer2"'],
  [["forward", "--layer", "1.5"], 2, '"1.5"'],
  [["invert", "--layer", "encoder_layer_7"], 2, "encoder_layer_2"],
  [["grid", "--layers", "1,layer9"], 2, '"1,layer9" (layer layer9)'],
  [["forward", "--top", "0"], 2, "--top"],
  [["forward", "--remove", "ln3"], 2, "ln3"],
  [["forward", "--swap", "encoder.layers.9=fixture2"], 2, "encoder.layers.9"],
  [["filters", "--columns", "0"], 2, "--columns"],
  [["filters", "--compare", "nope"], 1, "nope"],
  [["frobnicate"], 2, "frobnicate"],
];

Deno.test("bad input: right exit code, a message naming the value, no output", async (t) => {
  const dir = await tmp();
  for (const [args, code, text] of BAD) {
    await t.step(args.join(" "), async () => {
      const out = `${dir}/out_${crypto.randomUUID()}`;
      const [cmd, ...rest] = args;
      const layer = cmd === "invert" && !rest.includes("--layer")
        ? ["--layer", "1"]
        : [];
      // forward and filters have no progress bar, so no --quiet
      const tiny = ["forward", "filters"].includes(cmd)
        ? TINY.filter((a) => a !== "--quiet")
        : TINY;
      const r = await run([cmd, ...tiny, ...layer, ...rest, "--out", out]);
      assertEquals(r.code, code, r.err);
      assert(r.err.includes(text), `"${r.err}" lacks ${text}`);
      assert(!(await exists(out)), `${out} was created`);
    });
  }
  // A mistyped command: its nearest name.
  const typo = await run(["invrt", "--out", `${dir}/out_typo`]);
  assertEquals(typo.code, 2, typo.err);
  assert(typo.err.includes("did you mean invert?"), typo.err);
  // Unknown model name and missing folder: runtime errors.
  for (const model of ["vit_zz", `${dir}/no_model_here`]) {
    const out = `${dir}/out_model`;
    const r = await run(["invert", "--model", model, "--out", out, "--quiet"]);
    assertEquals(r.code, 1, r.err);
    assert(r.err.includes(model), r.err);
    assert(!(await exists(out)));
  }
  // Corrupt, truncated and non-image files.
  const photo = await Deno.readFile(PHOTO);
  const corrupt = photo.slice();
  corrupt.fill(7, 200, 400);
  const files: [string, Uint8Array][] = [
    ["truncated.png", photo.slice(0, Math.floor(photo.length / 2))],
    ["corrupt.png", corrupt],
    ["text.png", new TextEncoder().encode("not an image")],
    ["empty.jpg", new Uint8Array(0)],
    ["truncated.jpg", new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a])],
  ];
  for (const [name, bytes] of files) {
    await Deno.writeFile(`${dir}/${name}`, bytes);
    const out = `${dir}/out_${name}`;
    const r = await run([
      "invert",
      ...TINY,
      "--layer",
      "1",
      "--image",
      `${dir}/${name}`,
      "--out",
      out,
    ]);
    assertEquals(r.code, 1, `${name}: ${r.err}`);
    assert(r.err.includes(name), r.err);
    assert(!(await exists(out)), `${name}: output created`);
  }
  // --resume from a folder without a snapshot.
  const r = await run(["invert", ...TINY, "--resume", dir]);
  assertEquals(r.code, 1);
  assert(r.err.includes("snapshot.json"), r.err);
});

Deno.test("the mod.ts entry point exits with the CLI's code", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "mod.ts", ...args],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
  const help = await run(["--help"]);
  assertEquals(help.code, 0);
  assert(new TextDecoder().decode(help.stdout).includes("<command> --help"));
  const bad = await run(["invert", "--bogus"]);
  assertEquals(bad.code, 2);
  assert(new TextDecoder().decode(bad.stderr).includes("--bogus"));
  // stderr into a pipe (a log, CI): progress as plain lines, no bar redrawn in place
  const out = `${await tmp()}/piped`;
  const tiny = TINY.filter((a) => a !== "--quiet");
  const inv = await run([
    "invert",
    ...tiny,
    "--layer",
    "1",
    "--steps",
    "5",
    "--out",
    out,
  ]);
  const err = new TextDecoder().decode(inv.stderr);
  assertEquals(inv.code, 0, err);
  assert(/invert encoder 1 \(encoder_layer_0\) 5\/5 /.test(err), err);
  assert(!err.includes("\r") && !err.includes("\x1b"), JSON.stringify(err));
});

Deno.test("NaN/Inf: names the step, keeps the last finite image, exits 1", async () => {
  const out = `${await tmp()}/div`;
  const r = await run([
    "invert",
    ...TINY,
    "--layer",
    "2",
    "--steps",
    "10",
    "--lr",
    "1e38",
    "--out",
    out,
  ]);
  assertEquals(r.code, 1);
  assert(/diverged at step \d+/.test(r.err), r.err);
  const snap = await json(`${out}/snapshot/state.json`);
  assert(r.err.includes(`step ${snap.step}`), r.err);
  const img = await npy(`${out}/snapshot/image.npy`);
  assertEquals(img.shape, [1, 3, 32, 32]);
  assert(img.data.every(Number.isFinite));
  // metrics.json names the outcome; no image outputs of a diverged run
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.outcome, `non-finite at step ${snap.step}`);
  assertEquals(m.interrupted, true);
  assert(!(await exists(`${out}/representation.npy`)));
});

const INV = (out: string, ...more: string[]) => [
  "invert",
  ...TINY,
  "--layer",
  "2",
  "--trace-every",
  "4",
  "--out",
  out,
  ...more,
];

Deno.test("--resume after a stop equals an uninterrupted run", async () => {
  const dir = await tmp();
  const full = await run(INV(`${dir}/full`, "--steps", "12"));
  assertEquals(full.code, 0, full.err);
  const part = await run(INV(`${dir}/part`, "--steps", "12", "--stop-at", "6"));
  assertEquals(part.code, 0, part.err);
  const pm = await json(`${dir}/part/metrics.json`);
  assertEquals(pm.interrupted, true);
  assertEquals(pm.stopReason, "stop-at");
  assertEquals(pm.final.steps, 6);
  assertEquals((await json(`${dir}/part/snapshot/state.json`)).step, 6);
  const resumed = await run([
    "invert",
    "--quiet",
    "--steps",
    "12",
    "--resume",
    `${dir}/part`,
  ]);
  assertEquals(resumed.code, 0, resumed.err);
  const a = await Deno.readFile(`${dir}/full/representation.npy`);
  const b = await Deno.readFile(`${dir}/part/representation.npy`);
  assertEquals(b, a);
  // The outputs cover the whole run.
  assertEquals(
    await Deno.readTextFile(`${dir}/part/traces.csv`),
    await Deno.readTextFile(`${dir}/full/traces.csv`),
  );
  const fm = await json(`${dir}/full/metrics.json`);
  const rm = await json(`${dir}/part/metrics.json`);
  assertEquals(rm.final, fm.final);
  assertEquals(rm.options, fm.options);
  assertEquals(rm.interrupted, false);
  assertEquals(rm.resumedFrom.step, 6);
  // A conflicting option is refused.
  const clash = await run([
    "invert",
    "--quiet",
    "--layer",
    "1",
    "--resume",
    `${dir}/part`,
  ]);
  assertEquals(clash.code, 2);
  assert(clash.err.includes('"1"'), clash.err);
});

Deno.test("--save-every writes snapshots that resume to the same result", async () => {
  const dir = await tmp();
  const full = await run(INV(`${dir}/full`, "--steps", "10"));
  assertEquals(full.code, 0, full.err);
  const saved = await run(
    INV(`${dir}/saved`, "--steps", "10", "--save-every", "4"),
  );
  assertEquals(saved.code, 0, saved.err);
  const snap = await json(`${dir}/saved/snapshot/state.json`);
  assertEquals(snap.step, 8); // the last multiple of 4 before the end
  assertEquals(snap.command, "invert");
  assertEquals(snap.options.steps, "10");
  assertEquals((await npy(`${dir}/saved/snapshot/image.npy`)).shape, [
    1,
    3,
    32,
    32,
  ]);
  const resumed = await run([
    "invert",
    "--quiet",
    "--resume",
    `${dir}/saved`,
    "--out",
    `${dir}/again`,
  ]);
  assertEquals(resumed.code, 0, resumed.err);
  assertEquals(
    await Deno.readFile(`${dir}/again/representation.npy`),
    await Deno.readFile(`${dir}/full/representation.npy`),
  );
  assertEquals(
    await Deno.readTextFile(`${dir}/again/traces.csv`),
    await Deno.readTextFile(`${dir}/full/traces.csv`),
  );
});

Deno.test("generate: --resume (one class and several) equals an uninterrupted run", async () => {
  const dir = await tmp();
  const gen = (out: string, ...more: string[]) => [
    "generate",
    ...TINY,
    "--steps",
    "24",
    "--jitter-after",
    "10",
    "--canvas",
    "48",
    "--lr",
    "5",
    "--out",
    out,
    ...more,
  ];
  assertEquals((await run(gen(`${dir}/full`, "--class", "2,4"))).code, 0);
  // one class, stopped inside the jitter phase (a canvas snapshot)
  assertEquals(
    (await run(gen(`${dir}/one`, "--class", "4", "--stop-at", "15"))).code,
    0,
  );
  assertEquals((await npy(`${dir}/one/snapshot/image.npy`)).shape, [
    1,
    3,
    48,
    48,
  ]);
  const r1 = await run(["generate", "--quiet", "--resume", `${dir}/one`]);
  assertEquals(r1.code, 0, r1.err);
  assertEquals(
    await Deno.readFile(`${dir}/one/generated.npy`),
    await Deno.readFile(`${dir}/full/class_4/generated.npy`),
  );
  assertEquals(
    await Deno.readTextFile(`${dir}/one/traces.csv`),
    await Deno.readTextFile(`${dir}/full/class_4/traces.csv`),
  );
  // two classes, each stopped before the jitter phase
  assertEquals(
    (await run(gen(`${dir}/two`, "--class", "2,4", "--stop-at", "5"))).code,
    0,
  );
  assertEquals((await json(`${dir}/two/metrics.json`)).interrupted, true);
  const r2 = await run(["generate", "--quiet", "--resume", `${dir}/two`]);
  assertEquals(r2.code, 0, r2.err);
  for (const c of [2, 4]) {
    assertEquals(
      await Deno.readFile(`${dir}/two/class_${c}/generated.npy`),
      await Deno.readFile(`${dir}/full/class_${c}/generated.npy`),
    );
  }
  assertEquals((await json(`${dir}/two/metrics.json`)).interrupted, false);
});

Deno.test("an abort (as Ctrl-C) stops after the step and writes image, metrics and snapshot", async () => {
  const out = `${await tmp()}/stop`;
  const ac = new AbortController();
  ac.abort();
  const r = await run(INV(out, "--steps", "50"), ac.signal);
  assertEquals(r.code, 130, r.err);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.interrupted, true);
  assertEquals(m.final.steps, 1);
  assert(await exists(`${out}/representation.png`));
  assertEquals((await json(`${out}/snapshot/state.json`)).step, 1);
});

Deno.test("Ctrl-C on a running process: exit 130, outputs with interrupted: true", async () => {
  const out = `${await tmp()}/sigint`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "mod.ts",
      ...INV(out, "--steps", "1000000").filter((a) => a !== "--quiet"),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  let text = "";
  while (!text.includes("/1000000")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  child.kill("SIGINT");
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const [status] = await Promise.all([child.status, child.stdout.cancel()]);
  assertEquals(status.code, 130, text);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.interrupted, true);
  assertEquals(m.stopReason, "SIGINT");
  const snap = await json(`${out}/snapshot/state.json`);
  assertEquals(snap.step, m.final.steps);
  assert(await exists(`${out}/representation.npy`));
});

Deno.test("demo runs the invert path per layer and writes the montage", async () => {
  const out = `${await tmp()}/demo`;
  const r = await run([
    "demo",
    ...TINY,
    "--layers",
    "1,3",
    "--steps",
    "4",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  assertEquals(await listFiles(out), [
    "demo.png",
    ...INVERT_FILES.map((f) => `layer1/${f}`),
    ...INVERT_FILES.map((f) => `layer3/${f}`),
    "metrics.json",
    "target.png",
  ]);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.layers.map((l: { layer: number }) => l.layer), [1, 3]);
  assert(
    r.out.includes("| encoder 3 (encoder_layer_2) |") &&
      r.out.includes("noise baseline"),
    r.out,
  );
  const bad = await run([
    "demo",
    ...TINY,
    "--layers",
    "1,9",
    "--out",
    `${out}2`,
  ]);
  assertEquals(bad.code, 2);
  assert(!(await exists(`${out}2`)));
});

Deno.test("ssim: 1 for identical images, lower for noise", () => {
  const a = new Float32Array(3 * 16 * 16).map((_, i) => (i % 7) / 7);
  assertEquals(ssim(a, a, 16), 1);
  const b = a.map((_, i) => ((i * 7919) % 13) / 13);
  assert(ssim(b, a, 16) < 0.5);
});
