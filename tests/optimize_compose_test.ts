// Objectives compose (weighted, named sums of layer and image objectives) and
// transforms are a list ([jitter, blur, normalize]); the procedures are built
// from both and give the same numbers as before.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { loadModel, type Model } from "../src/model/mod.ts";
import {
  type AnyObjective,
  blur,
  canvasParam,
  classLogit,
  cropAt,
  featureMatch,
  generate,
  type ImageObjective,
  imageParam,
  inputTransform,
  invert,
  jitter,
  named,
  type ObjectiveGradient,
  objectiveGradient,
  optimize,
  randomStart,
  scaled,
  stages,
  sum,
  totalVariation,
} from "../src/optimize/mod.ts";
import { loadReference, relErr } from "./_fixtures.ts";

const SIDE = 32; // the tiny fixture ViT's image size
const N = 3 * SIDE * SIDE;

async function tiny(): Promise<{ model: Model; photo: Float32Array }> {
  const { dir, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  return { model, photo: get("step/photo") };
}

/** Total variation of a [3,side,side] image, straight from the definition. */
function tvOf(x: Float32Array, side: number): number {
  let s = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < side; y++) {
      for (let k = 0; k < side; k++) {
        const i = c * side * side + y * side + k;
        if (y + 1 < side) s += Math.abs(x[i + side] - x[i]);
        if (k + 1 < side) s += Math.abs(x[i + 1] - x[i]);
      }
    }
  }
  return s;
}

Deno.test("totalVariation: its gradient matches central finite differences (l1 and l2, a batch of 2, H ≠ W)", () => {
  const dims = [2, 3, 5, 6];
  const x = randomStart(2 * 3 * 5 * 6, 7, 0.5, 0.2);
  for (const loss of ["l1", "l2"] as const) {
    const tv = totalVariation({ loss });
    const r = tv.evaluate({ data: x, dims });
    assertEquals(r.values!.length, 2);
    assert(Math.abs(r.values![0] + r.values![1] - r.value) < 1e-12);
    // each image's value is its own total variation
    const first = tv.evaluate({ data: x.slice(0, 90), dims: [1, 3, 5, 6] });
    assert(Math.abs(first.value - r.values![0]) < 1e-12);
    // Tolerance: the value is summed in float64 from float32 pixels and the
    // gradient is stored as float32 (relative rounding 2⁻²⁴ ≈ 6e-8). The
    // difference quotient divides by the float32 step actually taken; l2 is
    // quadratic (central differences exact up to rounding), l1 is piecewise
    // linear (exact away from its kinks: pixels with a neighbour closer than
    // 2h are skipped). So 1e-5·(1 + |g|) bounds float32 rounding with room.
    const h = 1e-3;
    let checked = 0;
    for (let i = 0; i < x.length; i++) {
      const plane = i % 30, y = Math.floor(plane / 6), k = plane % 6;
      const near = [[y > 0, -6], [y < 4, 6], [k > 0, -1], [k < 5, 1]]
        .some(([has, d]) =>
          has && Math.abs(x[i + (d as number)] - x[i]) < 2 * h
        );
      if (loss === "l1" && near) continue;
      const up = x.slice(), down = x.slice();
      up[i] += h;
      down[i] -= h;
      const fd = (tv.evaluate({ data: up, dims }).value -
        tv.evaluate({ data: down, dims }).value) / (up[i] - down[i]);
      const g = r.grad[i];
      assert(
        Math.abs(fd - g) <= 1e-5 * (1 + Math.abs(g)),
        `${loss} pixel ${i}: finite difference ${fd}, gradient ${g}`,
      );
      checked++;
    }
    assert(checked > 120, `${loss}: only ${checked} pixels checked`);
  }
  assertEquals(
    [
      ...totalVariation().evaluate({ data: new Float32Array(4), dims: [2, 2] })
        .grad,
    ],
    [0, 0, 0, 0],
    "|·|'s gradient at 0 is 0",
  );
  assert(
    (() => {
      try {
        totalVariation({ loss: "l3" as "l1" });
      } catch (e) {
        return e instanceof TypeError && /Invalid loss "l3"/.test(e.message);
      }
    })(),
  );
});

Deno.test("a weighted sum: value Σ wᵢ·vᵢ, gradient Σ wᵢ·gᵢ, each part's value reported", async () => {
  const { model, photo } = await tiny();
  try {
    const maps = [inputTransform(model, true)];
    const target = await model.forward(maps[0].forward(photo), { layer: 2 });
    const other = await model.forward(
      maps[0].forward(photo.map((v) => 1 - v)),
      {
        layer: 2,
      },
    );
    const image = randomStart(N, 3);
    // two parts on layer 2 (one pass), one on the logits, one on the image
    const terms: [string, number, AnyObjective][] = [
      ["l1(layer 2)", 1, featureMatch(2, target, { loss: "l1" })],
      ["other", 0.5, featureMatch(2, other)],
      ["|100 - logit[1]|", -0.3, classLogit(1)],
      ["tv(l2)", 0.02, totalVariation({ loss: "l2" })],
    ];
    const objective = sum([
      terms[0][2],
      named("other", scaled(0.5, terms[1][2])),
      scaled(-0.3, terms[2][2]),
      scaled(0.02, terms[3][2]),
    ]);
    assertEquals(
      objective.name,
      "l1(layer 2) + 0.5·other + -0.3·|100 - logit[1]| + 0.02·tv(l2)",
    );
    const r = await objectiveGradient(model, image, SIDE, objective, { maps });
    const alone: ObjectiveGradient[] = [];
    for (const [, , t] of terms) {
      alone.push(await objectiveGradient(model, image, SIDE, t, { maps }));
    }
    assertEquals(
      r.parts!.map((p) => [p.name, p.weight]),
      terms.map((t) => [t[0], t[1]]),
    );
    let value = 0;
    const grad = new Float64Array(N);
    terms.forEach(([, w], k) => {
      // a part's reported value is its own, unweighted
      assertEquals(r.parts![k].value, alone[k].value, terms[k][0]);
      value += w * alone[k].value;
      for (let i = 0; i < N; i++) grad[i] += w * alone[k].grad[i];
    });
    assert(Math.abs(r.value - value) <= 1e-12 * Math.abs(value));
    assertEquals(r.values, [r.value]);
    // float32 gradients summed in another order (before the normalization's
    // VJP rather than after): equal to float32 rounding
    const e = relErr(r.grad, Float32Array.from(grad));
    assert(e < 1e-6, `gradient rel err ${e}`);
    assertEquals(r.output.dims, alone[0].output.dims, "the first layer read");
  } finally {
    await model.release();
  }
});

Deno.test("an image-only objective never runs the model; bad sums and parts are refused", async () => {
  const model = {
    inputGradient: () => {
      throw new Error("the model ran");
    },
  };
  const x = randomStart(3 * 4 * 4, 1);
  const r = await objectiveGradient(model, x, 4, scaled(2, totalVariation()));
  assert(Math.abs(r.value - 2 * tvOf(x, 4)) < 1e-9);
  assertEquals(r.output.data, x);
  const bad: ImageObjective = {
    name: "short",
    layer: "image",
    evaluate: () => ({ value: 0, grad: new Float32Array(3) }),
  };
  await assertRejects(
    () => objectiveGradient(model, x, 4, sum([bad])),
    RangeError,
    'Objective "short" gave a gradient of 3 values: expected one per value it reads, 48',
  );
  for (
    const [make, text] of [
      [() => sum([]), "Invalid sum of 0 objectives"],
      [
        () => sum([totalVariation(), totalVariation()]),
        'two parts are named "tv(l1)"',
      ],
      [() => scaled(Infinity, totalVariation()), 'Invalid weight "Infinity"'],
      [
        () => named("both", sum([totalVariation(), classLogit(1)])),
        "it has 2 parts: expected one",
      ],
    ] as const
  ) {
    await assertRejects(make, RangeError, text);
  }
  await assertRejects(
    () => sum([{ name: "x" } as unknown as ImageObjective]),
    TypeError,
    'Invalid objective "x"',
  );
  // nested sums flatten, weights multiply
  const nested = scaled(2, sum([classLogit(1), scaled(3, totalVariation())]));
  assertEquals(nested.parts.map((p) => p.weight), [2, 6]);
});

Deno.test("invert with a regularizer: weight 0 gives the plain run bit for bit; a weight smooths the image and the trace has each part", async () => {
  const { model, photo } = await tiny();
  try {
    const settings = { layer: 2, steps: 6, seed: 2 };
    const plain = await invert(model, photo, settings);
    const zero = await invert(model, photo, {
      ...settings,
      regularizer: scaled(0, totalVariation()),
    });
    assertEquals(zero.image.data, plain.image.data);
    assertEquals(zero.trace.map((t) => t.loss), plain.trace.map((t) => t.loss));
    assertEquals(Object.keys(zero.trace[0].parts!), ["l1(layer 2)", "tv(l1)"]);
    assert(!("parts" in plain.trace[0]), "no parts without a regularizer");
    const smooth = await invert(model, photo, {
      ...settings,
      regularizer: scaled(0.05, totalVariation()),
    });
    const t = smooth.trace[3];
    assert(
      Math.abs(
        t.loss - (t.parts!["l1(layer 2)"] + 0.05 * t.parts!["tv(l1)"]),
      ) <=
        1e-9 * t.loss,
    );
    assert(
      tvOf(smooth.image.data, SIDE) < tvOf(plain.image.data, SIDE),
      "the penalty lowers the total variation",
    );
  } finally {
    await model.release();
  }
});

Deno.test("generate is the loop over a canvas with transforms [jitter, blur, normalize]", async () => {
  const { model } = await tiny();
  try {
    const o = { steps: 9, jitterAfter: 4, canvasSize: 44, seed: 3 };
    const g = await generate(model, 2, o);
    const param = canvasParam(randomStart(N, o.seed), 0, {
      size: SIDE,
      canvasSize: o.canvasSize,
      enlargeAt: o.jitterAfter,
    });
    const run = await optimize(model, {
      param,
      objective: classLogit(2),
      transforms: [
        jitter({ size: SIDE, from: o.jitterAfter, seed: o.seed }),
        blur({ start: 2.4, end: 0 }),
        inputTransform(model, true),
      ],
      steps: o.steps,
      lr: { start: 0.02, end: 0.002 },
      record: (s) => [s.value, s.sigma, s.view.crop],
    });
    assertEquals(param.canvas, g.canvas!.data);
    assertEquals(run.trace, g.trace.map((r) => [r.loss, r.sigma, r.crop]));
    assertEquals(g.trace[5].crop, cropAt(o.seed, 5, o.canvasSize, SIDE));
    const tv = await generate(model, 2, {
      ...o,
      steps: 5,
      regularizer: scaled(0.01, totalVariation()),
    });
    assertEquals(Object.keys(tv.trace[4].parts!), [
      "|100 - logit[2]|",
      "tv(l1)",
    ]);
  } finally {
    await model.release();
  }
});

Deno.test("the list's order is where a projection acts: after the jitter on the window, before it on the whole canvas", async () => {
  const { model } = await tiny();
  try {
    const start = randomStart(3 * 40 * 40, 4);
    const at: [number, number] = [3, 5];
    const run = async (order: "window" | "canvas") => {
      const param = imageParam(start, 40);
      const j = jitter({ size: SIDE, position: () => at });
      const b = blur({ start: 1, end: 1 });
      await optimize(model, {
        param,
        objective: classLogit(0),
        transforms: [
          ...(order === "window" ? [j, b] : [b, j]),
          inputTransform(model, true),
        ],
        steps: 1,
        lr: { start: 0.01, end: 0.01 },
        record: () => 0,
      });
      return param.data;
    };
    const win = await run("window"), canvas = await run("canvas");
    const inside = (i: number) => {
      const y = Math.floor((i % 1600) / 40), x = i % 40;
      return y >= at[0] && y < at[0] + SIDE && x >= at[1] && x < at[1] + SIDE;
    };
    let outsideSame = true, outsideBlurred = false;
    for (let i = 0; i < start.length; i++) {
      if (inside(i)) continue;
      outsideSame &&= win[i] === start[i];
      outsideBlurred ||= canvas[i] !== start[i];
    }
    assert(
      outsideSame,
      "blur after jitter leaves the canvas outside the window",
    );
    assert(outsideBlurred, "blur before jitter blurs the whole canvas");
  } finally {
    await model.release();
  }
});

Deno.test("transform lists are checked: maps last, and no sigma next to a list", async () => {
  const norm = {
    name: "normalize",
    forward: (x: Float32Array) => x,
    vjp: (g: Float32Array) => g,
  };
  await assertRejects(
    () => stages([norm, blur({ start: 1, end: 0 })]),
    RangeError,
    '"blur" comes after the map "normalize"',
  );
  await assertRejects(
    () => stages([{ name: "odd" } as unknown as typeof norm]),
    TypeError,
    'Invalid transform "odd"',
  );
  await assertRejects(
    () => blur({ start: -1, end: 0 }),
    RangeError,
    'Invalid sigma "-1:0"',
  );
  await assertRejects(
    () => jitter({ size: 0 }),
    RangeError,
    'Invalid jitter size "0"',
  );
  const model = {
    manifest: { image_size: 4 },
    inputGradient: () => Promise.reject(new Error("not reached")),
    forward: () => Promise.reject(new Error("not reached")),
  } as unknown as Model;
  await assertRejects(
    () =>
      optimize(model, {
        param: imageParam(new Float32Array(48), 4),
        objective: totalVariation(),
        transforms: [blur({ start: 1, end: 0 })],
        sigma: { start: 1, end: 0 },
        steps: 2,
        lr: { start: 1, end: 1 },
        record: () => 0,
      }),
    TypeError,
    'Invalid options "sigma" next to "transforms"',
  );
  // an image objective with no map: TV alone smooths noise, the model never runs
  const param = imageParam(randomStart(48, 5, 0.5, 0.3), 4);
  const before = tvOf(param.data, 4);
  const trace = await optimize(model, {
    param,
    objective: totalVariation({ loss: "l2" }),
    transforms: [],
    steps: 5,
    lr: { start: 0.05, end: 0.05 },
    record: (s) => s.value,
  });
  assert(trace.trace[4] < trace.trace[0] && tvOf(param.data, 4) < before);
});
