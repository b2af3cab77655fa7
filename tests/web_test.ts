// The browser page (web/) in a real headless Chromium: built by web/build.ts
// (`deno task web`), served from the repository root on 127.0.0.1, opened on
// the tiny fixture model. Its forward output and input gradient must equal
// Deno's, its 20-step inversion must match Deno's, and nothing may log an
// error. Writes docs/web.png (the README's screenshot: the trained
// Fashion-MNIST ViT after 150 steps).
import assert from "node:assert/strict";
import { loadModel } from "../src/model/mod.ts";
import { decodeImage, fitToSize, readImage } from "../src/io/mod.ts";
import { invert } from "../src/optimize/mod.ts";
import { type CheckFigures, checkFigures } from "../web/check.ts";
import { serveStatic } from "../web/serve.ts";
import { chromiumPath, type Page, withChromium } from "./_chromium.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TINY = `${ROOT}tests/fixtures/tiny_vit`;
/** float32 agreement: |page − Deno| ≤ 1e-6 · max(1, max |Deno|). */
const TOL = 1e-6;

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function scale(v: readonly number[]): number {
  return Math.max(1, ...v.map(Math.abs));
}

async function build(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "web/build.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr).slice(-2000));
}

/** Opens the page with a query and returns the JSON it writes into #result. */
async function result(
  page: Page,
  url: string,
  ok = true,
): Promise<Record<string, unknown>> {
  await page.navigate(url);
  await page.waitFor(
    `document.getElementById("result").dataset.state`,
    90_000,
  );
  const json = JSON.parse(
    await page.evaluate(
      `document.getElementById("result").textContent`,
    ) as string,
  );
  if (ok) assert.equal(json.error, undefined, `${url}: ${json.error}`);
  return json;
}

Deno.test("web page in headless Chromium: the tiny model's outputs and gradient equal Deno's, a 20-step inversion fills #result", async (t) => {
  const bin = chromiumPath();
  if (!bin) {
    console.log("skipped: no chromium (apt-get install chromium)");
    return;
  }
  await build();
  const server = serveStatic(ROOT);
  const model = await loadModel(TINY, { weights: "fixture", backend: "wasm" });
  try {
    await withChromium(bin, async (page) => {
      await page.send("Emulation.setDeviceMetricsOverride", {
        width: 1000,
        height: 640,
        deviceScaleFactor: 1,
        mobile: false,
      });
      await t.step("?check=1: forward output and input gradient", async () => {
        const got = await result(
          page,
          `${server.url}web/?check=1&model=tiny&layer=2&backend=wasm`,
        ) as unknown as CheckFigures;
        const want = await checkFigures(model, 2);
        assert.ok(want.grad.some((g) => g !== 0));
        const f = maxAbsDiff(got.forward, want.forward);
        const g = maxAbsDiff(got.grad, want.grad);
        assert.ok(f <= TOL * scale(want.forward), `forward differs by ${f}`);
        assert.ok(g <= TOL * scale(want.grad), `gradient differs by ${g}`);
        assert.ok(
          Math.abs(got.value - want.value) <=
            TOL * Math.max(1, Math.abs(want.value)),
        );
      });
      await t.step(
        "?remove=: the page's ablations are Deno's (backend auto: wasm)",
        async () => {
          const got = await result(
            page,
            `${server.url}web/?check=1&model=tiny&layer=2&remove=attention,residual&backend=auto`,
          ) as unknown as CheckFigures;
          const ablated = model.withAblations([
            { remove: ["attn", "res1", "res2"], layers: "all" },
          ]);
          const want = await checkFigures(ablated, 2);
          const intact = await checkFigures(model, 2);
          assert.ok(maxAbsDiff(want.forward, intact.forward) > 1e-3);
          assert.ok(
            maxAbsDiff(got.forward, want.forward) <= TOL * scale(want.forward),
          );
          assert.ok(maxAbsDiff(got.grad, want.grad) <= TOL * scale(want.grad));
        },
      );
      await t.step("bad query parameters: the error in #result", async () => {
        const got = await result(page, `${server.url}web/?steps=-1`, false);
        assert.match(
          got.error as string,
          /Invalid steps "-1": expected 0\.\.1000000/,
        );
        const bad = await result(page, `${server.url}web/?model=nope`, false);
        assert.match(
          bad.error as string,
          /Invalid model "nope": expected one of fmnist_vit, tiny, vit_b_32/,
        );
      });
      await t.step("a 20-step inversion equals Deno's", async () => {
        const got = await result(
          page,
          `${server.url}web/?model=tiny&layer=1&steps=20&backend=wasm`,
        );
        const target = fitToSize(
          await readImage(`${ROOT}assets/chelsea.png`),
          model.manifest.image_size,
        );
        const want = await invert(model, target.data, { layer: 1, steps: 20 });
        const final = got.final as typeof want.final;
        assert.equal(final.steps, 20);
        assert.ok(
          Math.abs(final.psnr - want.final.psnr) < 1e-3,
          `${final.psnr} vs ${want.final.psnr}`,
        );
        assert.ok(
          Math.abs(final.embeddingDistance - want.final.embeddingDistance) <=
            1e-4 * want.final.embeddingDistance,
        );
        assert.ok(
          Math.abs((got.noiseBaseline as number) - want.noiseBaseline) <=
            1e-4 * want.noiseBaseline,
        );
        const drawn = await page.evaluate(
          `document.getElementById("current").width`,
        );
        assert.equal(drawn, model.manifest.image_size);
      });
      // the README's screenshot: the trained Fashion-MNIST ViT, 150 steps
      const shown = await result(
        page,
        `${server.url}web/?model=fmnist_vit&layer=1&steps=150`,
      );
      assert.equal((shown.final as { steps: number }).steps, 150);
      assert.deepEqual(page.errors, []);
      const shot = await page.send("Page.captureScreenshot", { format: "png" });
      const png = Uint8Array.from(
        atob(shot.data as string),
        (c) => c.charCodeAt(0),
      );
      assert.equal(decodeImage(png, "screenshot").width, 1000);
      await Deno.writeFile(`${ROOT}docs/web.png`, png);
    });
  } finally {
    await model.release();
    await server.shutdown();
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
