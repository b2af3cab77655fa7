/**
 * Internal to the command line (src/cli.ts): the `invert` command (the
 * essay's layer representation) and `demo` (invert for a few layers), on one
 * shared path, {@linkcode runInvert}, that `grid` uses too.
 *
 * @module
 */
import {
  encodePng,
  type ImageTensor,
  writeFiles,
  writePng,
} from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import { linePlot, type LinePlotOptions, linePlotSvg } from "../figures/mod.ts";
import {
  invert,
  INVERT_DEFAULTS,
  invertBatch,
  type InvertResult,
  psnr,
  randomStart,
  type StepInfo,
} from "../optimize/mod.ts";
import { ssim } from "../optimize/mod.ts";
import type { Schedule } from "../optimize/mod.ts";
import {
  backendOpt,
  checkKernel,
  type Command,
  type Context,
  controlOpts,
  DEFAULT_IMAGE_TEXT,
  defaultImage,
  defaults,
  intOpt,
  list,
  MODEL_OPTS,
  modelKey,
  modelSource,
  type Opt,
  type Raw,
  recommendedOptions,
  RUN_OPTS,
  savedOptions,
  SCHEDULE_OPTS,
  scheduleSettings,
  type Spec,
  stepsOpt,
  str,
  threadsOpt,
  usage,
  VARIANT_OPTS,
  withModelDefaults,
} from "./options.ts";
import {
  canonicalModel,
  checkVariantOpts,
  layerArg,
  modelAbout,
  openModel,
  weightsText,
} from "./model.ts";
import { imageOf, labelledRow, loadTarget } from "./io.ts";
import type { FileData, Row } from "../io/mod.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import {
  bySignal,
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
} from "../run/harness.ts";
import { readSnapshotState } from "../run/snapshot.ts";
import { checkOutPath } from "../run/outdir.ts";
import { inOut, prelude, readResume } from "../run/run.ts";

/** The most runs one `invert` batch takes (images × seeds). */
export const MAX_BATCH = 64;

/** Options of `invert`. */
export const INVERT_SPEC: Spec = {
  ...MODEL_OPTS,
  image: {
    type: "string",
    default: DEFAULT_IMAGE_TEXT,
    arg: "PATH",
    help:
      "target image (PNG or JPEG), resized and centre-cropped to the model's size. Repeatable: several images run as one batch, each into DIR/NAME/",
    multiple: true,
    saved: true,
    identity: true,
  },
  seeds: {
    type: "string",
    arg: "S-S|S,S",
    defaultText: "one run",
    help:
      `random starts of a batch, e.g. 0-7: each image once per seed, into DIR/NAME-seedS/ (at most ${MAX_BATCH} runs; the untrained weights keep --seed)`,
  },
  "start-seed": {
    type: "string",
    arg: "N",
    defaultText: "--seed",
    help:
      "seed of the random start and of the noise baseline alone (the untrained weights keep --seed)",
    saved: true,
    identity: true,
  },
  layer: {
    type: "string",
    default: String(INVERT_DEFAULTS.layer),
    arg: "L",
    help:
      "layer to represent, numbered from 1: 0 = input processing, 1..N = encoder N (a ResNet: block N). Also accepted: the manifest's layer name, numbered from 0 as torchvision's tensors (encoder_layer_0 = encoder 1, block_0, stem, layer2.3), or a ResNet stage layer1…layer4 (its last block). Printed as \"encoder 1 (encoder_layer_0)\"",
    saved: true,
    identity: true,
  },
  "only-layer": {
    type: "boolean",
    default: false,
    help:
      "represent encoder L alone: input processing, then encoder L (skipping 1..L−1)",
    saved: true,
    identity: true,
  },
  loss: {
    type: "string",
    default: INVERT_DEFAULTS.loss,
    arg: "l1|l2",
    help: "feature loss at the layer",
    saved: true,
    identity: true,
  },
  steps: {
    type: "string",
    default: String(INVERT_DEFAULTS.steps),
    arg: "N",
    help: "gradient steps",
    saved: true,
  },
  ...SCHEDULE_OPTS(INVERT_DEFAULTS),
  ...VARIANT_OPTS,
  ...RUN_OPTS("out/invert"),
};

/** Options of `demo`: those of invert, with --layers for --layer and no --resume. */
export const DEMO_SPEC: Spec = Object.fromEntries(
  Object.entries(INVERT_SPEC).flatMap(([k, o]): [string, Opt][] => {
    if (
      ["only-layer", "save-every", "stop-at", "resume", "seeds", "start-seed"]
        .includes(k)
    ) {
      return [];
    }
    if (k === "image") return [[k, { ...o, multiple: undefined }]];
    if (k === "layer") {
      return [["layers", {
        type: "string",
        default: "1,12",
        arg: "L,L",
        help:
          "layers to represent (numbers from 1, or names as --layer takes them), one run each, files in DIR/layerL/",
      }]];
    }
    if (k === "steps") {
      return [[k, { ...o, default: "300", help: "gradient steps per layer" }]];
    }
    if (k === "out") {
      return [[k, { ...o, default: "out/demo", help: "output folder" }]];
    }
    return [[k, o]];
  }),
);

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
  const word = layer === 0
    ? "layer"
    : m.architecture === "vit" || m.architecture === "ffvit"
    ? "encoder"
    : "block";
  return `${word} ${layer}${alone ? " alone" : ""} (${name})`;
}

/** A distance as the table and the progress report's final line give it. */
const fixed = (v: number, d: number) => Number.isFinite(v) ? v.toFixed(d) : "∞";

/** Typed settings from raw options (usage errors for bad values). */
export function invertSettings(
  raw: Raw,
  manifest?: Manifest,
): InvertSettings {
  const layer = layerArg(str(raw, "layer"), "layer", manifest);
  const onlyLayer = raw["only-layer"] === true;
  if (onlyLayer && layer === 0) {
    throw usage(
      new RangeError(
        `Invalid --layer "0" with --only-layer: expected an encoder block 1..N`,
      ),
    );
  }
  const loss = str(raw, "loss");
  if (loss !== "l1" && loss !== "l2") {
    throw usage(
      new TypeError(`Invalid --loss "${loss}": expected l1 or l2`),
    );
  }
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

/** Where the invert run in `dir` continues from: its snapshot, every field checked (runtime errors naming file and field). */
export async function readInvertResume(
  dir: string,
  size: number,
): Promise<InvertResume> {
  const snap = await readSnapshotState(dir, "invert", { spec: INVERT_SPEC });
  return {
    ...await readResume(dir, snap, [size], INVERT_COLUMNS),
    criterionStep: snap.criterionStep ?? null,
  };
}

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

/** The options that fix an invert run's result, for --resume checks. */
export function canonicalInvert(raw: Raw): Record<string, unknown> {
  return {
    ...canonicalModel(raw),
    image: defaultImage(raw),
    layer: layerNumber(str(raw, "layer")),
    "only-layer": raw["only-layer"] === true,
    loss: str(raw, "loss"),
    "start-seed": raw["start-seed"] === undefined
      ? null
      : Number(str(raw, "start-seed")),
  };
}

/** `--seeds`: "0-7", "0,3,9" or both; at most {@linkcode MAX_BATCH} (checked before expanding). */
export function parseSeeds(text: string): number[] {
  const bad = (why: string) =>
    usage(
      new RangeError(
        `Invalid --seeds "${text}": ${why}: expected seeds or ranges such as 0-7 or 0,3,9`,
      ),
    );
  const seeds: number[] = [];
  for (const part of text.split(",")) {
    const m = part.trim().match(/^(\d+)(?:-(\d+))?$/);
    if (!m) throw bad(`"${part}" is not a seed or range`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a) throw bad(`the range ${part} runs backwards`);
    if (b > 2 ** 31 - 1) throw bad(`${b} is over 2147483647`);
    if (seeds.length + (b - a + 1) > MAX_BATCH) {
      throw bad(`more than ${MAX_BATCH} seeds`);
    }
    for (let v = a; v <= b; v++) seeds.push(v);
  }
  const dup = seeds.find((v, i) => seeds.indexOf(v) !== i);
  if (dup !== undefined) throw bad(`seed ${dup} is given twice`);
  return seeds;
}

/** A batch's runs, every image under every seed (at most {@linkcode MAX_BATCH}), and their folder names: the image's file name (made unique), and -seedS per seed. */
function runNames(images: readonly string[], seeds: readonly number[] | null) {
  const stems = images.map((p) =>
    (p.split(/[/\\]/).pop() ?? "image").replace(/\.[^.]*$/, "")
      .replace(/[^A-Za-z0-9_.-]/g, "_") || "image"
  );
  const unique = stems.map((s, i) =>
    stems.filter((t) => t === s).length > 1 ? `${i + 1}-${s}` : s
  );
  const runs = unique.flatMap((stem, i) =>
    (seeds ?? [null]).map((seed) => ({
      image: i,
      seed,
      name: seed === null
        ? stem
        : images.length > 1
        ? `${stem}-seed${seed}`
        : `seed${seed}`,
    }))
  );
  if (runs.length > MAX_BATCH) {
    throw usage(
      new RangeError(
        `Invalid batch of ${images.length} images × ${
          seeds?.length ?? 1
        } seeds = ${runs.length} runs: expected at most ${MAX_BATCH}`,
      ),
    );
  }
  return runs;
}

/** Writes a batch's batch.md and metrics.json (its runs' summaries) and prints the table. */
async function writeBatch(
  out: string,
  runs: readonly (InvertSummary & { name: string })[],
  head: Record<string, unknown>,
  stopped: boolean,
): Promise<void> {
  const table = figuresTable(runs, {
    title: "run",
    cells: runs.map((r) => r.name),
  });
  const record = {
    ...head,
    runs,
    interrupted: stopped || runs.some((r) => r.interrupted),
  };
  await writeFiles(out, [{ name: "batch.md", data: table + "\n" }, {
    name: "metrics.json",
    data: JSON.stringify(record, null, 2) + "\n",
  }]);
  console.log(table);
  console.log(
    `\nwrote ${out}/ (batch.md, metrics.json, ${
      runs.map((r) => `${r.name}/`).join(", ")
    })`,
  );
}

/**
 * A run's options with the settings the model's manifest recommends for
 * `invert` as defaults (see withModelDefaults), checked against the model
 * (its layers aside: invertSettings checks those with the run's own).
 */
function invertModelDefaults(
  m: Manifest,
  source: string,
  spec: Spec,
  raw: Raw,
  given: Raw,
  resumed: Raw | null,
): { raw: Raw; modelDefaults: Raw } {
  // the settings a manifest may recommend, checked with the layer aside
  const check = (r: Raw) => {
    const s = invertSettings({ ...r, layer: "0", "only-layer": false }, m);
    checkKernel(s.kernelSize, m.image_size);
  };
  const recommended = recommendedOptions(
    m,
    "invert",
    spec,
    check,
    `${source}/manifest.json`,
  );
  const out = withModelDefaults(raw, given, recommended, resumed);
  check(out.raw);
  return out;
}

/**
 * An invert run's model, with the options completed by its recommended
 * settings and checked against it (the model released when they fail).
 */
async function openInvertModel(
  pre: { raw: Raw; snap: { options: Raw } | null },
  given: Raw,
) {
  const source = modelSource(str(pre.raw, "model"));
  const { model, variant } = await openModel(pre.raw, source);
  try {
    const m = model.manifest;
    const { raw, modelDefaults } = invertModelDefaults(
      m,
      source,
      INVERT_SPEC,
      pre.raw,
      given,
      pre.snap?.options ?? null,
    );
    const settings = invertSettings(raw, m);
    const size = m.image_size;
    return { model, variant, source, settings, size, raw, modelDefaults };
  } catch (err) {
    await model.release();
    throw err;
  }
}

/** The options one run of a batch records: the batch's, with its own image and seed. */
function batchRunOptions(
  saved: Record<string, string>,
  image: string,
  given: number | null,
  seed: number,
): Record<string, string> {
  return {
    ...saved,
    image,
    ...(given === null ? {} : { "start-seed": String(seed) }),
  };
}

/** `invert` with several --image or --seeds: one batch through the chain (one image at a time where the graphs have no batch axis). */
async function invertBatchCommand(
  pre: Awaited<ReturnType<typeof prelude>>,
  given: Raw,
  images: readonly string[],
  seeds: number[] | null,
  ctx: Context,
): Promise<number> {
  const { out } = pre;
  if (pre.resumeDir !== undefined) {
    throw usage(
      new TypeError(
        `Invalid --resume with several --image or --seeds: a batch starts afresh; resume one of its runs by its folder (--resume ${out}/NAME)`,
      ),
    );
  }
  const runs = runNames(images, seeds);
  invertSettings(pre.raw);
  const paths = images.map((v) => defaultImage({ image: v }));
  const { model, variant, source, settings: base, size, raw, modelDefaults } =
    await openInvertModel(pre, given);
  try {
    const targets: ImageTensor[] = [];
    for (const p of paths) targets.push(await loadTarget(p, size));
    await model.prepare(base.layer, {
      gradient: true,
      blocks: base.onlyLayer ? [base.layer] : undefined,
    });
    // Inputs are valid: from here on, files.
    const saved = {
      ...savedOptions(INVERT_SPEC, raw),
      layer: String(base.layer),
      model: modelKey(str(raw, "model")),
    };
    const options = { ...saved, image: paths.join(","), seeds: raw.seeds };
    const claim = {
      command: "invert",
      options,
      overwrite: raw.overwrite === true,
      continuing: false,
    };
    const about = {
      ...modelAbout(model, source, base.normalize, variant),
      modelDefaults,
    };
    const batched = model.manifest.batch_axis === true;
    const what = layerLabel(model.manifest, base.layer, base.onlyLayer);
    return await inOut(out, claim, ctx, async (stopper) => {
      const ctls: Control[] = [];
      const settings: InvertSettings[] = [];
      for (const [k, r] of runs.entries()) {
        const dir = `${out}/${r.name}`;
        await Deno.mkdir(dir, { recursive: true });
        const seed = r.seed ?? base.seed;
        settings.push({ ...base, seed });
        ctls.push({
          out: dir,
          ...pre.control,
          quiet: pre.control.quiet || (batched && k > 0),
          stopper,
          options: batchRunOptions(saved, paths[r.image], r.seed, seed),
          about,
          label: batched
            ? `invert ${what}, batch of ${runs.length}`
            : `invert ${r.name}`,
          tag: variant.tag,
        });
      }
      const picked = runs.map((r) => targets[r.image]);
      const how = batched
        ? "as one batch"
        : `one at a time (${model.manifest.name}'s graphs take one image)`;
      const names = runs.map((r) => r.name).join(", ");
      console.error(`vitrep invert: ${runs.length} runs ${how}: ${names}`);
      const results = batched
        ? await runInvertBatch(model, picked, settings, ctls)
        : [];
      for (const [k, ctl] of ctls.entries()) {
        if (batched || stopper.requested) break;
        results.push(await runInvert(model, picked[k], settings[k], ctl));
      }
      const done = runs.slice(0, results.length).map((r, k) => ({
        name: r.name,
        image: paths[r.image],
        seed: settings[k].seed,
        ...results[k].summary,
      }));
      await writeBatch(out, done, {
        command: "invert",
        options,
        ...about,
        batch: batched,
      }, stopper.requested);
      return stopper.requested ? EXIT_INTERRUPTED : 0;
    });
  } finally {
    await model.release();
  }
}

async function invertCommand(given: Raw, ctx: Context): Promise<number> {
  const pre = await prelude("invert", INVERT_SPEC, given, canonicalInvert);
  const images = list(pre.raw, "image");
  const seeds = pre.raw.seeds === undefined
    ? null
    : parseSeeds(str(pre.raw, "seeds"));
  if (images.length > 1 || seeds !== null) {
    return await invertBatchCommand(pre, given, images, seeds, ctx);
  }
  const { snap, resumeDir, out } = pre;
  invertSettings(pre.raw); // everything that needs no model first
  const imagePath = defaultImage(pre.raw);
  const { model, variant, source, settings: s, size, raw, modelDefaults } =
    await openInvertModel(pre, given);
  try {
    const target = await loadTarget(imagePath, size);
    const resume = snap && resumeDir !== undefined
      ? await readInvertResume(resumeDir, size)
      : undefined;
    await model.prepare(s.layer, {
      gradient: true,
      blocks: s.onlyLayer ? [s.layer] : undefined,
    });
    // Inputs are valid: from here on, files.
    const options = {
      ...savedOptions(INVERT_SPEC, raw),
      layer: String(s.layer),
      image: imagePath,
      model: modelKey(str(raw, "model")),
    };
    const claim = {
      command: "invert",
      options,
      overwrite: raw.overwrite === true,
      continuing: pre.continuing,
    };
    const { summary } = await inOut(
      out,
      claim,
      ctx,
      (stopper) =>
        runInvert(model, target, s, {
          out,
          ...pre.control,
          stopper,
          options,
          about: {
            ...modelAbout(model, source, s.normalize, variant),
            modelDefaults,
          },
          label: `invert ${layerLabel(model.manifest, s.layer, s.onlyLayer)}`,
          tag: variant.tag,
        }, resume),
    );
    console.log(figuresTable([summary]));
    console.log(
      summary.interrupted
        ? `\nstopped at step ${summary.steps} (${summary.stopReason}); wrote ${out}/ with a snapshot: continue with --resume ${out}`
        : `\nwrote ${out}/ (representation.png, target.png, side_by_side.png, convergence.png/.svg, traces.csv, representation.npy, metrics.json)`,
    );
    return bySignal(summary.stopReason) ? EXIT_INTERRUPTED : 0;
  } finally {
    await model.release();
  }
}

async function demoCommand(given: Raw, ctx: Context): Promise<number> {
  let raw: Raw = { ...defaults(DEMO_SPEC), ...given };
  const layerText = str(raw, "layers");
  const layers = layerText.split(",").map((t) => t.trim());
  for (const t of layers) layerArg(t, "layers", undefined, layerText);
  const base = invertSettings({ ...raw, layer: "0" });
  const ctlOpts = controlOpts({ ...raw, "save-every": "0" });
  checkVariantOpts(raw);
  backendOpt(raw);
  threadsOpt(raw);
  const out = checkOutPath(str(raw, "out"));
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const { model, variant } = await openModel(raw, source);
  try {
    const m = model.manifest;
    const own = invertModelDefaults(m, source, DEMO_SPEC, raw, given, null);
    raw = own.raw;
    const settings = layers.map((l) => invertSettings({ ...raw, layer: l }, m));
    const steps = settings[0].steps;
    const target = await loadTarget(imagePath, m.image_size);
    for (const s of settings) await model.prepare(s.layer, { gradient: true });
    // Inputs are valid: from here on, files.
    const options = savedOptions(DEMO_SPEC, raw);
    const claim = {
      command: "demo",
      options,
      overwrite: raw.overwrite === true,
      continuing: false,
    };
    return await inOut(out, claim, ctx, async (stopper) => {
      await writePng(`${out}/target.png`, target);
      console.error(
        `vitrep demo: ${m.name}, weights ${model.weights}, on ${model.backend}, ${steps} steps per layer`,
      );
      const about = {
        ...modelAbout(model, source, base.normalize, variant),
        modelDefaults: own.modelDefaults,
      };
      const rows: InvertSummary[] = [];
      const images: ImageTensor[] = [];
      for (const s of settings) {
        if (stopper.requested) break;
        const dir = `${out}/layer${s.layer}`;
        await Deno.mkdir(dir, { recursive: true });
        const r = await runInvert(model, target, s, {
          out: dir,
          ...ctlOpts,
          stopper,
          options: { ...options, layer: String(s.layer), image: imagePath },
          about,
          label: layerLabel(m, s.layer),
          tag: variant.tag,
        });
        rows.push(r.summary);
        images.push(imageOf(r.image));
      }
      const title = `${m.name}, ${weightsText(raw)}${
        variant.tag ? ` (${variant.tag})` : ""
      }: representations after ${steps} steps`;
      await writeFiles(out, [{
        name: "demo.png",
        data: encodePng(
          labelledRow(
            [target, ...images],
            ["target", ...rows.map((r) => r.layerLabel)],
            title,
          ),
        ),
      }, {
        name: "metrics.json",
        data: JSON.stringify(
          {
            command: "demo",
            options,
            ...about,
            steps,
            layers: rows,
            interrupted: stopper.requested,
          },
          null,
          2,
        ) + "\n",
      }]);
      console.log(figuresTable(rows));
      console.log(
        `\nwrote ${out}/ (demo.png, target.png, metrics.json, ${
          rows.map((r) => `layer${r.layer}/`).join(", ")
        })`,
      );
      return stopper.requested ? EXIT_INTERRUPTED : 0;
    });
  } finally {
    await model.release();
  }
}

/** `invert`: layer representation. */
export const INVERT_COMMAND: Command = {
  about:
    "layer representation: from noise, an image whose layer output matches the target's",
  synopsis: "--image IMG --layer L [options]",
  spec: INVERT_SPEC,
  run: invertCommand,
};

/** `demo`: invert a few layers of untrained ViT-B/32 for a photo. */
export const DEMO_COMMAND: Command = {
  about: "invert layers of untrained ViT-B/32 for a photo → out/demo/",
  synopsis: "[options]",
  spec: DEMO_SPEC,
  run: demoCommand,
};
