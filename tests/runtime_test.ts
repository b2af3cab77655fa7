// Runtime behaviour beyond the PyTorch parity of model_test.ts: finite differences,
// untrained init, loading over http, WebGPU, memory limits and bad input.
import { assert, assertClose, assertEquals, assertRejects } from "./_assert.ts";
import { classLogit, featureMatch, loadModel, type Manifest } from "../mod.ts";
import {
  availableBackends,
  openBackend,
  untrainedTensor,
} from "../src/model/mod.ts";
import { loadReference, relErr } from "./_fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TINY = `${ROOT}tests/fixtures/tiny_vit`;

Deno.test("inputGradient agrees with central finite differences (float32 tolerance)", async () => {
  const model = await loadModel(TINY, {
    weights: "fixture",
    backend: "native",
  });
  const n = 3 * 32 * 32;
  const x = new Float32Array(n).map((_, i) => 0.5 + 0.3 * Math.sin(i * 0.37));
  const target = await model.forward(x.map((v) => v * 0.9 + 0.05), {
    layer: 3,
  });
  for (
    const objective of [
      featureMatch(3, target, { loss: "l2" }),
      classLogit(2, { constant: 5 }),
    ]
  ) {
    const { grad } = await model.inputGradient(x, objective);
    for (let trial = 0; trial < 3; trial++) {
      // a smooth random direction v, |v| = 1
      const v = new Float32Array(n).map((_, i) =>
        Math.sin(i * (0.11 + trial * 0.07) + trial)
      );
      const norm = Math.sqrt(v.reduce((s, a) => s + a * a, 0));
      v.forEach((a, i) => (v[i] = a / norm));
      const h = 1e-2;
      const f = async (s: number) =>
        (await model.inputGradient(
          x.map((a, i) => a + s * h * v[i]),
          objective,
        )).value;
      const fd = (await f(1) - await f(-1)) / (2 * h);
      const an = grad.reduce((s, g, i) => s + g * v[i], 0);
      assertClose(
        an,
        fd,
        2e-3 * Math.max(1, Math.abs(fd)),
        `${objective.name} direction ${trial}`,
      );
    }
  }
  await model.release();
});

function moments(spec: Manifest["tensors"][string]["init"]): [number, number] {
  switch (spec.kind) {
    case "constant":
      return [spec.value, 0];
    case "normal":
      return [spec.mean ?? 0, spec.std];
    case "uniform":
      return [
        (spec.low + spec.high) / 2,
        (spec.high - spec.low) / Math.sqrt(12),
      ];
    case "trunc_normal": // bounds of ±2 are > 100 std here: the moments are the normal's
      assert(Math.abs(spec.a) > 20 * spec.std && spec.b > 20 * spec.std);
      return [spec.mean ?? 0, spec.std];
  }
}

Deno.test("untrained weights follow torchvision's init distributions (vit_b_32 manifest)", async () => {
  const manifest: Manifest = JSON.parse(
    await Deno.readTextFile(`${ROOT}weights/vit_b_32/manifest.json`),
  );
  const names = Object.keys(manifest.tensors).filter((k) =>
    !k.startsWith("encoder.layers.") ||
    k.startsWith("encoder.layers.encoder_layer_0.")
  );
  assert(names.length === 20, `${names.length} tensors`);
  for (const name of names) {
    const t = manifest.tensors[name];
    const w = untrainedTensor(t.init, t.shape, name, 0);
    const [mu, sd] = moments(t.init);
    let s = 0, s2 = 0;
    for (const v of w) s += v;
    const mean = s / w.length;
    for (const v of w) s2 += (v - mean) ** 2;
    const std = w.length > 1 ? Math.sqrt(s2 / (w.length - 1)) : 0;
    if (t.init.kind === "constant") {
      assert(w.every((v) => v === (t.init as { value: number }).value), name);
      continue;
    }
    const se = sd / Math.sqrt(w.length);
    assertClose(mean, mu, 6 * se, `${name} mean`);
    assertClose(std, sd, 6 * sd * Math.sqrt(2 / w.length), `${name} std`);
  }
  // the same seed gives the same tensor, another seed another one
  const spec = manifest.tensors["encoder.pos_embedding"];
  const a = untrainedTensor(spec.init, spec.shape, "encoder.pos_embedding", 0);
  const b = untrainedTensor(spec.init, spec.shape, "encoder.pos_embedding", 0);
  const c = untrainedTensor(spec.init, spec.shape, "encoder.pos_embedding", 1);
  assertEquals(a, b);
  assert(relErr(a, c) > 0.5);
});

Deno.test("untrained vit_b_32 runs on every CPU backend with equal results", async () => {
  const x = new Float32Array(3 * 224 * 224).map((_, i) => (i % 251) / 251);
  const outs = [];
  for (const backend of ["native", "wasm"] as const) {
    const m = await loadModel(`${ROOT}weights/vit_b_32`, { backend, seed: 5 });
    const y = await m.forward(x, { layer: 2 });
    assertEquals(y.dims, [1, 50, 768]);
    outs.push(y.data);
    await m.release();
  }
  assert(
    relErr(outs[0], outs[1]) < 1e-5,
    `native vs wasm ${relErr(outs[0], outs[1])}`,
  );
});

Deno.test("a model and its weights load over http", async () => {
  const ac = new AbortController();
  let requests = 0;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen() {},
  }, async (req) => {
    requests++;
    const path = decodeURIComponent(new URL(req.url).pathname);
    try {
      return new Response(await Deno.readFile(`${ROOT}tests/fixtures${path}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const { get } = await loadReference("tiny_vit");
    const x = get("x");
    for (const weights of ["fixture", `${base}/tiny_vit/fixture.safetensors`]) {
      const m = await loadModel(`${base}/tiny_vit`, {
        weights,
        backend: "native",
      });
      const y = await m.forward(x, { layer: "logits" });
      assert(relErr(y.data, get("fwd/none/logits")) < 1e-5);
      await m.release();
    }
    await assertRejects(
      () => loadModel(`${base}/missing`),
      TypeError,
      "HTTP 404",
    );
    assert(requests > 0);
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("webgpu matches PyTorch on the tiny model where an adapter exists", async (t) => {
  const gpu =
    (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter() : null;
  if (!adapter) {
    console.log(
      "skipped: no WebGPU adapter here (install mesa-vulkan-drivers for a CPU one)",
    );
    await t.step({ name: "webgpu (no adapter)", ignore: true, fn: () => {} });
    return;
  }
  const { dir, get } = await loadReference("tiny_vit");
  const m = await loadModel(dir, { weights: "fixture", backend: "webgpu" });
  assertEquals(m.backend, "webgpu");
  const x = get("x");
  const y = await m.forward(x, { layer: 3 });
  assert(
    relErr(y.data, get("fwd/none/3")) < 1e-5,
    `forward ${relErr(y.data, get("fwd/none/3"))}`,
  );
  const r = await m.inputGradient(
    x,
    featureMatch(3, get("grad/none/l2/3/target")),
  );
  const e = relErr(r.grad, get("grad/none/l2/3"));
  assert(e < 1e-5, `gradient rel err ${e}`);
  const ab = m.withAblations([{ remove: ["res1", "res2"] }]);
  const r2 = await ab.inputGradient(
    x,
    featureMatch(3, get("grad/no_residual/l2/3/target")),
  );
  assert(relErr(r2.grad, get("grad/no_residual/l2/3")) < 1e-5);
  await m.release();
});

Deno.test("wasm refuses a chain too large for its memory before building anything", async () => {
  const m = await loadModel(`${ROOT}weights/vit_h_14_518`, { backend: "wasm" });
  const x = new Float32Array(3 * 518 * 518);
  await assertRejects(
    () => m.inputGradient(x, classLogit(1)),
    RangeError,
    'use backend "native"',
  );
  await m.release();
});

Deno.test("bad input gets clear errors", async () => {
  await assertRejects(
    () => openBackend("cuda" as "wasm"),
    TypeError,
    "expected one of auto, native, wasm, webgpu",
  );
  await assertRejects(
    () => loadModel(`${ROOT}weights/nope`),
    TypeError,
    "manifest.json",
  );
  await assertRejects(
    () => loadModel(TINY, { weights: "imagenet" }),
    TypeError,
    "untrained, untrained:SEED, fixture2, fixture",
  );
  await assertRejects(
    () =>
      loadModel(TINY, {
        weights: `${ROOT}tests/fixtures/tiny_vit_p4/fixture.safetensors`,
      }),
    RangeError,
    "has shape [1,1,32]: expected [1,1,16]",
  );
  await assertRejects(
    () => loadModel(TINY, { ablations: [{ remove: "attention" as "attn" }] }),
    TypeError,
    "ln1, attn",
  );
  await assertRejects(
    () => loadModel(TINY, { ablations: [{ remove: "attn", layers: [4] }] }),
    RangeError,
    "1..3",
  );
  await assertRejects(
    () =>
      loadModel(TINY, {
        swaps: [{ part: "encoder.layers.7", weights: "fixture2" }],
      }),
    TypeError,
    'Unknown part "encoder.layers.7"',
  );
  await assertRejects(
    () =>
      loadModel(TINY, {
        swaps: [{
          part: "conv_proj",
          weights: `${ROOT}tests/fixtures/tiny_vit_p4/fixture.safetensors`,
        }],
      }),
    RangeError,
    "has shape [32,3,4,4]: expected [16,3,8,8]",
  );
  const m = await loadModel(TINY, { weights: "fixture", backend: "native" });
  const x = new Float32Array(3 * 32 * 32);
  await assertRejects(() => m.forward(x, { layer: 4 }), RangeError, '"logits"');
  await assertRejects(
    () => m.forward(new Float32Array(10)),
    RangeError,
    "1x3x32x32 = 3072",
  );
  await assertRejects(
    () => m.forward(x.map((_, i) => (i === 7 ? NaN : 0))),
    RangeError,
    "index 7",
  );
  await assertRejects(
    () => m.forward(x, { layer: 2, blocks: [1, 3] }),
    RangeError,
    "last block",
  );
  await assertRejects(
    () => m.inputGradient(x, featureMatch(2, new Float32Array(5))),
    RangeError,
    "Target of 5",
  );
  await assertRejects(
    () => m.inputGradient(x, classLogit(10)),
    RangeError,
    "0..9",
  );
  await m.release();
});

Deno.test("backends: the ones listed as available start", async () => {
  const names = await availableBackends();
  assert(names.includes("wasm") && names.includes("native"), names.join(","));
});

Deno.test("timing and per-node profiles: every graph run counted; profiles only on native", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = await loadModel(TINY, {
      weights: "fixture",
      backend: "native",
      timing: true,
      profile: `${dir}/p`,
    });
    const x = new Float32Array(3 * 32 * 32).fill(0.5);
    const target = await model.forward(x, { layer: 2 });
    await model.forward(x, { layer: 2 });
    await model.inputGradient(
      x,
      featureMatch(2, target.data.map((v) => v + 1)),
    );
    const t = model.timings();
    assertEquals(
      t.map((g) => `${g.position}:${g.graph.split(".").pop()}:${g.runs}`),
      ["0:fwd:3", "0:vjp:1", "1:fwd:3", "1:vjp:1", "2:fwd:3", "2:vjp:1"],
    );
    assert(t.every((g) => g.ms > 0));
    await model.release();
    // one profile per session, with as many runs as the timings counted
    const runs: number[] = [];
    for await (const e of Deno.readDir(dir)) {
      const events = JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`));
      runs.push(
        events.filter((v: { name?: string }) => v.name === "model_run").length,
      );
    }
    assertEquals(runs.sort(), [1, 1, 1, 3, 3, 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const wasm = await loadModel(TINY, { weights: "fixture", backend: "wasm" });
  try {
    await assertRejects(
      () =>
        loadModel(TINY, {
          weights: "fixture",
          backend: "wasm",
          profile: "/tmp/p",
        }),
      RangeError,
      'use backend "native"',
    );
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => loadModel(TINY, { weights: "fixture", timing: "yes" as any }),
      TypeError,
      'Invalid timing "yes"',
    );
    let err: unknown;
    try {
      wasm.timings();
    } catch (e) {
      err = e;
    }
    assert(err instanceof TypeError && /timing: true/.test(err.message));
  } finally {
    await wasm.release();
  }
});
