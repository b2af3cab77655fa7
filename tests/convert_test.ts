// The Python converter: its own verification against torch.autograd (--check), the
// reproducibility of the committed graphs, and its errors. Needs PyTorch (Debian:
// python3-torch python3-torchvision python3-onnx); skipped with a printed reason without it.
import { assert, assertEquals } from "./_assert.ts";
import { assertSameAsCommitted, python, torchReason } from "./_python.ts";
import { featureMatch, loadModel } from "../mod.ts";

if (torchReason) console.log(`converter tests skipped: ${torchReason}`);

// The manifest contract (tools/vitrep_convert/manifest.py): every manifest has these
// fields, and each family exactly its own others (no placeholders such as a ResNet's
// patch_size 0).
const COMMON = [
  "format",
  "name",
  "architecture",
  "image_size",
  "num_layers",
  "num_classes",
  "input",
  "opset",
  "batch_axis",
  "converter",
  "patch_filters",
  "external_data",
  "graphs",
  "layers",
  "tensors",
  "weight_sets",
  "categories",
];
const TOKEN_MIXING = [
  "patch_size",
  "hidden_dim",
  "tokens_mlp_dim",
  "channels_mlp_dim",
  "block_order",
  "class_token",
  "seq_length",
  "layer_norm_eps",
  "switch_meaning",
];
const FAMILY: Record<string, string[]> = {
  vit: [
    "patch_size",
    "hidden_dim",
    "num_heads",
    "mlp_dim",
    "seq_length",
    "layer_norm_eps",
  ],
  mixer: TOKEN_MIXING,
  ffvit: TOKEN_MIXING,
  resnet: ["hidden_dim", "block", "stages", "batch_norm_eps", "switch_meaning"],
};

type Json = Record<string, unknown>;

async function sha256Hex(path: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  return Array.from(new Uint8Array(digest))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Checks one manifest against the contract; graph files by their sha256. */
async function checkContract(dir: string): Promise<void> {
  const m: Json = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  const arch = m.architecture as string;
  assert(arch in FAMILY, `${dir}: architecture ${arch}`);
  // optional: what a model trained here was trained on (tools/train_colour.py --label)
  const training = m.training;
  assert(
    training === undefined || typeof (training as Json).data === "string",
    `${dir}: training`,
  );
  // `runtime` (what the runtime must know about the family) is written by the
  // converter and by tools/manifest_runtime.py; the fixtures stay older manifests
  // without it (parseManifest derives it); `recommended` (settings per command)
  // and `training` are optional everywhere
  const fixture = dir.includes("/tests/fixtures/");
  const optional = fixture
    ? ["runtime", "recommended", "training"]
    : ["recommended", "training"];
  assertEquals(
    Object.keys(m).filter((k) => !optional.includes(k)).sort(),
    [...COMMON, ...(fixture ? [] : ["runtime"]), ...FAMILY[arch]].sort(),
    `${dir}: fields`,
  );
  assertEquals(m.format, "vitrep-model/1", dir);
  assertEquals(m.opset, 17, dir);
  assertEquals(m.batch_axis, arch !== "resnet", `${dir}: batch_axis`);
  assertEquals((m.converter as Json).script, "tools/convert.py", dir);
  const size = m.image_size as number;
  const input = m.input as Json;
  assertEquals(input.shape, [1, 3, size, size], `${dir}: input.shape`);
  assertEquals(input.range, [0, 1], `${dir}: input.range`);
  assertEquals(input.layout, "NCHW", `${dir}: input.layout`);
  assertEquals((input.mean as number[]).length, 3, `${dir}: input.mean`);
  assert((input.std as number[]).every((s) => s > 0), `${dir}: input.std`);
  const tensors = m.tensors as Record<string, { shape: number[] }>;
  const filters = tensors[m.patch_filters as string]?.shape;
  assert(
    filters?.length === 4 && filters[1] === 3,
    `${dir}: patch_filters ${m.patch_filters} is not a [n,3,p,p] tensor`,
  );
  const graphs = m.graphs as Record<string, { file: string; sha256: string }>;
  for (const [name, g] of Object.entries(graphs)) {
    assertEquals(
      await sha256Hex(`${dir}/${g.file}`),
      g.sha256,
      `${dir}: graph ${name}`,
    );
  }
  const layers = m.layers as { graph: string }[];
  assertEquals(layers.length, (m.num_layers as number) + 2, `${dir}: layers`);
  for (const l of layers) {
    assert(`${l.graph}.fwd` in graphs && `${l.graph}.vjp` in graphs, dir);
  }
  const categories = m.categories as string[] | null;
  assert(
    categories === null || categories.length === m.num_classes,
    `${dir}: categories`,
  );
  for (const w of Object.values(m.weight_sets as Record<string, Json>)) {
    assertEquals(
      Object.keys(w.sha256 as Json).sort(),
      Object.keys(tensors).sort(),
      `${dir}: weight set ${w.file}`,
    );
  }
}

Deno.test("every committed manifest follows the manifest contract", async () => {
  const dirs: string[] = [];
  for (const base of ["weights", "tests/fixtures"]) {
    const root = new URL(`../${base}/`, import.meta.url).pathname;
    for await (const e of Deno.readDir(root)) {
      const dir = `${root}${e.name}`;
      const has = await Deno.stat(`${dir}/manifest.json`).then(
        () => true,
        () => false,
      );
      if (e.isDirectory && has) dirs.push(dir);
    }
  }
  assert(dirs.length >= 21, `found only ${dirs.length} manifests`);
  for (const dir of dirs.sort()) await checkContract(dir);
  const archs = new Set<string>();
  for (const dir of dirs) {
    archs.add(
      JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)).architecture,
    );
  }
  assertEquals([...archs].sort(), ["ffvit", "mixer", "resnet", "vit"]);
});

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
    // the family's runtime fields, written by the converter (vit.py's Family)
    const { runtime } = m.manifest;
    assertEquals(runtime.convert_args.slice(0, 5), [
      "custom",
      "--arch",
      "patch=8,layers=2,heads=2,hidden=16,mlp=32,classes=5",
      "--image-size",
      "32",
    ]);
    assertEquals(
      [runtime.block_chain, runtime.wasm_threads, runtime.layer_labels],
      ["any", null, "number"],
    );
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
    await assertSameAsCommitted(out, "vit_b_32"); // the whole manifest
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
