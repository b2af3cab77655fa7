// The largest configurations load and take a gradient step on the native backend:
// ViT-L/16 at 512² and ViT-H/14 at 518² (untrained weights generated in TypeScript).
// Minutes of CPU and ~12 GiB of memory: run with VITREP_LARGE=1 (CI does).
import { assert, assertEquals } from "./_assert.ts";
import { featureMatch, loadModel } from "../mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const run = Deno.env.get("VITREP_LARGE") === "1";
if (!run) {
  console.log(
    "large-model tests skipped: set VITREP_LARGE=1 to run them (minutes, ~12 GiB)",
  );
}

for (
  const [name, size, layers] of [["vit_l_16_512", 512, 24], [
    "vit_h_14_518",
    518,
    32,
  ]] as const
) {
  Deno.test({
    name:
      `${name} loads and steps on native (every encoder, gradient to the image)`,
    ignore: !run,
    async fn() {
      const m = await loadModel(`${ROOT}weights/${name}`, {
        backend: "native",
      });
      assertEquals(m.manifest.image_size, size);
      const x = new Float32Array(3 * size * size).map((_, i) =>
        (i % 255) / 255
      );
      const t0 = performance.now();
      const target = await m.forward(x.map((v) => 1 - v), { layer: layers });
      const r = await m.inputGradient(x, featureMatch(layers, target));
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `${name}: forward + gradient step through ${layers} encoders in ${
          secs.toFixed(1)
        } s`,
      );
      assertEquals(r.grad.length, x.length);
      assert(r.grad.every(Number.isFinite) && r.grad.some((g) => g !== 0));
      await m.release();
    },
  });
}
