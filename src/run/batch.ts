/**
 * The batch form of `invert` (several images, several seeds): its runs and
 * their folder names ({@linkcode batchRuns}), and the work once the model is
 * open and the folder held ({@linkcode runInvertRuns}: one batch through the
 * chain where the model's graphs have a batch axis, else one run at a time;
 * then batch.md and metrics.json). Settings come typed (src/cli/invert.ts
 * parses them); what is printed is the caller's.
 *
 * @module
 */
import { type ImageTensor, writeFiles } from "../io/mod.ts";
import type { Model } from "../model/mod.ts";
import type { Control } from "./harness.ts";
import type { Stopper } from "./progress.ts";
import { type RunOptions, usage } from "./settings.ts";
import {
  figuresTable,
  type InvertSettings,
  type InvertSummary,
  layerLabel,
  runInvert,
  runInvertBatch,
} from "./invert.ts";

/** At most this many runs (images × seeds) in one batch. */
export const MAX_BATCH = 64;

/** How a run is driven, apart from where it writes and what it records. */
export type RunControl = Pick<
  Control,
  "quiet" | "saveEvery" | "stopAt" | "traceEvery"
>;

/** One run of a batch: its image (an index), its seed (null: the settings' own) and its folder name. */
export interface BatchRun {
  /** Index of its image. */
  image: number;
  /** Its seed; null keeps the settings' seed. */
  seed: number | null;
  /** Its folder under the batch's, and its name in the tables. */
  name: string;
}

/**
 * `--seeds`: "0-7", "0,3,9" or both; at most {@linkcode MAX_BATCH} (checked
 * before expanding); a usage error naming the option otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSeeds } from "./batch.ts";
 * assert.deepEqual(parseSeeds("0-2,7"), [0, 1, 2, 7]);
 * assert.throws(() => parseSeeds("3-1"), /Invalid --seeds "3-1": the range 3-1 runs backwards/);
 * assert.throws(() => parseSeeds("1,1"), /seed 1 is given twice/);
 * ```
 */
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

/**
 * A batch's runs, every image under every seed (at most
 * {@linkcode MAX_BATCH}, else a usage error), and their folder names: the
 * image's file name (numbered where two are alike), and -seedS per seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchRuns } from "./batch.ts";
 * assert.deepEqual(batchRuns(["a/cat.png", "b/cat.png"], null).map((r) => r.name), ["1-cat", "2-cat"]);
 * assert.deepEqual(batchRuns(["cat.png"], [0, 3]).map((r) => r.name), ["seed0", "seed3"]);
 * assert.deepEqual(batchRuns(["x.png", "y.jpg"], [1]).map((r) => r.name), ["x-seed1", "y-seed1"]);
 * ```
 */
export function batchRuns(
  images: readonly string[],
  seeds: readonly number[] | null,
): BatchRun[] {
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

/** A batch of inversions, its model open and its inputs checked. */
export interface InvertRunsJob {
  /** The batch's folder; each run writes into `out/NAME`. */
  out: string;
  /** The runs ({@linkcode batchRuns}). */
  runs: readonly BatchRun[];
  /** The image paths, by {@linkcode BatchRun.image}. */
  images: readonly string[];
  /** The loaded targets, by {@linkcode BatchRun.image}. */
  targets: readonly ImageTensor[];
  /** The settings every run shares (its seed aside). */
  settings: InvertSettings;
  /** How each run is driven (only the first of one batch reports progress). */
  control: RunControl;
  /** The options each run records (its own image and seed added). */
  options: RunOptions;
  /** What metrics.json records first: e.g. the command and the batch's options. */
  head: Record<string, unknown>;
  /** Model and run description for metrics.json. */
  about: Record<string, unknown>;
  /** The model variant for figure labels; "" for none. */
  tag: string;
  /** Where the line saying how the runs go is sent (e.g. stderr). */
  log?: (line: string) => void;
}

/** What a batch did: its finished (or stopped) runs, their table, whether it was asked to stop. */
export interface InvertRunsOutcome {
  /** Each run that ran: its name, image, seed and summary. */
  runs: (InvertSummary & { name: string; image: string; seed: number })[];
  /** batch.md's table. */
  table: string;
  /** Whether a stop was asked for (Ctrl-C, SIGTERM). */
  stopped: boolean;
}

/** The options one run of a batch records: the batch's, with its own image and seed. */
function runOptions(
  saved: RunOptions,
  image: string,
  given: number | null,
  seed: number,
): RunOptions {
  return {
    ...saved,
    image,
    ...(given === null ? {} : { "start-seed": String(seed) }),
  };
}

/**
 * Runs the batch `job` into its folder (the folder held by the caller): one
 * batch through the chain where the model's graphs take one (`batch_axis`),
 * else one run at a time until a stop is asked; then writes batch.md and
 * metrics.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchRuns, runInvertRuns } from "./batch.ts";
 * import { loadTarget } from "./images.ts";
 * import { Stopper } from "./progress.ts";
 * import { loadModel } from "../model/mod.ts";
 * const source = `${Deno.cwd()}/tests/fixtures/tiny_vit`;
 * const model = await loadModel(source, { weights: "fixture" });
 * const image = `${Deno.cwd()}/assets/chelsea.png`;
 * const out = await Deno.makeTempDir();
 * const r = await runInvertRuns(model, {
 *   out, runs: batchRuns([image], [0, 1]), images: [image],
 *   targets: [await loadTarget(image, model.manifest.image_size)],
 *   settings: {
 *     layer: 1, onlyLayer: false, loss: "l2", steps: 2, seed: 0,
 *     lr: { start: 0.1, end: 0.1 }, sigma: { start: 0, end: 0 }, kernelSize: 1, normalize: true,
 *   },
 *   control: { quiet: true, saveEvery: 0, stopAt: null, traceEvery: 1 },
 *   options: {}, head: { command: "invert" }, about: {}, tag: "",
 * }, new Stopper());
 * await model.release();
 * assert.deepEqual(r.runs.map((x) => [x.name, x.seed, x.steps]), [["seed0", 0, 2], ["seed1", 1, 2]]);
 * assert.ok(Deno.statSync(`${out}/seed1/representation.png`).isFile);
 * assert.match(Deno.readTextFileSync(`${out}/batch.md`), /^\| run \| layer/);
 * ```
 */
export async function runInvertRuns(
  model: Model,
  job: InvertRunsJob,
  stopper: Stopper,
): Promise<InvertRunsOutcome> {
  const { out, runs, settings: base } = job;
  const batched = model.manifest.batch_axis === true;
  const what = layerLabel(model.manifest, base.layer, base.onlyLayer);
  const ctls: Control[] = [];
  const settings: InvertSettings[] = [];
  for (const [k, r] of runs.entries()) {
    const dir = `${out}/${r.name}`;
    await Deno.mkdir(dir, { recursive: true });
    const seed = r.seed ?? base.seed;
    settings.push({ ...base, seed });
    ctls.push({
      out: dir,
      ...job.control,
      quiet: job.control.quiet || (batched && k > 0),
      stopper,
      options: runOptions(job.options, job.images[r.image], r.seed, seed),
      about: job.about,
      label: batched
        ? `invert ${what}, batch of ${runs.length}`
        : `invert ${r.name}`,
      tag: job.tag,
    });
  }
  const picked = runs.map((r) => job.targets[r.image]);
  const how = batched
    ? "as one batch"
    : `one at a time (${model.manifest.name}'s graphs take one image)`;
  const names = runs.map((r) => r.name).join(", ");
  job.log?.(`vitrep invert: ${runs.length} runs ${how}: ${names}`);
  const results = batched
    ? await runInvertBatch(model, picked, settings, ctls)
    : [];
  for (const [k, ctl] of ctls.entries()) {
    if (batched || stopper.requested) break;
    results.push(await runInvert(model, picked[k], settings[k], ctl));
  }
  const done = runs.slice(0, results.length).map((r, k) => ({
    name: r.name,
    image: job.images[r.image],
    seed: settings[k].seed,
    ...results[k].summary,
  }));
  const record = { ...job.head, ...job.about, batch: batched };
  const table = await writeBatch(out, done, record, stopper.requested);
  return { runs: done, table, stopped: stopper.requested };
}

/** Writes a batch's batch.md and metrics.json (its runs' summaries); returns the table. */
async function writeBatch(
  out: string,
  runs: readonly (InvertSummary & { name: string })[],
  head: Record<string, unknown>,
  stopped: boolean,
): Promise<string> {
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
  return table;
}
