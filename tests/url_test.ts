// Run by URL, as a user without a checkout would: a static server on
// 127.0.0.1 serves the repository, and from an empty temporary folder (no
// deno.json, no node_modules) the same deno binary runs `demo`, `invert
// --image http://…` and a library import of mod.ts by URL.
import { assert, assertEquals } from "./_assert.ts";
import { loadModel } from "../mod.ts";

const ROOT = new URL("../", import.meta.url);

/** Media types by extension: Deno needs a JavaScript/TypeScript type for code. */
const TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".jpg": "image/jpeg",
};

/** Serves the repository's files read-only on a free port of 127.0.0.1. */
function serveRepo(): {
  base: string;
  server: Deno.HttpServer;
  served: Set<string>;
} {
  const served = new Set<string>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      if (path.split("/").includes("..")) {
        return new Response("bad path", { status: 400 });
      }
      try {
        const body = await Deno.readFile(new URL(`.${path}`, ROOT));
        served.add(path);
        const ext = path.slice(path.lastIndexOf("."));
        return new Response(body, {
          headers: {
            "content-type": TYPES[ext] ?? "application/octet-stream",
          },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return { base: `http://127.0.0.1:${port}`, server, served };
}

/** Runs `deno run -A ARGS` in `cwd`, failing with its output on a non-zero exit. */
async function denoRun(
  cwd: string,
  args: string[],
): Promise<{ stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const [stdout, stderr] = [r.stdout, r.stderr].map((b) =>
    new TextDecoder().decode(b)
  );
  assertEquals(
    r.code,
    0,
    `deno run ${args.join(" ")} exited ${r.code}:\n${stderr}`,
  );
  return { stdout, stderr };
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test({
  name: "by URL from an empty folder: demo, invert --image URL, library import",
  // The server's responses and the child processes end inside the test.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { base, server, served } = serveRepo();
    const cwd = await Deno.makeTempDir({ prefix: "vitrep_url_" });
    try {
      assertEquals(await files(cwd), []);
      // the version comes from the served deno.json
      const version = JSON.parse(
        await Deno.readTextFile(new URL("deno.json", ROOT)),
      ).version;
      assertEquals(
        (await denoRun(cwd, [`${base}/mod.ts`, "--version"])).stdout,
        `vitrep ${version}\n`,
      );
      // demo: untrained ViT-B/32 and the default photo, both fetched beside mod.ts
      await denoRun(cwd, [
        `${base}/mod.ts`,
        "demo",
        "--steps",
        "2",
        "--quiet",
        "--out",
        "demo",
      ]);
      // the code, the model and the photo came from the server
      for (
        const f of [
          "/mod.ts",
          "/deno.json",
          "/weights/vit_b_32/manifest.json",
          "/assets/chelsea.png",
        ]
      ) assert(served.has(f), `${f} not fetched: ${[...served].slice(0, 9)}`);
      const demo = await files(`${cwd}/demo`);
      for (const f of ["demo.png", "metrics.json", "target.png"]) {
        assert(demo.includes(f), `${f} missing from demo/: ${demo}`);
      }
      // invert with the image given by URL, on the tiny fixture model by URL
      const tiny = `${base}/tests/fixtures/tiny_vit`;
      await denoRun(cwd, [
        `${base}/mod.ts`,
        "invert",
        "--model",
        tiny,
        "--weights",
        "fixture",
        "--image",
        `${base}/assets/chelsea.png`,
        "--layer",
        "1",
        "--steps",
        "2",
        "--quiet",
        "--out",
        "inv",
      ]);
      const metrics = JSON.parse(
        await Deno.readTextFile(`${cwd}/inv/metrics.json`),
      );
      assertEquals(metrics.options.image, `${base}/assets/chelsea.png`);
      assert((await files(`${cwd}/inv`)).includes("representation.png"));
      // the library by URL: the same logits as the checkout's own import
      await Deno.writeTextFile(
        `${cwd}/lib.ts`,
        `import { loadModel } from "${base}/mod.ts";
const m = await loadModel("${tiny}", { weights: "fixture", backend: "wasm" });
const y = await m.forward(new Float32Array(3 * 32 * 32).fill(0.5), { layer: "logits" });
console.log(JSON.stringify(Array.from(y.data)));
`,
      );
      const { stdout } = await denoRun(cwd, ["lib.ts"]);
      const byUrl: number[] = JSON.parse(stdout);
      const local = await loadModel(
        new URL("tests/fixtures/tiny_vit", ROOT).pathname,
        {
          weights: "fixture",
          backend: "wasm",
        },
      );
      const here = await local.forward(
        new Float32Array(3 * 32 * 32).fill(0.5),
        { layer: "logits" },
      );
      assertEquals(byUrl, Array.from(here.data));
    } finally {
      await server.shutdown();
      await Deno.remove(cwd, { recursive: true });
    }
  },
});
