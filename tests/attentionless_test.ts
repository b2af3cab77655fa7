// The attentionless models of tools/convert.py — timm's MLP-Mixer in both block orders
// and the feed-forward-only ViT (Melas-Kyriazi) — on the unchanged runtime: outputs at
// every layer, input gradients under ablations, a block alone and part swaps against
// PyTorch (fixtures from tools/make_fixtures.py), on every CPU backend.
import { assert, assertEquals } from "./_assert.ts";
import {
  classLogit,
  featureMatch,
  filterGrid,
  loadModel,
  type Manifest,
  type Model,
} from "../mod.ts";
import { ablationsOf, type Case, loadReference, relErr } from "./_fixtures.ts";

const TOL = 1e-5; // max |ours − torch| / max |torch|, float32
const FIXTURES = ["tiny_mixer", "tiny_mixer_cf", "tiny_ffvit"];
const BACKENDS = ["native", "wasm"] as const;
const SWITCHES = [
  "use_ln1",
  "use_attn",
  "use_res1",
  "use_ln2",
  "use_mlp",
  "use_res2",
];

type AttnlessManifest = Manifest & {
  block_order: string;
  class_token: boolean;
  patch_filters: string;
  switch_meaning: Record<string, string>;
};

for (const fixture of FIXTURES) {
  for (const backend of BACKENDS) {
    Deno.test(`${fixture} on ${backend}: forward, input gradients and swaps match PyTorch`, async (t) => {
      const { dir, cases, get } = await loadReference(fixture);
      const base = await loadModel(dir, { weights: "fixture", backend });
      assertEquals(base.backend, backend);
      const x = get("x");
      const models = new Map<string, Model>();
      const modelFor = (c: Case) => {
        const key = c.ablation?.name ?? "none";
        if (!models.has(key)) {
          models.set(
            key,
            base.withAblations(
              ablationsOf(c),
              (c.ablation?.use_pos ?? 1) === 1,
            ),
          );
        }
        return models.get(key)!;
      };
      let worst = 0;
      const check = (e: number, label: string) => {
        worst = Math.max(worst, e);
        assert(e <= TOL, `${label}: rel err ${e}`);
      };
      for (const c of cases) {
        const label = `${c.kind} ${c.part ?? ""} ${
          c.ablation?.name ?? ""
        } layer ${c.layer} ${c.loss ?? ""}`;
        if (c.kind === "forward") {
          const out = await modelFor(c).forward(x, { layer: c.layer });
          check(relErr(out.data, get(c.output!)), `${label} forward`);
          continue;
        }
        if (c.kind === "swap") {
          const m = await loadModel(dir, {
            weights: "fixture",
            backend,
            swaps: [{ part: c.part!, weights: c.weights! }],
          });
          const logits = await m.forward(x);
          check(relErr(logits.data, get(c.output!)), `${label} logits`);
          const r = await m.inputGradient(
            x,
            featureMatch(c.layer, get(c.target!)),
          );
          check(relErr(r.grad, get(c.grad!)), `${label} gradient`);
          assert(m.weights.includes("from fixture2"), m.weights);
          await m.release();
          continue;
        }
        const objective = c.loss === "logit"
          ? classLogit(c.index!, { constant: c.constant })
          : featureMatch(c.layer, get(c.target!), {
            loss: c.loss as "l1" | "l2",
          });
        const r = await modelFor(c).inputGradient(x, objective, {
          blocks: c.blocks,
        });
        check(relErr(r.grad, get(c.grad!)), `${label} gradient`);
        check(
          Math.abs(r.value - c.value!) / Math.max(1e-30, Math.abs(c.value!)),
          `${label} value ${r.value} vs torch ${c.value}`,
        );
      }
      assertEquals(cases.filter((c) => c.kind === "swap").length, 2);
      await t.step(
        `worst relative error ${
          worst.toExponential(2)
        } over ${cases.length} cases`,
        () => {},
      );
      await base.release();
    });
  }
}

Deno.test("attentionless manifests: switches, layout, order, patch filters", async () => {
  for (const fixture of FIXTURES) {
    const { dir } = await loadReference(fixture);
    const m: AttnlessManifest = JSON.parse(
      await Deno.readTextFile(`${dir}/manifest.json`),
    );
    const ff = fixture === "tiny_ffvit";
    assertEquals(m.architecture, ff ? "ffvit" : "mixer");
    assertEquals(m.class_token, ff);
    assertEquals(
      m.block_order,
      fixture === "tiny_mixer" ? "token_first" : "channel_first",
    );
    assertEquals(m.seq_length, 16 + (ff ? 1 : 0));
    assertEquals(
      Object.keys(m.switch_meaning),
      ff ? ["use_pos", ...SWITCHES] : SWITCHES,
    );
    // the stem has no position switch without a position embedding
    assertEquals(m.layers[0].switches, ff ? ["use_pos"] : []);
    assertEquals(m.graphs["stem.fwd"].inputs, ff ? ["x", "use_pos"] : ["x"]);
    for (let i = 1; i <= m.num_layers; i++) {
      assertEquals(m.layers[i].prefix, `blocks.${i - 1}.`);
      assertEquals(m.layers[i].switches, SWITCHES);
    }
    assertEquals(m.graphs["block.fwd"].inputs, ["x", ...SWITCHES]);
    assertEquals(
      m.patch_filters,
      ff ? "patch_embed.proj.weight" : "stem.proj.weight",
    );
    assertEquals(m.tensors[m.patch_filters].shape, [16, 3, 8, 8]);
    assertEquals(m.input.mean, ff ? [0.485, 0.456, 0.406] : [0.5, 0.5, 0.5]);
    const model = await loadModel(dir, { backend: "native" });
    const grid = filterGrid(model);
    assertEquals(grid.channels, 3);
    await model.release();
  }
});

Deno.test("attentionless models: untrained weights follow the recorded inits and run", async () => {
  const { dir } = await loadReference("tiny_mixer");
  const model = await loadModel(dir, { weights: "untrained:3" });
  // timm's zero head: every logit is 0 for any input
  const logits = await model.forward(new Float32Array(3 * 32 * 32).fill(0.3));
  assertEquals(logits.dims, [1, 10]);
  assert(logits.data.every((v) => v === 0), `${logits.data}`);
  const w = model.tensor("blocks.0.mlp_tokens.fc1.weight"); // xavier_uniform
  const bound = Math.sqrt(6 / (8 + 16));
  assert(w.every((v) => Math.abs(v) <= bound) && w.some((v) => v !== 0));
  await model.release();
});
