// tools/gpu_bench.ts and tools/gpu_bench.sh: options, the table it writes (on
// the tiny fixture, wasm, no PyTorch: no timing is checked), and what `pack`
// leaves in .gpu/ where a pack was made (skipped otherwise).
import assert from "node:assert/strict";
import { ROOT, runTool } from "./_cli.ts";

const gpuBench = (args: string[]) => runTool("gpu_bench.ts", args, { OUT: "" });

Deno.test("gpu_bench.ts: a bad option exits 2 naming the value and the valid ones", async () => {
  const r = await gpuBench(["--backend", "cuda"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--backend "cuda": expected one of webgpu, wasm, native/);
  const b = await gpuBench(["--batches", "1,0"]);
  assert.equal(b.code, 2);
  assert.match(b.err, /--batches "0": expected an integer ≥ 1/);
});

Deno.test("gpu_bench.ts: one row per batch in the table it writes, with the raw times beside it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vitrep_gpu_bench_" });
  try {
    const out = `${dir}/t.md`;
    const r = await gpuBench([
      ...["--model", "tests/fixtures/tiny_vit", "--weights", "fixture"],
      ...["--backend", "wasm", "--layer", "2", "--batches", "1,3"],
      ...["--repeats", "2", "--warmup", "0", "--no-torch", "--out", out],
    ]);
    assert.equal(r.code, 0, r.err);
    const md = await Deno.readTextFile(out);
    assert.match(md, /PyTorch: not run/);
    const rows = md.split("\n").filter((l) => l.startsWith("| tests/"));
    assert.deepEqual(rows.map((l) => l.split(" | ")[2]), ["1", "3"]);
    assert.match(md, /\| wasm ms \| wasm img\/s \|/);
    const raw = JSON.parse(await Deno.readTextFile(`${dir}/t.json`));
    assert.deepEqual(
      raw.deno.map((
        t: { batch: number; ms: number[] },
      ) => [t.batch, t.ms.length]),
      [[1, 2], [3, 2]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gpu_bench.ts: a failing backend exits 1, prints the table and writes no file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vitrep_gpu_bench_" });
  try {
    const r = await gpuBench([
      ...["--model", "tests/fixtures/tiny_vit", "--weights", "no_such_set"],
      ...["--backend", "wasm", "--no-torch", "--out", `${dir}/t.md`],
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /wasm failed: .*no_such_set/);
    assert.match(r.out, /\| tests\/fixtures\/tiny_vit \| 12 \| 1 \| n\/a \|/);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gpu_bench.sh: usage exits 2", async () => {
  const r = await new Deno.Command("bash", {
    args: [`${ROOT}tools/gpu_bench.sh`, "nonsense"],
  }).output();
  assert.equal(r.code, 2);
  assert.match(new TextDecoder().decode(r.stderr), /gpu_bench\.sh pack/);
});

async function packed(): Promise<string[] | null> {
  try {
    await Deno.stat(`${ROOT}.gpu/deno_dir.tar.xz`);
    const r = await new Deno.Command("tar", {
      args: ["-tJf", `${ROOT}.gpu/deno_dir.tar.xz`],
    }).output();
    return r.success ? new TextDecoder().decode(r.stdout).split("\n") : null;
  } catch {
    return null;
  }
}

const files = await packed();
Deno.test({
  name:
    "gpu_bench.sh pack: the DENO_DIR holds the webgpu entry and the packages it needs",
  ignore: files === null, // no `bash tools/gpu_bench.sh pack` here (or no xz)
  fn: async () => {
    const reg = "deno_dir/npm/registry.npmjs.org/";
    const ort = `${reg}onnxruntime-web/1.30.0/dist/`;
    for (
      const f of [
        "ort.webgpu.bundle.min.mjs",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
      ]
    ) assert.ok(files!.includes(ort + f), `${ort}${f} missing`);
    const dist = files!.filter((f) => f.startsWith(ort) && f !== ort);
    assert.equal(dist.length, 3, `only the webgpu files: ${dist.join(", ")}`);
    for (const p of ["fast-png", "fflate", "jpeg-js", "onnxruntime-common"]) {
      assert.ok(files!.some((f) => f.startsWith(`${reg}${p}/`)), p);
    }
    assert.ok(!files!.some((f) => f.includes("onnxruntime-node/1.30.0/bin/")));
    for (const part of ["deno.xz", "debs"]) {
      await Deno.stat(`${ROOT}.gpu/${part}`);
    }
  },
});
