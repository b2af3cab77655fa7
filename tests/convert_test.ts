// The Python converter: its own verification against torch.autograd (--check), the
// reproducibility of the committed graphs, and its errors. Needs PyTorch (Debian:
// python3-torch python3-torchvision python3-onnx); skipped with a printed reason without it.
import { assert, assertEquals } from "./_assert.ts";
import { loadModel, type Manifest } from "../mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PY = Deno.env.get("VITREP_PYTHON") ?? "/usr/bin/python3";

async function python(args: string[]) {
  const out = await new Deno.Command(PY, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

let torchReason = "";
try {
  const r = await python(["-c", "import torch, torchvision, onnx"]);
  if (r.code !== 0) {
    torchReason = `PyTorch not importable by ${PY}: ${
      r.text.trim().split("\n").at(-1)
    }`;
  }
} catch (err) {
  torchReason = `${PY} cannot run: ${err instanceof Error ? err.message : err}`;
}
if (torchReason) console.log(`converter tests skipped: ${torchReason}`);

Deno.test({
  name: "convert.py --check passes on a tiny custom ViT and the result runs",
  ignore: torchReason !== "",
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await python([
      "tools/convert.py",
      "custom",
      "--arch",
      "patch=8,layers=2,heads=2,hidden=16,mlp=32,classes=5",
      "--image-size",
      "32",
      "--check",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.text);
    assert(/check passed: worst relative error [0-9.e-]+/.test(r.text), r.text);
    const m = await loadModel(out, {
      weights: "untrained-seed0",
      backend: "native",
    });
    const y = await m.forward(new Float32Array(3 * 32 * 32).fill(0.5));
    assertEquals(y.dims, [1, 5]);
    await m.release();
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name:
    "convert.py --check on untrained vit_b_32 reproduces the committed graphs",
  ignore: torchReason !== "",
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await python([
      "tools/convert.py",
      "vit_b_32",
      "--graphs-only",
      "--check",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.text);
    assert(r.text.includes("init distributions of 152 tensors match"), r.text);
    const ours: Manifest & { graphs: Record<string, { sha256: string }> } = JSON
      .parse(
        await Deno.readTextFile(`${out}/manifest.json`),
      );
    const committed: typeof ours = JSON.parse(
      await Deno.readTextFile(`${ROOT}weights/vit_b_32/manifest.json`),
    );
    for (const [name, g] of Object.entries(committed.graphs)) {
      assertEquals(
        ours.graphs[name].sha256,
        g.sha256,
        `graph ${name} differs from the committed one`,
      );
    }
    assertEquals(ours.tensors, committed.tensors);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "convert.py rejects bad arguments with clear messages",
  ignore: torchReason !== "",
  async fn() {
    const bad = await python([
      "tools/convert.py",
      "vit_x",
      "--out",
      "/tmp/never",
    ]);
    assertEquals(bad.code, 2);
    assert(bad.text.includes("unknown model 'vit_x'"), bad.text);
    const w = await python([
      "tools/convert.py",
      "vit_b_32",
      "--weights",
      "NOPE",
      "--out",
      "/tmp/never",
    ]);
    assert(w.code !== 0 && w.text.includes("IMAGENET1K_V1"), w.text);
    const size = await python([
      "tools/convert.py",
      "vit_b_32",
      "--image-size",
      "100",
      "--out",
      "/tmp/never",
    ]);
    assert(
      size.code === 2 && size.text.includes("multiple of the patch size 32"),
      size.text,
    );
  },
});
