// ResNets as chains of per-block graphs (tools/vitrep_convert/resnet.py): forward outputs at every
// chain position and input gradients against PyTorch (fixtures from
// tools/make_resnet_fixtures.py), on every CPU backend, with and without ablations.
import { assert, assertEquals } from "./_assert.ts";
import { assertSameAsCommitted, python, torchReason } from "./_python.ts";
import {
  classLogit,
  featureMatch,
  layerIndex,
  loadModel,
  type Model,
} from "../mod.ts";
import { ablationsOf, loadReference, relErr } from "./_fixtures.ts";

const TOL = 1e-5; // max |ours − torch| / max |torch|, float32
const FIXTURES = ["tiny_resnet", "tiny_resnet_odd"];

// WebGPU where an adapter exists (CI installs Mesa's CPU Vulkan driver): the stem's
// max-pool VJP needs no Indices output or int64 scatter, which WebGPU lacks.
const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
const hasAdapter = gpu ? (await gpu.requestAdapter()) !== null : false;
if (!hasAdapter) {
  console.log("ResNet on webgpu skipped: no WebGPU adapter here");
}

for (const fixture of FIXTURES) {
  for (const backend of ["native", "wasm", "webgpu"] as const) {
    Deno.test({
      name:
        `${fixture} on ${backend}: forward and input gradients match PyTorch`,
      ignore: backend === "webgpu" && !hasAdapter,
    }, async (t) => {
      const { dir, cases, get } = await loadReference(fixture);
      const base = await loadModel(dir, { weights: "fixture", backend });
      assertEquals(base.backend, backend);
      assertEquals(base.manifest.architecture, "resnet");
      const x = get("x");
      const models = new Map<string, Model>();
      let worst = 0, ran = 0;
      for (
        const c of cases.filter((c) => ["forward", "gradient"].includes(c.kind))
      ) {
        const name = c.ablation?.name ?? "none";
        if (!models.has(name)) {
          models.set(name, base.withAblations(ablationsOf(c)));
        }
        const m = models.get(name)!;
        const label = `${c.kind} ${name} layer ${c.layer} ${c.loss ?? ""}`;
        ran++;
        if (c.kind === "forward") {
          const out = await m.forward(x, { layer: c.layer });
          const e = relErr(out.data, get(c.output!));
          worst = Math.max(worst, e);
          assert(e <= TOL, `${label}: forward rel err ${e}`);
          continue;
        }
        const objective = c.loss === "logit"
          ? classLogit(c.index!, { constant: c.constant })
          : featureMatch(c.layer, get(c.target!), {
            loss: c.loss as "l1" | "l2",
          });
        const r = await m.inputGradient(x, objective);
        const e = relErr(r.grad, get(c.grad!));
        const ev = Math.abs(r.value - c.value!) /
          Math.max(1e-30, Math.abs(c.value!));
        worst = Math.max(worst, e, ev);
        assert(e <= TOL, `${label}: gradient rel err ${e}`);
        assert(
          ev <= TOL,
          `${label}: value ${r.value} vs torch ${c.value} (rel ${ev})`,
        );
      }
      assert(ran >= 30, `only ${ran} cases ran`);
      await t.step(
        `worst relative error ${worst.toExponential(2)} over ${ran} cases`,
        () => {},
      );
      await base.release();
    });
  }

  Deno.test(`${fixture}: a swapped block and the parts a ResNet lacks`, async () => {
    const { dir, cases, get } = await loadReference(fixture);
    const x = get("x");
    const c = cases.find((c) => c.kind === "swap")!;
    const m = await loadModel(dir, {
      weights: "fixture",
      backend: "native",
      swaps: [{ part: c.part!, weights: c.weights! }],
    });
    const logits = await m.forward(x);
    const e1 = relErr(logits.data, get(c.output!));
    assert(e1 <= TOL, `swap ${c.part}: logits rel err ${e1}`);
    const r = await m.inputGradient(x, featureMatch(c.layer, get(c.target!)));
    const e2 = relErr(r.grad, get(c.grad!));
    assert(e2 <= TOL, `swap ${c.part}: gradient rel err ${e2}`);
    // every position but the stem and head is a block with the residual switches
    const man = m.manifest;
    assertEquals(man.layers.length, man.num_layers + 2);
    for (const l of man.layers.slice(1, -1)) {
      assertEquals(l.switches, ["use_bn", "use_res1", "use_res2"]);
      assertEquals(l.prefix, `${l.name}.`);
    }
    // res1 and res2 each drop the block's one shortcut: removing both is the same
    const both = await m.withAblations([{ remove: ["res1", "res2"] }]).forward(
      x,
    );
    const one = await m.withAblations([{ remove: "res2" }]).forward(x);
    assertEquals(relErr(one.data, both.data), 0);
    for (const part of ["ln1", "attn", "ln2", "mlp"] as const) {
      let msg = "";
      try {
        m.withAblations([{ remove: part }]);
      } catch (err) {
        msg = err instanceof Error ? err.message : String(err);
      }
      assert(msg.includes("has no meaning"), `${part}: ${msg}`);
    }
    await m.release();
  });
}

Deno.test("a ResNet's blocks chain only where the shapes allow", async () => {
  const { dir, get } = await loadReference("tiny_resnet");
  const m = await loadModel(dir, { weights: "fixture", backend: "native" });
  const x = get("x");
  // block 1 alone is blocks 1..1; skipping layer1.1 keeps layer1's shape
  const one = await m.forward(x, { layer: 1, blocks: [1] });
  assertEquals(relErr(one.data, (await m.forward(x, { layer: 1 })).data), 0);
  const skip = await m.forward(x, { layer: 3, blocks: [1, 3] });
  assertEquals(skip.dims, (await m.forward(x, { layer: 3 })).dims);
  for (const blocks of [[2], [4], [1, 2, 4, 6]]) {
    let msg = "";
    try {
      await m.forward(x, { layer: blocks.at(-1), blocks });
    } catch (err) {
      assert(err instanceof RangeError);
      msg = err.message;
    }
    assert(msg.includes(`Invalid blocks [${blocks}]`), msg);
    assert(msg.includes("a ResNet block follows the stem"), msg);
  }
  await m.release();
});

Deno.test("layerIndex: ResNet layers by number, block name or stage", async () => {
  const dir = new URL("./fixtures/tiny_resnet", import.meta.url).pathname;
  const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  // stages [3,1,1,1]: stem, layer1.0, layer1.1, layer1.2, layer2.0, layer3.0, layer4.0
  const cases: [string | number, number][] = [
    ["stem", 0],
    [0, 0],
    ["layer1.1", 2],
    ["layer1", 3],
    ["layer2", 4],
    ["layer4", 6],
    [" 4 ", 4],
  ];
  for (const [given, want] of cases) {
    assertEquals(layerIndex(m, given), want, String(given));
  }
  for (const bad of ["logits", "layer5", "layer1.3", "7", "-1", "layer"]) {
    let msg = "";
    try {
      layerIndex(m, bad);
    } catch (err) {
      assert(err instanceof RangeError);
      msg = err.message;
    }
    assert(msg.includes(`"${bad}"`), `${bad}: ${msg}`);
    assert(msg.includes("0 (input processing) to 6"), msg);
    assert(msg.includes("layer1, layer2, layer3, layer4"), msg);
  }
});

// The converter itself (needs PyTorch; skipped with a printed reason without it).

if (torchReason) console.log(`ResNet converter tests skipped: ${torchReason}`);

Deno.test({
  name: "convert.py --check passes on a tiny custom ResNet and the result runs",
  ignore: torchReason !== "",
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await python([
      "tools/convert.py",
      "resnet_custom",
      "--arch",
      "layers=2:1:1:1,planes=4:4:8:8,stem=8,classes=5",
      "--image-size",
      "40",
      "--check",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.text);
    assert(/check passed: worst relative error [0-9.e-]+/.test(r.text), r.text);
    assert(r.text.includes("layer1.1 off=res1,res2"), r.text);
    const m = await loadModel(out, {
      weights: "untrained-seed0",
      backend: "native",
    });
    assertEquals(m.manifest.num_layers, 5);
    const y = await m.forward(new Float32Array(3 * 40 * 40).fill(0.5));
    assertEquals(y.dims, [1, 5]);
    // the TypeScript untrained weights come from the same init specs
    const w = m.tensor("layer1.0.conv2.weight");
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    assert(Math.abs(std - Math.sqrt(2 / (4 * 9))) < 0.1, `std ${std}`);
    // resnet.py's Family writes what the runtime must know, the --arch included
    const { runtime } = m.manifest;
    assertEquals(runtime.convert_args.slice(0, 3), [
      "resnet_custom",
      "--arch",
      "layers=2:1:1:1,planes=4:4:8:8,stem=8,classes=5,block=bottleneck",
    ]);
    assertEquals(
      [runtime.block_chain, runtime.wasm_threads, runtime.layer_labels],
      ["stage", 1, "name"],
    );
    await m.release();
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name:
    "convert.py --check on untrained resnet50 reproduces the committed graphs",
  ignore: torchReason !== "",
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await python([
      "tools/convert.py",
      "resnet50",
      "--graphs-only",
      "--check",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.text);
    assert(r.text.includes("init distributions of 267 tensors match"), r.text);
    await assertSameAsCommitted(out, "resnet50");
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("block chaining is manifest data: a ViT whose manifest says stage chains by stage", async () => {
  const src = new URL("./fixtures/tiny_vit", import.meta.url).pathname;
  const dir = await Deno.makeTempDir();
  try {
    for (const f of ["graphs", "fixture.safetensors"]) {
      await Deno.symlink(`${src}/${f}`, `${dir}/${f}`);
    }
    const json = JSON.parse(await Deno.readTextFile(`${src}/manifest.json`));
    const x = new Float32Array(3 * json.image_size ** 2).fill(0.5);
    const forward = async (chain: string) => {
      json.runtime = {
        block_chain: chain,
        wasm_threads: null,
        layer_labels: "number",
        convert_args: ["tiny_vit"],
        torchvision_weights: false,
      };
      await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(json));
      const m = await loadModel(dir, { weights: "fixture", backend: "native" });
      try {
        return await m.forward(x, { layer: 2, blocks: [2] });
      } finally {
        await m.release();
      }
    };
    assertEquals((await forward("any")).dims[0], 1);
    let msg = "";
    await forward("stage").catch((err) => {
      assert(err instanceof RangeError);
      msg = err.message;
    });
    assert(msg.includes("Invalid blocks [2]"), msg);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unknown weights of a custom ResNet: the converter command carries its real --arch", async () => {
  const dir = new URL("../weights/fmnist_resnet", import.meta.url).pathname;
  let msg = "";
  await loadModel(dir, { weights: "mine" }).catch((err) => {
    assert(err instanceof TypeError);
    msg = err.message;
  });
  assert(
    msg.includes(
      "python3 tools/convert.py resnet_custom --arch layers=1:1:1:1,planes=8:16:32:64,stem=16,classes=10,block=basic --image-size 32 --mean ",
    ),
    msg,
  );
  assert(!msg.includes("ARCH"), msg);
});
