/**
 * Builds the browser page (`deno task web`): bundles `web/main.ts` — the same
 * core modules as the command line, through their barrels — into
 * `web/dist/main.js`, and copies onnxruntime-web's browser builds and wasm
 * files into `web/dist/ort/` (index.html maps the runtime's npm specifiers
 * there with an import map, so its wasm files and worker load beside it).
 * onnxruntime-node stays external: a browser never imports it.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;
const DIST = `${ROOT}web/dist`;
const ORT = "npm:onnxruntime-web@1.30.0";
/** The runtime builds index.html maps, each with the wasm file it loads. */
const ORT_FILES = [
  "ort.bundle.min.mjs",
  "ort-wasm-simd-threaded.jsep.wasm",
  "ort.webgpu.bundle.min.mjs",
  "ort-wasm-simd-threaded.asyncify.wasm",
];

async function bundle(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--platform",
      "browser",
      "--external",
      "npm:onnxruntime-node@1.30.0",
      "--external",
      ORT,
      "--external",
      `${ORT}/webgpu`,
      "--minify",
      "-o",
      `${DIST}/main.js`,
      `${ROOT}web/main.ts`,
    ],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`deno bundle failed (exit ${out.code})`);
}

async function copyRuntime(): Promise<void> {
  const from = `${ROOT}node_modules/onnxruntime-web/dist`;
  await Deno.mkdir(`${DIST}/ort`, { recursive: true });
  for (const f of ORT_FILES) {
    try {
      await Deno.copyFile(`${from}/${f}`, `${DIST}/ort/${f}`);
    } catch (err) {
      throw new Error(
        `Cannot copy "${from}/${f}": ${err}: run \`deno install\` first (deno.json has nodeModulesDir "auto")`,
      );
    }
  }
}

if (import.meta.main) {
  try {
    await Deno.mkdir(DIST, { recursive: true });
    // the runtime package into node_modules, for the copy (bundling leaves it external)
    await import(ORT).catch(() => {});
    await bundle();
    await copyRuntime();
    console.error(
      `built ${DIST}: serve the repository root (deno run -A web/serve.ts)`,
    );
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    Deno.exit(1);
  }
}
