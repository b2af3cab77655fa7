// tools/bench_torch.py --serve, the PyTorch side `deno task bench` alternates
// with its own steps: the requests it answers and their shapes (no timing is
// checked). Skipped where PyTorch is missing.
import assert from "node:assert/strict";
import { torchReason } from "./_python.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PY = Deno.env.get("VITREP_PYTHON") ?? "/usr/bin/python3";

/** Sends `requests` (one JSON line each) and returns every line it printed, parsed. */
async function serve(
  model: string,
  requests: Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  const child = new Deno.Command(PY, {
    args: [
      "tools/bench_torch.py",
      "--model",
      model,
      "--threads",
      "1",
      "--serve",
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(
    new TextEncoder().encode(
      requests.map((r) => JSON.stringify(r) + "\n").join(""),
    ),
  );
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
}

Deno.test({
  name:
    "bench_torch.py --serve: steps, FLOP counts and the sgemm peak on request",
  ignore: torchReason !== "",
  fn: async () => {
    const [info, steps, one, two, sgemm] = await serve("mixer_p16_d1024", [
      { layer: 1, batch: 1, repeats: 2, warmup: 1 },
      { gflop: true, layer: 1, batch: 1 },
      { gflop: true, layer: 1, batch: 2 },
      { sgemm: true },
    ]);
    assert.equal(typeof info.torch, "string");
    assert.ok((info.blas_config as Record<string, unknown>) !== undefined);
    const ms = steps.ms as number[];
    assert.equal(ms.length, 2);
    assert.ok(ms.every((t) => t > 0));
    // a count, not a timing: two images are exactly twice the work of one
    const g1 = one.gflop as number, g2 = two.gflop as number;
    assert.ok(g1 > 1, `mixer block 1 step GFLOP ${g1}`);
    assert.equal(g2, 2 * g1);
    assert.ok((sgemm.gflops as number) > 0);
  },
});
