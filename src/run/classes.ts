/**
 * The work of `generate` over one class or several: where each class
 * continues from on `--resume` ({@linkcode classStates}), one generation per
 * class (several into `OUT/class_I/`, with the run's descriptor so that
 * `--resume` finds them) and the labelled montage `generated_grid.png` with
 * `metrics.json` ({@linkcode runClasses}). Settings come typed
 * (src/cli/generate.ts parses them); what is printed is the caller's.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { encodePng, type ImageTensor, writeFiles } from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import { montage } from "../figures/mod.ts";
import type { RunControl } from "./batch.ts";
import { bySignal } from "./harness.ts";
import { imageOf, labelledRow } from "./images.ts";
import type { Stopper } from "./progress.ts";
import { readResume } from "./run.ts";
import { type RunOptions, type SavedTypes, usage } from "./settings.ts";
import { saveSnapshot, type Snapshot } from "./snapshot.ts";
import {
  type ClassState,
  classState,
  GENERATE_COLUMNS,
  GENERATE_NULLABLE,
  type GenerateSettings,
  type GenerateSummary,
  runGenerate,
} from "./generate.ts";

/** The run `--resume` names: its snapshot and folder, and the run's `--out`. */
export interface ClassesResume {
  /** The snapshot resumed from, if any. */
  snap: Snapshot | null;
  /** The folder resumed from (`--resume`). */
  dir?: string;
  /** The output folder of this run. */
  out: string;
}

/**
 * Where each class continues from on `--resume` (reads only): a single
 * class from the resumed snapshot, several from their `class_I/` folders
 * (options checked against `saved`); none without a snapshot. Several
 * classes continue only in their own folder (a usage error otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classStates } from "./classes.ts";
 * const none = await classStates({ snap: null, out: "out/g" }, [1, 2], 32, 32);
 * assert.equal(none.size, 0);
 * ```
 */
export async function classStates(
  r: ClassesResume,
  indices: readonly number[],
  size: number,
  canvas: number,
  saved?: SavedTypes,
): Promise<Map<number, ClassState>> {
  const states = new Map<number, ClassState>();
  const { snap, dir } = r;
  if (snap === null || dir === undefined) return states;
  const multi = indices.length > 1;
  if (multi && resolvePath(r.out) !== resolvePath(dir)) {
    throw usage(
      new RangeError(
        `Invalid --out "${r.out}" with --resume "${dir}": a run of several classes continues in its own folder: leave --out out`,
      ),
    );
  }
  for (const i of indices) {
    states.set(
      i,
      multi ? await classState(`${dir}/class_${i}`, i, size, canvas, saved) : {
        kind: "snapshot",
        resume: await readResume(
          dir,
          snap,
          [size, canvas],
          GENERATE_COLUMNS,
          GENERATE_NULLABLE,
        ),
      },
    );
  }
  return states;
}

/**
 * The classifier head of `model` when it is all zeros (untrained
 * torchvision ViTs: every logit 0, no gradient, so generation only blurs),
 * else null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zeroHead } from "./classes.ts";
 * import { loadModel } from "../model/mod.ts";
 * const model = await loadModel(`${Deno.cwd()}/tests/fixtures/tiny_vit`, { weights: "fixture" });
 * assert.equal(zeroHead(model), null);
 * await model.release();
 * ```
 */
export function zeroHead(model: Model): string | null {
  const m = model.manifest;
  const head = ["heads.head.weight", "head.weight", "fc.weight"].find((k) =>
    m.tensors[k]
  );
  return head && model.tensor(head).every((v) => v === 0) ? head : null;
}

/** A generation over classes, its model open and its inputs checked. */
export interface ClassesJob {
  /** The run's folder; with several classes each writes into `out/class_I`. */
  out: string;
  /** The class indices, in order. */
  indices: readonly number[];
  /** Where each class continues from ({@linkcode classStates}); absent: fresh. */
  states: ReadonlyMap<number, ClassState>;
  /** The settings every class shares. */
  settings: GenerateSettings;
  /** How each run is driven. */
  control: RunControl;
  /** The options the run records (each class its own `class`). */
  options: RunOptions;
  /** Model and run description for metrics.json. */
  about: Record<string, unknown>;
  /** The model variant for figure labels; "" for none. */
  tag: string;
}

/** What a generation over classes did. */
export interface ClassesOutcome {
  /** Each class that ran or was done before, in order. */
  summaries: GenerateSummary[];
  /** Whether a class stopped for a signal (Ctrl-C, SIGTERM): the rest did not run. */
  bySignal: boolean;
}

/**
 * Runs `job` into its folder (held by the caller): each class not done
 * before, until one stops for a signal; with several classes, first the
 * run's descriptor (a snapshot listing the class folders) and last the
 * montage and metrics.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runClasses } from "./classes.ts";
 * import { Stopper } from "./progress.ts";
 * import { loadModel } from "../model/mod.ts";
 * const model = await loadModel(`${Deno.cwd()}/tests/fixtures/tiny_vit`, { weights: "fixture" });
 * const out = await Deno.makeTempDir();
 * const r = await runClasses(model, {
 *   out, indices: [0, 2], states: new Map(),
 *   settings: {
 *     constant: 10, steps: 2, jitterAfter: 0, canvasSize: 32, seed: 0,
 *     lr: { start: 0.05, end: 0.05 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 *   },
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   options: {}, about: {}, tag: "",
 * }, new Stopper());
 * await model.release();
 * assert.deepEqual(r.summaries.map((x) => x.index), [0, 2]);
 * assert.ok(Deno.statSync(`${out}/generated_grid.png`).isFile);
 * assert.ok(Deno.statSync(`${out}/class_2/generated.png`).isFile);
 * ```
 */
export async function runClasses(
  model: Model,
  job: ClassesJob,
  stopper: Stopper,
): Promise<ClassesOutcome> {
  const { out, indices, options } = job;
  const m = model.manifest;
  const multi = indices.length > 1;
  if (multi) {
    // The run's descriptor, so --resume finds the classes.
    await saveSnapshot(out, {
      command: "generate",
      step: null,
      options,
      classes: indices.map((i) => ({ index: i, dir: `class_${i}` })),
    });
  }
  const summaries: GenerateSummary[] = [];
  let sigint = false;
  for (const i of indices) {
    const state = job.states.get(i) ?? { kind: "fresh" as const };
    if (state.kind === "done") {
      summaries.push(state.summary);
      continue;
    }
    if (sigint) break;
    const dir = multi ? `${out}/class_${i}` : out;
    await Deno.mkdir(dir, { recursive: true });
    const summary = await runGenerate(model, i, job.settings, {
      out: dir,
      ...job.control,
      stopper,
      options: { ...options, class: String(i) },
      about: job.about,
      label: `class ${i}${m.categories ? ` (${m.categories[i]})` : ""}`,
      tag: job.tag,
    }, state.kind === "snapshot" ? state.resume : undefined);
    summaries.push(summary);
    if (bySignal(summary.stopReason)) sigint = true;
  }
  if (multi) {
    await writeClassGrid(out, m, indices, summaries, {
      command: "generate",
      options,
      ...job.about,
      settings: job.settings,
    });
  }
  return { summaries, bySignal: sigint };
}

/** The montage and metrics.json of a run of several classes. */
async function writeClassGrid(
  out: string,
  m: Manifest,
  indices: readonly number[],
  summaries: readonly GenerateSummary[],
  record: Record<string, unknown>,
): Promise<void> {
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
  const classes = indices.map((i) => {
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
  });
  const metrics = {
    ...record,
    classes,
    interrupted: summaries.length < indices.length ||
      summaries.some((x) => x.interrupted),
    files: ["generated_grid.png", "snapshot/"],
  };
  await writeFiles(out, [
    { name: "generated_grid.png", data: encodePng(montage({ cells: grid })) },
    { name: "metrics.json", data: JSON.stringify(metrics, null, 2) + "\n" },
  ]);
}
