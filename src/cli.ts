/**
 * The command line: `deno run -A mod.ts <command> [options]`. Progress goes to
 * stderr; results go to files under `--out`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { BackendName } from "./backend.ts";
import { fitToSize, type ImageTensor, readImage, writePng } from "./image.ts";
import { loadModel, type Model } from "./model.ts";
import { invert, INVERT_DEFAULTS, type InvertResult } from "./render.ts";

const ROOT = new URL("../", import.meta.url);
const DEFAULT_IMAGE = new URL("assets/chelsea.png", ROOT);

/** Resolves `--model`: a name under weights/, a folder, or an http(s) URL. */
function modelSource(name: string): string {
  if (/^https?:\/\//.test(name) || name.includes("/")) return name;
  const url = new URL(`weights/${name}`, ROOT);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : url.href;
}

async function loadImage(
  path: string | URL,
  size: number,
): Promise<ImageTensor> {
  const p = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  return fitToSize(await readImage(p), size);
}

function progress(label: string, quiet: boolean) {
  const start = performance.now();
  const enc = new TextEncoder();
  return (step: number, steps: number, extra: string) => {
    if (quiet) return;
    const done = step + 1;
    const width = 24;
    const filled = Math.round((done / steps) * width);
    const secs = (performance.now() - start) / 1000;
    const rate = done / secs;
    const eta = (steps - done) / rate;
    const line = `\r${label} [${"#".repeat(filled)}${
      "-".repeat(width - filled)
    }] ${done}/${steps} ${rate.toFixed(1)} steps/s ETA ${
      eta.toFixed(0)
    }s ${extra}`;
    Deno.stderr.writeSync(enc.encode(line + (done === steps ? "\n" : "")));
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

function asImage(data: Float32Array, size: number): ImageTensor {
  return { data, channels: 3, height: size, width: size };
}

async function runInvert(
  model: Model,
  target: ImageTensor,
  layer: number,
  steps: number,
  quiet: boolean,
): Promise<InvertResult> {
  const bar = progress(`layer ${layer}`, quiet);
  return await invert(model, target.data, {
    layer,
    steps,
    onStep: (s) =>
      bar(s.step, s.steps, `emb ${s.embeddingDistance.toFixed(2)}`),
  });
}

const DEMO_HELP =
  `vitrep demo — invert encoder blocks of untrained ViT-B/32 for a shipped photo

Usage: deno run -A mod.ts demo [--layers 1,4] [--steps 300] [--out out/demo] [--backend auto]

Options:
  --layers L,L    encoder layers to represent (default 1,4)
  --steps N       gradient steps per layer (default 300)
  --image PATH    PNG image (default assets/chelsea.png)
  --out DIR       output folder (default out/demo)
  --backend NAME  auto | native | wasm | webgpu (default auto)
  --quiet         no progress on stderr
`;

async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      layers: { type: "string", default: "1,4" },
      steps: { type: "string", default: "300" },
      image: { type: "string" },
      out: { type: "string", default: "out/demo" },
      backend: { type: "string", default: "auto" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(
      `Invalid --steps "${values.steps}": expected a positive integer`,
    );
  }
  const model = await loadModel(modelSource("vit_b_32"), {
    weights: "untrained",
    seed: 0,
    backend: values.backend as BackendName,
  });
  const layers = values.layers.split(",").map(Number);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l > model.manifest.num_layers) {
      throw new RangeError(
        `Invalid --layers entry "${l}": expected 0..${model.manifest.num_layers}`,
      );
    }
  }
  const size = model.manifest.image_size;
  const target = await loadImage(values.image ?? DEFAULT_IMAGE, size);
  await Deno.mkdir(values.out, { recursive: true });
  await writePng(`${values.out}/target.png`, target);
  console.error(
    `vitrep demo: untrained ViT-B/32 (seed 0) on ${model.backend}, ${steps} steps per layer`,
  );
  const rows = [];
  for (const layer of layers) {
    const r = await runInvert(model, target, layer, steps, values.quiet);
    await writePng(`${values.out}/layer${layer}.png`, asImage(r.image, size));
    rows.push({
      layer,
      embeddingDistance: r.final.embeddingDistance,
      noiseBaseline: r.noiseBaseline,
      criterionMet: r.criterionStep !== null,
      criterionStep: r.criterionStep,
      inputDistance: r.final.inputDistance,
      psnr: r.final.psnr,
    });
  }
  await writeJson(`${values.out}/metrics.json`, {
    model: "vit_b_32",
    weights: model.weights,
    backend: model.backend,
    steps,
    settings: { ...INVERT_DEFAULTS, steps },
    layers: rows,
  });
  console.log(
    "| layer | ‖O(a)−O(a_g)‖₂ | noise baseline ‖O(a)−O(a′)‖₂ | criterion met | ‖a−a_g‖₂ | PSNR dB |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    console.log(
      `| ${r.layer} | ${r.embeddingDistance.toFixed(3)} | ${
        r.noiseBaseline.toFixed(3)
      } | ${r.criterionMet ? `yes (step ${r.criterionStep})` : "no"} | ${
        r.inputDistance.toFixed(2)
      } | ${r.psnr.toFixed(2)} |`,
    );
  }
  console.log(
    `\nwrote ${values.out}/ (target.png, ${
      layers.map((l) => `layer${l}.png`).join(", ")
    }, metrics.json)`,
  );
  await model.release();
  return 0;
}

const HELP = `vitrep — what vision transformers keep of their input

Usage: deno run -A mod.ts <command> [options]

Commands:
  demo      invert encoder blocks of untrained ViT-B/32 for a shipped photo

Run 'deno run -A mod.ts <command> --help' for a command's options.
`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { demo };

/**
 * Runs the command line; returns the exit code. Errors are printed, not thrown.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["demo", "--steps", "10"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (
    !command || command === "--help" || command === "-h" || command === "help"
  ) {
    console.log(HELP);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(
      `error: unknown command "${command}": expected one of ${
        Object.keys(COMMANDS).join(", ")
      }`,
    );
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}
