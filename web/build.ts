/**
 * Builds the browser page (`deno task web`): bundles the page's controls
 * (`web/main.ts`) into `web/dist/main.js` and its worker (`web/worker.ts`,
 * every model call: the same core modules as the command line) into
 * `web/dist/worker.js`, and copies onnxruntime-web's browser builds and wasm
 * files into `web/dist/ort/`. A worker has no import map, so the worker
 * bundle's imports of the runtime's npm specifiers are rewritten to those
 * files' relative URLs (its wasm files and threads load beside them).
 * onnxruntime-node stays external: a browser never imports it. Prints each
 * bundle's size.
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

/** The runtime's specifiers and the files they become in the worker bundle (relative to it). */
const ORT_URLS: [string, string][] = [
  [`${ORT}/webgpu`, "./ort/ort.webgpu.bundle.min.mjs"],
  [ORT, "./ort/ort.bundle.min.mjs"],
];

async function bundle(entry: string, out: string): Promise<void> {
  const run = await new Deno.Command(Deno.execPath(), {
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
      out,
      `${ROOT}web/${entry}`,
    ],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!run.success) {
    throw new Error(`deno bundle of web/${entry} failed (exit ${run.code})`);
  }
}

/** Points the worker bundle's runtime imports at the copied files. */
async function rewriteRuntimeImports(file: string): Promise<void> {
  let text = await Deno.readTextFile(file);
  for (const [spec, url] of ORT_URLS) {
    text = text.replaceAll(`"${spec}"`, `"${url}"`);
  }
  await Deno.writeTextFile(file, text);
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
    await bundle("main.ts", `${DIST}/main.js`);
    await bundle("worker.ts", `${DIST}/worker.js`);
    await rewriteRuntimeImports(`${DIST}/worker.js`);
    await copyRuntime();
    const size = async (f: string) => (await Deno.stat(`${DIST}/${f}`)).size;
    console.error(
      `built ${DIST}: main.js ${await size(
        "main.js",
      )} bytes, worker.js ${await size(
        "worker.js",
      )} bytes: serve the repository root (deno run -A web/serve.ts)`,
    );
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    Deno.exit(1);
  }
}
