/**
 * The calls of the optimizing commands — `invert` (one run or a batch),
 * `demo` and `generate` — each through the one skeleton
 * ({@linkcode runCommand}): open the model variant, refine the settings by
 * its manifest (the caller's `refine`: the one manifest-dependent step), load
 * and check the inputs, claim the output folder, run, release. Settings come
 * typed, read once by the command line; what is printed is the caller's.
 *
 * @module
 */
import type { ImageTensor } from "../io/mod.ts";
import type { Manifest } from "../model/mod.ts";
import {
  type BatchRun,
  type InvertRunsOutcome,
  type RunControl,
  runInvertRuns,
} from "./batch.ts";
import {
  type ClassesOutcome,
  classStates,
  runClasses,
  zeroHead,
} from "./classes.ts";
import { runCommand } from "./command.ts";
import { type DemoOutcome, runDemo } from "./demo.ts";
import type { GenerateSettings } from "./generate.ts";
import { loadTarget } from "./images.ts";
import {
  type InvertSettings,
  type InvertSummary,
  layerLabel,
  readInvertResume,
  runInvert,
} from "./invert.ts";
import type { Stopper } from "./progress.ts";
import type { RunContext, RunOptions, SavedTypes } from "./settings.ts";
import type { Snapshot } from "./snapshot.ts";
import { modelAbout, type ModelSpec, openVariant } from "./variant.ts";

/** A run's settings once its model's manifest refined them, with the record it keeps. */
export interface Refinement<S> {
  /** The typed settings. */
  settings: S;
  /** The options the run records (metrics.json, snapshot). */
  options: RunOptions;
  /** The settings that came from the manifest (metrics.json's `modelDefaults`). */
  modelDefaults: RunOptions;
}

/** What every call holds: settings read once, the manifest's refinement to come. */
export interface Call<R> {
  /** The output folder (checked). */
  out: string;
  /** Where the model is (see modelSource). */
  source: string;
  /** The model variant to open. */
  model: ModelSpec;
  /** The one manifest-dependent refinement (usage errors before any file). */
  refine(manifest: Manifest): R;
  /** How each run is driven. */
  control: RunControl;
  /** Replace another run's results in `out`. */
  overwrite: boolean;
}

/** One `invert` run. */
export interface InvertCall extends Call<Refinement<InvertSettings>> {
  /** The target image (absolute path or URL). */
  imagePath: string;
  /** The folder `--resume` names, and the option types its snapshot must have. */
  resume?: { dir: string; saved: SavedTypes };
  /** Whether the run continues in its own folder. */
  continuing: boolean;
}

/** The model part of metrics.json, with the settings the manifest gave. */
function aboutOf(
  opened: Awaited<ReturnType<typeof openVariant>>,
  source: string,
  normalize: boolean,
  modelDefaults: RunOptions,
): Record<string, unknown> {
  const { model, variant } = opened;
  return { ...modelAbout(model, source, normalize, variant), modelDefaults };
}

/**
 * Runs one inversion: its summary (the files are in `call.out`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { callInvert } from "./calls.ts";
 * const out = `${await Deno.makeTempDir()}/inv`;
 * const settings = {
 *   layer: 1, onlyLayer: false, loss: "l1" as const, steps: 2, seed: 0,
 *   lr: { start: 0.1, end: 0.1 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 * };
 * const summary = await callInvert({
 *   out,
 *   source: `${Deno.cwd()}/tests/fixtures/tiny_vit`,
 *   model: {
 *     weights: "fixture", seed: 0, backend: "native", verify: true,
 *     removes: [], positionEmbedding: true, swaps: [],
 *   },
 *   refine: () => ({ settings, options: {}, modelDefaults: {} }),
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   overwrite: false,
 *   imagePath: `${Deno.cwd()}/assets/chelsea.png`,
 *   continuing: false,
 * });
 * assert.equal(summary.steps, 2);
 * assert.ok(Deno.statSync(`${out}/representation.png`).isFile);
 * ```
 */
export async function callInvert(
  call: InvertCall,
  ctx: RunContext = {},
): Promise<InvertSummary> {
  const { out } = call;
  return await runCommand({
    out,
    open: () => openVariant(call.source, call.model),
    ready: async (opened) => {
      const { model, variant } = opened;
      const m = model.manifest;
      const { settings: s, options, modelDefaults } = call.refine(m);
      const target = await loadTarget(call.imagePath, m.image_size);
      const resume = call.resume === undefined
        ? undefined
        : await readInvertResume(
          call.resume.dir,
          m.image_size,
          call.resume.saved,
        );
      await model.prepare(s.layer, {
        gradient: true,
        blocks: s.onlyLayer ? [s.layer] : undefined,
      });
      // Inputs are valid: from here on, files.
      const claim = {
        command: "invert",
        options,
        overwrite: call.overwrite,
        continuing: call.continuing,
      };
      const work = async (stopper: Stopper) => {
        const { summary } = await runInvert(model, target, s, {
          out,
          ...call.control,
          stopper,
          options,
          about: aboutOf(opened, call.source, s.normalize, modelDefaults),
          label: `invert ${layerLabel(m, s.layer, s.onlyLayer)}`,
          tag: variant.tag,
        }, resume);
        return summary;
      };
      return { claim, work };
    },
  }, ctx);
}

/** `invert` over several images or seeds: one batch. */
export interface InvertBatchCall extends Call<Refinement<InvertSettings>> {
  /** The runs ({@linkcode batchRuns}). */
  runs: readonly BatchRun[];
  /** The image paths (absolute paths or URLs), by {@linkcode BatchRun.image}. */
  images: readonly string[];
  /** `--seeds` as given, which the batch's record keeps. */
  seeds?: string;
  /** Where the line saying how the runs go is sent (e.g. stderr). */
  log?: (line: string) => void;
}

/**
 * Runs a batch of inversions (each into `call.out/NAME`, then batch.md and
 * metrics.json).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchRuns } from "./batch.ts";
 * import { callInvertBatch } from "./calls.ts";
 * const out = `${await Deno.makeTempDir()}/batch`;
 * const settings = {
 *   layer: 1, onlyLayer: false, loss: "l1" as const, steps: 2, seed: 0,
 *   lr: { start: 0.1, end: 0.1 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 * };
 * const images = [`${Deno.cwd()}/assets/chelsea.png`];
 * const r = await callInvertBatch({
 *   out,
 *   source: `${Deno.cwd()}/tests/fixtures/tiny_vit`,
 *   model: {
 *     weights: "fixture", seed: 0, backend: "native", verify: true,
 *     removes: [], positionEmbedding: true, swaps: [],
 *   },
 *   refine: () => ({ settings, options: {}, modelDefaults: {} }),
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   overwrite: false,
 *   runs: batchRuns(images, [0, 1]),
 *   images,
 *   seeds: "0-1",
 * });
 * assert.deepEqual(r.runs.map((x) => x.name), ["seed0", "seed1"]);
 * ```
 */
export async function callInvertBatch(
  call: InvertBatchCall,
  ctx: RunContext = {},
): Promise<InvertRunsOutcome> {
  const { out, images } = call;
  return await runCommand({
    out,
    open: () => openVariant(call.source, call.model),
    ready: async (opened) => {
      const { model, variant } = opened;
      const m = model.manifest;
      const { settings: base, options: saved, modelDefaults } = call.refine(m);
      const targets: ImageTensor[] = [];
      for (const p of images) targets.push(await loadTarget(p, m.image_size));
      await model.prepare(base.layer, {
        gradient: true,
        blocks: base.onlyLayer ? [base.layer] : undefined,
      });
      // Inputs are valid: from here on, files.
      const options = { ...saved, image: images.join(","), seeds: call.seeds };
      const claim = {
        command: "invert",
        options,
        overwrite: call.overwrite,
        continuing: false,
      };
      const work = (stopper: Stopper) =>
        runInvertRuns(model, {
          out,
          runs: call.runs,
          images,
          targets,
          settings: base,
          control: call.control,
          options: saved,
          head: { command: "invert", options },
          about: aboutOf(opened, call.source, base.normalize, modelDefaults),
          tag: variant.tag,
          log: call.log,
        }, stopper);
      return { claim, work };
    },
  }, ctx);
}

/** `demo`: one inversion per layer of one target. */
export interface DemoCall extends Call<Refinement<InvertSettings[]>> {
  /** The target image (absolute path or URL). */
  imagePath: string;
  /** The weights as labels show them (`untrained:SEED`), for demo.png's title. */
  weightsText: string;
  /** Where the line saying what runs is sent (e.g. stderr). */
  log?: (line: string) => void;
}

/**
 * Runs a demo: one inversion per layer (each into `call.out/layerL`), then
 * demo.png and metrics.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { callDemo } from "./calls.ts";
 * const out = `${await Deno.makeTempDir()}/demo`;
 * const s = {
 *   layer: 1, onlyLayer: false, loss: "l1" as const, steps: 2, seed: 0,
 *   lr: { start: 0.1, end: 0.1 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 * };
 * const r = await callDemo({
 *   out,
 *   source: `${Deno.cwd()}/tests/fixtures/tiny_vit`,
 *   model: {
 *     weights: "fixture", seed: 0, backend: "native", verify: true,
 *     removes: [], positionEmbedding: true, swaps: [],
 *   },
 *   refine: () => ({ settings: [s, { ...s, layer: 2 }], options: {}, modelDefaults: {} }),
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   overwrite: false,
 *   imagePath: `${Deno.cwd()}/assets/chelsea.png`,
 *   weightsText: "fixture",
 * });
 * assert.deepEqual(r.rows.map((x) => x.layer), [1, 2]);
 * assert.ok(Deno.statSync(`${out}/demo.png`).isFile);
 * ```
 */
export async function callDemo(
  call: DemoCall,
  ctx: RunContext = {},
): Promise<DemoOutcome> {
  const { out } = call;
  return await runCommand({
    out,
    open: () => openVariant(call.source, call.model),
    ready: async (opened) => {
      const { model, variant } = opened;
      const m = model.manifest;
      const { settings, options, modelDefaults } = call.refine(m);
      const steps = settings[0].steps;
      const target = await loadTarget(call.imagePath, m.image_size);
      for (const s of settings) {
        await model.prepare(s.layer, { gradient: true });
      }
      // Inputs are valid: from here on, files.
      const claim = {
        command: "demo",
        options,
        overwrite: call.overwrite,
        continuing: false,
      };
      const normalize = settings[0].normalize;
      const title = `${m.name}, ${call.weightsText}${
        variant.tag ? ` (${variant.tag})` : ""
      }: representations after ${steps} steps`;
      const work = (stopper: Stopper) =>
        runDemo(model, {
          out,
          target,
          imagePath: call.imagePath,
          settings,
          control: call.control,
          options,
          about: aboutOf(opened, call.source, normalize, modelDefaults),
          tag: variant.tag,
          title,
          log: call.log,
        }, stopper);
      return { claim, work };
    },
  }, ctx);
}

/** `generate` for one class or several. */
export interface GenerateCall
  extends Call<Refinement<GenerateSettings> & { indices: number[] }> {
  /** The snapshot `--resume` named and its folder (none: a fresh run). */
  resume: { snap: Snapshot | null; dir?: string };
  /** The option types a class's snapshot must have. */
  saved: SavedTypes;
  /** Whether the run continues in its own folder. */
  continuing: boolean;
  /** Where a warning is sent (e.g. stderr): an all-zero head. */
  warn?: (line: string) => void;
}

/**
 * Runs a generation over the classes `call.refine` resolves (several into
 * `call.out/class_I`, with the montage and metrics.json): what it did, and
 * the classes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { callGenerate } from "./calls.ts";
 * const out = `${await Deno.makeTempDir()}/gen`;
 * const settings = {
 *   constant: 10, steps: 2, jitterAfter: 0, canvasSize: 32, seed: 0,
 *   lr: { start: 0.05, end: 0.05 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 * };
 * const r = await callGenerate({
 *   out,
 *   source: `${Deno.cwd()}/tests/fixtures/tiny_vit`,
 *   model: {
 *     weights: "fixture", seed: 0, backend: "native", verify: true,
 *     removes: [], positionEmbedding: true, swaps: [],
 *   },
 *   refine: () => ({ settings, indices: [1], options: {}, modelDefaults: {} }),
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   overwrite: false,
 *   resume: { snap: null },
 *   saved: {},
 *   continuing: false,
 * });
 * assert.deepEqual(r.summaries.map((x) => x.index), [1]);
 * assert.ok(Deno.statSync(`${out}/generated.png`).isFile);
 * ```
 */
export async function callGenerate(
  call: GenerateCall,
  ctx: RunContext = {},
): Promise<ClassesOutcome & { indices: number[] }> {
  const { out } = call;
  return await runCommand({
    out,
    open: () => openVariant(call.source, call.model),
    ready: async (opened) => {
      const { model, variant } = opened;
      const m = model.manifest;
      const r = call.refine(m);
      const { settings: s, indices, options } = r;
      const head = zeroHead(model);
      if (head !== null && !call.control.quiet) {
        call.warn?.(
          `warning: ${head} of ${model.weights} is all zeros (torchvision initializes ViT heads to zero): every logit is 0 and has no gradient, so generation only blurs the noise; use trained weights, or --swap heads=WEIGHTS`,
        );
      }
      const states = await classStates(
        { ...call.resume, out },
        indices,
        m.image_size,
        s.canvasSize,
        call.saved,
      );
      await model.prepare("logits", { gradient: true });
      // Inputs are valid: from here on, files.
      const claim = {
        command: "generate",
        options,
        overwrite: call.overwrite,
        continuing: call.continuing,
      };
      const about = aboutOf(opened, call.source, s.normalize, r.modelDefaults);
      const work = async (stopper: Stopper) => {
        const done = await runClasses(model, {
          out,
          indices,
          states,
          settings: s,
          control: call.control,
          options,
          about,
          tag: variant.tag,
        }, stopper);
        return { ...done, indices };
      };
      return { claim, work };
    },
  }, ctx);
}
