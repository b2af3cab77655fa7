// Hostile models and faulty servers (issue 10, classes 5, 6, 7 and 9): paths a
// manifest names stay inside the model, graphs and weight sets are verified,
// http(s) has a timeout, bounded retries, URL-naming errors and no cached failures.
import assert from "node:assert/strict";
import { relative } from "node:path";
import { loadModel, type LoadOptions, VerifyCache } from "../src/model/mod.ts";
import { serializeSafetensors } from "../src/io/mod.ts";
import { run as cli } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TINY = `${ROOT}tests/fixtures/tiny_vit`;
const X = new Float32Array(3 * 32 * 32).map((_, i) => (i % 17) / 17);
const NATIVE: LoadOptions = { backend: "native", weights: "fixture" };

/** A copy of the tiny ViT's folder (manifest, graphs, weight sets) in a temp dir. */
async function copyTiny(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vitrep_safety_" });
  await Deno.mkdir(`${dir}/graphs`);
  for await (const e of Deno.readDir(`${TINY}/graphs`)) {
    await Deno.copyFile(`${TINY}/graphs/${e.name}`, `${dir}/graphs/${e.name}`);
  }
  for (
    const f of ["manifest.json", "fixture.safetensors", "fixture2.safetensors"]
  ) {
    await Deno.copyFile(`${TINY}/${f}`, `${dir}/${f}`);
  }
  return dir;
}

// deno-lint-ignore no-explicit-any
type Edit = (m: any) => void;

async function editManifest(dir: string, edit: Edit) {
  const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  edit(m);
  await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m));
}

async function flipByte(path: string, fromEnd: number): Promise<void> {
  const b = await Deno.readFile(path);
  b[b.length - fromEnd] ^= 0x40;
  await Deno.writeFile(path, b);
}

async function logits(source: string, options: LoadOptions = NATIVE) {
  const m = await loadModel(source, options);
  try {
    return (await m.forward(X)).data;
  } finally {
    await m.release();
  }
}

/** Serves `dir` on 127.0.0.1; `hook` may answer a path first. */
function serve(
  dir: string,
  hook: (path: string) => Response | undefined = () => undefined,
) {
  const ac = new AbortController();
  const hits = new Map<string, number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const hooked = hook(path);
      if (hooked) return hooked;
      try {
        return new Response(await Deno.readFile(`${dir}${path}`));
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test("confinement: a manifest cannot name files outside its model folder", async () => {
  const dir = await copyTiny();
  try {
    const cases: [string, Edit, RegExp][] = [
      [
        "absolute graph path",
        (m) => m.graphs["stem.fwd"].file = "/etc/passwd",
        /graphs\["stem\.fwd"\]\.file must be a relative path inside the model folder, got "\/etc\/passwd"/,
      ],
      [
        "graph path with ..",
        (m) =>
          m.graphs["block.fwd"].file = "../tiny_vit_p4/graphs/block.fwd.onnx",
        /graphs\["block\.fwd"\]\.file must be a relative path/,
      ],
      [
        "weight set outside",
        (m) => m.weight_sets.fixture.file = "../../etc/passwd",
        /weight_sets\.fixture\.file must be a relative path/,
      ],
      [
        "file:// weight set",
        (m) => m.weight_sets.fixture.file = "file:///dev/zero",
        /weight_sets\.fixture\.file must be a relative path/,
      ],
    ];
    for (const [what, edit, message] of cases) {
      await Deno.copyFile(`${TINY}/manifest.json`, `${dir}/manifest.json`);
      await editManifest(dir, edit);
      await assert.rejects(
        () => logits(dir),
        { name: "TypeError", message },
        what,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("confinement: devices and fifos inside the folder are refused, naming the field", async () => {
  const dir = await copyTiny();
  try {
    await Deno.remove(`${dir}/fixture.safetensors`);
    await Deno.symlink("/dev/zero", `${dir}/fixture.safetensors`);
    await assert.rejects(() => loadModel(dir, NATIVE), {
      name: "TypeError",
      message: /fixture\.safetensors".*not a regular file/,
    });
    await Deno.remove(`${dir}/graphs/stem.fwd.onnx`);
    const mk = await new Deno.Command("mkfifo", {
      args: [`${dir}/graphs/stem.fwd.onnx`],
    }).output();
    assert(mk.success, "mkfifo failed");
    const m = await loadModel(dir, { backend: "native" });
    await assert.rejects(() => m.forward(X), {
      name: "TypeError",
      message:
        /stem\.fwd\.onnx" \(graphs\["stem\.fwd"\]\.file\): not a regular file/,
    });
    await m.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("confinement: a manifest served over http cannot reach another scheme or host", async () => {
  const dir = await copyTiny();
  const server = serve(dir);
  try {
    for (
      const file of [
        "file:///etc/passwd",
        "http://169.254.169.254/x",
        "//evil.example/x",
      ]
    ) {
      await editManifest(dir, (m) => m.graphs["head.fwd"].file = file);
      await assert.rejects(() => loadModel(server.url, NATIVE), {
        name: "TypeError",
        message: new RegExp(
          `^${server.url}/manifest\\.json: graphs\\["head\\.fwd"\\]\\.file must be a relative path`,
        ),
      });
    }
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("integrity: damaged graphs and weight sets fail naming the file; verify: false skips", async () => {
  const dir = await copyTiny();
  try {
    const want = await logits(TINY);
    await flipByte(`${dir}/fixture.safetensors`, 5); // a value of the last tensor
    await assert.rejects(() => loadModel(dir, NATIVE), {
      name: "TypeError",
      message:
        /Tensor "heads\.head\.bias" of weights "fixture" has SHA-256 [0-9a-f]{64}: expected [0-9a-f]{64}/,
    });
    const unchecked = await loadModel(dir, { ...NATIVE, verify: false });
    assert.equal(unchecked.verified, false);
    await unchecked.release();
    await Deno.copyFile(
      `${TINY}/fixture.safetensors`,
      `${dir}/fixture.safetensors`,
    );
    await flipByte(`${dir}/graphs/head.fwd.onnx`, 3);
    const m = await loadModel(dir, NATIVE);
    assert.equal(m.verified, true);
    await assert.rejects(() => m.forward(X), {
      name: "TypeError",
      message: /head\.fwd\.onnx" has SHA-256 .*\(graphs\["head\.fwd"\]\.file\)/,
    });
    await m.release();
    await Deno.copyFile(
      `${TINY}/graphs/head.fwd.onnx`,
      `${dir}/graphs/head.fwd.onnx`,
    );
    assert.deepEqual(await logits(dir), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("integrity: non-finite weights are refused naming the tensor", async () => {
  const dir = await copyTiny();
  try {
    const manifest = JSON.parse(
      await Deno.readTextFile(`${dir}/manifest.json`),
    );
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of Object.entries(manifest.tensors)) {
      const shape = (t as { shape: number[] }).shape;
      tensors[name] = {
        shape,
        data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
      };
    }
    tensors["encoder.layers.encoder_layer_1.mlp.0.weight"].data[12] = NaN;
    await Deno.writeFile(
      `${dir}/nan.safetensors`,
      serializeSafetensors(tensors),
    );
    await assert.rejects(
      () => loadModel(TINY, { weights: `${dir}/nan.safetensors` }),
      {
        name: "RangeError",
        message:
          /Tensor "encoder\.layers\.encoder_layer_1\.mlp\.0\.weight" of weights ".*nan\.safetensors" holds NaN at index 12: expected finite weights/,
      },
    );
    // as a swap the tensor is only read if the part holds it
    const ok = await loadModel(TINY, {
      ...NATIVE,
      swaps: [{ part: "conv_proj", weights: `${dir}/nan.safetensors` }],
    });
    await ok.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("integrity: a VerifyCache skips unchanged files (path, size and mtime) and rechecks changed ones", async () => {
  const dir = await copyTiny();
  try {
    const cache = new VerifyCache();
    const first = await loadModel(dir, { ...NATIVE, verifyCache: cache });
    await first.forward(X);
    await first.release();
    // the weight set and the three forward graphs (stem, block, head)
    assert.equal(cache.size, 4);
    const path = `${dir}/fixture.safetensors`;
    const { mtime } = await Deno.stat(path);
    await flipByte(path, 5);
    // same path, size and mtime: taken as verified (the point of the cache)
    await Deno.utime(path, mtime!, mtime!);
    const cached = await loadModel(dir, { ...NATIVE, verifyCache: cache });
    await cached.release();
    // a new mtime: checked again, and the damage is found
    await Deno.utime(path, new Date(), new Date(mtime!.getTime() + 5000));
    await assert.rejects(
      () => loadModel(dir, { ...NATIVE, verifyCache: cache }),
      /heads\.head\.bias" of weights "fixture" has SHA-256/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("networks: a server that never answers times out naming the URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // closed at the end of the test
    }
  })();
  const url = `http://127.0.0.1:${listener.addr.port}/tiny_vit`;
  try {
    const t0 = performance.now();
    await assert.rejects(() => loadModel(url, { timeoutMs: 300 }), {
      name: "TypeError",
      message:
        `Cannot load model "${url}/manifest.json": Cannot fetch "${url}/manifest.json": no answer within 300 ms: check the server, or raise timeoutMs: expected a folder or URL holding manifest.json from tools/convert.py`,
    });
    const ms = performance.now() - t0;
    assert(ms < 3000, `took ${ms} ms`);
    await assert.rejects(() => loadModel(url, { timeoutMs: 0 }), {
      name: "RangeError",
      message: /Invalid timeoutMs "0"/,
    });
  } finally {
    listener.close();
    for (const c of held) c.close();
    await accepting;
  }
});

Deno.test("networks: a server that stalls inside a body times out; a slow but live one does not", async () => {
  const enc = new TextEncoder();
  const server = serve(TINY, (path) => {
    if (path === "/fixture.safetensors") {
      // a few bytes, then nothing more, ever
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(enc.encode("12345678"));
          },
        }),
      );
    }
    if (path.startsWith("/graphs/")) {
      // the whole file in pieces 100 ms apart: longer than the timeout in all, never idle that long
      return new Response(
        new ReadableStream({
          async start(c) {
            const bytes = await Deno.readFile(`${TINY}${path}`);
            const step = Math.ceil(bytes.length / 4);
            for (let i = 0; i < bytes.length; i += step) {
              c.enqueue(bytes.subarray(i, i + step));
              await new Promise((r) => setTimeout(r, 100));
            }
            c.close();
          },
        }),
      );
    }
    return undefined;
  });
  try {
    await assert.rejects(
      () => loadModel(server.url, { ...NATIVE, timeoutMs: 300 }),
      {
        name: "TypeError",
        message:
          `Cannot fetch "${server.url}/fixture.safetensors": no answer within 300 ms: check the server, or raise timeoutMs`,
      },
    );
    const m = await loadModel(server.url, {
      backend: "native",
      timeoutMs: 300,
    });
    await m.prepare(0); // stem.fwd: four pieces, 400 ms in all
    await m.release();
  } finally {
    await server.close();
  }
});

Deno.test("networks: transient failures are retried, 404 is not, and errors name the URL", async () => {
  let failures = 1;
  const server = serve(TINY, (path) => {
    if (path === "/fixture.safetensors" && failures > 0) {
      failures--;
      return new Response("busy", { status: 503 });
    }
    return undefined;
  });
  try {
    assert.deepEqual(await logits(server.url), await logits(TINY));
    assert.equal(server.hits.get("/fixture.safetensors"), 2);
    await assert.rejects(() => loadModel(`${server.url}/missing`), {
      name: "TypeError",
      message: new RegExp(
        `Cannot fetch "${server.url}/missing/manifest\\.json": HTTP 404`,
      ),
    });
    assert.equal(server.hits.get("/missing/manifest.json"), 1);
    failures = 10;
    await assert.rejects(
      () => loadModel(server.url, { ...NATIVE, retries: 1 }),
      {
        message: new RegExp(
          `Cannot fetch "${server.url}/fixture\\.safetensors": HTTP 503 .*\\(after 2 attempts\\)`,
        ),
      },
    );
  } finally {
    await server.close();
  }
});

Deno.test("networks: a failed graph fetch is not cached in the model: it works once the file is back", async () => {
  let down = true;
  const server = serve(
    TINY,
    (path) =>
      down && path === "/graphs/block.fwd.onnx"
        ? new Response("gone", { status: 404 })
        : undefined,
  );
  try {
    const m = await loadModel(server.url, NATIVE);
    await assert.rejects(() => m.forward(X), {
      name: "TypeError",
      message: new RegExp(
        `Cannot fetch "${server.url}/graphs/block\\.fwd\\.onnx" \\(graphs\\["block\\.fwd"\\]\\.file\\): HTTP 404`,
      ),
    });
    down = false;
    assert.deepEqual((await m.forward(X)).data, await logits(TINY));
    await m.release();
  } finally {
    await server.close();
  }
});

Deno.test("forward refuses blocks: [], options are checked, relative .safetensors paths resolve against the current directory", async () => {
  const m = await loadModel(TINY, NATIVE);
  for (const layer of [0, 2, "logits"] as const) {
    await assert.rejects(() => m.forward(X, { layer, blocks: [] }), {
      name: "RangeError",
      message:
        /Invalid blocks \[\]: expected at least one encoder block of 1\.\.3/,
    });
  }
  await m.release();
  await assert.rejects(() => loadModel(TINY, { retries: 1.5 }), {
    name: "RangeError",
    message: 'Invalid retries "1.5": expected an integer in 0..10',
  });
  await assert.rejects(
    () => loadModel(TINY, { verify: "no" as unknown as boolean }),
    {
      name: "TypeError",
      message: 'Invalid verify "no": expected true or false',
    },
  );
  const rel = relative(Deno.cwd(), `${TINY}/fixture.safetensors`);
  assert(!rel.startsWith("/"), rel);
  assert.deepEqual(
    await logits(TINY, { backend: "native", weights: rel }),
    await logits(TINY),
  );
});

Deno.test("integrity: a weight set whose manifest lacks a tensor's SHA-256 is refused, naming the tensors", async () => {
  const dir = await copyTiny();
  try {
    await editManifest(dir, (m) => {
      delete m.weight_sets.fixture.sha256["heads.head.bias"];
      delete m.weight_sets.fixture.sha256["conv_proj.weight"];
    });
    await assert.rejects(() => loadModel(dir, NATIVE), {
      name: "TypeError",
      message:
        'Weight set "fixture" has no SHA-256 for 2 tensors ("conv_proj.weight", "heads.head.bias") in weight_sets["fixture"].sha256: expected one for every tensor; convert the weights again, or load with verify: false',
    });
    // as a swap only the part's tensors are needed: all of encoder.ln's have one
    const swapped = await loadModel(dir, {
      backend: "native",
      swaps: [{ part: "encoder.ln", weights: "fixture" }],
    });
    assert.equal(swapped.verified, true);
    await swapped.release();
    await assert.rejects(
      () =>
        loadModel(dir, {
          backend: "native",
          swaps: [{ part: "heads", weights: "fixture" }],
        }),
      /no SHA-256 for 1 tensor \("heads\.head\.bias"\)/,
    );
    // unverified, it loads, and says so
    const unchecked = await loadModel(dir, { ...NATIVE, verify: false });
    assert.equal(unchecked.verified, false);
    await unchecked.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("integrity: init distributions that overflow float32 are refused naming the tensor", async () => {
  const dir = await copyTiny();
  const head = "heads.head.weight";
  try {
    await editManifest(
      dir,
      (m) => m.tensors[head].init = { kind: "normal", std: 1e300 },
    );
    await assert.rejects(() => loadModel(dir, { backend: "native" }), {
      name: "TypeError",
      message:
        `${dir}/manifest.json: tensors["heads.head.weight"].init.std must be a number within float32 range (±3.4e38), got 1e+300`,
    });
    // each number fits, the draws do not: refused when the tensor is drawn
    await editManifest(
      dir,
      (m) => m.tensors[head].init = { kind: "normal", mean: 3e38, std: 1e38 },
    );
    const m = await loadModel(dir, { backend: "native" });
    await assert.rejects(() => m.forward(X), {
      name: "RangeError",
      message:
        /^Untrained tensor "heads\.head\.weight" drawn from init \{"kind":"normal","mean":3e\+38,"std":1e\+38\} holds Infinity at index \d+: expected values finite in float32/,
    });
    assert.throws(
      () => m.tensor(head),
      /Untrained tensor "heads\.head\.weight"/,
    );
    await m.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("untrained:SEED takes a non-negative integer, like seed", async () => {
  for (const seed of ["-1", "1.5", "", "x", "1e3", "99999999999999999999"]) {
    const weights = `untrained:${seed}`;
    await assert.rejects(() => loadModel(TINY, { weights }), {
      name: "RangeError",
      message:
        `Invalid weights "${weights}": expected untrained:SEED with SEED a non-negative integer, e.g. untrained:1`,
    }, weights);
    await assert.rejects(
      () => loadModel(TINY, { swaps: [{ part: "conv_proj", weights }] }),
      { name: "RangeError", message: /Invalid weights "untrained:/ },
    );
  }
  await assert.rejects(() => loadModel(TINY, { seed: -1 }), {
    name: "RangeError",
    message: 'Invalid seed "-1": expected a non-negative integer',
  });
  const a = await loadModel(TINY, { weights: "untrained:7" });
  const b = await loadModel(TINY, { weights: "untrained", seed: 7 });
  assert.deepEqual(a.tensor("conv_proj.weight"), b.tensor("conv_proj.weight"));
  await a.release();
  await b.release();
  // the CLI refuses it too, before writing anything
  const out = `${await Deno.makeTempDir({ prefix: "vitrep_seed_" })}/run`;
  try {
    const r = await cli([
      "forward",
      "--model",
      TINY,
      "--weights",
      "untrained:-1",
      "--image",
      `${ROOT}assets/chelsea.png`,
      "--out",
      out,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /Invalid weights "untrained:-1"/);
    await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(out.replace(/\/run$/, ""), { recursive: true });
  }
});
