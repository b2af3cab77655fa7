// Runs the repository's Python (the converter and its checks) for the converter tests.
// Needs PyTorch (Debian: python3-torch python3-torchvision python3-onnx); where it is
// missing, `torchReason` says why and the tests that need it are skipped.

import { assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PY = Deno.env.get("VITREP_PYTHON") ?? "/usr/bin/python3";

/** Runs PY with args in the repository root; stdout and stderr together. */
export async function python(
  args: string[],
): Promise<{ code: number; text: string }> {
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

async function reason(): Promise<string> {
  try {
    const r = await python(["-c", "import torch, torchvision, onnx"]);
    if (r.code === 0) return "";
    return `PyTorch not importable by ${PY}: ${
      r.text.trim().split("\n").at(-1)
    }`;
  } catch (err) {
    return `${PY} cannot run: ${err instanceof Error ? err.message : err}`;
  }
}

/** Why the converter tests cannot run here, or "" when they can. */
export const torchReason: string = await reason();

type Json = Record<string, unknown>;

/** A manifest without the converter's own version (`converter.torch`). */
function withoutVersion(m: Json): Json {
  const { torch: _torch, ...converter } = (m.converter ?? {}) as Json;
  return { ...m, converter };
}

/**
 * Asserts that the converter's output folder `out` has the committed
 * `weights/<folder>/manifest.json` in full (graph files by sha256, tensors,
 * layers, every field), the converter's own version (`converter.torch`) aside.
 */
export async function assertSameAsCommitted(
  out: string,
  folder: string,
): Promise<void> {
  const read = async (path: string): Promise<Json> =>
    withoutVersion(JSON.parse(await Deno.readTextFile(path)));
  const ours = await read(`${out}/manifest.json`);
  const committed = await read(`${ROOT}weights/${folder}/manifest.json`);
  assertEquals(
    Object.keys(ours).sort(),
    Object.keys(committed).sort(),
    `${folder}: the converter writes other fields than the committed manifest`,
  );
  for (const key of Object.keys(committed)) {
    assertEquals(
      ours[key],
      committed[key],
      `${folder}: "${key}" differs from the committed manifest`,
    );
  }
}
