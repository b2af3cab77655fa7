/**
 * Internal to the command line (src/cli.ts): the `invert` command (the
 * essay's layer representation) and `demo` (invert for a few layers), on one
 * shared path, {@linkcode runInvert}, that `grid` uses too.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { type ImageTensor, writePng } from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import { linePlot } from "../figures/mod.ts";
import {
  DivergedError,
  invert,
  INVERT_DEFAULTS,
  type InvertResult,
  psnr,
  randomStart,
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
  kernelOpt,
  MODEL_OPTS,
  modelKey,
  modelSource,
  type Opt,
  type Raw,
  RUN_OPTS,
  savedOptions,
  schedOpt,
  SCHEDULE_OPTS,
  type Spec,
  str,
  usage,
  VARIANT_OPTS,
} from "./options.ts";
import {
  canonicalVariant,
  checkVariantOpts,
  layerArg,
  modelAbout,
  openModel,
  weightsText,
} from "./model.ts";
import {
  checkFinite,
  cleanEmpty,
  type Control,
  exists,
  EXIT_INTERRUPTED,
  imageOf,
  labelledRow,
  loadTarget,
  mergeResume,
  progress,
  readCsv,
  readSnapshotImage,
  readSnapshotJson,
  type Row,
  type Snapshot,
  Stopper,
  type StopReason,
  stopReason,
  thin,
  toCsv,
  writeAtomic,
  writeJson,
  writeNpy,
  writeSnapshot,
} from "./io.ts";

/** Options of `invert`. */
export const INVERT_SPEC: Spec = {
  ...MODEL_OPTS,
  image: {
    type: "string",
    default: DEFAULT_IMAGE_TEXT,
    arg: "PATH",
    help:
      "target image (PNG or JPEG), resized and centre-cropped to the model's size",
    saved: true,
    identity: true,
  },
  layer: {
    type: "string",
    default: String(INVERT_DEFAULTS.layer),
    arg: "L",
    help:
      "layer to represent: 0 = input processing, 1..N = encoder block (a ResNet: bottleneck), or a layer name: stem, layer2.3, or a ResNet stage layer1…layer4 (its last bottleneck)",
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
    if (["only-layer", "save-every", "stop-at", "resume"].includes(k)) {
      return [];
    }
    if (k === "layer") {
      return [["layers", {
        type: "string",
        default: "1,12",
        arg: "L,L",
        help: "layers to represent, one run each, files in DIR/layerL/",
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
export interface InvertResume {
  image: Float32Array;
  step: number;
  rows: Row[];
  criterionStep: number | null;
  from: string;
}

/** Final figures of an invert run, as in metrics.json. */
export interface InvertSummary {
  layer: number;
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

const INVERT_COLUMNS = [
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
  return {
    layer,
    onlyLayer,
    loss,
    steps: intOpt(raw, "steps", 1),
    lr: schedOpt(raw, "lr"),
    sigma: schedOpt(raw, "sigma"),
    kernelSize: kernelOpt(raw),
    normalize: raw.normalize !== false,
    seed: intOpt(raw, "seed", 0),
  };
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
  const n = 3 * size * size;
  const rows: Row[] = resume
    ? resume.rows.filter((r) => (r.step as number) < resume.step)
    : [];
  let prev = resume ? resume.image : randomStart(n, s.seed);
  let criterionStep = resume?.criterionStep ?? null;
  let reason = null as StopReason;
  const bar = progress(ctl.label, ctl.quiet);
  const started = performance.now();
  const traces = () => toCsv(INVERT_COLUMNS, thin(rows, ctl.traceEvery));
  let result: InvertResult;
  try {
    result = await invert(model, target.data, {
      layer: s.layer,
      blocks: s.onlyLayer ? [s.layer] : undefined,
      steps: s.steps,
      lr: s.lr,
      sigma: s.sigma,
      kernelSize: s.kernelSize,
      loss: s.loss,
      normalize: s.normalize,
      seed: s.seed,
      resume: resume ? { image: resume.image, step: resume.step } : undefined,
      onStep: async (info) => {
        checkFinite(info.step, info.image, prev);
        const baseline = info.noiseBaseline;
        const below = info.embeddingDistance < baseline;
        rows.push({
          step: info.step,
          loss: info.loss,
          embedding_distance: info.embeddingDistance,
          input_distance: info.inputDistance,
          noise_baseline: baseline,
          below_noise_baseline: below ? 1 : 0,
          psnr: psnr(prev, target.data),
          ssim: ssim(prev, target.data, size),
          lr: info.lr,
          sigma: info.sigma,
        });
        if (below && criterionStep === null) criterionStep = info.step;
        prev = info.image;
        bar.update(
          info.step,
          info.steps,
          `emb ${info.embeddingDistance.toPrecision(4)} (noise ${
            baseline.toPrecision(4)
          })`,
        );
        const next = info.step + 1;
        if (ctl.saveEvery > 0 && next % ctl.saveEvery === 0 && next < s.steps) {
          await writeSnapshot(
            ctl.out,
            "invert",
            info.image,
            next,
            ctl.options,
            { criterionStep },
          );
          await writeAtomic(`${ctl.out}/traces.csv`, traces());
        }
        reason = stopReason(ctl, next, s.steps);
        return reason === null;
      },
    });
  } catch (err) {
    bar.done();
    if (err instanceof DivergedError) {
      await writeSnapshot(
        ctl.out,
        "invert",
        err.lastImage,
        err.step,
        ctl.options,
        { criterionStep },
      );
      await writeAtomic(`${ctl.out}/traces.csv`, traces());
      console.error(
        `vitrep: kept the last finite image (before step ${err.step}) in ${ctl.out}/snapshot.npy; continue with --resume ${ctl.out} and a lower --lr`,
      );
    }
    throw err;
  }
  bar.done();
  const rep = imageOf(result.image);
  const interrupted = reason !== null;
  if (interrupted) {
    await writeSnapshot(
      ctl.out,
      "invert",
      result.image,
      result.final.steps,
      ctl.options,
      { criterionStep: resume?.criterionStep ?? result.criterionStep },
    );
  }
  const written = thin(rows, ctl.traceEvery);
  const finalCriterion = resume?.criterionStep ?? result.criterionStep;
  const summary: InvertSummary = {
    layer: s.layer,
    steps: result.final.steps,
    embeddingDistance: result.final.embeddingDistance,
    inputDistance: result.final.inputDistance,
    noiseBaseline: result.noiseBaseline,
    criterionMet: finalCriterion !== null,
    criterionStep: finalCriterion,
    psnr: result.final.psnr,
    ssim: ssim(result.image, target.data, size),
    interrupted,
    stopReason: reason,
  };
  await writePng(`${ctl.out}/representation.png`, rep);
  await writeNpy(`${ctl.out}/representation.npy`, result.image);
  await writePng(`${ctl.out}/target.png`, target);
  const what = s.onlyLayer ? `encoder ${s.layer} alone` : `layer ${s.layer}`;
  const tag = ctl.tag ? `, ${ctl.tag}` : "";
  await writePng(
    `${ctl.out}/side_by_side.png`,
    labelledRow([target, rep], [
      "target",
      `representation (${what}${tag}, ${result.final.steps} steps)`,
    ]),
  );
  await writeAtomic(`${ctl.out}/traces.csv`, toCsv(INVERT_COLUMNS, written));
  const steps = written.map((r) => r.step as number);
  await writePng(
    `${ctl.out}/convergence.png`,
    linePlot({
      title: `Representation of ${what}${tag}`,
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
      hlines: [{
        label: "noise baseline",
        y: result.noiseBaseline,
        dashed: true,
      }],
    }),
  );
  await writeJson(`${ctl.out}/metrics.json`, {
    command: "invert",
    options: ctl.options,
    ...ctl.about,
    settings: {
      ...s,
      blocks: s.onlyLayer
        ? [s.layer]
        : Array.from({ length: s.layer }, (_, i) => i + 1),
    },
    final: summary,
    interrupted,
    stopReason: reason,
    resumedFrom: resume ? { dir: resume.from, step: resume.step } : null,
    seconds: (performance.now() - started) / 1000,
    files: [
      "representation.png",
      "representation.npy",
      "target.png",
      "side_by_side.png",
      "traces.csv",
      "convergence.png",
      ...(interrupted ? ["snapshot.npy", "snapshot.json"] : []),
    ],
  });
  return { summary, image: result.image };
}

/** The essay's table of figures, one row per layer (a first column `lead` when given). */
export function figuresTable(
  rows: readonly InvertSummary[],
  lead?: { title: string; cells: readonly string[] },
): string {
  const f = (v: number, d: number) => Number.isFinite(v) ? v.toFixed(d) : "∞";
  const pre = (i: number) => lead ? `| ${lead.cells[i]} ` : "";
  return [
    `${
      lead ? `| ${lead.title} ` : ""
    }| layer | ‖O(a)−O(a_g)‖₂ | noise baseline ‖O(a)−O(a′)‖₂ | criterion met | ‖a−a_g‖₂ | PSNR dB | SSIM |`,
    `${lead ? "| --- " : ""}| --- | --- | --- | --- | --- | --- | --- |`,
    ...rows.map((r, i) =>
      `${pre(i)}| ${r.layer} | ${f(r.embeddingDistance, 3)} | ${
        f(r.noiseBaseline, 3)
      } | ${r.criterionMet ? `yes (step ${r.criterionStep})` : "no"} | ${
        f(r.inputDistance, 2)
      } | ${f(r.psnr, 2)} | ${f(r.ssim, 3)} |`
    ),
  ].join("\n");
}

/** The options that fix an invert run's result, for --resume checks. */
export function canonicalInvert(raw: Raw): Record<string, unknown> {
  return {
    model: modelKey(str(raw, "model")),
    weights: str(raw, "weights"),
    seed: Number(str(raw, "seed")),
    normalize: raw.normalize !== false,
    image: defaultImage(raw),
    layer: Number(str(raw, "layer")),
    "only-layer": raw["only-layer"] === true,
    loss: str(raw, "loss"),
    ...canonicalVariant(raw),
  };
}

async function invertCommand(given: Raw, ctx: Context): Promise<number> {
  let raw: Raw = { ...defaults(INVERT_SPEC), ...given };
  let snap: Snapshot | null = null;
  const resumeDir = given.resume as string | undefined;
  if (resumeDir !== undefined) {
    snap = await readSnapshotJson(resumeDir, "invert");
    raw = mergeResume(INVERT_SPEC, given, snap, resumeDir, canonicalInvert);
  }
  // Everything that needs no model first.
  const pre = invertSettings(raw);
  const ctlOpts = controlOpts(raw);
  checkVariantOpts(raw);
  backendOpt(raw);
  if (raw.threads !== undefined) intOpt(raw, "threads", 1);
  const out = given.out === undefined && resumeDir !== undefined
    ? resumeDir
    : str(raw, "out");
  if (snap && snap.step > pre.steps) {
    throw usage(
      new RangeError(
        `Invalid --steps "${pre.steps}" with --resume: the snapshot is at step ${snap.step}: expected at least that many steps`,
      ),
    );
  }
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const { model, variant } = await openModel(raw, source);
  try {
    const s = invertSettings(raw, model.manifest);
    const size = model.manifest.image_size;
    checkKernel(s.kernelSize, size);
    const target = await loadTarget(imagePath, size);
    let resume: InvertResume | undefined;
    if (snap && resumeDir !== undefined) {
      resume = {
        image: await readSnapshotImage(resumeDir, [size]),
        step: snap.step,
        rows: await readCsv(`${resumeDir}/traces.csv`),
        criterionStep: snap.criterionStep ?? null,
        from: resolvePath(resumeDir),
      };
    }
    await model.prepare(s.layer, {
      gradient: true,
      blocks: s.onlyLayer ? [s.layer] : undefined,
    });
    // Inputs are valid: from here on, files.
    const existed = await exists(out);
    await Deno.mkdir(out, { recursive: true });
    const options = {
      ...savedOptions(INVERT_SPEC, raw),
      image: imagePath,
      model: modelKey(str(raw, "model")),
    };
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    let summary: InvertSummary;
    try {
      ({ summary } = await runInvert(model, target, s, {
        out,
        ...ctlOpts,
        stopper,
        options,
        about: modelAbout(model, source, s.normalize, variant),
        label: `invert ${s.onlyLayer ? "encoder" : "layer"} ${s.layer}`,
        tag: variant.tag,
      }, resume));
    } catch (err) {
      if (!(err instanceof DivergedError)) await cleanEmpty(out, existed);
      throw err;
    } finally {
      stopper.remove();
    }
    console.log(figuresTable([summary]));
    console.log(
      summary.interrupted
        ? `\nstopped at step ${summary.steps} (${summary.stopReason}); wrote ${out}/ with a snapshot: continue with --resume ${out}`
        : `\nwrote ${out}/ (representation.png, target.png, side_by_side.png, convergence.png, traces.csv, representation.npy, metrics.json)`,
    );
    return summary.stopReason === "SIGINT" ? EXIT_INTERRUPTED : 0;
  } finally {
    await model.release();
  }
}

async function demoCommand(given: Raw, ctx: Context): Promise<number> {
  const raw: Raw = { ...defaults(DEMO_SPEC), ...given };
  const layerText = str(raw, "layers");
  const layers = layerText.split(",").map((t) => t.trim());
  for (const t of layers) layerArg(t, "layers", undefined, layerText);
  const base = invertSettings({ ...raw, layer: "0" });
  const ctlOpts = controlOpts({ ...raw, "save-every": "0" });
  checkVariantOpts(raw);
  backendOpt(raw);
  if (raw.threads !== undefined) intOpt(raw, "threads", 1);
  const out = str(raw, "out");
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const { model, variant } = await openModel(raw, source);
  try {
    const m = model.manifest;
    const settings = layers.map((l) => invertSettings({ ...raw, layer: l }, m));
    checkKernel(base.kernelSize, m.image_size);
    const target = await loadTarget(imagePath, m.image_size);
    for (const s of settings) await model.prepare(s.layer, { gradient: true });
    await Deno.mkdir(out, { recursive: true });
    await writePng(`${out}/target.png`, target);
    console.error(
      `vitrep demo: ${m.name}, weights ${model.weights}, on ${model.backend}, ${base.steps} steps per layer`,
    );
    const about = modelAbout(model, source, base.normalize, variant);
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    const rows: InvertSummary[] = [];
    const images: ImageTensor[] = [];
    try {
      for (const s of settings) {
        if (stopper.requested) break;
        const dir = `${out}/layer${s.layer}`;
        await Deno.mkdir(dir, { recursive: true });
        const r = await runInvert(model, target, s, {
          out: dir,
          ...ctlOpts,
          stopper,
          options: {
            ...savedOptions(DEMO_SPEC, raw),
            layer: String(s.layer),
            image: imagePath,
          },
          about,
          label: `layer ${s.layer}`,
          tag: variant.tag,
        });
        rows.push(r.summary);
        images.push(imageOf(r.image));
      }
    } finally {
      stopper.remove();
    }
    await writePng(
      `${out}/demo.png`,
      labelledRow(
        [target, ...images],
        ["target", ...rows.map((r) => `layer ${r.layer}`)],
        `${m.name}, ${weightsText(raw)}${
          variant.tag ? ` (${variant.tag})` : ""
        }: representations after ${base.steps} steps`,
      ),
    );
    await writeJson(`${out}/metrics.json`, {
      command: "demo",
      options: savedOptions(DEMO_SPEC, raw),
      ...about,
      steps: base.steps,
      layers: rows,
      interrupted: stopper.requested,
    });
    console.log(figuresTable(rows));
    console.log(
      `\nwrote ${out}/ (demo.png, target.png, metrics.json, ${
        rows.map((r) => `layer${r.layer}/`).join(", ")
      })`,
    );
    return stopper.requested ? EXIT_INTERRUPTED : 0;
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
