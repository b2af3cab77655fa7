/**
 * An inversion as a run: its typed settings, its harness task (trace rows,
 * progress text, snapshot state), the files it writes and its summary;
 * {@linkcode runInvert} is the path shared by `invert`, `demo`, the batch
 * form and grid cells. Settings come typed (src/cli/invert.ts parses them),
 * refined once by the model's manifest ({@linkcode refineInvert}).
 *
 * @module
 */
import {
  encodePng,
  type FileData,
  type ImageTensor,
  type Row,
} from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import { linePlot, type LinePlotOptions, linePlotSvg } from "../figures/mod.ts";
import {
  invert,
  invertBatch,
  type InvertResult,
  psnr,
  randomStart,
  type Schedule,
  ssim,
  type StepInfo,
} from "../optimize/mod.ts";
import { labelledRow } from "./images.ts";
import { readSnapshotState } from "./snapshot.ts";
import { readResume } from "./run.ts";
import { type RunOptions, type SavedTypes, usage } from "./settings.ts";
import {
  checkKernel,
  type FieldParser,
  layerArg,
  type Refined,
  refineSettings,
  type Refining,
} from "./refine.ts";
import { modelKey } from "./models.ts";
import { canonicalModel } from "./model_options.ts";
import {
  intOpt,
  kernelOpt,
  lossOpt,
  schedOpt,
  scheduleSettings,
  stepsOpt,
  str,
} from "./read.ts";
import {
  type Control,
  finish,
  harness,
  type Harnessed,
  npyFile,
  openRun,
  type Resume,
  type RunSession,
  type StopReason,
  type Task,
} from "./harness.ts";

/** Typed settings of one inversion. */
export interface InvertSettings {
  layer: number;
  onlyLayer: boolean;
  loss: "l1" | "l2";
  steps: number;
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
  normalize: boolean;
  seed: number;
}

/** Where an inversion continues from. */
export interface InvertResume extends Resume {
  /** The first step meeting the noise criterion before the resumed step. */
  criterionStep: number | null;
}

/** Final figures of an invert run, as in metrics.json. */
export interface InvertSummary {
  /** The layer, numbered from 1 (0: input processing). */
  layer: number;
  /** Its name in the manifest (numbered from 0 as torchvision's tensors): `encoder_layer_0`. */
  layerName: string;
  /** How it is printed: `encoder 1 (encoder_layer_0)`. */
  layerLabel: string;
  steps: number;
  embeddingDistance: number;
  inputDistance: number;
  noiseBaseline: number;
  criterionMet: boolean;
  criterionStep: number | null;
  psnr: number;
  ssim: number;
  interrupted: boolean;
  stopReason: StopReason;
}

/** The columns of an invert run's traces.csv. */
export const INVERT_COLUMNS: readonly string[] = [
  "step",
  "loss",
  "embedding_distance",
  "input_distance",
  "noise_baseline",
  "below_noise_baseline",
  "psnr",
  "ssim",
  "lr",
  "sigma",
];

/**
 * How a layer is printed wherever a user reads one (progress, tables, figure
 * titles, metrics.json's `layerLabel`): numbered from 1 as `--layer` takes
 * it, with the manifest's name — numbered from 0 as torchvision's tensors —
 * as an alias: `encoder 1 (encoder_layer_0)`, a ResNet's `block 7
 * (layer2.3)`, `layer 0 (input)`. `alone` marks an encoder represented alone
 * (`--only-layer`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { layerLabel } from "./invert.ts";
 * const file = "weights/vit_b_32/manifest.json";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * assert.equal(layerLabel(m, 1), "encoder 1 (encoder_layer_0)");
 * assert.equal(layerLabel(m, 12, true), "encoder 12 alone (encoder_layer_11)");
 * assert.equal(layerLabel(m, 0), "layer 0 (input)");
 * ```
 */
export function layerLabel(m: Manifest, layer: number, alone = false): string {
  const name = m.layers[layer]?.name ?? String(layer);
  const word = layer === 0 ? "layer" : m.runtime.block_word;
  return `${word} ${layer}${alone ? " alone" : ""} (${name})`;
}

/** A distance as the table and the progress report's final line give it. */
const fixed = (v: number, d: number) => Number.isFinite(v) ? v.toFixed(d) : "∞";

/** The harness task of an inversion: its trace row, progress text and snapshot state. */
function invertTask(
  s: InvertSettings,
  target: ImageTensor,
  size: number,
  resume?: InvertResume,
): Task<StepInfo> {
  let criterionStep = resume?.criterionStep ?? null;
  return {
    command: "invert",
    columns: INVERT_COLUMNS,
    start: resume ? resume.image : randomStart(3 * size * size, s.seed),
    settings: {
      ...s,
      blocks: s.onlyLayer
        ? [s.layer]
        : Array.from({ length: s.layer }, (_, i) => i + 1),
    },
    row(info, before) {
      const below = info.embeddingDistance < info.noiseBaseline;
      if (below && criterionStep === null) criterionStep = info.step;
      return {
        step: info.step,
        loss: info.loss,
        embedding_distance: info.embeddingDistance,
        input_distance: info.inputDistance,
        noise_baseline: info.noiseBaseline,
        below_noise_baseline: below ? 1 : 0,
        psnr: psnr(before, target.data),
        ssim: ssim(before, target.data, size),
        lr: info.lr,
        sigma: info.sigma,
      };
    },
    status: (info) =>
      `emb ${info.embeddingDistance.toPrecision(4)} (noise ${
        info.noiseBaseline.toPrecision(4)
      })`,
    final: (result) => {
      const r = result as InvertResult;
      return `final emb ${fixed(r.final.embeddingDistance, 3)} (noise ${
        fixed(r.noiseBaseline, 3)
      })`;
    },
    state: () => ({ criterionStep }),
  };
}

/** A plot as `NAME.png` and its vector twin `NAME.svg`, for {@linkcode finish}. */
export function plotFiles(name: string, plot: LinePlotOptions): FileData[] {
  return [
    { name: `${name}.png`, data: encodePng(linePlot(plot)) },
    { name: `${name}.svg`, data: linePlotSvg(plot) },
  ];
}

/** The convergence plot of an inversion's trace rows. */
function convergencePlot(
  title: string,
  written: readonly Row[],
  noiseBaseline: number,
): LinePlotOptions {
  const steps = written.map((r) => r.step as number);
  return {
    title,
    xLabel: "step",
    yLabel: "‖O(a) − O(a_g)‖₂",
    y2Label: "‖a − a_g‖₂",
    logY: true,
    logY2: true,
    series: [
      {
        label: "embedding distance",
        x: steps,
        y: written.map((r) => r.embedding_distance as number),
      },
      {
        label: "input distance",
        x: steps,
        y: written.map((r) => r.input_distance as number),
        axis: "right",
      },
    ],
    hlines: [{ label: "noise baseline", y: noiseBaseline, dashed: true }],
  };
}

/** What a finished inversion's metrics.json calls its outcome. */
function invertOutcome(summary: InvertSummary): string {
  if (summary.interrupted) return `stopped at step ${summary.steps}`;
  return summary.criterionMet ? "criterion met" : "criterion not met";
}

/** Runs one inversion into `ctl.out` and writes all its files: the path shared by invert, demo and grid. */
export async function runInvert(
  model: Model,
  target: ImageTensor,
  s: InvertSettings,
  ctl: Control,
  resume?: InvertResume,
): Promise<{ summary: InvertSummary; image: Float32Array }> {
  const size = model.manifest.image_size;
  const task = invertTask(s, target, size, resume);
  const run = await harness(
    ctl,
    task,
    resume,
    (drive) =>
      invert(model, target.data, {
        ...s,
        blocks: s.onlyLayer ? [s.layer] : undefined,
        ...drive,
      }),
  );
  return await finishInvert(
    target,
    s,
    ctl,
    task,
    run,
    model.manifest,
    resume,
  );
}

/**
 * Runs inversions of several targets (settings differing only by seed) as one
 * batch through the model's chain, each into its own `ctls[i].out` with the
 * files, trace, snapshots and outcome of a {@linkcode runInvert} run.
 */
export async function runInvertBatch(
  model: Model,
  targets: readonly ImageTensor[],
  settings: readonly InvertSettings[],
  ctls: readonly Control[],
): Promise<{ summary: InvertSummary; image: Float32Array }[]> {
  const size = model.manifest.image_size;
  const n = 3 * size * size;
  const tasks = settings.map((s, i) => invertTask(s, targets[i], size));
  const runs: RunSession<StepInfo>[] = [];
  for (const [i, ctl] of ctls.entries()) {
    runs.push(await openRun(ctl, tasks[i], undefined));
  }
  const s0 = settings[0];
  let results: InvertResult[];
  try {
    results = await invertBatch(model, targets.map((t) => t.data), {
      ...s0,
      seeds: settings.map((s) => s.seed),
      blocks: s0.onlyLayer ? [s0.layer] : undefined,
      onStep: async (infos) => {
        let go = true;
        for (const [i, run] of runs.entries()) {
          go = (await run.onStep(infos[i])) && go;
        }
        return go;
      },
    });
  } catch (err) {
    for (const [i, run] of runs.entries()) {
      await run.fail(err, (image) => image.slice(i * n, (i + 1) * n));
    }
    throw err;
  }
  const out = [];
  for (const [i, run] of runs.entries()) {
    const done = await run.close(results[i]);
    out.push(
      await finishInvert(
        targets[i],
        settings[i],
        ctls[i],
        tasks[i],
        done,
        model.manifest,
      ),
    );
  }
  return out;
}

/** Writes a harnessed inversion's files and metrics.json; its summary and image. */
async function finishInvert(
  target: ImageTensor,
  s: InvertSettings,
  ctl: Control,
  task: Task<StepInfo>,
  run: Harnessed<InvertResult>,
  manifest: Manifest,
  resume?: InvertResume,
): Promise<{ summary: InvertSummary; image: Float32Array }> {
  const size = manifest.image_size;
  const result = run.result;
  const criterionStep = resume?.criterionStep ?? result.criterionStep;
  const what = layerLabel(manifest, s.layer, s.onlyLayer);
  const summary: InvertSummary = {
    layer: s.layer,
    layerName: manifest.layers[s.layer]?.name ?? String(s.layer),
    layerLabel: what,
    steps: result.final.steps,
    embeddingDistance: result.final.embeddingDistance,
    inputDistance: result.final.inputDistance,
    noiseBaseline: result.noiseBaseline,
    criterionMet: criterionStep !== null,
    criterionStep,
    psnr: result.final.psnr,
    ssim: ssim(result.image.data, target.data, size),
    interrupted: run.interrupted,
    stopReason: run.reason,
  };
  const rep = result.image;
  const tag = ctl.tag ? `, ${ctl.tag}` : "";
  await finish(ctl, task, run, resume, [
    { name: "representation.png", data: encodePng(rep) },
    npyFile("representation.npy", result.image.data),
    { name: "target.png", data: encodePng(target) },
    {
      name: "side_by_side.png",
      data: encodePng(labelledRow([target, rep], [
        "target",
        `representation (${what}${tag}, ${result.final.steps} steps)`,
      ])),
    },
    ...plotFiles(
      "convergence",
      convergencePlot(
        `Representation of ${what}${tag}`,
        run.written,
        result.noiseBaseline,
      ),
    ),
  ], { final: summary, outcome: invertOutcome(summary) });
  return { summary, image: result.image.data };
}

/** The essay's table of figures, one row per layer (a first column `lead` when given). */
export function figuresTable(
  rows: readonly InvertSummary[],
  lead?: { title: string; cells: readonly string[] },
): string {
  const f = fixed;
  const pre = (i: number) => lead ? `| ${lead.cells[i]} ` : "";
  return [
    `${
      lead ? `| ${lead.title} ` : ""
    }| layer | ‖O(a)−O(a_g)‖₂ | noise baseline ‖O(a)−O(a′)‖₂ | criterion met | ‖a−a_g‖₂ | PSNR dB | SSIM |`,
    `${lead ? "| --- " : ""}| --- | --- | --- | --- | --- | --- | --- |`,
    ...rows.map((r, i) =>
      `${pre(i)}| ${r.layerLabel} | ${f(r.embeddingDistance, 3)} | ${
        f(r.noiseBaseline, 3)
      } | ${r.criterionMet ? `yes (step ${r.criterionStep})` : "no"} | ${
        f(r.inputDistance, 2)
      } | ${f(r.psnr, 2)} | ${f(r.ssim, 3)} |`
    ),
  ].join("\n");
}

/** Where the invert run in `dir` continues from: its snapshot, every field checked (runtime errors naming file and field; options against `saved`). */
export async function readInvertResume(
  dir: string,
  size: number,
  saved?: SavedTypes,
): Promise<InvertResume> {
  const snap = await readSnapshotState(dir, "invert", { saved });
  return {
    ...await readResume(dir, snap, [size], INVERT_COLUMNS),
    criterionStep: snap.criterionStep ?? null,
  };
}

/**
 * An invert run's typed settings from its options record (usage errors
 * naming the option): `--layer` as a number (a layer name stays NaN until
 * the model is known), the loss, the step count, the schedules, the blur
 * kernel, the seed (`--start-seed` when given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invertSettings } from "./invert.ts";
 * const raw = {
 *   layer: "2", loss: "l2", steps: "10", lr: "2:0", sigma: "1:0",
 *   "kernel-size": "1", seed: "0",
 * };
 * assert.equal(invertSettings(raw).steps, 10);
 * assert.equal(invertSettings(raw).layer, 2);
 * assert.throws(() => invertSettings({ ...raw, steps: "x" }), /Invalid --steps "x"/);
 * ```
 */
export function invertSettings(raw: RunOptions): InvertSettings {
  const layer = layerArg(str(raw, "layer"), "layer");
  const onlyLayer = raw["only-layer"] === true;
  if (onlyLayer && layer === 0) {
    throw usage(
      new RangeError(
        `Invalid --layer "0" with --only-layer: expected an encoder block 1..N`,
      ),
    );
  }
  const loss = lossOpt(raw);
  const shared = scheduleSettings(raw);
  return {
    layer,
    onlyLayer,
    loss,
    steps: stepsOpt(raw, "steps", 1),
    ...shared,
    seed: raw["start-seed"] === undefined
      ? shared.seed
      : intOpt(raw, "start-seed", 0, 2 ** 31 - 1),
  };
}

/**
 * One setting a manifest may recommend for `invert`, read from its text
 * (usage errors as the option's own; `size`: the model's image size, which
 * the blur kernel must fit).
 */
function invertField(size: number): FieldParser<InvertSettings> {
  return (name, text) => {
    const raw = { [name]: text };
    if (name === "steps") return { steps: stepsOpt(raw, name, 1) };
    if (name === "lr" || name === "sigma") {
      return { [name]: schedOpt(raw, name) };
    }
    if (name === "loss") return { loss: lossOpt(raw) };
    const kernelSize = kernelOpt(raw);
    checkKernel(kernelSize, size);
    return { kernelSize };
  };
}

/**
 * The one manifest-dependent refinement of an invert run's settings (read
 * once from its options): the model's recommended settings as defaults (see
 * refineSettings), the blur kernel checked against its image size; `layer`
 * (the option's text), when given, resolved by its layer names (see
 * {@linkcode withLayer}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { invertSettings, refineInvert } from "./invert.ts";
 * const source = "weights/fmnist_vit";
 * const file = `${source}/manifest.json`;
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * m.recommended = { invert: { steps: 30 } };
 * const options = {
 *   layer: "encoder_layer_1", loss: "l2", steps: "10", lr: "2:0",
 *   sigma: "1:0", "kernel-size": "1", seed: "0",
 * };
 * const run = { settings: invertSettings(options), options, given: {}, resumed: null, source };
 * const r = refineInvert(run, m, options.layer);
 * assert.equal(r.settings.steps, 30);
 * assert.equal(r.settings.layer, 2);
 * assert.deepEqual(r.modelDefaults, { steps: "30" });
 * ```
 */
export function refineInvert(
  run: Refining<InvertSettings>,
  m: Manifest,
  layer?: string,
): Refined<InvertSettings> {
  const r = refineSettings({
    ...run,
    manifest: m,
    command: "invert",
    field: invertField(m.image_size),
    file: `${run.source}/manifest.json`,
  });
  checkKernel(r.settings.kernelSize, m.image_size);
  if (layer === undefined) return r;
  return { ...r, settings: withLayer(r.settings, layer, m) };
}

/**
 * Settings with `--layer` (its text) resolved against the model's layer
 * names (a usage error naming the option for a layer it lacks, or for the
 * input with --only-layer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { invertSettings, withLayer } from "./invert.ts";
 * const file = "weights/fmnist_vit/manifest.json";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * const s = invertSettings({
 *   layer: "1", loss: "l2", steps: "10", lr: "2:0", sigma: "1:0",
 *   "kernel-size": "1", seed: "0", "only-layer": true,
 * });
 * assert.equal(withLayer(s, "encoder_layer_0", m).layer, 1);
 * assert.throws(() => withLayer(s, "input", m), /Invalid --layer "0" with --only-layer/);
 * ```
 */
export function withLayer(
  s: InvertSettings,
  text: string,
  m: Manifest,
): InvertSettings {
  const layer = layerArg(text, "layer", m);
  if (s.onlyLayer && layer === 0) {
    throw usage(
      new RangeError(
        `Invalid --layer "0" with --only-layer: expected an encoder block 1..N`,
      ),
    );
  }
  return { ...s, layer };
}

/**
 * An invert run's refinement by its model's manifest (see
 * {@linkcode refineInvert}, `--layer` from its options record) with the
 * options record it keeps: `keep`'s selection of the refined options, the
 * resolved layer, `image` (when given: a batch's records add theirs) and the
 * model's key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { invertRefinement, invertSettings } from "./invert.ts";
 * const source = "weights/fmnist_vit";
 * const file = `${source}/manifest.json`;
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * const options = {
 *   model: "fmnist_vit", layer: "encoder_layer_1", loss: "l2", steps: "10",
 *   lr: "2:0", sigma: "1:0", "kernel-size": "1", seed: "0",
 * };
 * const run = { settings: invertSettings(options), options, given: {}, resumed: null, source };
 * const r = invertRefinement(run, (o) => ({ steps: o.steps }), "/tmp/cat.png")(m);
 * assert.deepEqual(r.options, { steps: "10", layer: "2", image: "/tmp/cat.png", model: "fmnist_vit" });
 * ```
 */
export function invertRefinement(
  run: Refining<InvertSettings>,
  keep: (options: RunOptions) => RunOptions,
  image?: string,
): (m: Manifest) => Refined<InvertSettings> {
  return (m) => {
    const r = refineInvert(run, m, str(run.options, "layer"));
    const options = {
      ...keep(r.options),
      layer: String(r.settings.layer),
      ...(image === undefined ? {} : { image }),
      model: modelKey(str(r.options, "model")),
    };
    return { settings: r.settings, options, modelDefaults: r.modelDefaults };
  };
}

/**
 * A demo's refinement by its model's manifest: the settings of an invert run
 * refined once (see {@linkcode refineInvert}), then one per layer of
 * `layers` (each the text of one, resolved with {@linkcode withLayer}), with
 * `keep`'s selection of the refined options as the record it keeps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { demoRefinement, invertSettings } from "./invert.ts";
 * const source = "weights/fmnist_vit";
 * const file = `${source}/manifest.json`;
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * const options = {
 *   layer: "0", loss: "l2", steps: "10", lr: "2:0", sigma: "1:0",
 *   "kernel-size": "1", seed: "0",
 * };
 * const run = { settings: invertSettings(options), options, given: {}, resumed: null, source };
 * const r = demoRefinement(run, ["1", "encoder_layer_1"], (o) => o)(m);
 * assert.deepEqual(r.settings.map((s) => s.layer), [1, 2]);
 * ```
 */
export function demoRefinement(
  run: Refining<InvertSettings>,
  layers: readonly string[],
  keep: (options: RunOptions) => RunOptions,
): (m: Manifest) => Refined<InvertSettings[]> {
  return (m) => {
    const own = refineInvert(run, m);
    return {
      settings: layers.map((l) => withLayer(own.settings, l, m)),
      options: keep(own.options),
      modelDefaults: own.modelDefaults,
    };
  };
}

/**
 * `--layer` as a number where that needs no manifest: the token models'
 * zero-based names (`encoder_layer_0`, `block_0`) are encoder 1, `input` is
 * 0; other names (a ResNet's) stay NaN.
 */
function layerNumber(text: string): number {
  const t = text.trim();
  const m = t.match(/^(?:encoder_layer|block)_(\d+)$/);
  if (m) return Number(m[1]) + 1;
  return t === "input" ? 0 : Number(t);
}

/**
 * The options that fix an invert run's result, for --resume checks: the
 * model's (see canonicalModel), the target `image` (as resolved), the layer,
 * --only-layer, the loss and the start seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalInvert } from "./invert.ts";
 * const raw = { model: "fmnist_vit", weights: "untrained", seed: "0", layer: "encoder_layer_1", loss: "l1" };
 * const c = canonicalInvert(raw, "/tmp/cat.png");
 * assert.equal(c.layer, 2);
 * assert.equal(c.image, "/tmp/cat.png");
 * assert.equal(c["start-seed"], null);
 * ```
 */
export function canonicalInvert(
  raw: RunOptions,
  image: string,
): Record<string, unknown> {
  return {
    ...canonicalModel(raw),
    image,
    layer: layerNumber(str(raw, "layer")),
    "only-layer": raw["only-layer"] === true,
    loss: str(raw, "loss"),
    "start-seed": raw["start-seed"] === undefined
      ? null
      : Number(str(raw, "start-seed")),
  };
}
