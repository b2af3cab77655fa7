// Fixtures made by tools/make_fixtures.py: PyTorch references for the tiny models.
import { assertEquals } from "./_assert.ts";
import type { Ablation, BlockPart, Layer } from "../src/model/mod.ts";
import { parseSafetensors, tensorToFloat32 } from "../src/io/mod.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** One reference case of reference.json. */
export interface Case {
  kind:
    | "forward"
    | "gradient"
    | "only"
    | "invert_step"
    | "generate_step"
    | "swap";
  part?: string;
  weights?: string;
  ablation?: {
    name: string;
    remove: Record<string, string[]>;
    use_pos: number;
  };
  layer: Layer;
  loss?: "l1" | "l2" | "logit";
  output?: string;
  grad?: string;
  target?: string;
  value?: number;
  index?: number;
  constant?: number;
  blocks?: number[];
  lr?: number;
  sigma?: number;
  normalize?: boolean;
  a0?: string;
  photo?: string;
  canvas?: string;
  crop?: number[];
}

/** The runtime ablations of a case's `remove` (layer → switch names). */
export function ablationsOf(c: Case): Ablation[] {
  return Object.entries(c.ablation?.remove ?? {}).map(([layer, sw]) => ({
    layers: [Number(layer)],
    remove: sw.map((s) => s.slice(4) as BlockPart),
  }));
}

/** max |a − b| / max |b|: the relative error every parity test uses. */
export function relErr(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale > 0 ? err / scale : err;
}

/** Reads a fixture folder's reference.json and reference.safetensors. */
export async function loadReference(name: string) {
  const dir = FIXTURES + name;
  const ref = JSON.parse(await Deno.readTextFile(`${dir}/reference.json`));
  const file = parseSafetensors(
    await Deno.readFile(`${dir}/reference.safetensors`),
  );
  const get = (k: string) => {
    const t = file.tensors.get(k);
    if (!t) throw new Error(`fixture tensor ${k} missing`);
    return tensorToFloat32(t);
  };
  return { dir, cases: ref.cases as Case[], get };
}
