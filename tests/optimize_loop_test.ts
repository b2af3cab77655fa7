// The one loop: invert is a configuration of it, onStep stops it, its parts check their input.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { loadModel, type Model } from "../src/model/mod.ts";
import {
  classLogit,
  featureMatch,
  generate,
  imageParam,
  inputTransform,
  invert,
  jitterParam,
  normalizeTransform,
  optimize,
  randomStart,
} from "../src/optimize/mod.ts";
import { loadReference, relErr } from "./_fixtures.ts";
import { readImage, writePng } from "../src/io/mod.ts";

const N = 3 * 32 * 32; // the tiny fixture ViT's image

async function tiny(): Promise<{ model: Model; photo: Float32Array }> {
  const { dir, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  return { model, photo: get("step/photo") };
}

Deno.test("invert is the loop with the image as parameterization and a feature-match objective", async () => {
  const { model, photo } = await tiny();
  const settings = {
    steps: 6,
    lr: { start: 0.2, end: 0.02 },
    sigma: { start: 1, end: 0 },
  };
  const r = await invert(model, photo, { layer: 2, seed: 5, ...settings });
  const transform = inputTransform(model, true);
  const target = await model.forward(transform.forward(photo), { layer: 2 });
  const param = imageParam(randomStart(N, 5), 32);
  const run = await optimize(model, {
    param,
    objective: featureMatch(2, target, { loss: "l1" }),
    ...settings,
    record: (s) => s.value,
  });
  assertEquals(param.data, r.image.data);
  assertEquals(run.trace, r.trace.map((t) => t.loss));
  assertEquals(run.next, 6);
  await model.release();
});

Deno.test("onStep stops the loop after the step it returns false for", async () => {
  const { model } = await tiny();
  const param = imageParam(randomStart(N, 0), 32);
  const seen: number[] = [];
  const run = await optimize(model, {
    param,
    objective: classLogit(1, { constant: 10 }),
    start: 2,
    steps: 9,
    lr: { start: 1, end: 1 },
    sigma: { start: 0, end: 0 },
    record: (s) => s.step,
    onStep: (step, p) => {
      seen.push(step);
      assert(p === param);
      return step !== 4;
    },
  });
  assertEquals(seen, [2, 3, 4]);
  assertEquals(run, { trace: [2, 3, 4], next: 5 });
  for (
    const [bad, text] of [
      [{ steps: 0 }, 'Invalid steps "0"'],
      [{ start: 10 }, 'Invalid start "10": expected an integer in 0..9'],
      [{ lr: { start: -1, end: 0 } }, 'Invalid lr "-1:0"'],
      [{ runawayBound: NaN }, 'Invalid runawayBound "NaN"'],
    ] as const
  ) {
    await assertRejects(
      () =>
        optimize(model, {
          param,
          objective: classLogit(1),
          steps: 9,
          lr: { start: 1, end: 1 },
          sigma: { start: 0, end: 0 },
          record: () => 0,
          ...bad,
        }),
      RangeError,
      text,
    );
  }
  await model.release();
});

Deno.test("the jitter parameterization: crops, paste-back, bad crops and resume sizes", async () => {
  const start = randomStart(3 * 4 * 4, 1);
  const p = jitterParam(start, 0, {
    size: 4,
    canvasSize: 6,
    jitterAfter: 1,
    cropPosition: (k) => [k - 1, 2],
  });
  assertEquals(p.view(0), { image: start, crop: null });
  assertEquals([p.side, p.canvas], [4, null]);
  const v = p.view(1);
  assertEquals([v.crop, p.side, p.canvas?.length], [[0, 2], 6, 3 * 6 * 6]);
  const before = p.data;
  const next = new Float32Array(3 * 4 * 4).fill(9);
  p.update(v, next);
  assert(p.data !== before, "an update makes a new canvas");
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const i = c * 36 + y * 6 + x;
        const inside = y < 4 && x >= 2;
        assertEquals(p.data[i], inside ? 9 : before[i], `pixel ${c},${y},${x}`);
      }
    }
  }
  await assertRejects(
    () => p.view(4), // crop [3, 2] of a 4² window leaves the 6² canvas
    RangeError,
    "Invalid crop [3,2] at step 4",
  );
  await assertRejects(
    () =>
      jitterParam(start, 3, {
        size: 4,
        canvasSize: 6,
        jitterAfter: 1,
        cropPosition: () => [0, 0],
      }),
    RangeError,
    "Invalid resume image of 48 values at step 3: expected 3x6x6",
  );
});

Deno.test("normalizeTransform: its VJP is the transpose of its Jacobian", async () => {
  const t = normalizeTransform(
    { mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.5] },
    2,
  );
  const x = randomStart(12, 3), u = randomStart(12, 4, 0, 1);
  const h = 1e-2;
  // forward is affine: (f(x + h·u) − f(x)) / h = J·u exactly up to rounding
  const fx = t.forward(x), fxu = t.forward(x.map((v, i) => v + h * u[i]));
  const ju = fx.map((v, i) => (fxu[i] - v) / h);
  const g = randomStart(12, 5, 0, 1);
  const dot = (a: Float32Array, b: Float32Array) =>
    a.reduce((s, v, i) => s + v * b[i], 0);
  const lhs = dot(g, ju), rhs = dot(t.vjp(g.slice()), u);
  assert(Math.abs(lhs - rhs) <= 1e-4 * Math.abs(rhs), `${lhs} vs ${rhs}`);
  const inv = new Float32Array(12).map((_, i) => 1 / [0.2, 0.3, 0.5][i >> 2]);
  assert(relErr(t.vjp(new Float32Array(12).fill(1)), inv) < 1e-7);
  await assertRejects(
    () => normalizeTransform({ mean: [0, 0, 0], std: [1, 0, 1] }, 2),
    RangeError,
    "3 positive stds",
  );
});

Deno.test("invert and generate return images with their shape: writePng(r.image) writes the representation", async () => {
  const { model, photo } = await tiny();
  try {
    const r = await invert(model, photo, { layer: 1, steps: 2 });
    const g = await generate(model, 1, {
      steps: 3,
      jitterAfter: 2,
      canvasSize: 40,
    });
    const dir = await Deno.makeTempDir();
    for (
      const [name, img, side] of [["rep", r.image, 32], ["gen", g.image, 32], [
        "canvas",
        g.canvas!,
        40,
      ]] as const
    ) {
      assertEquals([img.channels, img.height, img.width], [3, side, side]);
      await writePng(`${dir}/${name}.png`, img);
      const back = await readImage(`${dir}/${name}.png`);
      assertEquals([back.height, back.width], [side, side]);
      // 8-bit PNG: within half a level of the clamped values
      const worst = img.data.reduce(
        (m, v, i) =>
          Math.max(m, Math.abs(Math.min(1, Math.max(0, v)) - back.data[i])),
        0,
      );
      assert(worst <= 0.5 / 255 + 1e-6, `${name}: off by ${worst}`);
    }
    await Deno.remove(dir, { recursive: true });
  } finally {
    await model.release();
  }
});
