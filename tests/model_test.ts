// Forward outputs and input gradients of the ONNX chain against PyTorch
// (fixtures from tools/make_fixtures.py), on every CPU backend.
import { assert, assertEquals } from "./_assert.ts";
import { classLogit, featureMatch, loadModel, type Model } from "../mod.ts";
import { ablationsOf, type Case, loadReference, relErr } from "./_fixtures.ts";

const TOL = 1e-5; // max |ours − torch| / max |torch|, float32

const BACKENDS = ["native", "wasm"] as const;

for (const fixture of ["tiny_vit", "tiny_vit_p4"]) {
  for (const backend of BACKENDS) {
    Deno.test(`${fixture} on ${backend}: forward and input gradients match PyTorch`, async (t) => {
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
      for (
        const c of cases.filter((c) =>
          ["forward", "gradient", "only"].includes(c.kind)
        )
      ) {
        const m = modelFor(c);
        const label = `${c.kind} ${c.ablation?.name ?? ""} layer ${c.layer} ${
          c.loss ?? ""
        }`;
        if (c.kind === "forward") {
          const out = await m.forward(x, { layer: c.layer });
          const e = relErr(out.data, get(c.output!));
          worst = Math.max(worst, e);
          assert(e <= TOL, `${label}: forward rel err ${e}`);
          continue;
        }
        const objective = c.loss === "logit"
          ? classLogit(c.index!, { constant: c.constant })
          : featureMatch(c.layer, get(c.target!), {
            loss: c.loss as "l1" | "l2",
          });
        const r = await m.inputGradient(x, objective, { blocks: c.blocks });
        const e = relErr(r.grad, get(c.grad!));
        const ev = Math.abs(r.value - c.value!) /
          Math.max(1e-30, Math.abs(c.value!));
        worst = Math.max(worst, e, ev);
        assert(e <= TOL, `${label}: gradient rel err ${e}`);
        assert(
          ev <= TOL,
          `${label}: value ${r.value} vs torch ${c.value} (rel ${ev})`,
        );
      }
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

Deno.test("swapped parts (from the second weight set) match PyTorch, with and without ablations", async () => {
  const { dir, cases, get } = await loadReference("tiny_vit");
  const x = get("x");
  let n = 0;
  for (const c of cases.filter((c) => c.kind === "swap")) {
    const m = await loadModel(dir, {
      weights: "fixture",
      backend: "native",
      swaps: [{ part: c.part!, weights: c.weights! }],
      ablations: ablationsOf(c),
    });
    const logits = await m.forward(x);
    const e1 = relErr(logits.data, get(c.output!));
    assert(
      e1 <= TOL,
      `swap ${c.part} (${c.ablation?.name}): logits rel err ${e1}`,
    );
    const r = await m.inputGradient(x, featureMatch(c.layer, get(c.target!)));
    const e2 = relErr(r.grad, get(c.grad!));
    assert(
      e2 <= TOL,
      `swap ${c.part} (${c.ablation?.name}): gradient rel err ${e2}`,
    );
    assert(m.weights.includes("from fixture2"), m.weights);
    await m.release();
    n++;
  }
  assertEquals(n, 5);
});
