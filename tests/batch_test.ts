// The batch axis: B images through one chain give, per image, what each image gives alone
// (forward outputs, objective values and input gradients), on every CPU backend and every
// token family; models without a batch axis refuse a batch naming what to do.
import { assert, assertEquals } from "./_assert.ts";
import { exists, ROOT, run, TINY, tmp } from "./_cli.ts";
import { relErr } from "./_fixtures.ts";
import {
  classLogit,
  featureMatch,
  invert,
  invertBatch,
  loadModel,
  type Model,
} from "../mod.ts";
import { decodeNpy } from "../src/io/mod.ts";
import { randomStart } from "../src/optimize/mod.ts";

const TOL = 1e-5; // max |batched − alone| / max |alone|, float32

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function checkBatch(model: Model, layer: number, label: string) {
  const size = model.manifest.image_size;
  const n = 3 * size * size;
  const images = [0, 1, 2].map((s) => randomStart(n, 10 + s, 0.5, 0.25));
  const targets = [0, 1, 2].map((s) => randomStart(n, 20 + s, 0.5, 0.25));
  const x = concat(images);
  // forward
  for (const at of [layer, "logits"] as const) {
    const whole = await model.forward(x, { layer: at });
    assertEquals(whole.dims[0], 3, `${label}: batch dims ${whole.dims}`);
    const per = whole.data.length / 3;
    for (let i = 0; i < 3; i++) {
      const alone = await model.forward(images[i], { layer: at });
      assertEquals(alone.dims.slice(1), whole.dims.slice(1));
      const r = relErr(
        whole.data.subarray(i * per, (i + 1) * per),
        alone.data,
      );
      assert(r <= TOL, `${label} forward ${at} image ${i}: ${r}`);
    }
  }
  // input gradients of a feature match (one target per image) and of a class logit
  const outs = await Promise.all(
    targets.map((t) => model.forward(t, { layer })),
  );
  const batchTarget = concat(outs.map((o) => o.data));
  for (
    const [name, whole, alone] of [
      [
        "l1",
        featureMatch(layer, batchTarget, { loss: "l1" }),
        (i: number) => featureMatch(layer, outs[i].data, { loss: "l1" }),
      ],
      [
        "l2",
        featureMatch(layer, batchTarget),
        (i: number) => featureMatch(layer, outs[i].data),
      ],
      [
        "logit",
        classLogit(1, { constant: 5 }),
        () => classLogit(1, { constant: 5 }),
      ],
    ] as const
  ) {
    const g = await model.inputGradient(x, whole);
    assertEquals(g.values?.length, 3, `${label} ${name}: values`);
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      const a = await model.inputGradient(images[i], alone(i));
      const r = relErr(g.grad.subarray(i * n, (i + 1) * n), a.grad);
      assert(r <= TOL, `${label} ${name} gradient image ${i}: ${r}`);
      const v = g.values![i];
      assert(
        Math.abs(v - a.value) <= TOL * Math.abs(a.value),
        `${label} ${name} value image ${i}: ${v} vs ${a.value}`,
      );
      sum += v;
    }
    assert(Math.abs(sum - g.value) <= 1e-6 * Math.abs(g.value));
  }
}

for (const backend of ["native", "wasm"] as const) {
  for (
    const [fixture, layer] of [
      ["tiny_vit", 2],
      ["tiny_mixer", 2],
      ["tiny_mixer_cf", 3],
      ["tiny_ffvit", 2],
    ] as const
  ) {
    Deno.test(`batch of 3 on ${fixture} (${backend}) equals each image alone`, async () => {
      const model = await loadModel(`tests/fixtures/${fixture}`, {
        weights: "fixture",
        backend,
        threads: 1,
      });
      try {
        assertEquals(model.manifest.batch_axis, true);
        await checkBatch(model, layer, `${fixture} ${backend}`);
        // switches stay shared: an ablated model batched equals the ablated model alone
        const ablated = model.withAblations([{ remove: "res1", layers: [1] }]);
        await checkBatch(ablated, layer, `${fixture} ${backend} no res1`);
      } finally {
        await model.release();
      }
    });
  }
}

Deno.test("invertBatch equals invert per image", async () => {
  const model = await loadModel("tests/fixtures/tiny_vit", {
    weights: "fixture",
    threads: 1,
  });
  try {
    const n = 3 * 32 * 32;
    const targets = [1, 2, 3].map((s) => randomStart(n, 30 + s, 0.5, 0.2));
    const seeds = [0, 5, 9];
    const opts = { layer: 2, steps: 6, lr: { start: 0.05, end: 0.01 } };
    const batch = await invertBatch(model, targets, { ...opts, seeds });
    assertEquals(batch.length, 3);
    for (let i = 0; i < 3; i++) {
      const alone = await invert(model, targets[i], {
        ...opts,
        seed: seeds[i],
      });
      const r = relErr(batch[i].image.data, alone.image.data);
      assert(r <= TOL, `image ${i}: ${r}`);
      assertEquals(batch[i].trace.length, alone.trace.length);
      for (let s = 0; s < alone.trace.length; s++) {
        const [a, b] = [alone.trace[s], batch[i].trace[s]];
        for (
          const k of ["loss", "embeddingDistance", "inputDistance"] as const
        ) {
          assert(
            Math.abs(a[k] - b[k]) <= TOL * Math.abs(a[k]),
            `image ${i} step ${s} ${k}: ${b[k]} vs ${a[k]}`,
          );
        }
      }
      assert(
        Math.abs(batch[i].noiseBaseline - alone.noiseBaseline) <=
          TOL * alone.noiseBaseline,
      );
      assert(Math.abs(batch[i].final.psnr - alone.final.psnr) < 1e-3);
      assertEquals(batch[i].criterionStep, alone.criterionStep);
    }
  } finally {
    await model.release();
  }
});

Deno.test("a batch is refused where it cannot run, naming the lengths", async () => {
  const vit = await loadModel("tests/fixtures/tiny_vit", {
    weights: "fixture",
  });
  const resnet = await loadModel("tests/fixtures/tiny_resnet", {
    weights: "fixture",
  });
  try {
    const n = 3 * 32 * 32;
    await assertRejects(
      () => vit.forward(new Float32Array(n + 5)),
      /Invalid image of 3077 values: expected a Float32Array of B images, Bx3x32x32 values \(one is 1x3x32x32 = 3072\)/,
    );
    const rs = resnet.manifest.image_size;
    const two = new Float32Array(2 * 3 * rs * rs);
    assertEquals(resnet.manifest.batch_axis, false);
    await assertRejects(
      () => resnet.forward(two),
      /its graphs take one image: convert it again with tools\/convert.py/,
    );
    const target = (await vit.forward(new Float32Array(n), { layer: 1 })).data;
    await assertRejects(
      () => vit.inputGradient(new Float32Array(2 * n), featureMatch(1, target)),
      /Target of \d+ values does not match layer 1's output of \d+ values \[2,/,
    );
    await assertRejects(
      () => invertBatch(vit, [new Float32Array(n)], { seeds: [1, 2] }),
      /Invalid seeds \[1,2\]: expected one seed per image \(1\)/,
    );
  } finally {
    await vit.release();
    await resnet.release();
  }
});

async function assertRejects(f: () => Promise<unknown>, re: RegExp) {
  try {
    await f();
  } catch (err) {
    assert(re.test(String((err as Error).message)), String(err));
    return;
  }
  throw new Error(`expected a rejection matching ${re}`);
}

// The command line: several --image and --seeds run as one batch, each run's folder equal to
// the same run alone (--start-seed), and resumable alone.
async function npy(path: string): Promise<Float32Array> {
  return decodeNpy(await Deno.readFile(path)).data as Float32Array;
}

Deno.test("invert --image a --image b --seeds: one batch, each run as alone", async () => {
  const out = await tmp();
  const rocket = `${ROOT}tests/fixtures/images/rocket.jpg`;
  const cat = `${ROOT}assets/chelsea.png`;
  const common = [...TINY, "--layer", "2", "--steps", "12", "--threads", "1"];
  const r = await run([
    "invert",
    ...common,
    "--image",
    rocket,
    "--image",
    cat,
    "--seeds",
    "3,5",
    "--save-every",
    "4",
    "--out",
    `${out}/batch`,
  ]);
  assertEquals(r.code, 0, r.err);
  assert(/4 runs as one batch/.test(r.err), r.err);
  const names = [
    "rocket-seed3",
    "rocket-seed5",
    "chelsea-seed3",
    "chelsea-seed5",
  ];
  const batch = JSON.parse(
    await Deno.readTextFile(`${out}/batch/metrics.json`),
  );
  assertEquals(batch.runs.map((x: { name: string }) => x.name), names);
  for (
    const [name, image, seed] of [["rocket-seed5", rocket, 5], [
      "chelsea-seed3",
      cat,
      3,
    ]] as const
  ) {
    const alone = await run([
      "invert",
      ...common,
      "--image",
      image,
      "--start-seed",
      String(seed),
      "--out",
      `${out}/${name}`,
    ]);
    assertEquals(alone.code, 0, alone.err);
    const d = relErr(
      await npy(`${out}/batch/${name}/representation.npy`),
      await npy(`${out}/${name}/representation.npy`),
    );
    assert(d <= TOL, `${name}: ${d}`);
    const m = JSON.parse(
      await Deno.readTextFile(`${out}/batch/${name}/metrics.json`),
    );
    assertEquals(m.options["start-seed"], String(seed));
    assertEquals(m.final.steps, 12);
  }
  // a run of the batch stopped early resumes alone, from its own snapshot
  const stopped = await run([
    "invert",
    ...common,
    "--image",
    cat,
    "--seeds",
    "3-4",
    "--save-every",
    "4",
    "--stop-at",
    "8",
    "--out",
    `${out}/stopped`,
  ]);
  assertEquals(stopped.code, 0, stopped.err);
  const resumed = await run([
    "invert",
    "--resume",
    `${out}/stopped/seed3`,
    "--quiet",
  ]);
  assertEquals(resumed.code, 0, resumed.err);
  const d = relErr(
    await npy(`${out}/stopped/seed3/representation.npy`),
    await npy(`${out}/chelsea-seed3/representation.npy`),
  );
  assert(d <= TOL, `resumed seed3: ${d}`);
  // bad batches are usage errors naming the value
  for (
    const [args, re] of [
      [
        ["--seeds", "5-2"],
        /Invalid --seeds "5-2": the range 5-2 runs backwards/,
      ],
      [["--seeds", "0-99"], /Invalid --seeds "0-99": more than 64 seeds/],
      [["--seeds", "1,1"], /seed 1 is given twice/],
      [
        ["--seeds", "1", "--resume", `${out}/stopped/seed3`],
        /Invalid --resume with several --image or --seeds/,
      ],
    ] as const
  ) {
    const bad = await run([
      "invert",
      ...common,
      ...args,
      "--out",
      `${out}/bad`,
    ]);
    assertEquals(bad.code, 2, bad.err);
    assert(re.test(bad.err), bad.err);
  }
});

Deno.test("invert --seeds on a model without a batch axis runs one image at a time", async () => {
  const out = await tmp();
  const r = await run([
    "invert",
    "--model",
    `${ROOT}tests/fixtures/tiny_resnet`,
    "--weights",
    "fixture",
    "--quiet",
    "--layer",
    "1",
    "--steps",
    "3",
    "--seeds",
    "0-1",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
  assert(/one at a time/.test(r.err), r.err);
  for (const name of ["seed0", "seed1"]) {
    assert(await exists(`${out}/${name}/representation.npy`), name);
  }
});
