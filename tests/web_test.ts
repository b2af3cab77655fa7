// The browser page (web/) in a real headless Chromium: built by web/build.ts
// (`deno task web`), served from the repository root on 127.0.0.1, driven by
// its query string and by its controls (mouse clicks on the layer strip, the
// ablation grid, run, a download link; the mode and class pickers). On the
// tiny fixture model its forward output and input gradient equal Deno's, with
// and without per-encoder ablations; a strip of layers equals Deno's inversion
// at each layer; a generation on the trained Fashion-MNIST ViT equals Deno's
// and reads as its class; the downloads are the run's files; nothing logs an
// error. A second browser with SwiftShader's WebGPU adapter runs the check on
// WebGPU. Writes the README's screenshots into docs/explorer/.
import assert from "node:assert/strict";
import { loadModel, type Model } from "../src/model/mod.ts";
import { BLOCK_PARTS, parseManifest } from "../src/model/mod.ts";
import {
  decodeImage,
  fitToSize,
  type ImageTensor,
  readImage,
} from "../src/io/mod.ts";
import { generate, invert, ssim } from "../src/optimize/mod.ts";
import { INVERT_COLUMNS as CLI_INVERT_COLUMNS } from "../src/run/invert.ts";
import { GENERATE_COLUMNS as CLI_GENERATE_COLUMNS } from "../src/run/generate.ts";
import { REMOVE_NAMES as CLI_REMOVE_NAMES } from "../src/run/model_options.ts";
import { type CheckFigures, checkFigures } from "../web/check.ts";
import {
  GENERATE_COLUMNS,
  INVERT_COLUMNS,
  ModelCache,
  runJob,
} from "../web/engine.ts";
import type { RunResult } from "../web/protocol.ts";
import { serveStatic } from "../web/serve.ts";
import {
  checkForModel,
  DEFAULTS,
  FMNIST_GENERATE,
  modelInfo,
  MODELS,
  PARTS,
  readSettings,
  REMOVE_NAMES,
  samples,
} from "../web/settings.ts";
import { chromiumPath, type Page, withChromium } from "./_chromium.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TINY = `${ROOT}tests/fixtures/tiny_vit`;
const SHOTS = `${ROOT}docs/explorer`;
/** float32 agreement: |page − Deno| ≤ 1e-6 · max(1, max |Deno|). */
const TOL = 1e-6;
/** The SwiftShader WebGPU adapter of a headless Chromium (no GPU needed). */
const WEBGPU_ARGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--disable-vulkan-surface",
];

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function scale(v: readonly number[]): number {
  return Math.max(1, ...v.map(Math.abs));
}

function near(got: number, want: number, rel: number, what: string): void {
  assert.ok(
    Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)),
    `${what}: page ${got}, Deno ${want}`,
  );
}

/** The page's check figures equal Deno's within `tol` (relative to their scale). */
function sameFigures(got: CheckFigures, want: CheckFigures, tol = TOL): void {
  const f = maxAbsDiff(got.forward, want.forward);
  const g = maxAbsDiff(got.grad, want.grad);
  assert.ok(f <= tol * scale(want.forward), `forward differs by ${f}`);
  assert.ok(g <= tol * scale(want.grad), `gradient differs by ${g}`);
  near(got.value, want.value, tol, "objective");
}

/** Builds the page; returns the bundles' sizes. */
async function build(): Promise<Record<string, number>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "web/build.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr).slice(-2000));
  const size = (f: string) => Deno.statSync(`${ROOT}web/dist/${f}`).size;
  // a browser cannot load Node's built-ins: a module the page reaches must not import one
  for (const f of ["main.js", "worker.js"]) {
    const js = await Deno.readTextFile(`${ROOT}web/dist/${f}`);
    const node = js.match(/["'`]node:[a-z_/]+["'`]/g) ?? [];
    assert.deepEqual(node, [], `web/dist/${f} imports ${node.join(", ")}`);
  }
  return { "main.js": size("main.js"), "worker.js": size("worker.js") };
}

const RESULT = `document.getElementById("result")`;

/** Waits for run `run` of the page to end; returns what it wrote into #result. */
async function waitResult(
  page: Page,
  run: number,
  ok = true,
): Promise<RunResult & { error?: string }> {
  await page.waitFor(
    `${RESULT}.dataset.run === "${run}" && ${RESULT}.dataset.state`,
    180_000,
  );
  const json = JSON.parse(
    await page.evaluate(`${RESULT}.textContent`) as string,
  );
  if (ok) assert.equal(json.error, undefined, `run ${run}: ${json.error}`);
  return json;
}

/** Opens the page with a query and returns the JSON of its first run. */
async function result(
  page: Page,
  url: string,
  ok = true,
): Promise<RunResult & { error?: string }> {
  await page.navigate(url);
  return await waitResult(page, 1, ok);
}

/** A downloaded file's bytes, once Chromium has finished writing it. */
async function downloaded(dir: string, name: string): Promise<Uint8Array> {
  for (let i = 0; i < 120; i++) {
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    if (
      names.includes(name) && !names.some((n) => n.endsWith(".crdownload"))
    ) return await Deno.readFile(`${dir}/${name}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${name} was not downloaded into ${dir}`);
}

/** Writes a screenshot of the page into docs/explorer/ (PNG, < 300 KB) after `scroll`, its images decoded. */
async function screenshot(
  page: Page,
  name: string,
  scroll: string,
): Promise<void> {
  await page.evaluate(
    `Promise.all([...document.images].map((i) => i.decode().catch(() => {})))`,
  );
  await page.evaluate(scroll);
  const png = await page.screenshot();
  assert.equal(decodeImage(png, name).width, 1400);
  assert.ok(png.length < 300_000, `${name}: ${png.length} bytes`);
  await Deno.mkdir(SHOTS, { recursive: true });
  await Deno.writeFile(`${SHOTS}/${name}`, png);
}

/** Deno's figures the page must reproduce (the tiny model on wasm). */
interface Reference {
  model: Model;
  target: ImageTensor;
}

async function checks(
  page: Page,
  base: string,
  ref: Reference,
  t: Deno.TestContext,
) {
  const { model } = ref;
  await t.step("?check=1: forward output and input gradient", async () => {
    const got = await result(
      page,
      `${base}?check=1&model=tiny&layer=2&backend=wasm`,
    );
    const want = await checkFigures(model, 2);
    assert.ok(want.grad.some((g) => g !== 0));
    sameFigures(got.check!, want);
  });
  await t.step(
    "remove=attn@1: a per-encoder ablation is Deno's, not the intact model's or every encoder's",
    async () => {
      const got = await result(
        page,
        `${base}?check=1&model=tiny&layers=2&remove=attn@1&backend=wasm`,
      );
      const want = await checkFigures(
        model.withAblations([{ remove: ["attn"], layers: [1] }]),
        2,
      );
      const intact = await checkFigures(model, 2);
      const everywhere = await checkFigures(
        model.withAblations([{ remove: "attn" }]),
        2,
      );
      assert.ok(maxAbsDiff(want.forward, intact.forward) > 1e-3);
      assert.ok(maxAbsDiff(want.forward, everywhere.forward) > 1e-3);
      sameFigures(got.check!, want);
      // the grid shows it: attn ticked in layer 1 only
      const ticked = await page.evaluate(
        `[...document.querySelectorAll("#ablations input:checked")].map((b) => b.dataset.part + "@" + b.dataset.layer)`,
      );
      assert.deepEqual(ticked, ["attn@1"]);
    },
  );
  await t.step(
    "the ablation grid: a click on mlp in layer 2, then run",
    async () => {
      await page.click(`#ablations input[data-part="mlp"][data-layer="2"]`);
      await page.click("#run");
      const got = await waitResult(page, 2);
      assert.deepEqual(got.settings.remove, ["attn@1", "mlp@2"]);
      const want = await checkFigures(
        model.withAblations([{ remove: ["attn"], layers: [1] }, {
          remove: ["mlp"],
          layers: [2],
        }]),
        2,
      );
      sameFigures(got.check!, want);
      assert.match(
        await page.evaluate("location.search") as string,
        /remove=attn%401&remove=mlp%402/,
      );
    },
  );
  await t.step(
    "remove=attention,residual (every encoder), backend auto: wasm without an adapter, saying so",
    async () => {
      const got = await result(
        page,
        `${base}?check=1&model=tiny&layer=2&remove=attention,residual&backend=auto`,
      );
      sameFigures(
        got.check!,
        await checkFigures(
          model.withAblations([{ remove: ["attn", "res1", "res2"] }]),
          2,
        ),
      );
      assert.equal(got.backend, "wasm");
      assert.match(
        got.backendNote,
        /no WebGPU adapter here .*: running on wasm/,
      );
      assert.match(
        await page.evaluate(
          `document.getElementById("backend").textContent`,
        ) as string,
        /no WebGPU adapter/,
      );
    },
  );
}

async function swapAndStop(
  page: Page,
  base: string,
  ref: Reference,
  t: Deno.TestContext,
) {
  await t.step(
    "swap=conv_proj=fixture2: the patch embedding of the second weight set",
    async () => {
      const got = await result(
        page,
        `${base}?check=1&model=tiny&layer=2&swap=conv_proj=fixture2&backend=wasm`,
      );
      assert.equal(got.weights, "fixture + conv_proj from fixture2");
      const swapped = await loadModel(TINY, {
        weights: "fixture",
        backend: "wasm",
        swaps: [{ part: "conv_proj", weights: "fixture2" }],
      });
      try {
        const want = await checkFigures(swapped, 2);
        assert.ok(
          maxAbsDiff(want.forward, (await checkFigures(ref.model, 2)).forward) >
            1e-3,
        );
        sameFigures(got.check!, want);
      } finally {
        await swapped.release();
      }
      const chips = await page.evaluate(
        `[...document.querySelectorAll("#swaps [data-swap]")].map((c) => c.dataset.swap)`,
      );
      assert.deepEqual(chips, ["conv_proj=fixture2"]);
    },
  );
  await t.step(
    "stop mid-run: the page answers while the worker steps",
    async () => {
      await page.navigate(
        `${base}?model=tiny&layers=1,2&steps=5000&backend=wasm`,
      );
      await page.waitFor(
        `/step \\d+/.test(document.getElementById("status").textContent)`,
        60_000,
      );
      // the main thread's longest wait for a timer over 1.5 s of the run (a run on
      // the main thread would block it for a whole frame interval, 100 steps)
      const gap = await page.evaluate(`new Promise((done) => {
      let last = performance.now(), worst = 0;
      const end = last + 1500;
      const tick = () => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
        if (now < end) setTimeout(tick, 10); else done(worst);
      };
      setTimeout(tick, 10);
    })`) as number;
      assert.ok(gap < 1000, `the main thread was blocked for ${gap} ms`);
      await page.click("#stop");
      const got = await waitResult(page, 1);
      assert.equal(got.stopped, true);
      assert.deepEqual(got.layers.map((l) => l.layer), [1]);
      assert.ok(
        got.layers[0].final.steps < 5000,
        `${got.layers[0].final.steps} steps`,
      );
      assert.match(
        await page.evaluate(
          `document.getElementById("status").textContent`,
        ) as string,
        /^stopped/,
      );
    },
  );
}

async function badQueries(page: Page, base: string) {
  const cases: [string, RegExp][] = [
    ["steps=-1", /Invalid steps "-1": expected 1\.\.100000/],
    [
      "model=nope",
      /Invalid model "nope": expected one of fmnist_vit, fmnist_resnet, vit_b_32/,
    ],
    [
      "model=tiny&layers=5",
      /Invalid layers "5" \(layer 5\): expected 0\.\.3 for tiny/,
    ],
    [
      "model=tiny&layers=1&remove=attn@4",
      /Invalid remove "attn@4" \(layer 4\): expected encoder layers 1\.\.3 or all for/,
    ],
    [
      "model=tiny&layers=1&remove=bn@1",
      /Invalid remove "bn@1": layer 1 of \S+ \(vit\) has no bn/,
    ],
    [
      "model=tiny&remove=atn",
      /Invalid remove "atn": expected NAMES\[@LAYERS\]/,
    ],
    [
      "mode=generate&model=vit_b_32",
      /Invalid mode "generate" for vit_b_32: its head is untrained/,
    ],
    [
      "mode=generate&model=fmnist_vit&class=Trouserz",
      /class "Trouserz"/,
    ],
  ];
  for (const [q, message] of cases) {
    const got = await result(page, `${base}?${q}`, false);
    assert.match(got.error ?? "", message, q);
  }
  // the strip cannot go beyond the model: one checkbox per layer 0..N
  const boxes = await page.evaluate(
    `[...document.querySelectorAll("input[name=layers]")].map((b) => b.value).join(",")`,
  );
  assert.equal(boxes, "0,1,2,3,4");
}

async function strip(
  page: Page,
  base: string,
  ref: Reference,
  t: Deno.TestContext,
  dir: string,
) {
  const { model, target } = ref;
  const want = new Map<number, Awaited<ReturnType<typeof invert>>>();
  for (const layer of [1, 2, 3]) {
    want.set(layer, await invert(model, target.data, { layer, steps: 20 }));
  }
  const same = (got: RunResult, layers: number[]) => {
    assert.deepEqual(got.layers.map((l) => l.layer), layers);
    for (const e of got.layers) {
      const w = want.get(e.layer)!;
      assert.equal(e.final.steps, 20);
      near(e.final.psnr, w.final.psnr, 1e-4, `layer ${e.layer} PSNR`);
      near(
        e.final.embeddingDistance,
        w.final.embeddingDistance,
        1e-4,
        `layer ${e.layer} distance`,
      );
      near(
        e.noiseBaseline,
        w.noiseBaseline,
        1e-4,
        `layer ${e.layer} noise baseline`,
      );
      near(
        e.final.ssim,
        ssim(w.image.data, target.data, 32),
        1e-4,
        `layer ${e.layer} SSIM`,
      );
      assert.equal(e.criterionStep, w.criterionStep);
      assert.ok(e.msPerStep > 0 && e.backend === "wasm");
    }
  };
  await t.step(
    "layers=1,3: a strip of two layers, each Deno's inversion",
    async () => {
      const got = await result(
        page,
        `${base}?model=tiny&layers=1,3&steps=20&backend=wasm`,
      );
      same(got, [1, 3]);
      const panels = await page.evaluate(
        `[...document.querySelectorAll(".panel[data-layer] canvas")].map((c) => c.width)`,
      );
      assert.deepEqual(panels, [32, 32]);
      const rows = await page.evaluate(
        `document.querySelectorAll("#metrics tbody tr").length`,
      );
      assert.equal(rows, 2);
    },
  );
  await t.step(
    "a click on layer 2 of the strip, then run: three panels",
    async () => {
      await page.click(`input[name=layers][value="2"]`);
      await page.click("#run");
      same(await waitResult(page, 2), [1, 2, 3]);
      assert.equal(
        await page.evaluate(
          `document.querySelectorAll("#history .card").length`,
        ),
        2,
      );
    },
  );
  await t.step("the scrubber steps back to a kept frame", async () => {
    await page.setValue("#scrub", "10");
    const captions = await page.evaluate(
      `[...document.querySelectorAll(".panel[data-layer] figcaption")].map((c) => c.textContent)`,
    ) as string[];
    assert.equal(captions.length, 3);
    for (const c of captions) {
      assert.match(c, /^after step 10: embedding distance \d/);
    }
    assert.equal(
      await page.evaluate(
        `document.querySelectorAll(".plot line[data-label=scrub]").length`,
      ),
      3,
    );
    assert.equal(
      await page.evaluate(`document.getElementById("scrub-label").textContent`),
      "after step 10",
    );
  });
  await t.step(
    "downloads: representation PNG, traces CSV, metrics JSON",
    async () => {
      await page.allowDownloads(dir);
      await page.click(`a[data-download="layer3_representation.png"]`);
      const png = decodeImage(
        await downloaded(dir, "layer3_representation.png"),
        "png",
      );
      assert.deepEqual([png.width, png.height], [32, 32]);
      const w = want.get(3)!.image.data;
      assert.ok(
        maxAbsDiff(
          [...png.data],
          [...w].map((v) =>
            Math.round(Math.min(1, Math.max(0, v)) * 255) / 255
          ),
        ) <= 1 / 255 + 1e-9,
      );
      await page.click(`a[data-download="layer3_traces.csv"]`);
      const csv = new TextDecoder().decode(
        await downloaded(dir, "layer3_traces.csv"),
      ).trim().split("\n");
      assert.equal(csv[0], CLI_INVERT_COLUMNS.join(","));
      assert.equal(csv.length, 21);
      const last = Object.fromEntries(
        csv[0].split(",").map((k, i) => [k, Number(csv[20].split(",")[i])]),
      );
      near(
        last.embedding_distance,
        want.get(3)!.trace[19].embeddingDistance,
        1e-6,
        "trace",
      );
      await page.click(`a[data-download="metrics.json"]`);
      const json = JSON.parse(
        new TextDecoder().decode(await downloaded(dir, "metrics.json")),
      );
      assert.deepEqual(
        json,
        JSON.parse(await page.evaluate(`${RESULT}.textContent`) as string),
      );
    },
  );
}

/** Deno's generation of Trouser on the trained Fashion-MNIST ViT in `steps` steps (the page's preset). */
async function denoGenerate(steps: number) {
  const model = await loadModel(`${ROOT}weights/fmnist_vit`, {
    weights: "trained",
    backend: "wasm",
  });
  try {
    const p = FMNIST_GENERATE;
    return await generate(model, 1, {
      steps,
      jitterAfter: Math.round(steps / 2),
      canvasSize: p.canvasSize,
      lr: p.lr,
      sigma: p.sigma,
    });
  } finally {
    await model.release();
  }
}

/**
 * The trained Fashion-MNIST ViT with the controls: a strip of all its layers,
 * then attention removed from every encoder (a click on the grid's row), then
 * a generation set with the mode and class pickers; the README's screenshots.
 */
async function trained(page: Page, base: string, t: Deno.TestContext) {
  await page.send("Emulation.setDeviceMetricsOverride", {
    width: 1400,
    height: 1060,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await t.step("no query: the defaults, nothing runs", async () => {
    await page.navigate(base);
    await page.waitFor(
      `document.querySelectorAll("input[name=layers]").length === 5`,
      30_000,
    );
    const ticked = await page.evaluate(
      `[...document.querySelectorAll("input[name=layers]:checked")].map((b) => b.value).join(",")`,
    );
    assert.equal(ticked, "1,3,4");
    assert.equal(await page.evaluate(`${RESULT}.dataset.run`), undefined);
    // another model from the picker: its own strip (layers 0..12), no generate for untrained heads
    await page.setValue("select[name=model]", "vit_b_32");
    await page.waitFor(
      `document.querySelectorAll("input[name=layers]").length === 13`,
      30_000,
    );
    const strip = await page.evaluate(
      `[...document.querySelectorAll("input[name=layers]:checked")].map((b) => b.value).join(",")`,
    );
    assert.equal(strip, "1,4,8,12");
    assert.equal(
      await page.evaluate(`document.getElementById("generate").disabled`),
      true,
    );
    assert.match(
      await page.evaluate(
        `document.getElementById("model-info").textContent`,
      ) as string,
      /vit_b_32: vit, 224² input, layers 0\.\.12, untrained weights\. Weights in sessions \(forward and gradient\): 699 MB for every layer/,
    );
  });
  await t.step(
    "a strip of every layer of the trained ViT on a sample of its data set",
    async () => {
      const sample = "../tests/fixtures/fmnist/sample_1.png";
      const got = await result(
        page,
        `${base}?model=fmnist_vit&layers=0-4&steps=150&image=${sample}`,
      );
      assert.deepEqual(got.layers.map((l) => l.layer), [0, 1, 2, 3, 4]);
      await screenshot(page, "strip.png", "window.scrollTo(0, 0)");
    },
  );
  await t.step(
    "attention out of every encoder: a click on the grid's attn row, then run",
    async () => {
      await page.click(`#ablations th[data-row="attn"]`);
      await page.click("#run");
      const ablated = await waitResult(page, 2);
      assert.deepEqual(ablated.settings.remove, ["attn"]);
      await screenshot(
        page,
        "ablation.png",
        `document.getElementById("history").scrollIntoView({ block: "end" })`,
      );
    },
  );
  await t.step(
    "generate, set with the mode and class pickers: Deno's generation, read as Trouser",
    async () => {
      const want = await denoGenerate(100);
      await page.click(`#ablations th[data-row="attn"]`); // the intact model again
      await page.setValue("select[name=mode]", "generate");
      await page.setValue("select[name=class]", "Trouser");
      await page.setValue("input[name=steps]", "100");
      await page.setValue("select[name=backend]", "wasm");
      await page.click("#run");
      const got = await waitResult(page, 3);
      const g = got.generate!;
      assert.deepEqual(got.settings.remove, []);
      assert.deepEqual(g.class, { index: 1, name: "Trouser" });
      assert.equal(g.final.steps, 100);
      near(g.final.logit, want.final.logit, 1e-4, "logit");
      near(g.final.probability, want.final.probability, 1e-4, "probability");
      assert.equal(g.predicted.name, "Trouser");
      assert.match(
        await page.evaluate("location.search") as string,
        /^\?mode=generate&model=fmnist_vit&steps=100&backend=wasm&class=Trouser/,
      );
      assert.equal(
        await page.evaluate(
          `document.querySelectorAll("#history .card").length`,
        ),
        3,
      );
      await screenshot(page, "generate.png", "window.scrollTo(0, 0)");
    },
  );
}

Deno.test("web page in headless Chromium: checks, per-encoder ablations, a strip of layers, the controls, downloads, generate, screenshots", async (t) => {
  const bin = chromiumPath();
  if (!bin) {
    console.log("skipped: no chromium (apt-get install chromium)");
    return;
  }
  const sizes = await build();
  console.log(`bundles: ${JSON.stringify(sizes)} bytes`);
  const server = serveStatic(ROOT);
  const base = `${server.url}web/`;
  const model = await loadModel(TINY, { weights: "fixture", backend: "wasm" });
  const target = fitToSize(await readImage(`${ROOT}assets/chelsea.png`), 32);
  const dir = await Deno.makeTempDir({ prefix: "vitrep_downloads_" });
  try {
    await withChromium(bin, async (page) => {
      await page.send("Emulation.setDeviceMetricsOverride", {
        width: 1280,
        height: 900,
        deviceScaleFactor: 1,
        mobile: false,
      });
      await checks(page, base, { model, target }, t);
      await t.step(
        "bad settings: the error in #result",
        () => badQueries(page, base),
      );
      await swapAndStop(page, base, { model, target }, t);
      await strip(page, base, { model, target }, t, dir);
      await trained(page, base, t);
      assert.deepEqual(page.errors, []);
    });
    await t.step(
      "WebGPU (SwiftShader's adapter): backend auto runs on it, figures near Deno's wasm",
      async () => {
        await withChromium(bin, async (page) => {
          await page.navigate(base);
          const adapter = await page.evaluate(
            `navigator.gpu?.requestAdapter().then((a) => !!a) ?? false`,
          );
          if (!adapter) {
            console.log(
              "skipped: this Chromium gives no WebGPU adapter with SwiftShader",
            );
            return;
          }
          const got = await result(
            page,
            `${base}?check=1&model=tiny&layer=2&backend=auto`,
          );
          assert.equal(got.backend, "webgpu");
          assert.equal(got.backendNote, "");
          sameFigures(got.check!, await checkFigures(model, 2), 1e-4);
          assert.deepEqual(page.errors, []);
        }, WEBGPU_ARGS);
      },
    );
  } finally {
    await model.release();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("web/settings.ts and web/engine.ts: the CLI's names and columns, the models' memory, layers bounded by the model", async () => {
  assert.deepEqual(REMOVE_NAMES, CLI_REMOVE_NAMES);
  assert.deepEqual(PARTS, BLOCK_PARTS);
  assert.deepEqual(INVERT_COLUMNS, CLI_INVERT_COLUMNS);
  assert.deepEqual(GENERATE_COLUMNS, CLI_GENERATE_COLUMNS);
  for (const [key, m] of Object.entries(MODELS)) {
    const dir = new URL(m.path, `file://${ROOT}web/`).pathname;
    const file = `${dir}/manifest.json`;
    const info = modelInfo(
      parseManifest(JSON.parse(await Deno.readTextFile(file)), file),
    );
    const mib = info.chainBytes[info.numLayers] / 2 ** 20;
    assert.ok(
      Math.abs(mib - m.sessionMiB) <= 0.01 * mib + 0.05,
      `${key}: ${m.sessionMiB} MiB stated, ${mib} MiB in its manifest`,
    );
    assert.ok(
      mib < 3.5 * 1024,
      `${key}: ${mib} MiB is over the wasm backend's 3.5 GiB`,
    );
    if (m.weights !== "untrained") {
      await Deno.stat(`${dir}/${m.weights}.safetensors`);
    }
    if (m.generate) assert.equal(info.classes?.length, 10);
    for (const s of samples(m.samples, info.classes ?? undefined)) {
      await Deno.stat(new URL(s.url, `file://${ROOT}web/`));
    }
  }
  const vit = modelInfo(
    parseManifest(
      JSON.parse(
        await Deno.readTextFile(`${ROOT}weights/vit_b_32/manifest.json`),
      ),
      "vit_b_32",
    ),
  );
  const s = readSettings(
    new URLSearchParams(
      "model=vit_b_32&layers=0-2,12&remove=layernorm@1-4&remove=mlp",
    ),
  );
  assert.deepEqual(s.layers, [0, 1, 2, 12]);
  assert.deepEqual(checkForModel(s, vit).ablations, [
    { remove: ["ln1", "ln2"], layers: [1, 2, 3, 4] },
    { remove: ["mlp"], layers: Array.from({ length: 12 }, (_, i) => i + 1) },
  ]);
  assert.deepEqual(
    checkForModel({ ...DEFAULTS, model: "vit_b_32" }, vit).layers,
    [1, 4, 8, 12],
  );
  assert.throws(
    () => checkForModel({ ...s, layers: [13] }, vit),
    /Invalid layers "13" \(layer 13\): expected 0\.\.12 for vit_b_32/,
  );
  // the worker's engine in Deno: a stopped run keeps the layers it finished
  const settings = {
    ...DEFAULTS,
    model: "tiny",
    layers: [1, 2],
    backend: "wasm" as const,
  };
  let progress = 0;
  const cache = new ModelCache();
  const r = await runJob({
    settings,
    modelUrl: TINY,
    weights: "fixture",
    ablations: [],
    swaps: [{ part: "conv_proj", weights: "fixture2" }],
    steps: 6,
    every: 2,
    image: `file://${ROOT}assets/chelsea.png`,
  }, {
    post: (m) => m.type === "progress" && progress++,
    stopped: () => progress >= 1, // after the first frame (step 2 of 6)
  }, cache);
  await cache.release();
  assert.equal(r.weights, "fixture + conv_proj from fixture2");
  assert.equal(r.stopped, true);
  assert.deepEqual(r.layers.map((l) => [l.layer, l.final.steps]), [[1, 3]]);
});

Deno.test("web/settings.ts: the page generates with the settings the Fashion-MNIST manifests recommend", async () => {
  for (const name of ["fmnist_vit", "fmnist_resnet"]) {
    const m = JSON.parse(
      await Deno.readTextFile(`${ROOT}weights/${name}/manifest.json`),
    );
    const r = m.recommended.generate;
    const sched = (t: string) => {
      const [start, end] = t.split(":").map(Number);
      return { start, end };
    };
    assert.deepEqual(FMNIST_GENERATE, {
      steps: r.steps,
      canvasSize: r.canvas,
      lr: sched(r.lr),
      sigma: sched(r.sigma),
    }, name);
    assert.equal(
      r["jitter-after"],
      r.steps / 2,
      `${name}: the page jitters after half the steps`,
    );
  }
});

Deno.test("web/serve.ts: JavaScript and wasm MIME types, isolation headers, a folder redirects to its slash, nothing outside the root", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vitrep_serve_" });
  await Deno.mkdir(`${dir}/root/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/secret.txt`, "outside");
  for (const f of ["a.wasm", "b.mjs", "c.ts", "d.js", "sub/index.html"]) {
    await Deno.writeTextFile(`${dir}/root/${f}`, "x");
  }
  const server = serveStatic(`${dir}/root`);
  const get = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${server.url}${path}`, init);
    await r.body?.cancel();
    return r;
  };
  try {
    const types: [string, RegExp][] = [
      ["a.wasm", /^application\/wasm$/],
      ["b.mjs", /^text\/javascript/],
      ["c.ts", /^text\/javascript/],
      ["d.js", /^text\/javascript/],
      ["sub/", /^text\/html/],
    ];
    for (const [path, type] of types) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get("content-type")!, type, path);
      assert.equal(r.headers.get("cross-origin-opener-policy"), "same-origin");
      assert.equal(
        r.headers.get("cross-origin-embedder-policy"),
        "require-corp",
      );
    }
    const folder = await get("sub", { redirect: "manual" });
    assert.equal(folder.status, 301);
    assert.equal(folder.headers.get("location"), `${server.url}sub/`);
    assert.equal((await get("../secret.txt")).status, 404); // the URL normalizes to /secret.txt
    assert.equal((await get("sub/%2E%2E/%2e%2e/secret.txt")).status, 404);
    assert.equal((await get("sub/..%2F..%2Fsecret.txt")).status, 400);
    assert.equal((await get("a.wasm", { method: "POST" })).status, 405);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
