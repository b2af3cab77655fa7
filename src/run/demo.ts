/**
 * The work of `demo`: one inversion per layer of one target, each into
 * `OUT/layerL/`, then `demo.png` (the target and each representation,
 * labelled) and `metrics.json`. Settings come typed (src/cli/invert.ts
 * parses them); what is printed is the caller's.
 *
 * @module
 */
import {
  encodePng,
  type ImageTensor,
  writeFiles,
  writePng,
} from "../io/mod.ts";
import type { Model } from "../model/mod.ts";
import type { RunControl } from "./batch.ts";
import type { Stopper } from "./progress.ts";
import type { RunOptions } from "./settings.ts";
import { imageOf, labelledRow } from "./images.ts";
import {
  type InvertSettings,
  type InvertSummary,
  layerLabel,
  runInvert,
} from "./invert.ts";

/** A demo, its model open and its inputs checked. */
export interface DemoJob {
  /** The demo's folder; each layer writes into `out/layerL`. */
  out: string;
  /** The target image (fitted to the model). */
  target: ImageTensor;
  /** The target's path, as each run records it. */
  imagePath: string;
  /** One run's settings per layer, in the figure's order. */
  settings: readonly InvertSettings[];
  /** How each run is driven. */
  control: RunControl;
  /** The options each run records (its own layer and image added) and metrics.json keeps. */
  options: RunOptions;
  /** Model and run description for metrics.json. */
  about: Record<string, unknown>;
  /** The model variant for figure labels; "" for none. */
  tag: string;
  /** demo.png's title. */
  title: string;
  /** Where the line saying what runs is sent (e.g. stderr). */
  log?: (line: string) => void;
}

/** What a demo did: a summary per layer that ran, whether it was asked to stop. */
export interface DemoOutcome {
  /** Each layer's summary, in order (fewer than asked when stopped). */
  rows: InvertSummary[];
  /** Whether a stop was asked for (Ctrl-C, SIGTERM). */
  stopped: boolean;
}

/**
 * Runs the demo `job` into its folder (held by the caller): target.png, one
 * inversion per layer until a stop is asked, then demo.png and metrics.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runDemo } from "./demo.ts";
 * import { loadTarget } from "./images.ts";
 * import { Stopper } from "./progress.ts";
 * import { loadModel } from "../model/mod.ts";
 * const model = await loadModel(`${Deno.cwd()}/tests/fixtures/tiny_vit`, { weights: "fixture" });
 * const imagePath = `${Deno.cwd()}/assets/chelsea.png`;
 * const s = {
 *   layer: 1, onlyLayer: false, loss: "l2" as const, steps: 2, seed: 0,
 *   lr: { start: 0.1, end: 0.1 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 * };
 * const out = await Deno.makeTempDir();
 * const r = await runDemo(model, {
 *   out, imagePath, target: await loadTarget(imagePath, model.manifest.image_size),
 *   settings: [s, { ...s, layer: 2 }],
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   options: {}, about: {}, tag: "", title: "tiny",
 * }, new Stopper());
 * await model.release();
 * assert.deepEqual(r.rows.map((x) => x.layer), [1, 2]);
 * assert.ok(Deno.statSync(`${out}/demo.png`).isFile);
 * assert.ok(Deno.statSync(`${out}/layer2/representation.png`).isFile);
 * ```
 */
export async function runDemo(
  model: Model,
  job: DemoJob,
  stopper: Stopper,
): Promise<DemoOutcome> {
  const { out, target, options } = job;
  const m = model.manifest;
  const steps = job.settings[0].steps;
  await writePng(`${out}/target.png`, target);
  job.log?.(
    `vitrep demo: ${m.name}, weights ${model.weights}, on ${model.backend}, ${steps} steps per layer`,
  );
  const rows: InvertSummary[] = [];
  const images: ImageTensor[] = [];
  for (const s of job.settings) {
    if (stopper.requested) break;
    const dir = `${out}/layer${s.layer}`;
    await Deno.mkdir(dir, { recursive: true });
    const r = await runInvert(model, target, s, {
      out: dir,
      ...job.control,
      stopper,
      options: { ...options, layer: String(s.layer), image: job.imagePath },
      about: job.about,
      label: layerLabel(m, s.layer),
      tag: job.tag,
    });
    rows.push(r.summary);
    images.push(imageOf(r.image));
  }
  const record = {
    command: "demo",
    options,
    ...job.about,
    steps,
    layers: rows,
    interrupted: stopper.requested,
  };
  await writeDemo(out, [target, ...images], rows, job.title, record);
  return { rows, stopped: stopper.requested };
}

/** Writes demo.png (the target and each layer's representation, labelled) and metrics.json. */
async function writeDemo(
  out: string,
  images: ImageTensor[],
  rows: readonly InvertSummary[],
  title: string,
  record: Record<string, unknown>,
): Promise<void> {
  await writeFiles(out, [{
    name: "demo.png",
    data: encodePng(
      labelledRow(images, ["target", ...rows.map((r) => r.layerLabel)], title),
    ),
  }, {
    name: "metrics.json",
    data: JSON.stringify(record, null, 2) + "\n",
  }]);
}
