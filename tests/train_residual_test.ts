// tools/train_residual.py (the essay's claim residual_training): a quick run on Fashion-MNIST
// writes the four test accuracies the essay reads. Needs PyTorch (Debian: python3-torch
// python3-torchvision) and Debian's dataset-fashion-mnist; skipped with a printed reason
// without them.
import { assert, assertEquals } from "./_assert.ts";
import { python, torchReason } from "./_python.ts";

const FMNIST = "/usr/share/datasets/fashion-mnist"; // train_fmnist.py's DATA
const KEYS = [
  "vit_accuracy",
  "vit_no_residual_accuracy",
  "mixer_accuracy",
  "mixer_no_residual_accuracy",
];
// One epoch of 8 steps (256 images, batch 32: the warm-up) takes the ViT from its
// zero-initialized head (one class for every image: at most 0.13 on the first 500 test
// images, whichever class) to 0.20 (measured, seed 0). One thread: on a loaded 2-core
// machine two spin-wait. About 40 s of CPU (Debian's torch on reference BLAS).
const CHANCE_PLUS = 0.15;

const dataReason = await Deno.stat(`${FMNIST}/t10k-labels-idx1-ubyte.gz`).then(
  () => "",
  () => `no Fashion-MNIST at ${FMNIST} (apt-get install dataset-fashion-mnist)`,
);
const reason = torchReason || dataReason;
if (reason) console.log(`train_residual tests skipped: ${reason}`);

Deno.test({
  name:
    `train_residual.py: four accuracies in [0,1] after one epoch on 256 images; the ViT's > ${CHANCE_PLUS}`,
  ignore: reason !== "",
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const r = await python([
        "tools/train_residual.py",
        "--data",
        "fmnist",
        "--limit",
        "256",
        "--batch",
        "32",
        "--test-limit",
        "500",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        out,
      ]);
      assertEquals(r.code, 0, r.text);
      const v = JSON.parse(await Deno.readTextFile(`${out}/values.json`));
      for (const key of KEYS) {
        assert(
          typeof v[key] === "number" && v[key] >= 0 && v[key] <= 1,
          `${key}: ${v[key]}`,
        );
      }
      const models = KEYS.map((k) => k.replace(/_accuracy$/, ""));
      assertEquals(Object.keys(v.per_epoch), models);
      for (const m of models) {
        assertEquals(v.per_epoch[m], [v[`${m}_accuracy`]]);
      }
      assertEquals(
        [v.data, v.epochs, v.seed, v.train_images, v.test_images],
        ["fmnist", 1, 0, 256, 500],
      );
      // with and without residuals: the same parameters, another model
      assertEquals(v.params.vit, v.params.vit_no_residual);
      assertEquals(v.params.mixer, v.params.mixer_no_residual);
      assert(
        v.vit_accuracy > CHANCE_PLUS,
        `ViT accuracy ${v.vit_accuracy} <= ${CHANCE_PLUS}`,
      );
      const log = await Deno.readTextFile(`${out}/training_log.md`);
      for (const m of models) assert(log.includes(`| ${m} |`), log);
      assertEquals(
        [...Deno.readDirSync(out)].map((e) => e.name).sort(),
        ["training_log.md", "values.json"],
      ); // no temporary file left
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
