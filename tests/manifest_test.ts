// parseManifest: every committed manifest parses; each mutated manifest fails
// with the file and the field named (and loadModel reports the same).
import assert from "node:assert/strict";
import {
  isFamily,
  loadModel,
  type Manifest,
  parseManifest,
} from "../src/model/mod.ts";
import { legacyRuntime } from "../src/model/family.ts";
import { layerLabel } from "../src/run/mod.ts";
import { loadReference, relErr } from "./_fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FILE = "models/m/manifest.json";

type Json = Record<string, unknown> & {
  // deno-lint-ignore no-explicit-any
  [k: string]: any;
};

async function readJson(rel: string): Promise<Json> {
  return JSON.parse(await Deno.readTextFile(`${ROOT}${rel}`));
}

async function manifestFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ["weights", "tests/fixtures"]) {
    for await (const e of Deno.readDir(`${ROOT}${dir}`)) {
      const rel = `${dir}/${e.name}/manifest.json`;
      try {
        await Deno.stat(`${ROOT}${rel}`);
        out.push(rel);
      } catch {
        // not a model folder (e.g. tests/fixtures/npy)
      }
    }
  }
  return out.sort();
}

Deno.test("every committed manifest parses, typed by its architecture", async () => {
  const files = await manifestFiles();
  assert(files.length >= 20, `only ${files.length} manifests found`);
  const seen = new Set<string>();
  for (const rel of files) {
    const json = await readJson(rel);
    const m: Manifest = parseManifest(json, rel);
    seen.add(m.architecture);
    assert.equal(m.layers.length, m.num_layers + 2, rel);
    const filters = m.tensors[m.patch_filters].shape;
    assert.equal(filters.length, 4, rel);
    assert.equal(filters[1], 3, rel);
    if (isFamily(m, "resnet")) {
      assert.equal(m.stages.reduce((a, b) => a + b, 0), m.num_layers, rel);
    } else {
      assert(m.patch_size! > 0 && m.seq_length! > 0, rel);
    }
  }
  assert.deepEqual([...seen].sort(), ["ffvit", "mixer", "resnet", "vit"]);
});

/** [what, mutation of a copy of the tiny ViT manifest, expected message]. */
const VIT_CASES: [string, (m: Json) => void, RegExp][] = [
  ["missing layers", (m) => delete m.layers, /: "layers" is missing/],
  [
    "image_size as a string",
    (m) => m.image_size = "224",
    /: "image_size" must be a positive integer, got "224"/,
  ],
  [
    "unknown architecture without runtime",
    (m) => m.architecture = "cnn",
    /: "architecture" must be one of vit, mixer, ffvit, resnet, or a family whose converter module writes "runtime" \(a lowercase name\), got "cnn"/,
  ],
  [
    "a family name that is no name",
    (m) => {
      m.architecture = "Conv Net";
      m.runtime = { block_chain: "any" };
    },
    /: "architecture" must be one of vit, .*, got "Conv Net"/,
  ],
  [
    "a known family's field of another type",
    (m) => {
      m.architecture = "cnn";
      m.runtime = legacyRuntime({ name: "cnn", architecture: "vit" });
      m.stages = [1, "2"];
    },
    /: stages\[1\] must be a positive integer, got "2"/,
  ],
  [
    "other format",
    (m) => m.format = "vitrep-model/2",
    /: "format" must be one of vitrep-model\/1, got "vitrep-model\/2"/,
  ],
  ["num_layers 0", (m) => m.num_layers = 0, /"num_layers" must be a positive/],
  [
    "a CPU graph that is not there",
    (m) => m.layers[0].cpu_graph = "stem_indexed",
    /: layers\[0\]\.cpu_graph names "stem_indexed", which has no graph "stem_indexed\.fwd" in "graphs"/,
  ],
  [
    "a CPU graph reading other tensors",
    (m) => m.layers[1].cpu_graph = "stem",
    /: graphs\["stem\.fwd"\] has parameter "class_token" of shape \[1,1,16\], which layer 1 reads as tensor "encoder\.layers\.encoder_layer_0\.class_token": "tensors" lacks it/,
  ],
  [
    "batch_axis not a boolean",
    (m) => m.batch_axis = "yes",
    /: "batch_axis" must be true or false, got "yes"/,
  ],
  [
    "mean of 2 values",
    (m) => m.input.mean = [0.5, 0.5],
    /: input\.mean must be an array of 3 numbers, got \[0\.5,0\.5\]/,
  ],
  [
    "zero std",
    (m) => m.input.std[1] = 0,
    /: input\.std\[1\] must be a positive number, got 0/,
  ],
  [
    "input shape not the image size",
    (m) => m.input.shape = [1, 3, 16, 16],
    /: input\.shape must be \[1, 3, 32, 32\]/,
  ],
  [
    "graph file absolute",
    (m) => m.graphs["stem.fwd"].file = "/etc/passwd",
    /: graphs\["stem\.fwd"\]\.file must be a relative path inside the model folder, got "\/etc\/passwd"/,
  ],
  [
    "graph file with ..",
    (m) => m.graphs["block.vjp"].file = "graphs/../../../etc/passwd",
    /: graphs\["block\.vjp"\]\.file must be a relative path/,
  ],
  [
    "graph file with a scheme",
    (m) => m.graphs["head.fwd"].file = "file:///etc/passwd",
    /: graphs\["head\.fwd"\]\.file must be a relative path.*"file:\/\/\/etc\/passwd"/,
  ],
  [
    "graph file on another host",
    (m) => m.graphs["head.fwd"].file = "http://evil.example/head.onnx",
    /: graphs\["head\.fwd"\]\.file must be a relative path/,
  ],
  [
    "graph file with an encoded ..",
    (m) => m.graphs["head.fwd"].file = "%2e%2e/x.onnx",
    /: graphs\["head\.fwd"\]\.file must be a relative path/,
  ],
  [
    "graph without sha256",
    (m) => delete m.graphs["stem.fwd"].sha256,
    /: graphs\["stem\.fwd"\]\.sha256 is missing: expected a SHA-256/,
  ],
  [
    "negative param offset",
    (m) => m.graphs["block.fwd"].params[0].offset = -4,
    /: graphs\["block\.fwd"\]\.params\[0\]\.offset must be a non-negative integer, got -4/,
  ],
  [
    "param length not its shape",
    (m) => m.graphs["block.fwd"].params[0].length = 7,
    /: graphs\["block\.fwd"\]\.params\[0\]\.length must be \d+ \(float32 of its shape\), got 7/,
  ],
  [
    "overlapping params",
    (m) => m.graphs["block.fwd"].params[1].offset = 0,
    /: graphs\["block\.fwd"\]\.params\[1\]\.offset must be at least \d+/,
  ],
  [
    "params as an object",
    (m) => m.graphs["head.vjp"].params = {},
    /: graphs\["head\.vjp"\]\.params must be an array, got \{\}/,
  ],
  [
    "a layer's graph missing",
    (m) => delete m.graphs["head.vjp"],
    /: layers\[4\]\.graph names "head", which has no graph "head\.vjp"/,
  ],
  [
    "too few layers",
    (m) => m.layers.pop(),
    /: "layers" must have num_layers \+ 2 = 5 entries, got 4/,
  ],
  [
    "switches not strings",
    (m) => m.layers[1].switches = [1],
    /: layers\[1\]\.switches\[0\] must be a non-empty string, got 1/,
  ],
  [
    "tensor shape not the graph's",
    (m) => m.tensors["conv_proj.weight"].shape = [16, 3, 8],
    /: graphs\["stem\.fwd"\] has parameter "conv_proj\.weight" of shape \[16,3,8,8\].*\[16,3,8\]/,
  ],
  [
    "tensor with a bad dimension",
    (m) => m.tensors["class_token"].shape = [1, -1, 16],
    /: tensors\.class_token\.shape\[1\] must be a non-negative integer, got -1/,
  ],
  [
    "unknown init",
    (m) => m.tensors["class_token"].init = { kind: "xavier" },
    /: tensors\.class_token\.init\.kind must be one of constant, normal, uniform, trunc_normal, got "xavier"/,
  ],
  [
    "init without std",
    (m) => delete m.tensors["conv_proj.weight"].init.std,
    /: tensors\["conv_proj\.weight"\]\.init\.std is missing/,
  ],
  [
    "float16 tensor",
    (m) => m.tensors["class_token"].dtype = "float16",
    /: tensors\.class_token\.dtype must be one of float32, got "float16"/,
  ],
  [
    "weight set outside the folder",
    (m) => m.weight_sets.fixture.file = "../tiny_vit_p4/fixture.safetensors",
    /: weight_sets\.fixture\.file must be a relative path inside the model folder/,
  ],
  [
    "weight-set hash of an unknown tensor",
    (m) => m.weight_sets.fixture.sha256["nope"] = "0".repeat(64),
    /: weight_sets\.fixture\.sha256\.nope names a tensor that "tensors" lacks/,
  ],
  [
    "weight-set hash not hex",
    (m) => m.weight_sets.fixture.sha256["class_token"] = "xyz",
    /: weight_sets\.fixture\.sha256\.class_token must be a SHA-256 of 64 lowercase hex digits, got "xyz"/,
  ],
  [
    "too few categories",
    (m) => m.categories = ["a"],
    /: "categories" must hold num_classes = 10 names, got 1/,
  ],
  [
    "patch_filters not a convolution",
    (m) => m.patch_filters = "heads.head.weight",
    /: "patch_filters" must name a tensor of shape \[n, 3, p, p\] in "tensors", got "heads\.head\.weight" of shape \[10,16\]/,
  ],
  [
    "ViT without num_heads",
    (m) => delete m.num_heads,
    /: "num_heads" is missing/,
  ],
  [
    "external data with a path",
    (m) => m.external_data = "../w",
    /: "external_data" must be a plain file name, got "\.\.\/w"/,
  ],
];

Deno.test("a mutated manifest fails naming the file and the field", async () => {
  const base = await readJson("tests/fixtures/tiny_vit/manifest.json");
  parseManifest(structuredClone(base), FILE); // the unmutated one parses
  for (const [what, mutate, message] of VIT_CASES) {
    const m = structuredClone(base);
    mutate(m);
    assert.throws(() => parseManifest(m, FILE), (err: Error) => {
      assert(err instanceof TypeError, `${what}: ${err}`);
      assert(err.message.startsWith(`${FILE}: `), `${what}: ${err.message}`);
      assert.match(err.message, message, what);
      return true;
    });
  }
  assert.throws(
    () => parseManifest([], FILE),
    /: "manifest" must be an object, got \[\]/,
  );
});

Deno.test("family fields: ResNets need no patch placeholders; mixers; patch_filters everywhere", async () => {
  const resnet = await readJson("tests/fixtures/tiny_resnet/manifest.json");
  const r = structuredClone(resnet);
  delete r.patch_size;
  delete r.seq_length;
  delete r.hidden_dim;
  const parsed = parseManifest(r, FILE);
  assert.equal(parsed.architecture, "resnet");
  assert.equal(parsed.patch_size, undefined);
  r.stages = [3, 1, 1];
  assert.throws(
    () => parseManifest(r, FILE),
    /: "stages" must add up to num_layers = 6, got 5/,
  );
  const mixer = await readJson("tests/fixtures/tiny_mixer/manifest.json");
  const mx = structuredClone(mixer);
  mx.class_token = "yes";
  assert.throws(
    () => parseManifest(mx, FILE),
    /: "class_token" must be true or false, got "yes"/,
  );
  // every family records its stem convolution (no "conv_proj.weight" fallback)
  const vit = await readJson("tests/fixtures/tiny_vit/manifest.json");
  for (const m of [mixer, vit]) {
    delete m.patch_filters;
    assert.throws(() => parseManifest(m, FILE), /: "patch_filters" is missing/);
  }
});

Deno.test("loadModel reports a bad manifest with its path and field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vitrep_manifest_" });
  try {
    const m = await readJson("tests/fixtures/tiny_vit/manifest.json");
    delete m.layers;
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m));
    await assert.rejects(() => loadModel(dir), {
      name: "TypeError",
      message: `${dir}/manifest.json: "layers" is missing: expected an array`,
    });
    m.layers = "all";
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m));
    await assert.rejects(() => loadModel(`${dir}/manifest.json`), {
      name: "TypeError",
      message: `${dir}/manifest.json: "layers" must be an array, got "all"`,
    });
    await Deno.writeTextFile(`${dir}/manifest.json`, "{ not json");
    await assert.rejects(() => loadModel(dir), {
      name: "TypeError",
      message: new RegExp(`Cannot load model "${dir}/manifest.json": .*JSON`),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtime: each committed manifest's is what parseManifest derives without it", async () => {
  let written = 0;
  for (const rel of await manifestFiles()) {
    const json = await readJson(rel);
    const derived = parseManifest({ ...json, runtime: undefined }, rel).runtime;
    if (json.runtime === undefined) continue; // an older manifest: derived
    written++;
    assert.deepEqual(parseManifest(json, rel).runtime, json.runtime, rel);
    assert.deepEqual(derived, json.runtime, `${rel}: legacyRuntime differs`);
  }
  assert(written >= 16, `only ${written} manifests have "runtime"`);
  const old = await readJson("tests/fixtures/tiny_resnet/manifest.json");
  assert.equal(old.runtime, undefined, "the fixtures stay older manifests");
  const r = parseManifest(old, "tiny_resnet").runtime;
  assert.deepEqual(
    [r.block_chain, r.wasm_threads, r.layer_labels, r.torchvision_weights],
    ["stage", 1, "name", false],
  );
  assert.deepEqual(r.convert_args, ["tiny_resnet"]);
  const vit = parseManifest(
    await readJson("tests/fixtures/tiny_vit/manifest.json"),
    "tiny_vit",
  ).runtime;
  assert.deepEqual(
    [vit.block_chain, vit.wasm_threads, vit.layer_labels],
    ["any", null, "number"],
  );
});

Deno.test("runtime: a bad field is named", async () => {
  const base = await readJson("weights/vit_b_32/manifest.json");
  const cases: [Json, RegExp][] = [
    [
      { block_chain: "x" },
      /"?runtime\.block_chain"? must be one of any, stage, got "x"/,
    ],
    [
      { wasm_threads: 0 },
      /runtime\.wasm_threads must be a positive integer, got 0/,
    ],
    [{ layer_labels: 1 }, /runtime\.layer_labels must be one of number, name/],
    [
      { convert_args: [] },
      /runtime\.convert_args must be at least the model name/,
    ],
    [
      { torchvision_weights: "yes" },
      /runtime\.torchvision_weights must be true or false/,
    ],
    [{ block_chain: undefined }, /runtime\.block_chain is missing/],
  ];
  for (const [change, re] of cases) {
    const json = { ...base, runtime: { ...base.runtime, ...change } };
    assert.throws(() => parseManifest(json, FILE), re);
  }
  assert.throws(
    () => parseManifest({ ...base, runtime: [] }, FILE),
    /"runtime" must be an object/,
  );
});

Deno.test("a family this runtime does not know by name runs from its manifest alone: the tiny ResNet, renamed, matches PyTorch", async () => {
  // A new family is its converter module, its manifest and tests: no TS branch. The tiny
  // ResNet's folder with `architecture` renamed stands in for one; what the runtime must
  // know comes from `runtime` (stage chaining, one wasm thread, labels, the parts' names).
  const { dir: src, cases, get } = await loadReference("tiny_resnet");
  const dir = await Deno.makeTempDir({ prefix: "vitrep-family-" });
  try {
    for await (const e of Deno.readDir(src)) {
      if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
    }
    await Deno.mkdir(`${dir}/graphs`);
    for await (const e of Deno.readDir(`${src}/graphs`)) {
      await Deno.copyFile(`${src}/graphs/${e.name}`, `${dir}/graphs/${e.name}`);
    }
    const json = await readJson("tests/fixtures/tiny_resnet/manifest.json");
    json.architecture = "strided_net";
    json.runtime = {
      ...legacyRuntime({ ...json, architecture: "resnet" }),
      block_word: "stage block",
      part_names: { bn: "batch norms", res1: "skip", res2: "skip" },
    };
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(json));
    const m = await loadModel(dir, { weights: "fixture", backend: "native" });
    try {
      assert.equal(m.manifest.architecture, "strided_net");
      assert.equal(m.manifest.runtime.block_chain, "stage");
      assert.equal(layerLabel(m.manifest, 2), "stage block 2 (layer1.1)");
      const x = get("x");
      let ran = 0;
      const intact = cases.filter((c) =>
        c.kind === "forward" && (c.ablation?.name ?? "none") === "none"
      );
      for (const c of intact) {
        const out = await m.forward(x, { layer: c.layer });
        const e = relErr(out.data, get(c.output!));
        assert(e <= 1e-5, `layer ${c.layer}: forward rel err ${e}`);
        ran++;
      }
      assert(ran >= 3, `only ${ran} forward cases`);
      // a stage chain still refuses blocks that skip into another stage
      await assert.rejects(
        () => m.forward(x, { layer: 5, blocks: [1, 5] }),
        /stage/,
      );
    } finally {
      await m.release();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
