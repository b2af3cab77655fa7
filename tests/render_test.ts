// The procedures: one step of each equals PyTorch's (fixtures from tools/make_fixtures.py),
// losses fall, schedules and blur behave, resumed runs equal uninterrupted ones.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  featureMatch,
  generate,
  gradientStep,
  invert,
  loadModel,
  resolveClass,
} from "../mod.ts";
import {
  cropAt,
  gaussianKernel,
  parseSchedule,
  scheduleAt,
} from "../src/optimize/mod.ts";
import { loadReference, relErr } from "./_fixtures.ts";

const TOL = 1e-5;

Deno.test("one inversion step equals PyTorch's (raw and normalized input)", async () => {
  const { dir, cases, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  const mean = model.manifest.input.mean, std = model.manifest.input.std;
  for (const c of cases.filter((c) => c.kind === "invert_step")) {
    const norm = c.normalize as boolean;
    const photo = get(c.photo!);
    const prep = (a: Float32Array) =>
      norm
        ? a.map((v, i) =>
          (v - mean[Math.floor(i / 1024)]) / std[Math.floor(i / 1024)]
        )
        : a;
    const target = await model.forward(prep(photo), { layer: 2 });
    const r = await gradientStep(
      model,
      get(c.a0!),
      featureMatch(2, target, { loss: "l1" }),
      c.lr!,
      c.sigma!,
      {
        normalize: norm,
      },
    );
    const e = relErr(r.image, get(c.output!));
    assert(e <= TOL, `normalize=${norm}: rel err ${e}`);
    assert(
      Math.abs(r.value - c.value!) <= TOL * Math.abs(c.value!),
      `value ${r.value} vs ${c.value}`,
    );
  }
  await model.release();
});

Deno.test("one jittered generation step equals PyTorch's", async () => {
  const { dir, cases, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  const c = cases.find((c) => c.kind === "generate_step")!;
  const r = await generate(model, c.index!, {
    constant: c.constant,
    steps: 1,
    jitterAfter: 0,
    canvasSize: 48,
    lr: { start: c.lr!, end: c.lr! },
    sigma: { start: c.sigma!, end: c.sigma! },
    normalize: false, // the fixture's step feeds raw [0,1] pixels, as the essay's code
    resume: { image: get(c.canvas!), step: 0 },
    cropPosition: () => c.crop as [number, number],
  });
  const e = relErr(r.canvas!.data, get(c.output!));
  assert(e <= TOL, `rel err ${e}`);
  assert(Math.abs(r.trace[0].loss - c.value!) <= TOL * Math.abs(c.value!));
  await model.release();
});

Deno.test("inversion lowers the embedding distance on the tiny model", async () => {
  const { dir, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  const r = await invert(model, get("step/photo"), {
    layer: 2,
    steps: 40,
    lr: { start: 0.2, end: 0.02 },
  });
  const first = r.trace[0].embeddingDistance, last = r.final.embeddingDistance;
  assert(last < 0.5 * first, `embedding distance ${first} → ${last}`);
  assertEquals(r.trace.length, 40);
  assert(r.noiseBaseline > 0 && Number.isFinite(r.final.psnr));
  await model.release();
});

Deno.test("generation raises the target logit on the tiny model", async () => {
  const { dir } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  const r = await generate(model, 3, {
    steps: 30,
    jitterAfter: 15,
    canvasSize: 48,
    constant: 20,
    lr: { start: 20, end: 20 },
    sigma: { start: 0.5, end: 0 },
  });
  assert(
    r.final.logit > r.trace[0].logit + 1,
    `logit ${r.trace[0].logit} → ${r.final.logit}`,
  );
  assertEquals(r.canvas!.data.length, 3 * 48 * 48);
  assertEquals([r.canvas!.height, r.canvas!.width], [48, 48]);
  assert(
    r.trace.slice(15).every((t) => t.crop !== null) &&
      r.trace.slice(0, 15).every((t) => t.crop === null),
  );
  await model.release();
});

Deno.test("a resumed run equals an uninterrupted one", async () => {
  const { dir, get } = await loadReference("tiny_vit");
  const model = await loadModel(dir, { weights: "fixture", backend: "native" });
  const opts = { layer: 3, steps: 12, seed: 4 };
  const full = await invert(model, get("step/photo"), opts);
  let snap: { image: Float32Array; step: number } | null = null;
  await invert(model, get("step/photo"), {
    ...opts,
    onStep: (s) => {
      if (s.step === 4) {
        snap = { image: s.image.slice(), step: 5 };
        return false;
      }
    },
  });
  const resumed = await invert(model, get("step/photo"), {
    ...opts,
    resume: snap!,
  });
  assertEquals(resumed.image, full.image);
  const gopts = { steps: 14, jitterAfter: 6, canvasSize: 40, seed: 2 };
  const gfull = await generate(model, 1, gopts);
  for (const stopAt of [3, 9]) {
    let gsnap: { image: Float32Array; step: number } | null = null;
    await generate(model, 1, {
      ...gopts,
      onStep: (s) => {
        if (s.step === stopAt) {
          gsnap = { image: s.image.slice(), step: stopAt + 1 };
          return false;
        }
      },
    });
    const g = await generate(model, 1, { ...gopts, resume: gsnap! });
    assertEquals(g.canvas, gfull.canvas, `stopped at ${stopAt}`);
  }
  await model.release();
});

Deno.test("blur kernels, schedules and crops", async () => {
  const k = gaussianKernel(3, 1);
  for (
    const [a, b] of [[k[0], 0.27406862], [k[1], 0.45186276], [k[2], 0.27406862]]
  ) {
    assert(Math.abs(a - b) < 1e-7, `${a} vs ${b}`);
  }
  assertEquals([...gaussianKernel(3, 0)], [0, 1, 0]);
  assertEquals(scheduleAt({ start: 2.4, end: 0 }, 0, 11), 2.4);
  assert(Math.abs(scheduleAt({ start: 2.4, end: 0 }, 5, 11) - 1.2) < 1e-12);
  assertEquals(scheduleAt({ start: 2.4, end: 0 }, 10, 11), 0);
  assertEquals(parseSchedule("0.5:0.05", "lr"), { start: 0.5, end: 0.05 });
  assertEquals(parseSchedule("3", "lr"), { start: 3, end: 3 });
  for (const bad of ["-1:0", "a:b", "1:2:3", ":1"]) {
    await assertRejects(
      () => parseSchedule(bad, "lr"),
      RangeError,
      `--lr "${bad}"`,
    );
  }
  const seen = new Set<string>();
  for (let s = 0; s < 200; s++) {
    const [y, x] = cropAt(0, s, 600, 224);
    assert(y >= 0 && x >= 0 && y <= 376 && x <= 376);
    seen.add(`${y},${x}`);
  }
  assert(seen.size > 190);
  assertEquals(cropAt(5, 17, 600, 224), cropAt(5, 17, 600, 224));
});

Deno.test("classes resolve by index, name and unique substring", async () => {
  const names = [
    "tench",
    "goldfish",
    "great white shark",
    "tiger shark",
    "Dalmatian",
  ];
  assertEquals(resolveClass("4", names), 4);
  assertEquals(resolveClass("dalmatian", names), 4);
  assertEquals(resolveClass("GOLD", names), 1);
  await assertRejects(
    () => resolveClass("shark", names),
    TypeError,
    'matches 2 classes: 2 "great white shark"',
  );
  await assertRejects(
    () => resolveClass("dalmation", names),
    TypeError,
    'did you mean 4 "Dalmatian"',
  );
  await assertRejects(() => resolveClass("9", names), RangeError, "0..4");
  const manifest = JSON.parse(
    await Deno.readTextFile(
      new URL("../weights/vit_b_32/manifest.json", import.meta.url),
    ),
  );
  assertEquals(resolveClass("dalmatian", manifest.categories), 251);
  assertEquals(resolveClass("tabby", manifest.categories), 281);
});
