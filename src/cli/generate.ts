/**
 * Internal to the command line (src/cli.ts): the `generate` command (input
 * generation for one class or a grid of classes), on one shared path,
 * {@linkcode runGenerate}, that `grid` uses too.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { resolveClass } from "../model/mod.ts";
import { type ImageTensor, writePng } from "../io/mod.ts";
import type { Model } from "../model/mod.ts";
import { decodeNpy } from "../io/mod.ts";
import { linePlot, montage } from "../figures/mod.ts";
import {
  DivergedError,
  generate,
  GENERATE_DEFAULTS,
  type GenerateResult,
  randomStart,
} from "../optimize/mod.ts";
import type { Schedule } from "../optimize/mod.ts";
import {
  asUsage,
  backendOpt,
  checkKernel,
  type Command,
  type Context,
  controlOpts,
  defaults,
  intOpt,
  kernelOpt,
  MODEL_OPTS,
  modelKey,
  modelSource,
  numOpt,
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
  modelAbout,
  openModel,
} from "./model.ts";
import {
  checkFinite,
  cleanEmpty,
  type Control,
  exists,
  EXIT_INTERRUPTED,
  imageOf,
  labelledRow,
  mergeResume,
  progress,
  readCsv,
  readSnapshotImage,
  readSnapshotJson,
  type Row,
  type Snapshot,
  SNAPSHOT_FORMAT,
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

/** Options of `generate`. */
export const GENERATE_SPEC: Spec = {
  ...MODEL_OPTS,
  class: {
    type: "string",
    multiple: true,
    arg: "C[,C…]",
    defaultText: "required",
    help:
      "class index or name (unique part of one); several (comma-separated or repeated) give a grid",
    saved: true,
  },
  constant: {
    type: "string",
    default: String(GENERATE_DEFAULTS.constant),
    arg: "C",
    help: "the constant C of the objective |C − logit|",
    saved: true,
    identity: true,
  },
  steps: {
    type: "string",
    default: String(GENERATE_DEFAULTS.steps),
    arg: "N",
    help: "gradient steps",
    saved: true,
  },
  "jitter-after": {
    type: "string",
    default: String(GENERATE_DEFAULTS.jitterAfter),
    arg: "N",
    help:
      "steps at model size before the image is enlarged and updated in random crops",
    saved: true,
    identity: true,
  },
  canvas: {
    type: "string",
    default: String(GENERATE_DEFAULTS.canvasSize),
    arg: "PX",
    help: "side of the enlarged canvas the crops come from",
    saved: true,
    identity: true,
  },
  ...SCHEDULE_OPTS(GENERATE_DEFAULTS),
  ...VARIANT_OPTS,
  ...RUN_OPTS("out/generate"),
};

/** Typed settings of one generation. */
export interface GenerateSettings {
  constant: number;
  steps: number;
  jitterAfter: number;
  canvasSize: number;
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
  normalize: boolean;
  seed: number;
}

/** Final figures of a generate run, with its image. */
export interface GenerateSummary {
  index: number;
  name: string;
  logit: number;
  probability: number;
  steps: number;
  interrupted: boolean;
  stopReason: StopReason;
  image: Float32Array;
}

const GENERATE_COLUMNS = [
  "step",
  "loss",
  "logit",
  "probability",
  "lr",
  "sigma",
  "crop_y",
  "crop_x",
];

/** Typed settings of a generate run from raw options (usage errors for bad values; `size` checks --canvas). */
export function generateSettings(raw: Raw, size?: number): GenerateSettings {
  const canvasSize = intOpt(raw, "canvas", 1);
  if (size !== undefined && canvasSize < size) {
    throw usage(
      new RangeError(
        `Invalid --canvas "${
          str(raw, "canvas")
        }": expected at least the model's image size ${size}`,
      ),
    );
  }
  return {
    constant: numOpt(raw, "constant"),
    steps: intOpt(raw, "steps", 1),
    jitterAfter: intOpt(raw, "jitter-after", 0),
    canvasSize,
    lr: schedOpt(raw, "lr"),
    sigma: schedOpt(raw, "sigma"),
    kernelSize: kernelOpt(raw),
    normalize: raw.normalize !== false,
    seed: intOpt(raw, "seed", 0),
  };
}

/** `--class` split into queries (comma-separated or repeated). */
export function classQueries(raw: Raw): string[] {
  const v = raw.class;
  const list = (Array.isArray(v) ? v : v === undefined ? [] : [String(v)])
    .flatMap((s) => s.split(",")).map((s) => s.trim());
  if (list.length === 0 || list.some((s) => s === "")) {
    throw usage(
      new TypeError(
        `Invalid --class "${
          v === undefined ? "" : str(raw, "class")
        }": expected a class index or name, e.g. --class 207 or --class dalmatian`,
      ),
    );
  }
  return list;
}

/** Where a generation continues from. */
export interface GenerateResume {
  image: Float32Array;
  step: number;
  rows: Row[];
  from: string;
}

/** Runs one generation into `ctl.out` and writes all its files: the path shared by generate and grid. */
export async function runGenerate(
  model: Model,
  index: number,
  s: GenerateSettings,
  ctl: Control,
  resume?: GenerateResume,
): Promise<GenerateSummary> {
  const name = model.manifest.categories?.[index] ?? `class ${index}`;
  const size = model.manifest.image_size;
  let prev = resume ? resume.image : randomStart(3 * size * size, s.seed);
  const rows: Row[] = resume
    ? resume.rows.filter((r) => (r.step as number) < resume.step)
    : [];
  let reason = null as StopReason;
  const bar = progress(ctl.label, ctl.quiet);
  const started = performance.now();
  const traces = () => toCsv(GENERATE_COLUMNS, thin(rows, ctl.traceEvery));
  let result: GenerateResult;
  try {
    result = await generate(model, index, {
      constant: s.constant,
      steps: s.steps,
      jitterAfter: s.jitterAfter,
      canvasSize: s.canvasSize,
      lr: s.lr,
      sigma: s.sigma,
      kernelSize: s.kernelSize,
      normalize: s.normalize,
      seed: s.seed,
      resume: resume ? { image: resume.image, step: resume.step } : undefined,
      onStep: async (info) => {
        checkFinite(info.step, info.image, prev);
        prev = info.image;
        rows.push({
          step: info.step,
          loss: info.loss,
          logit: info.logit,
          probability: info.probability,
          lr: info.lr,
          sigma: info.sigma,
          crop_y: info.crop?.[0] ?? null,
          crop_x: info.crop?.[1] ?? null,
        });
        bar.update(
          info.step,
          info.steps,
          `logit ${info.logit.toPrecision(4)} p ${
            info.probability.toPrecision(3)
          }`,
        );
        const next = info.step + 1;
        if (ctl.saveEvery > 0 && next % ctl.saveEvery === 0 && next < s.steps) {
          await writeSnapshot(
            ctl.out,
            "generate",
            info.image,
            next,
            ctl.options,
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
        "generate",
        err.lastImage,
        err.step,
        ctl.options,
      );
      await writeAtomic(`${ctl.out}/traces.csv`, traces());
      console.error(
        `vitrep: kept the last finite image (before step ${err.step}) in ${ctl.out}/snapshot.npy; continue with --resume ${ctl.out} and a lower --lr`,
      );
    }
    throw err;
  }
  bar.done();
  const interrupted = reason !== null;
  if (interrupted) {
    await writeSnapshot(
      ctl.out,
      "generate",
      result.canvas ?? result.image,
      result.final.steps,
      ctl.options,
    );
  }
  const written = thin(rows, ctl.traceEvery);
  await writePng(`${ctl.out}/generated.png`, imageOf(result.image));
  await writeNpy(`${ctl.out}/generated.npy`, result.image);
  if (result.canvas) {
    await writePng(`${ctl.out}/canvas.png`, imageOf(result.canvas));
  }
  await writeAtomic(`${ctl.out}/traces.csv`, toCsv(GENERATE_COLUMNS, written));
  const steps = written.map((r) => r.step as number);
  await writePng(
    `${ctl.out}/progress.png`,
    linePlot({
      title: `Class ${index} (${name})${ctl.tag ? `, ${ctl.tag}` : ""}`,
      xLabel: "step",
      yLabel: "logit",
      y2Label: "softmax probability",
      series: [
        { label: "logit", x: steps, y: written.map((r) => r.logit as number) },
        {
          label: "probability",
          x: steps,
          y: written.map((r) => r.probability as number),
          axis: "right",
        },
      ],
      y2Range: [0, 1],
    }),
  );
  const summary: GenerateSummary = {
    index,
    name,
    logit: result.final.logit,
    probability: result.final.probability,
    steps: result.final.steps,
    interrupted,
    stopReason: reason,
    image: result.image,
  };
  await writeJson(`${ctl.out}/metrics.json`, {
    command: "generate",
    options: ctl.options,
    ...ctl.about,
    class: { index, name },
    settings: { ...s, index, canvasSize: result.canvasSize },
    final: {
      logit: result.final.logit,
      probability: result.final.probability,
      steps: result.final.steps,
    },
    trace: {
      step: steps,
      logit: written.map((r) => r.logit),
      probability: written.map((r) => r.probability),
    },
    interrupted,
    stopReason: reason,
    resumedFrom: resume ? { dir: resume.from, step: resume.step } : null,
    seconds: (performance.now() - started) / 1000,
    files: [
      "generated.png",
      "generated.npy",
      ...(result.canvas ? ["canvas.png"] : []),
      "traces.csv",
      "progress.png",
      ...(interrupted ? ["snapshot.npy", "snapshot.json"] : []),
    ],
  });
  return summary;
}

/** The options that fix a generate run's result, for --resume checks. */
export function canonicalGenerate(raw: Raw): Record<string, unknown> {
  return {
    model: modelKey(str(raw, "model")),
    weights: str(raw, "weights"),
    seed: Number(str(raw, "seed")),
    normalize: raw.normalize !== false,
    constant: Number(str(raw, "constant")),
    "jitter-after": Number(str(raw, "jitter-after")),
    canvas: Number(str(raw, "canvas")),
    ...canonicalVariant(raw),
  };
}

/** What a class folder holds when resuming: done, a snapshot, or nothing. */
export async function classState(
  dir: string,
  index: number,
  size: number,
  canvas: number,
): Promise<ClassState> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
    if (m.interrupted === false && m.class?.index === index) {
      const img = decodeNpy(await Deno.readFile(`${dir}/generated.npy`));
      return {
        kind: "done",
        summary: {
          index,
          name: m.class.name,
          logit: m.final.logit,
          probability: m.final.probability,
          steps: m.final.steps,
          interrupted: false,
          stopReason: null,
          image: img.data,
        },
      };
    }
  } catch {
    // not finished
  }
  if (await exists(`${dir}/snapshot.json`)) {
    const snap = await readSnapshotJson(dir, "generate");
    return {
      kind: "snapshot",
      resume: {
        image: await readSnapshotImage(dir, [size, canvas]),
        step: snap.step,
        rows: await readCsv(`${dir}/traces.csv`),
        from: resolvePath(dir),
      },
    };
  }
  return { kind: "fresh" };
}

/** See {@linkcode classState}. */
export type ClassState =
  | { kind: "done"; summary: GenerateSummary }
  | { kind: "snapshot"; resume: GenerateResume }
  | { kind: "fresh" };

async function generateCommand(given: Raw, ctx: Context): Promise<number> {
  let raw: Raw = { ...defaults(GENERATE_SPEC), ...given };
  let snap: Snapshot | null = null;
  const resumeDir = given.resume as string | undefined;
  if (resumeDir !== undefined) {
    snap = await readSnapshotJson(resumeDir, "generate");
    raw = mergeResume(
      GENERATE_SPEC,
      given,
      snap,
      resumeDir,
      canonicalGenerate,
    );
  }
  const queries = classQueries(raw);
  const pre = generateSettings(raw);
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
  const source = modelSource(str(raw, "model"));
  const { model, variant } = await openModel(raw, source);
  try {
    const m = model.manifest;
    const s = generateSettings(raw, m.image_size);
    checkKernel(s.kernelSize, m.image_size);
    const indices = [
      ...new Set(
        queries.map((q) =>
          asUsage(() => resolveClass(q, m.categories, m.num_classes))
        ),
      ),
    ];
    if (snap && given.class !== undefined) {
      const before = String(snap.options.class ?? "");
      if (indices.join(",") !== before) {
        throw usage(
          new RangeError(
            `Invalid --class "${
              str(given, "class")
            }" with --resume: the snapshot in "${resumeDir}" is of class ${before}; leave --class out to continue that run`,
          ),
        );
      }
    }
    const head = ["heads.head.weight", "head.weight", "fc.weight"].find((k) =>
      m.tensors[k]
    );
    if (head && !raw.quiet && model.tensor(head).every((v) => v === 0)) {
      console.error(
        `warning: ${head} of ${model.weights} is all zeros (torchvision initializes ViT heads to zero): every logit is 0 and has no gradient, so generation only blurs the noise; use trained weights, or --swap heads=WEIGHTS`,
      );
    }
    const multi = indices.length > 1;
    if (
      multi && resumeDir !== undefined &&
      resolvePath(out) !== resolvePath(resumeDir)
    ) {
      throw usage(
        new RangeError(
          `Invalid --out "${out}" with --resume "${resumeDir}": a run of several classes continues in its own folder: leave --out out`,
        ),
      );
    }
    const dirOf = (i: number) => multi ? `${out}/class_${i}` : out;
    // Resume state per class (reads only).
    const states = new Map<number, Awaited<ReturnType<typeof classState>>>();
    if (resumeDir !== undefined) {
      for (const i of indices) {
        const dir = multi ? `${resumeDir}/class_${i}` : resumeDir;
        states.set(
          i,
          multi
            ? await classState(dir, i, m.image_size, s.canvasSize)
            : snap && snap.step !== undefined
            ? {
              kind: "snapshot",
              resume: {
                image: await readSnapshotImage(dir, [
                  m.image_size,
                  s.canvasSize,
                ]),
                step: snap.step,
                rows: await readCsv(`${dir}/traces.csv`),
                from: resolvePath(dir),
              },
            }
            : { kind: "fresh" },
        );
      }
    }
    await model.prepare("logits", { gradient: true });
    // Inputs are valid: from here on, files.
    const existed = await exists(out);
    await Deno.mkdir(out, { recursive: true });
    const baseOptions = {
      ...savedOptions(GENERATE_SPEC, raw),
      class: indices.join(","),
      model: modelKey(str(raw, "model")),
    };
    const about = modelAbout(model, source, s.normalize, variant);
    if (multi) {
      // The run's descriptor, so --resume finds the classes.
      await writeJson(`${out}/snapshot.json`, {
        format: SNAPSHOT_FORMAT,
        command: "generate",
        step: null,
        options: baseOptions,
        classes: indices.map((i) => ({ index: i, dir: `class_${i}` })),
      });
    }
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    const summaries: GenerateSummary[] = [];
    let sigint = false;
    try {
      for (const i of indices) {
        const state = states.get(i) ?? { kind: "fresh" as const };
        if (state.kind === "done") {
          summaries.push(state.summary);
          continue;
        }
        if (sigint) break;
        const dir = dirOf(i);
        await Deno.mkdir(dir, { recursive: true });
        const summary = await runGenerate(model, i, s, {
          out: dir,
          ...ctlOpts,
          stopper,
          options: { ...baseOptions, class: String(i) },
          about,
          label: `class ${i}${m.categories ? ` (${m.categories[i]})` : ""}`,
          tag: variant.tag,
        }, state.kind === "snapshot" ? state.resume : undefined);
        summaries.push(summary);
        if (summary.stopReason === "SIGINT") sigint = true;
      }
    } catch (err) {
      if (!(err instanceof DivergedError)) await cleanEmpty(out, existed);
      throw err;
    } finally {
      stopper.remove();
    }
    if (multi) {
      const byIndex = new Map(summaries.map((x) => [x.index, x]));
      const cols = indices.length <= 4
        ? indices.length
        : Math.ceil(Math.sqrt(indices.length));
      const cells = indices.map((i) => {
        const x = byIndex.get(i);
        const label = m.categories ? `${i}: ${m.categories[i]}` : `${i}`;
        return labelledRow([x ? imageOf(x.image) : null], [label]);
      });
      const grid: (ImageTensor | null)[][] = [];
      for (let r = 0; r < cells.length; r += cols) {
        grid.push(cells.slice(r, r + cols));
      }
      await writePng(`${out}/generated_grid.png`, montage({ cells: grid }));
      await writeJson(`${out}/metrics.json`, {
        command: "generate",
        options: baseOptions,
        ...about,
        settings: s,
        classes: indices.map((i) => {
          const x = byIndex.get(i);
          return {
            index: i,
            name: m.categories?.[i] ?? null,
            dir: `class_${i}`,
            final: x
              ? { logit: x.logit, probability: x.probability, steps: x.steps }
              : null,
            interrupted: x ? x.interrupted : true,
          };
        }),
        interrupted: summaries.length < indices.length ||
          summaries.some((x) => x.interrupted),
        files: ["generated_grid.png", "snapshot.json"],
      });
    }
    console.log("| class | name | logit | probability | steps |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const x of summaries) {
      console.log(
        `| ${x.index} | ${x.name} | ${x.logit.toFixed(3)} | ${
          x.probability.toFixed(4)
        } | ${x.steps}${x.interrupted ? " (stopped)" : ""} |`,
      );
    }
    const stopped = summaries.length < indices.length ||
      summaries.some((x) => x.interrupted);
    console.log(
      stopped
        ? `\nstopped; wrote ${out}/ with snapshots: continue with --resume ${out}`
        : `\nwrote ${out}/ (${
          multi
            ? "generated_grid.png, metrics.json, class_*/"
            : "generated.png, canvas.png, progress.png, traces.csv, metrics.json"
        })`,
    );
    return sigint ? EXIT_INTERRUPTED : 0;
  } finally {
    await model.release();
  }
}

/** `generate`: input generation. */
export const GENERATE_COMMAND: Command = {
  about: "input generation: an image driving a class logit towards a constant",
  synopsis: "--class C [options]",
  spec: GENERATE_SPEC,
  run: generateCommand,
};
