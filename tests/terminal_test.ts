// The terminal items of issue 24: one layer convention (numbers from 1, the
// manifest's zero-based names as an alias), the progress report's last line
// is the final evaluation the table gives, and a model folder's recommended
// settings (manifest "recommended") as defaults.
import { assert, assertEquals } from "./_assert.ts";
import { exists, json, ROOT, run, spawnCli, TINY, tmp } from "./_cli.ts";
import { parseManifest } from "../mod.ts";
import { layerLabel } from "../src/run/invert.ts";
import { GENERATE_DEFAULTS } from "../mod.ts";

const FIX = `${ROOT}tests/fixtures`;
const manifestOf = async (dir: string) => {
  const file = `${dir}/manifest.json`;
  return parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
};

/** A copy of the tiny fixture ViT whose manifest gets `recommended`. */
async function tinyWith(recommended: unknown): Promise<string> {
  const dir = `${await tmp()}/model`;
  await Deno.mkdir(`${dir}/graphs`, { recursive: true });
  for await (const e of Deno.readDir(`${FIX}/tiny_vit/graphs`)) {
    await Deno.copyFile(
      `${FIX}/tiny_vit/graphs/${e.name}`,
      `${dir}/graphs/${e.name}`,
    );
  }
  await Deno.copyFile(
    `${FIX}/tiny_vit/fixture.safetensors`,
    `${dir}/fixture.safetensors`,
  );
  const m = JSON.parse(
    await Deno.readTextFile(`${FIX}/tiny_vit/manifest.json`),
  );
  if (recommended !== undefined) m.recommended = recommended;
  await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m));
  return dir;
}

const model = (dir: string) => ["--model", dir, "--weights", "fixture"];

// ---------------------------------------------------------------------------
// 1. Layers: printed numbered from 1, the manifest's name as an alias.

Deno.test("layerLabel: numbers from 1 with the manifest's zero-based name", async () => {
  const vit = await manifestOf(`${FIX}/tiny_vit`);
  assertEquals(layerLabel(vit, 1), "encoder 1 (encoder_layer_0)");
  assertEquals(layerLabel(vit, 3), "encoder 3 (encoder_layer_2)");
  assertEquals(layerLabel(vit, 2, true), "encoder 2 alone (encoder_layer_1)");
  assertEquals(layerLabel(vit, 0), "layer 0 (input)");
  const mixer = await manifestOf(`${FIX}/tiny_mixer`);
  assertEquals(layerLabel(mixer, 1), "block 1 (block_0)");
  const ffvit = await manifestOf(`${FIX}/tiny_ffvit`);
  assertEquals(layerLabel(ffvit, 2), "encoder 2 (block_1)");
  const resnet = await manifestOf(`${FIX}/tiny_resnet`);
  assertEquals(layerLabel(resnet, 0), "layer 0 (stem)");
  assertEquals(layerLabel(resnet, 4), "block 4 (layer2.0)");
});

Deno.test("invert --layer encoder_layer_1 is --layer 2, printed and recorded as encoder 2", async () => {
  const base = await tmp();
  const args = (layer: string, out: string) => [
    "invert",
    ...TINY,
    "--layer",
    layer,
    "--steps",
    "3",
    "--out",
    out,
  ];
  const byName = await run(args("encoder_layer_1", `${base}/name`));
  assertEquals(byName.code, 0, byName.err);
  const byNumber = await run(args("2", `${base}/number`));
  assertEquals(byNumber.code, 0, byNumber.err);
  const a = await json(`${base}/name/metrics.json`);
  const b = await json(`${base}/number/metrics.json`);
  for (const m of [a, b]) {
    assertEquals(m.options.layer, "2");
    assertEquals(m.settings.layer, 2);
    assertEquals(m.settings.blocks, [1, 2]);
    assertEquals(m.final.layer, 2);
    assertEquals(m.final.layerName, "encoder_layer_1");
    assertEquals(m.final.layerLabel, "encoder 2 (encoder_layer_1)");
  }
  assertEquals(a.final.embeddingDistance, b.final.embeddingDistance);
  assertEquals(byName.out, byNumber.out.replaceAll("number", "name"));
  assert(byName.out.includes("| encoder 2 (encoder_layer_1) |"), byName.out);
  // figure titles
  const svg = await Deno.readTextFile(`${base}/name/convergence.svg`);
  assert(svg.includes("Representation of encoder 2 (encoder_layer_1)"), svg);
  // --only-layer
  const alone = await run([
    ...args("encoder_layer_2", `${base}/alone`),
    "--only-layer",
  ]);
  assertEquals(alone.code, 0, alone.err);
  const c = await json(`${base}/alone/metrics.json`);
  assertEquals(c.final.layerLabel, "encoder 3 alone (encoder_layer_2)");
  assertEquals(c.settings.blocks, [3]);
  // the help says both
  const help = (await run(["invert", "--help"])).out.replace(/\s+/g, " ");
  assert(help.includes("encoder_layer_0 = encoder 1"), help);
});

Deno.test("--resume takes the layer by its alias too", async () => {
  const out = `${await tmp()}/r`;
  const first = await run([
    "invert",
    ...TINY,
    "--layer",
    "2",
    "--steps",
    "6",
    "--stop-at",
    "3",
    "--out",
    out,
  ]);
  assertEquals(first.code, 0, first.err);
  const again = await run([
    "invert",
    "--resume",
    out,
    "--layer",
    "encoder_layer_1",
    "--quiet",
  ]);
  assertEquals(again.code, 0, again.err);
  assertEquals((await json(`${out}/metrics.json`)).final.steps, 6);
  const other = await run([
    "invert",
    "--resume",
    out,
    "--layer",
    "encoder_layer_0",
    "--quiet",
  ]);
  assertEquals(other.code, 2, other.err);
  assert(other.err.includes('--layer "encoder_layer_0" with --resume'));
});

// ---------------------------------------------------------------------------
// 2. The progress report's last line is the final evaluation, as the table.

/** stderr's progress lines and stdout of `mod.ts ARGS` (a pipe: plain lines). */
async function piped(args: string[]) {
  const r = await spawnCli(args).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: text(r.stdout), err: text(r.stderr) };
}

const tinyLoud = TINY.filter((a) => a !== "--quiet");

Deno.test("invert: the last progress line is the final evaluation the table gives", async () => {
  const out = `${await tmp()}/inv`;
  const r = await piped([
    "invert",
    ...tinyLoud,
    "--layer",
    "1",
    "--steps",
    "6",
    "--lr",
    "0.05",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  const lines = r.err.trim().split("\n").filter((l) => l.startsWith("invert"));
  const last = lines.at(-1) ?? "";
  assert(last.includes(" 6/6 "), last);
  const m = await json(`${out}/metrics.json`);
  const emb = m.final.embeddingDistance.toFixed(3);
  const noise = m.final.noiseBaseline.toFixed(3);
  assert(last.endsWith(`final emb ${emb} (noise ${noise})`), last);
  // the table says the same number
  assert(r.out.includes(`| ${emb} | ${noise} |`), r.out);
  // and the last step's own (before its update) is another
  const rows = (await Deno.readTextFile(`${out}/traces.csv`)).trim().split(
    "\n",
  );
  const lastRow = Number(rows.at(-1)?.split(",")[2]);
  assert(lastRow !== m.final.embeddingDistance, "the trace's last row");
  // a --stop-at run's last line: its step, and the final evaluation there
  const stop = `${await tmp()}/stop`;
  const s = await piped([
    "invert",
    ...tinyLoud,
    "--layer",
    "1",
    "--steps",
    "6",
    "--stop-at",
    "2",
    "--out",
    stop,
  ]);
  assertEquals(s.code, 0, s.err);
  const sm = await json(`${stop}/metrics.json`);
  const sLast = s.err.trim().split("\n").filter((l) => l.startsWith("invert"))
    .at(-1) ?? "";
  assert(sLast.includes(" 2/6 "), sLast);
  assert(
    sLast.includes(`final emb ${sm.final.embeddingDistance.toFixed(3)}`),
    sLast,
  );
});

Deno.test("generate: the last progress line is the final logit the table gives", async () => {
  const out = `${await tmp()}/gen`;
  const r = await piped([
    "generate",
    ...tinyLoud,
    "--class",
    "3",
    "--steps",
    "8",
    "--jitter-after",
    "4",
    "--canvas",
    "40",
    "--lr",
    "5",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  const last = r.err.trim().split("\n").filter((l) => l.startsWith("class 3"))
    .at(-1) ?? "";
  const m = await json(`${out}/metrics.json`);
  const logit = m.final.logit.toFixed(3);
  const p = m.final.probability.toFixed(4);
  assert(last.includes(" 8/8 "), last);
  assert(last.endsWith(`final logit ${logit} p ${p}`), last);
  assert(r.out.includes(`| ${logit} | ${p} |`), r.out);
  // the trace's last row (before the last update) is another number
  assert(m.trace.logit.at(-1) !== m.final.logit, "trace's last logit");
});

// ---------------------------------------------------------------------------
// 3. A model's recommended settings.

Deno.test("manifest: recommended is parsed, and a bad one is refused naming the field", async () => {
  const file = `${FIX}/tiny_vit/manifest.json`;
  const base = JSON.parse(await Deno.readTextFile(file));
  const ok = parseManifest({
    ...base,
    recommended: {
      generate: { lr: "2:0.2", steps: 300, "jitter-after": 150 },
      invert: { loss: "l2" },
    },
  }, file);
  assertEquals(ok.recommended?.generate?.steps, 300);
  assertEquals(parseManifest(base, file).recommended, undefined);
  const bad: [unknown, string][] = [
    [[], '"recommended" must be an object'],
    [{ train: {} }, "recommended.train is not a command"],
    [{ generate: 3 }, "recommended.generate must be an object"],
    [{ generate: { Steps: 3 } }, "recommended.generate.Steps is not an option"],
    [{ generate: { steps: null } }, "recommended.generate.steps must be"],
    [{ generate: { steps: "" } }, "recommended.generate.steps must be"],
    [{ invert: { lr: [1, 2] } }, "recommended.invert.lr must be"],
  ];
  for (const [v, text] of bad) {
    let msg = "";
    try {
      parseManifest({ ...base, recommended: v }, "x/manifest.json");
    } catch (err) {
      msg = (err as Error).message;
    }
    assert(msg.startsWith("x/manifest.json: "), `${JSON.stringify(v)}: ${msg}`);
    assert(msg.includes(text), `${JSON.stringify(v)}: ${msg}`);
  }
});

const RECOMMENDED = {
  generate: { steps: 7, lr: "0.5:0.05", canvas: 40, "jitter-after": 3 },
  invert: { steps: 4, loss: "l2" },
};

Deno.test("generate: the model's recommended settings are the defaults, given options win, metrics.json says which", async () => {
  const dir = await tinyWith(RECOMMENDED);
  const base = await tmp();
  const r = await run([
    "generate",
    ...model(dir),
    "--quiet",
    "--class",
    "2",
    "--out",
    `${base}/a`,
  ]);
  assertEquals(r.code, 0, r.err);
  const a = await json(`${base}/a/metrics.json`);
  assertEquals(a.final.steps, 7);
  assertEquals(a.settings.canvasSize, 40);
  assertEquals(a.settings.jitterAfter, 3);
  assertEquals(a.settings.lr, { start: 0.5, end: 0.05 });
  assertEquals(a.options.steps, "7");
  assertEquals(a.options.canvas, "40");
  assertEquals(a.modelDefaults, {
    steps: "7",
    lr: "0.5:0.05",
    canvas: "40",
    "jitter-after": "3",
  });
  // the built-in default where the manifest says nothing
  assertEquals(a.settings.constant, GENERATE_DEFAULTS.constant);
  // given options override
  const o = await run([
    "generate",
    ...model(dir),
    "--quiet",
    "--class",
    "2",
    "--steps",
    "5",
    "--canvas",
    "36",
    "--out",
    `${base}/b`,
  ]);
  assertEquals(o.code, 0, o.err);
  const b = await json(`${base}/b/metrics.json`);
  assertEquals(b.final.steps, 5);
  assertEquals(b.settings.canvasSize, 36);
  assertEquals(b.settings.jitterAfter, 3);
  assertEquals(b.modelDefaults, { lr: "0.5:0.05", "jitter-after": "3" });
  // a model without recommendations: the built-in defaults, none recorded
  const plain = await run([
    "generate",
    ...TINY,
    "--class",
    "2",
    "--steps",
    "2",
    "--jitter-after",
    "1",
    "--canvas",
    "40",
    "--out",
    `${base}/c`,
  ]);
  assertEquals(plain.code, 0, plain.err);
  const c = await json(`${base}/c/metrics.json`);
  assertEquals(c.modelDefaults, {});
  assertEquals(c.settings.sigma, GENERATE_DEFAULTS.sigma);
});

Deno.test("generate --resume keeps the snapshot's settings and records the model's", async () => {
  const dir = await tinyWith(RECOMMENDED);
  const out = `${await tmp()}/g`;
  const first = await run([
    "generate",
    ...model(dir),
    "--quiet",
    "--class",
    "2",
    "--stop-at",
    "4",
    "--out",
    out,
  ]);
  assertEquals(first.code, 0, first.err);
  const again = await run(["generate", "--resume", out, "--quiet"]);
  assertEquals(again.code, 0, again.err);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.final.steps, 7);
  assertEquals(m.resumedFrom.step, 4);
  assertEquals(m.modelDefaults.steps, "7");
});

Deno.test("invert and demo: the model's recommended settings are the defaults", async () => {
  const dir = await tinyWith(RECOMMENDED);
  const base = await tmp();
  const r = await run([
    "invert",
    ...model(dir),
    "--quiet",
    "--layer",
    "1",
    "--out",
    `${base}/i`,
  ]);
  assertEquals(r.code, 0, r.err);
  const m = await json(`${base}/i/metrics.json`);
  assertEquals(m.final.steps, 4);
  assertEquals(m.settings.loss, "l2");
  assertEquals(m.modelDefaults, { steps: "4", loss: "l2" });
  const d = await run([
    "demo",
    ...model(dir),
    "--quiet",
    "--layers",
    "1",
    "--loss",
    "l1",
    "--out",
    `${base}/d`,
  ]);
  assertEquals(d.code, 0, d.err);
  const dm = await json(`${base}/d/metrics.json`);
  assertEquals(dm.steps, 4);
  assertEquals(dm.layers[0].steps, 4);
  assertEquals(dm.modelDefaults, { steps: "4" });
});

Deno.test("a bad recommended setting is refused naming the field and the file, before any output", async () => {
  const cases: [unknown, string[], string][] = [
    [
      { generate: { steps: "many" } },
      ["generate", "--class", "1"],
      'recommended.generate.steps "many"',
    ],
    [
      { generate: { canvas: 8 } },
      ["generate", "--class", "1"],
      "recommended.generate.canvas 8",
    ],
    [
      { generate: { stpes: 3 } },
      ["generate", "--class", "1"],
      "did you mean steps",
    ],
    [
      { generate: { class: 3 } },
      ["generate", "--class", "1"],
      "recommended.generate.class",
    ],
    [
      { invert: { lr: "fast" } },
      ["invert", "--layer", "1"],
      'recommended.invert.lr "fast"',
    ],
    [{ invert: { "kernel-size": 4 } }, ["invert", "--layer", "1"], "odd"],
  ];
  for (const [rec, args, text] of cases) {
    const dir = await tinyWith(rec);
    const out = `${await tmp()}/x`;
    const r = await run([
      args[0],
      ...model(dir),
      "--quiet",
      ...args.slice(1),
      "--out",
      out,
    ]);
    assertEquals(r.code, 1, `${JSON.stringify(rec)}: ${r.err}`);
    assert(r.err.includes(text), `${JSON.stringify(rec)}: ${r.err}`);
    assert(r.err.includes(`${dir}/manifest.json`), r.err);
    assert(!(await exists(out)), `${JSON.stringify(rec)} left ${out}`);
  }
});

Deno.test("--help with --model prints its recommended settings as the defaults", async () => {
  const dir = await tinyWith(RECOMMENDED);
  const h = await run(["generate", "--model", dir, "--help"]);
  assertEquals(h.code, 0, h.err);
  const flat = h.out.replace(/\s+/g, " ");
  assert(
    flat.includes(
      `(default: 7, recommended by ${dir}'s manifest; built in: ${GENERATE_DEFAULTS.steps})`,
    ),
    h.out,
  );
  assert(flat.includes(`(default: 40, recommended by`), h.out);
  assert(flat.includes(`(default: ${GENERATE_DEFAULTS.constant})`), h.out);
  assert(flat.includes("Defaults for --model"), h.out);
  const none = await run(["generate", "--model", `${FIX}/tiny_vit`, "--help"]);
  assert(none.out.includes("recommends no settings"), none.out);
  const plain = (await run(["generate", "--help"])).out.replace(/\s+/g, " ");
  assert(
    plain.includes(
      `(default: ${GENERATE_DEFAULTS.steps}, or the model's recommended setting)`,
    ),
    plain,
  );
  // the committed Fashion-MNIST models recommend generate settings
  const fm = (await run(["generate", "--model", "fmnist_vit", "--help"])).out;
  assert(fm.includes("recommended by fmnist_vit's manifest"), fm);
});
