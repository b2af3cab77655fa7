// The loop's one guard: runaway and non-finite runs are stopped from the numbers
// (never from error text), at the failing step, keeping the image before it;
// bad targets and resume images are refused up front; one normalize default.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { loadModel, type Model } from "../src/model/mod.ts";
import {
  classLogit,
  type Differentiable,
  DivergedError,
  featureMatch,
  generate,
  GENERATE_DEFAULTS,
  gradientStep,
  inputTransform,
  invert,
  INVERT_DEFAULTS,
  randomStart,
  RUNAWAY_BOUND,
  scheduleAt,
} from "../src/optimize/mod.ts";
import { loadReference } from "./_fixtures.ts";

const SIDE = 32; // the tiny fixture ViT's image size
const N = 3 * SIDE * SIDE;

async function tiny(): Promise<{ model: Model; photo: Float32Array }> {
  const { dir, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  return { model, photo: get("step/photo") };
}

const maxAbs = (a: Float32Array) =>
  a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Runs `fn`, which must throw a DivergedError, and returns it. */
async function diverged(fn: () => Promise<unknown>): Promise<DivergedError> {
  return await assertRejects(fn, DivergedError) as DivergedError;
}

/**
 * The model, except that its `at`-th input gradient (0-based, one per step)
 * has a NaN in the gradient ("grad"), sees a NaN output ("output"), or fails
 * with an error whose message mentions NaN ("throw").
 */
function faulty(
  model: Model,
  at: number,
  fault: "grad" | "output" | "throw",
): Differentiable {
  let calls = 0;
  return {
    manifest: model.manifest,
    forward: model.forward.bind(model),
    async inputGradient(x, objective, options) {
      if (calls++ !== at) {
        return await model.inputGradient(x, objective, options);
      }
      if (fault === "throw") {
        throw new RangeError(`Invalid tensor value "NaN" in a test double`);
      }
      if (fault === "output") {
        const nan = {
          ...objective,
          evaluate: (o: { data: Float32Array; dims: number[] }) =>
            objective.evaluate({ data: o.data.map(() => NaN), dims: o.dims }),
        };
        return await model.inputGradient(x, nan, options);
      }
      const r = await model.inputGradient(x, objective, options);
      r.grad[7] = NaN;
      return r;
    },
  };
}

Deno.test("DivergedError: a kind, one wording per kind, no CLI flag", () => {
  const img = new Float32Array(3);
  const e = new DivergedError(12, img, "objective NaN");
  assertEquals(e.kind, "non-finite");
  assertEquals(
    e.message,
    "Run diverged at step 12 (objective NaN): lower the learning rate",
  );
  const x = new DivergedError(3, img, "pixel 0 at 2e6", "exploded");
  assertEquals(x.kind, "exploded");
  assertEquals(
    x.message,
    "Run exploded at step 3 (pixel 0 at 2e6): lower the learning rate",
  );
  assert(x instanceof RangeError && x.lastImage === img && x.step === 3);
  assert(!e.message.includes("--") && !x.message.includes("--"));
});

Deno.test("invert: a huge learning rate explodes at a stated step, keeping the image before it", async () => {
  const { model, photo } = await tiny();
  // constant lr 1e6: the first update sends pixels to ~1e6
  const e0 = await diverged(() =>
    invert(model, photo, { layer: 2, steps: 10, lr: { start: 1e6, end: 1e6 } })
  );
  assertEquals([e0.kind, e0.step], ["exploded", 0]);
  assertEquals(e0.lastImage, randomStart(N, INVERT_DEFAULTS.seed));
  assert(/^Run exploded at step 0 \(.*beyond ±1000\)/.test(e0.message));

  // a rising schedule: step 0 (lr 0.01) is fine, step 1 (lr ≈ 1.1e7) runs away
  const lr = { start: 0.01, end: 1e8 };
  const seen: Float32Array[] = [];
  const e1 = await diverged(() =>
    invert(model, photo, {
      layer: 2,
      steps: 10,
      lr,
      onStep: (s) => void seen.push(s.image),
    })
  );
  assertEquals([e1.kind, e1.step, seen.length], ["exploded", 1, 1]);
  assertEquals(e1.lastImage, seen[0]);
  assert(maxAbs(e1.lastImage) < 2, `last image max ${maxAbs(e1.lastImage)}`);
  // the guard's verdict agrees with the step itself, redone from the kept image
  const target = await model.forward(
    inputTransform(model, true).forward(photo),
    { layer: 2 },
  );
  const redo = await gradientStep(
    model,
    e1.lastImage,
    featureMatch(2, target, { loss: "l1" }),
    scheduleAt(lr, 1, 10),
    scheduleAt(INVERT_DEFAULTS.sigma, 1, 10),
  );
  assert(
    maxAbs(redo.image) > RUNAWAY_BOUND && redo.image.every(Number.isFinite),
  );

  // the bound is what stops it: without one the same run "succeeds" far outside [0,1]
  const free = await invert(model, photo, {
    layer: 2,
    steps: 3,
    lr: { start: 1e6, end: 1e6 },
    runawayBound: Infinity,
  });
  assert(maxAbs(free.image.data) > 1e5, `max ${maxAbs(free.image.data)}`);
  await model.release();
});

Deno.test("generate: a huge learning rate explodes, before and after jitter", async () => {
  const { model } = await tiny();
  const base = { steps: 10, jitterAfter: 2, canvasSize: 40 };
  const huge = { start: 1e7, end: 1e7 };
  const e0 = await diverged(() => generate(model, 3, { ...base, lr: huge }));
  assertEquals([e0.kind, e0.step], ["exploded", 0]);
  assertEquals(e0.lastImage, randomStart(N, GENERATE_DEFAULTS.seed));
  // resumed on the canvas at step 5: the kept image is that canvas
  const canvas = randomStart(3 * 40 * 40, 9);
  const e5 = await diverged(() =>
    generate(model, 3, {
      ...base,
      lr: huge,
      resume: { image: canvas, step: 5 },
    })
  );
  assertEquals([e5.kind, e5.step], ["exploded", 5]);
  assertEquals(e5.lastImage, canvas);
  await model.release();
});

Deno.test("an update to ±Inf is non-finite at that step, with the image before it", async () => {
  const { model, photo } = await tiny();
  const e = await diverged(() =>
    invert(model, photo, { layer: 2, steps: 5, lr: { start: 1e38, end: 1e38 } })
  );
  assertEquals([e.kind, e.step], ["non-finite", 0]);
  assert(
    /^Run diverged at step 0 \(the update made pixel \d+ -?Infinity\)/.test(
      e.message,
    ),
    e.message,
  );
  assertEquals(e.lastImage, randomStart(N, INVERT_DEFAULTS.seed));
  await model.release();
});

Deno.test("a model that returns NaN is caught from the numbers at that step", async () => {
  const { model, photo } = await tiny();
  // NaN in the gradient of step 3 (invert)
  const seen: Float32Array[] = [];
  const e = await diverged(() =>
    invert(faulty(model, 3, "grad"), photo, {
      layer: 2,
      steps: 8,
      onStep: (s) => void seen.push(s.image),
    })
  );
  assertEquals([e.kind, e.step, seen.length], ["non-finite", 3, 3]);
  assert(e.message.includes("gradient NaN at pixel 7"), e.message);
  assertEquals(e.lastImage, seen[2]);
  assert(seen.every((im) => im.every(Number.isFinite)));
  // NaN in the output of step 2 (generate, after jitter): the objective is NaN
  const g = await diverged(() =>
    generate(faulty(model, 2, "output"), 1, {
      steps: 6,
      jitterAfter: 1,
      canvasSize: 40,
    })
  );
  assertEquals([g.kind, g.step, g.lastImage.length], [
    "non-finite",
    2,
    3 * 40 * 40,
  ]);
  assert(g.message.includes("objective NaN"), g.message);
  assert(g.lastImage.every(Number.isFinite));
  // an error that merely mentions NaN is the model's error, passed on unchanged
  const err = await assertRejects(
    () => invert(faulty(model, 1, "throw"), photo, { layer: 2, steps: 4 }),
    RangeError,
    "in a test double",
  );
  assert(!(err instanceof DivergedError));
  await model.release();
});

Deno.test("objectives refuse a NaN or ±Inf target, naming its index", async () => {
  const t = new Float32Array(10).fill(1);
  t[6] = NaN;
  await assertRejects(
    () => featureMatch(2, t),
    RangeError,
    'Invalid target value "NaN" at index 6',
  );
  t[6] = 1;
  t[2] = -Infinity;
  await assertRejects(
    () => featureMatch(2, { data: t, dims: [10] }, { loss: "l1" }),
    RangeError,
    'Invalid target value "-Infinity" at index 2',
  );
  await assertRejects(
    () => classLogit(1, { constant: NaN }),
    RangeError,
    'Invalid constant "NaN"',
  );
});

Deno.test("one normalize default: gradientStep normalizes like invert and generate", async () => {
  const { model, photo } = await tiny();
  assertEquals(INVERT_DEFAULTS.normalize, true);
  assertEquals(GENERATE_DEFAULTS.normalize, true);
  const a = randomStart(N, 1);
  const obj = classLogit(2, { constant: 10 });
  const plain = await gradientStep(model, a, obj, 0.1, 1);
  const norm = await gradientStep(model, a, obj, 0.1, 1, { normalize: true });
  const raw = await gradientStep(model, a, obj, 0.1, 1, { normalize: false });
  assertEquals(plain.image, norm.image);
  assert(plain.value !== raw.value, "normalization changes the model's input");
  // invert's one step is gradientStep with the defaults, from invert's start
  const r = await invert(model, photo, { layer: 2, steps: 1 });
  const target = await model.forward(
    inputTransform(model, true).forward(photo),
    { layer: 2 },
  );
  const one = await gradientStep(
    model,
    randomStart(N, INVERT_DEFAULTS.seed),
    featureMatch(2, target, { loss: INVERT_DEFAULTS.loss }),
    INVERT_DEFAULTS.lr.start,
    INVERT_DEFAULTS.sigma.start,
  );
  assertEquals(r.image.data, one.image);
  await model.release();
});

Deno.test("a resume image that is non-finite, beyond the bound or misplaced is refused up front", async () => {
  const { model, photo } = await tiny();
  const bad = randomStart(N, 0);
  bad[11] = NaN;
  for (
    const run of [
      () =>
        invert(model, photo, {
          layer: 2,
          steps: 4,
          resume: { image: bad, step: 1 },
        }),
      () => generate(model, 1, { steps: 4, resume: { image: bad, step: 1 } }),
    ]
  ) {
    const e = await assertRejects(
      run,
      RangeError,
      'Invalid resume image value "NaN" at index 11',
    );
    assert(!(e instanceof DivergedError));
  }
  const far = randomStart(N, 0);
  far[4] = 5e3;
  await assertRejects(
    () =>
      invert(model, photo, {
        layer: 2,
        steps: 4,
        resume: { image: far, step: 1 },
      }),
    RangeError,
    'value "5000" at index 4: expected finite numbers within ±1000',
  );
  await assertRejects(
    () =>
      invert(model, photo, {
        layer: 2,
        steps: 4,
        resume: { image: randomStart(N, 0), step: 9 },
      }),
    RangeError,
    'Invalid resume step "9": expected an integer in 0..4',
  );
  await assertRejects(
    () => invert(model, photo, { layer: 2, steps: 4, runawayBound: 0 }),
    RangeError,
    'Invalid runawayBound "0"',
  );
  await model.release();
});
