// Trained weights end to end, as the README's "Trained weights" sequence runs it, with a
// stand-in for torchvision's IMAGENET1K_V1 (this machine cannot download it): a
// ViT-B/32 state dict in torchvision's format (torch.save of random weights of the right
// shapes, tools/vitrep_convert/standin.py) converted by tools/convert.py --check into a
// copy of weights/vit_b_32 as weight set "IMAGENET1K_V1"; loadModel's logits against
// PyTorch's on an image; generate on it; essay --plan runs the trained-model experiments
// on it. The error for weights a folder lacks needs no PyTorch and always runs; the rest
// needs it (Debian: python3-torch python3-torchvision python3-onnx) and is skipped with a
// printed reason without it.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { python, torchReason } from "./_python.ts";
import { exists, ROOT, run, tmp } from "./_cli.ts";
import { loadModel, readImage } from "../mod.ts";
import { normalize, type PerChannel } from "../src/io/mod.ts";

if (torchReason) {
  console.log(`trained-weights conversion tests skipped: ${torchReason}`);
}

const NAME = "IMAGENET1K_V1"; // the stand-in's weight-set name, as the README's
const STANDIN = "tools/vitrep_convert/standin.py";
const PY = Deno.env.get("VITREP_PYTHON") ?? "/usr/bin/python3";

/** The experiments of `essay --plan` under the smoke budget: id -> its command or "not run: …". */
function planLines(text: string): Map<string, string> {
  const lines = new Map<string, string>();
  const at = text.indexOf("budget smoke:");
  assert(at >= 0, text);
  for (const line of text.slice(at).split("\n").slice(1)) {
    const m = /^ {2}(\w+): (.*)$/.exec(line);
    if (!m) break;
    lines.set(m[1], m[2]);
  }
  assert(lines.size > 0, text);
  return lines;
}

/** A copy of the repository's weights/vit_b_32 (manifest and graphs) in models/. */
async function copyVitB32(models: string): Promise<string> {
  const dir = `${models}/vit_b_32`;
  await Deno.mkdir(`${dir}/graphs`, { recursive: true });
  const from = `${ROOT}weights/vit_b_32`;
  await Deno.copyFile(`${from}/manifest.json`, `${dir}/manifest.json`);
  for await (const e of Deno.readDir(`${from}/graphs`)) {
    await Deno.copyFile(`${from}/graphs/${e.name}`, `${dir}/graphs/${e.name}`);
  }
  return dir;
}

type Json = Record<string, unknown>;
const readJson = async (path: string): Promise<Json> =>
  JSON.parse(await Deno.readTextFile(path));

Deno.test("unknown weights: the error lists the folder's weight sets and names the converter command", async () => {
  const cwdIsRoot = `${Deno.cwd()}/` === ROOT;
  const folder = cwdIsRoot ? "weights/vit_b_32" : `${ROOT}weights/vit_b_32`;
  const e = await assertRejects(
    () => loadModel(`${ROOT}weights/vit_b_32`, { weights: NAME }),
    TypeError,
    `Unknown weights "${NAME}": ${folder} has no weight set of that name (it has no converted weight sets)`,
  );
  for (
    const cmd of [
      `python3 tools/convert.py vit_b_32 --weights ${NAME} --out ${folder}`,
      `python3 tools/convert.py vit_b_32 --weights /path/to/vit_b_32.pth --name ${NAME} --out ${folder}`,
    ]
  ) {
    assert(e.message.includes(cmd), `${cmd}\nnot in: ${e.message}`);
  }
  // a custom model: its --arch, size and normalization from the manifest; its weight sets listed
  const f = await assertRejects(
    () => loadModel(`${ROOT}weights/fmnist_vit`, { weights: "mine" }),
    TypeError,
    "(its weight sets: trained): expected one of untrained, untrained:SEED, trained,",
  );
  assert(
    f.message.includes(
      "python3 tools/convert.py custom --arch patch=4,layers=4,heads=4,hidden=64,mlp=128,classes=10 --image-size 32 --mean ",
    ) &&
      f.message.includes(
        " --weights /path/to/checkpoint.pth --name mine --out ",
      ),
    f.message,
  );
  // a .pth given to vitrep: the converter turns it into a weight set first
  const p = await assertRejects(
    () => loadModel(`${ROOT}weights/vit_b_32`, { weights: "dl/my ckpt.pth" }),
    TypeError,
    `python3 tools/convert.py vit_b_32 --weights 'dl/my ckpt.pth' --name 'my ckpt' --out ${folder}, then --weights 'my ckpt'`,
  );
  assert(p.message.startsWith('Unknown weights "dl/my ckpt.pth"'), p.message);
  // the README's old example, as a user runs it: exit 1, the command named, nothing written
  const out = `${await tmp()}/gen`;
  const r = await run([
    "generate",
    "--weights",
    NAME,
    "--class",
    "dalmatian",
    "--out",
    out,
  ]);
  assertEquals(r.code, 1, r.err);
  assert(
    r.err.includes(`Unknown weights "${NAME}"`) &&
      r.err.includes(`tools/convert.py vit_b_32 --weights ${NAME} --out `),
    r.err,
  );
  assert(!(await exists(out)), "generate wrote into --out before failing");
});

Deno.test({
  name:
    "trained weights end to end: a torchvision-format ViT-B/32 checkpoint converted into a model folder, its logits equal PyTorch's, generate and essay use it",
  ignore: torchReason !== "",
  async fn(t) {
    const dir = await tmp();
    const models = `${dir}/models`;
    const folder = await copyVitB32(models);
    try {
      // an earlier weight set of the folder, which adding another must keep
      const m0 = await readJson(`${folder}/manifest.json`);
      m0.weight_sets = {
        OTHER: { file: "OTHER.safetensors", source: "other", sha256: {} },
      };
      await Deno.writeTextFile(`${folder}/manifest.json`, JSON.stringify(m0));
      let before = new Map<string, string>();

      await t.step(
        "before: the trained-model experiments are not run",
        async () => {
          const r = await run([
            "essay",
            "--plan",
            "--models",
            models,
            "--weights",
            NAME,
          ]);
          assertEquals(r.code, 0, r.err);
          before = planLines(r.out);
          assert(
            [...before.values()].some((l) =>
              l.startsWith("not run: no trained")
            ),
            r.out,
          );
          await assertRejects(
            () => loadModel(folder, { weights: NAME }),
            TypeError,
            "(its weight sets: OTHER)",
          );
        },
      );

      await t.step(
        "a stand-in checkpoint, an image and PyTorch's logits",
        async () => {
          const s = await python([
            STANDIN,
            "vit_b_32",
            "--seed",
            "1",
            "--out",
            dir,
          ]);
          assertEquals(s.code, 0, s.text);
        },
      );

      await t.step(
        "convert.py --check adds the weight set to the folder",
        async () => {
          const t0 = performance.now();
          const r = await python([
            "tools/convert.py",
            "vit_b_32",
            "--weights",
            `${dir}/vit_b_32-standin.pth`,
            "--name",
            NAME,
            "--check",
            "--out",
            folder,
          ]);
          assertEquals(r.code, 0, r.text);
          console.log(
            `  conversion: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
          );
          const worst = /check passed: worst relative error ([0-9.e+-]+)/.exec(
            r.text,
          );
          assert(worst && Number(worst[1]) <= 1e-5, r.text);
          assert(
            r.text.includes("whole model logits"),
            `no chained check:\n${r.text}`,
          );
          const m = await readJson(`${folder}/manifest.json`);
          const committed = await readJson(
            `${ROOT}weights/vit_b_32/manifest.json`,
          );
          for (const key of Object.keys(committed)) {
            if (key === "weight_sets" || key === "converter") continue;
            assertEquals(m[key], committed[key], `"${key}" changed`);
          }
          const sets = m.weight_sets as Record<
            string,
            { file: string; sha256: Json }
          >;
          assertEquals(Object.keys(sets).sort(), [NAME, "OTHER"]);
          assertEquals(sets[NAME].file, `${NAME}.safetensors`);
          assertEquals(
            Object.keys(sets[NAME].sha256).sort(),
            Object.keys(m.tensors as Json).sort(),
          );
          assert(await exists(`${folder}/${NAME}.safetensors`));
        },
      );

      await t.step(
        "loadModel(dir, {weights}) gives PyTorch's logits",
        async () => {
          const ref = await readJson(`${dir}/logits.json`);
          const want = ref.logits as number[];
          const model = await loadModel(folder, { weights: NAME });
          try {
            assertEquals(model.weights, NAME);
            const mean = model.manifest.input.mean as PerChannel;
            const std = model.manifest.input.std as PerChannel;
            const img = normalize(
              await readImage(`${dir}/image.png`),
              mean,
              std,
            );
            const y = await model.forward(img.data);
            assertEquals(y.dims, [1, 1000]);
            const scale = Math.max(...want.map(Math.abs));
            let worst = 0, argmax = 0;
            for (let i = 0; i < want.length; i++) {
              worst = Math.max(worst, Math.abs(y.data[i] - want[i]) / scale);
              if (y.data[i] > y.data[argmax]) argmax = i;
            }
            console.log(
              `  logits: ${worst.toExponential(2)} relative to PyTorch's`,
            );
            assert(scale > 0.1, `logits too small to compare: ${scale}`);
            assert(
              worst < 1e-4,
              `logits differ from PyTorch's by ${worst} (relative)`,
            );
            assertEquals(argmax, ref.argmax);
          } finally {
            await model.release();
          }
        },
      );

      await t.step("generate --weights uses the weight set", async () => {
        const out = `${dir}/gen`;
        const r = await run([
          "generate",
          "--model",
          folder,
          "--weights",
          NAME,
          "--class",
          "dalmatian",
          "--steps",
          "2",
          "--canvas",
          "224",
          "--quiet",
          "--out",
          out,
        ]);
        assertEquals(r.code, 0, r.err);
        assertEquals((await readJson(`${out}/metrics.json`)).weights, NAME);
      });

      await t.step(
        "essay --plan runs the trained-model experiments on it",
        async () => {
          for (const weights of [["--weights", NAME], []]) {
            const r = await run([
              "essay",
              "--plan",
              "--models",
              models,
              ...weights,
            ]);
            assertEquals(r.code, 0, r.err);
            const after = planLines(r.out);
            // (the convnet generation still needs a trained convnet: not among them)
            const trained = [...before].filter(([, l]) =>
              l.startsWith("not run: no trained ViT")
            )
              .map(([id]) => id);
            for (const id of trained) {
              const line = after.get(id) ?? "";
              assert(line.startsWith("deno run -A mod.ts "), `${id}: ${line}`);
              assert(
                line.includes(NAME),
                `${id} does not use ${NAME}: ${line}`,
              );
              if (line.includes(" grid ")) {
                assert(line.includes(`--model ${folder} `), `${id}: ${line}`);
              }
            }
            // the untrained ones are as before, but for the recovery run, which
            // swaps in the trained stem as the essay does when the weights are there
            for (const [id, l] of before) {
              if (trained.includes(id)) continue;
              const got = after.get(id) ?? "";
              const unswapped = got.replaceAll(`--swap conv_proj=${NAME} `, "")
                .replaceAll(`--swap conv_proj=${NAME}`, "");
              assertEquals(unswapped, l, id);
              if (got !== l) assertEquals(id, "vit_recovery", got);
            }
          }
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "convert.py: named weights without a network fail with the file to fetch and the command that converts it",
  ignore: torchReason !== "",
  async fn() {
    const dir = await tmp();
    const out = `${dir}/vit_b_32`;
    // no network for certain: every https request goes to a closed local port; a fake
    // HOME and TORCH_HOME, so no cached download is found and nothing is written to ~
    const proxy = "http://127.0.0.1:9";
    const r = await new Deno.Command(PY, {
      args: ["tools/convert.py", "vit_b_32", "--weights", NAME, "--out", out],
      cwd: ROOT,
      env: {
        HOME: `${dir}/home`,
        TORCH_HOME: `${dir}/torch`,
        https_proxy: proxy,
        HTTPS_PROXY: proxy,
        no_proxy: "",
        NO_PROXY: "",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout) +
      new TextDecoder().decode(r.stderr);
    assertEquals(r.code, 1, text);
    assert(text.includes("named weights need a network"), text);
    assert(!text.includes("Traceback"), text);
    assert(
      text.includes(
        `python3 tools/convert.py vit_b_32 --weights /path/to/vit_b_32-d86f8d99.pth --name ${NAME} --out ${out}`,
      ),
      text,
    );
    assert(text.includes(`${dir}/torch/hub/checkpoints/`), text);
    assert(!(await exists(out)), "the converter wrote into --out");
  },
});

Deno.test({
  name:
    "convert.py: a checkpoint that is torchvision's download (file name and hash) is named as torchvision names it",
  ignore: torchReason !== "",
  async fn() {
    const dir = await tmp();
    const code = `
import hashlib, os, sys
sys.path.insert(0, "tools")
from vitrep_convert.weights import torchvision_file
d = sys.argv[1]
data = b"not really weights" * 100
h = hashlib.sha256(data).hexdigest()[:8]
class W:
    def __init__(self, name, url): self.name, self.url = name, url
enum = [W("IMAGENET1K_V0", "https://x/m/other-0123abcd.pth"), W("IMAGENET1K_V1", f"https://x/m/vit-{h}.pth")]
for name in (f"vit-{h}.pth", "vit-00000000.pth", "mine.pth"):
    open(os.path.join(d, name), "wb").write(data)
    w = torchvision_file(os.path.join(d, name), enum + [W("X", "https://x/m/vit-00000000.pth")])
    print(name, w.name if w else None)
`;
    const r = await python(["-c", code, dir]);
    assertEquals(r.code, 0, r.text);
    const got = r.text.trim().split("\n").map((l) => l.split(" ")[1]);
    // the name and the hash prefix must both match: a renamed other file keeps its own name
    assertEquals(got, ["IMAGENET1K_V1", "None", "None"], r.text);
  },
});
