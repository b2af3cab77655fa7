// tools/profile.ts (`deno task profile`): its options and the report it writes,
// on the tiny fixture (no timing is checked: only the report's structure and
// counts that follow from the chain).
import assert from "node:assert/strict";
import { runTool } from "./_cli.ts";

const profile = (args: string[]) => runTool("profile.ts", args);

Deno.test("profile.ts: a bad option exits 2 naming the value and the valid ones", async () => {
  const b = await profile(["--backends", "native,cuda"]);
  assert.equal(b.code, 2);
  assert.match(
    b.err,
    /--backends "cuda": expected names from native, wasm, webgpu/,
  );
  const l = await profile(["--layer", "0"]);
  assert.equal(l.code, 2);
  assert.match(l.err, /--layer "0": expected an integer ≥ 1/);
});

Deno.test("profile.ts: per-graph rows on both backends and native's node types", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vitrep_profile_" });
  try {
    const out = `${dir}/p.md`;
    const r = await profile([
      "--model",
      "tests/fixtures/tiny_vit",
      "--weights",
      "fixture",
      "--layer",
      "2",
      "--repeats",
      "2",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.err);
    const md = await Deno.readTextFile(out);
    assert.equal(md.trim(), r.out.trim());
    assert.match(
      md,
      /^## tiny_vit, layer 2, batch 1: native [\d.]+ ms, wasm [\d.]+ ms/,
    );
    // the chain: the stem once, the two blocks share one graph
    const rows = {
      "stem.fwd": 1,
      "stem.vjp": 1,
      "block.fwd": 2,
      "block.vjp": 2,
    };
    for (const [graph, positions] of Object.entries(rows)) {
      const name = graph.replace(".", "\\.");
      const row =
        `\\| ${name} \\| ${positions} \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+x \\|`;
      assert.match(md, new RegExp(row));
    }
    assert.match(md, /### native: node types/);
    assert.match(md, /\| MatMul \| [\d.]+ \| [\d.]+% \| \d+ \| [\d.]+ \|/);
    assert.doesNotMatch(md, /### wasm: node types/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
