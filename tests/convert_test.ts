// The Python converter: its own verification against torch.autograd (--check), the
// reproducibility of the committed graphs, and its errors. Needs PyTorch (Debian:
// python3-torch python3-torchvision python3-onnx); skipped with a printed reason without it.
import { assert, assertEquals } from "./_assert.ts";
import { assertSameAsCommitted, python, torchReason } from "./_python.ts";
import { featureMatch, loadModel } from "../mod.ts";

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
    await assertSameAsCommitted(out, "vit_b_32");
    await Deno.remove(out, { recursive: true });
  },
});

// The essay's untrained mixer and the FF-only ViT at full size: the same commands as
// tools/regenerate.sh, checked against PyTorch and compared with the committed graphs.
const FULL_ATTNLESS: [string, string[]][] = [
  ["mixer_p16_d1024", [
    "mixer",
    "--arch",
    "patch=16,layers=8,hidden=1024,tokens_mlp=512,channels_mlp=4096,order=channel_first",
    "--image-size",
    "224",
  ]],
  ["linear_base", ["linear_base"]],
];

for (const [folder, args] of FULL_ATTNLESS) {
  Deno.test({
    name:
      `convert.py --check on untrained ${folder} reproduces the committed graphs`,
    ignore: torchReason !== "",
    async fn() {
      const out = await Deno.makeTempDir();
      const r = await python([
        "tools/convert.py",
        ...args,
        "--weights",
        "untrained",
        "--graphs-only",
        "--check",
        "--check-layers",
        "2",
        "--out",
        out,
      ]);
      assertEquals(r.code, 0, r.text);
      const worst = /check passed: worst relative error ([0-9.e+-]+)/.exec(
        r.text,
      );
      assert(worst && Number(worst[1]) <= 1e-5, r.text);
      await assertSameAsCommitted(out, folder);
      await Deno.remove(out, { recursive: true });
    },
  });
}

Deno.test({
  name:
    "convert.py --check passes on tiny custom MLP-Mixers and feed-forward-only ViTs (both block orders) and the results run",
  ignore: torchReason !== "",
  async fn() {
    const configs = [
      ["mixer", "tokens_mlp=8,channels_mlp=32", "token_first"],
      [
        "mixer",
        "tokens_mlp=8,channels_mlp=32,order=channel_first",
        "channel_first",
      ],
      ["ffvit", "", "channel_first"],
      [
        "ffvit",
        "tokens_mlp=12,channels_mlp=24,order=token_first",
        "token_first",
      ],
    ];
    for (const [family, extra, order] of configs) {
      const out = await Deno.makeTempDir();
      const r = await python([
        "tools/convert.py",
        family,
        "--arch",
        `patch=8,layers=2,hidden=16,classes=5${extra ? "," + extra : ""}`,
        "--image-size",
        "32",
        "--check",
        "--out",
        out,
      ]);
      assertEquals(r.code, 0, r.text);
      const worst = /check passed: worst relative error ([0-9.e+-]+)/.exec(
        r.text,
      );
      assert(worst && Number(worst[1]) <= 1e-5, r.text);
      for (
        const label of ["block 0 off=attn,mlp", "block 1 off=none", "head"]
      ) {
        assert(r.text.includes(label), `${label} not checked:\n${r.text}`);
      }
      assert(r.text.includes("init distributions of"), r.text);
      const m = await loadModel(out, {
        weights: "untrained-seed0",
        backend: "native",
      });
      assertEquals(m.manifest.architecture, family);
      assertEquals(
        (m.manifest as unknown as { block_order: string }).block_order,
        order,
      );
      const x = new Float32Array(3 * 32 * 32).fill(0.5);
      const y = await m.forward(x);
      assertEquals(y.dims, [1, 5]);
      const tokens = await m.forward(x, { layer: 2 });
      assertEquals(tokens.dims, [1, family === "mixer" ? 16 : 17, 16]);
      const g = await m.withAblations([{ remove: "attn", layers: [1] }])
        .inputGradient(x, featureMatch(2, tokens.data));
      assertEquals(g.grad.length, x.length);
      await m.release();
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "convert.py --list names every model with a description",
  ignore: torchReason !== "",
  async fn() {
    const r = await python(["tools/convert.py", "--list"]);
    assertEquals(r.code, 0, r.text);
    for (
      const name of [
        "vit_b_16",
        "vit_h_14",
        "custom",
        "mixer_b16_224",
        "mixer_l16_224",
        "mixer",
        "linear_tiny",
        "linear_base",
        "ffvit",
      ]
    ) {
      assert(
        new RegExp(`^  ${name} +\\S`, "m").test(r.text),
        `${name} missing:\n${r.text}`,
      );
    }
    assert(r.text.includes("use_attn = blocks.i.mlp_tokens"), r.text);
    assert(r.text.includes("use_attn = blocks.i.mlp2"), r.text);
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
    const lacks = await python([
      "tools/convert.py",
      "mixer",
      "--arch",
      "patch=8,layers=2",
      "--out",
      "/tmp/never",
    ]);
    assert(
      lacks.code === 2 &&
        lacks.text.includes("lacks hidden, tokens_mlp, channels_mlp"),
      lacks.text,
    );
    const preset = await python([
      "tools/convert.py",
      "mixer_b16_224",
      "--arch",
      "patch=8",
      "--out",
      "/tmp/never",
    ]);
    assert(
      preset.code === 2 && preset.text.includes("takes only order= and"),
      preset.text,
    );
    const order = await python([
      "tools/convert.py",
      "ffvit",
      "--arch",
      "patch=8,layers=2,hidden=16,order=sideways",
      "--out",
      "/tmp/never",
    ]);
    assert(
      order.code === 2 && order.text.includes("order=token_first"),
      order.text,
    );
  },
});
