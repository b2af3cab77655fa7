// The package as JSR and a run-by-URL user see it: one version per npm
// dependency, and a publish list that holds what a user needs and fits
// well under JSR's limits.
import { assert, assertEquals } from "./_assert.ts";
import { loadModel } from "../src/model/mod.ts";

const ROOT = new URL("../", import.meta.url);
const IMPORTS =
  /^\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|\bimport\(\s*"([^"]+)"/gm;

/** Every file under `dir` (relative to the repo) ending in `.ts`. */
async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) yield* tsFiles(`${path}/`);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("npm versions: the import map and inline specifiers agree", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  const versions = new Map<string, string>();
  for (const [name, target] of Object.entries(config.imports ?? {})) {
    const m = /^npm:(@?[^@]+)@([^/]+)/.exec(target as string);
    assert(m, `import map entry "${name}": expected an npm: specifier`);
    versions.set(m[1], m[2]);
  }
  // Library code uses inline npm: specifiers, so mod.ts also runs by URL
  // (import maps do not apply to remote modules); tests may use the map.
  let inline = 0;
  for (const dir of ["src/", "tests/", "tools/"]) {
    for await (const file of tsFiles(dir)) {
      const text = await Deno.readTextFile(new URL(file, ROOT));
      for (const m of text.matchAll(/"npm:(@?[^@"]+)@([^/"]+)/g)) {
        inline++;
        const pinned = versions.get(m[1]);
        if (pinned !== undefined) {
          assertEquals(m[2], pinned, `${file}: npm:${m[1]} vs deno.json`);
        }
      }
      if (dir === "src/") {
        for (const m of text.matchAll(IMPORTS)) {
          const spec = m[1] ?? m[2];
          assert(
            /^(\.|npm:|node:|jsr:|https?:)/.test(spec),
            `${file}: bare specifier "${spec}" breaks running by URL`,
          );
        }
      }
    }
  }
  assert(inline >= 3, `only ${inline} inline npm: specifiers found`);
});

/** The files `deno publish --dry-run` lists (paths relative to the repo) with their sizes in bytes. */
async function publishedFiles(): Promise<Map<string, number>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert(out.success, `publish --dry-run failed:\n${text.slice(-2000)}`);
  const units: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2 };
  const files = new Map<string, number>();
  const listed = /(file:\/\/\S+) \(([\d.]+)(B|KB|MB)\)/g;
  for (const m of text.matchAll(listed)) {
    files.set(m[1].replace(ROOT.href, ""), Number(m[2]) * units[m[3]]);
  }
  return files;
}

Deno.test("deno publish --dry-run lists a small package with what users need", async () => {
  const files = await publishedFiles();
  const total = [...files.values()].reduce((a, b) => a + b, 0);
  assert(
    total < 5 * 1024 ** 2,
    `package is ${(total / 1024 ** 2).toFixed(2)} MiB`,
  );
  for (const need of ["mod.ts", "README.md", "LICENSE", "assets/chelsea.png"]) {
    assert(files.has(need), `${need} is not published`);
  }
  assert(files.has("weights/vit_b_32/manifest.json"), "no model manifests");
  assert(
    files.has("weights/vit_b_32/graphs/block.vjp.onnx"),
    "no model graphs",
  );
  const stray = [...files.keys()].filter((f) =>
    /^(tests|tools|\.ci)\//.test(f) ||
    (f.startsWith("docs/") && f !== "docs/demo.png") ||
    (f.endsWith(".safetensors") &&
      !/^weights\/(fmnist_\w+|colour_vit)\/trained\./.test(f))
  );
  assertEquals(stray, [], "files a user does not need");
});

Deno.test("the published files open the trained Fashion-MNIST models", async () => {
  const files = await publishedFiles();
  const tmp = await Deno.makeTempDir();
  try {
    for (const kind of ["vit", "resnet"]) {
      const prefix = `weights/fmnist_${kind}/`;
      const mine = [...files.keys()].filter((f) => f.startsWith(prefix));
      assert(
        mine.includes(`${prefix}trained.safetensors`),
        `${prefix}trained.safetensors is not published`,
      );
      for (const f of mine) {
        await Deno.mkdir(`${tmp}/${f.replace(/[^/]+$/, "")}`, {
          recursive: true,
        });
        await Deno.copyFile(new URL(f, ROOT), `${tmp}/${f}`);
      }
      const copy = await loadModel(`${tmp}/${prefix}`, {
        weights: "trained",
        verify: true,
      });
      const repo = await loadModel(new URL(prefix, ROOT).href, {
        weights: "trained",
      });
      try {
        assert(copy.verified, "the published copy was not verified");
        const name = Object.keys(repo.manifest.tensors)[0];
        assertEquals(copy.tensor(name), repo.tensor(name));
      } finally {
        await copy.release();
        await repo.release();
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
