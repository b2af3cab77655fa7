/**
 * The essay's experiments as grid runs, and the planner: which of them the
 * model folders and weight sets at hand allow, their grid command lines, cell
 * counts and estimated CPU time.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { usage } from "../run/settings.ts";
import { fileURLToPath } from "node:url";
import {
  GENERATE_DEFAULTS,
  INVERT_DEFAULTS,
  type Schedule,
} from "../optimize/mod.ts";
import type {
  ConditionCall,
  GridSettings,
  GridSpec,
  RemoveName,
  RowChanges,
  RowSpec,
} from "../grid/mod.ts";
import { rowText, settingArgs } from "../grid/spec.ts";
import {
  type Budget,
  cellSeconds,
  GRID_START_SECONDS,
  loadSeconds,
  STEP_TIMES,
} from "./budgets.ts";

/** What a weight set was trained on, as far as the model folder records it. */
export interface TrainedOn {
  /** The data set, e.g. "ImageNet-1k" or "Fashion-MNIST"; null when not recorded. */
  data: string | null;
  /** Whether its images had colour channels that differ; null when not recorded. */
  colour: boolean | null;
  /** Where this comes from (the manifest's `trained_on`, the training log, the weight set's name). */
  source: string;
}

/** One model folder that is there. */
export interface ModelInfo {
  /** Folder name under the models folder, e.g. `vit_b_32`. */
  name: string;
  /** Its path. */
  dir: string;
  /** Converted weight sets whose files are there, e.g. `["IMAGENET1K_V1"]`. */
  weightSets: string[];
  /** Image side in pixels. */
  imageSize: number;
  /** Patch side in pixels (0 for a ResNet). */
  patchSize: number;
  /** Encoder blocks (ResNet: bottlenecks). */
  layers: number;
  /** Its classes. */
  numClasses: number;
  /** The manifest's architecture: vit, resnet, mixer, ffvit (empty when not recorded). */
  architecture?: string;
  /** Width of a token (the stem's outputs per patch; a ResNet's last stage width). */
  hidden?: number;
  /** Input channels (the manifest's input shape). */
  channels?: number;
  /** What each weight set was trained on. */
  trainedOn?: Readonly<Record<string, TrainedOn>>;
  /** The class names, when the manifest lists them. */
  categories?: readonly string[];
}

/** What the planner may use. */
export interface Environment {
  /** The model folders there, by name. */
  models: ReadonlyMap<string, ModelInfo>;
  /** The models folder (for the commands that would fill it). */
  root: string;
  /** Trained weight sets the user allowed (`--weights`); empty: any converted one. */
  weights: readonly string[];
  /** The target image of every inversion. */
  image: string;
  /**
   * The models folder is the repository's weights/: commands name models by
   * folder name (`--model vit_b_32`), so cached cells do not depend on where
   * the repository is.
   */
  byName?: boolean;
  /** Numbers measured outside vitrep (a training run), by experiment id: the JSON file `essay --values ID=FILE` names. */
  values?: ReadonlyMap<string, string>;
}

/**
 * How commands name model folder `name`: the bare name when the models folder
 * is the repository's weights/, else its path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelArg } from "./experiments.ts";
 * assert.equal(modelArg({ root: "/m", byName: false }, "vit_b_32"), "/m/vit_b_32");
 * assert.equal(modelArg({ root: "/m", byName: true }, "vit_b_32"), "vit_b_32");
 * ```
 */
export function modelArg(
  env: Pick<Environment, "root" | "byName">,
  name: string,
): string {
  return env.byName ? name : join(env.root, name);
}

/**
 * What weight set `name` was trained on: the manifest's
 * `weight_sets.<name>.trained_on` (`{data, colour}`) when a converter
 * recorded it, or its `training` field (`{data, channels: "colour" | "grey"}`,
 * for the set named "trained"); else the model folder's training log (its title names the
 * data; "repeated to 3 channels" means grey images); else torchvision's
 * ImageNet weight names (IMAGENET1K_…: ImageNet-1k, colour); else unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainedOnOf } from "./experiments.ts";
 * const log = "# Fashion-MNIST ViT: training log\n- input 28² padded to 32², repeated to 3 channels";
 * assert.deepEqual(trainedOnOf("trained", undefined, log), { data: "Fashion-MNIST", colour: false, source: "training_log.md" });
 * assert.equal(trainedOnOf("IMAGENET1K_V1", undefined, null).colour, true);
 * assert.equal(trainedOnOf("fixture", undefined, null).colour, null);
 * assert.equal(trainedOnOf("trained", { data: "photo crops", channels: "colour" }, null).colour, true);
 * ```
 */
export function trainedOnOf(
  name: string,
  recorded: unknown,
  log: string | null,
): TrainedOn {
  const r = recorded as
    | { data?: unknown; colour?: unknown; channels?: unknown }
    | undefined;
  if (r && typeof r === "object") {
    return {
      data: typeof r.data === "string" ? r.data : null,
      colour: typeof r.colour === "boolean"
        ? r.colour
        : r.channels === "colour"
        ? true
        : r.channels === "grey" || r.channels === "gray"
        ? false
        : null,
      source: "manifest trained_on",
    };
  }
  if (log !== null) {
    const title = /^#\s*(.+?)(?:\s+(?:ViT|ResNet|model))?\s*:\s*training log/im
      .exec(log);
    return {
      data: title ? title[1].trim() : null,
      colour: /repeated to 3 channels|gr[ae]y(scale)? images/i.test(log)
        ? false
        : null,
      source: "training_log.md",
    };
  }
  if (/^IMAGENET1K/i.test(name)) {
    return { data: "ImageNet-1k", colour: true, source: "weight set name" };
  }
  return { data: null, colour: null, source: "not recorded" };
}

/**
 * The folder of model folders of a repository at `root` (its `weights/`,
 * where the converter writes them): null when `root` is not a local folder
 * (a module run from a URL has none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { repositoryModels } from "./experiments.ts";
 * assert.equal(repositoryModels(new URL("file:///repo/")), "/repo/weights");
 * assert.equal(repositoryModels(new URL("https://example.com/vitrep/")), null);
 * ```
 */
export function repositoryModels(root: URL): string | null {
  const url = new URL("weights/", root);
  if (url.protocol !== "file:") return null;
  return fileURLToPath(url).replace(/[/\\]$/, "");
}

/**
 * Reads every `DIR/<name>/manifest.json` under `root` into a
 * {@linkcode ModelInfo}: the model folders an essay run can use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { discoverModels } from "./experiments.ts";
 * const models = await discoverModels("weights");
 * assert.equal(models.get("vit_b_32")?.patchSize, 32);
 * ```
 */
export async function discoverModels(
  root: string,
): Promise<Map<string, ModelInfo>> {
  const out = new Map<string, ModelInfo>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out;
    throw err;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(root, e.name);
    let m;
    try {
      m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    } catch {
      continue;
    }
    const sets: string[] = [];
    for (const [name, s] of Object.entries(m.weight_sets ?? {})) {
      const file = (s as { file?: string }).file;
      if (file && (await Deno.stat(join(dir, file)).catch(() => null))) {
        sets.push(name);
      }
    }
    const log = await Deno.readTextFile(join(dir, "training_log.md")).catch(
      () => null,
    );
    const trainedOn: Record<string, TrainedOn> = {};
    for (const w of sets) {
      // a converter's per-set record, else the manifest's `training` (what "trained" was trained on)
      const recorded = m.weight_sets[w]?.trained_on ??
        (w === "trained" ? m.training : undefined);
      trainedOn[w] = trainedOnOf(w, recorded, log);
    }
    out.set(e.name, {
      name: e.name,
      dir,
      weightSets: sets,
      imageSize: m.image_size,
      patchSize: m.patch_size ?? 0,
      layers: m.num_layers,
      numClasses: m.num_classes,
      architecture: m.architecture ?? "",
      hidden: m.hidden_dim,
      channels: m.input?.shape?.[1] ?? 3,
      trainedOn,
      ...(Array.isArray(m.categories) ? { categories: m.categories } : {}),
    });
  }
  return out;
}

/** The experiments' identifiers, by name: claims reference them through these constants. */
export const EXP = {
  generation: "generation",
  vitDepth: "vit_depth",
  resnetDepth: "resnet_depth",
  vitStem: "vit_stem",
  resnetStem: "resnet_stem",
  stemTrained: "stem_trained",
  filters: "filters",
  overcompleteStem: "overcomplete_stem",
  swaps: "swaps",
  vitRecovery: "vit_recovery",
  residual: "residual",
  noninvertible: "noninvertible",
  mixerP16: "mixer_p16",
  mixerP16Match: "mixer_p16_match",
  mixerP8: "mixer_p8",
  ffvit: "ffvit",
  stemDepth: "stem_depth",
  l16Swaps: "l16_swaps",
  l16Survey: "l16_survey",
  l16Filters: "l16_filters",
  conditioning: "conditioning",
  trainedAttention: "trained_attention",
  trainedAblation: "trained_ablation",
  residualTraining: "residual_training",
  trainedMixer: "trained_mixer",
  generationConv: "generation_conv",
} as const;

/** An experiment's identifier (the folder under `OUT/cells/`). */
export type ExperimentId = typeof EXP[keyof typeof EXP];

/**
 * The experiments whose numbers a run outside vitrep may give (a training
 * run's values file: {@linkcode Environment.values}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VALUE_EXPERIMENTS } from "./experiments.ts";
 * assert.deepEqual(VALUE_EXPERIMENTS, ["residual_training"]);
 * ```
 */
export const VALUE_EXPERIMENTS: readonly ExperimentId[] = [
  EXP.residualTraining,
];

/**
 * The values files given as `ID=FILE` (each `ID` one of
 * {@linkcode VALUE_EXPERIMENTS}), by experiment, each path resolved and a
 * file (for {@linkcode Environment.values}). A bad one is a usage error
 * naming `option`, where they were given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { valueFiles } from "./experiments.ts";
 * const file = await Deno.makeTempFile();
 * const files = await valueFiles([`residual_training=${file}`], "values");
 * assert.equal(files.get("residual_training"), file);
 * await assert.rejects(valueFiles(["nope=x"], "values"), TypeError);
 * await Deno.remove(file);
 * ```
 */
export async function valueFiles(
  given: readonly string[],
  option: string,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of given) {
    const m = /^([a-z0-9_]+)=(.+)$/.exec(v);
    if (!m || !(VALUE_EXPERIMENTS as readonly string[]).includes(m[1])) {
      throw usage(
        new TypeError(
          `Invalid ${option} "${v}": expected ID=FILE with ID one of ${
            VALUE_EXPERIMENTS.join(", ")
          }`,
        ),
      );
    }
    const file = resolve(m[2]);
    const st = await Deno.stat(file).catch(() => null);
    if (!st?.isFile) {
      throw usage(
        new TypeError(
          `Invalid ${option} "${v}": ${file} is not a file: expected the values.json a training run wrote (e.g. tools/train_residual.py --out DIR)`,
        ),
      );
    }
    out.set(m[1], file);
  }
  return out;
}

/**
 * The rows experiments run, by typed id, with the label the grid shows (a
 * weight draw other than seed 0 adds ", seed N" to it; see
 * {@linkcode rowLabel}). Claims reference rows by these ids.
 */
export const ROWS = {
  intact: "intact",
  noLn: "no layer norms",
  lr4: "lr /4",
  noLnLr4: "no layer norms, lr /4",
  lr10: "lr /10",
  untrained: "untrained",
  trained: "trained",
  trainedLr250: "trained, lr ×250",
  stem: "trained stem",
  stemPos: "trained stem + pos. embedding",
  stemLn1: "trained stem + ln_1 of encoder 1",
  ordinary: "ordinary budget",
  long: "long run",
  noResidual: "no residuals",
  noResidualNoAttention: "no residuals, no attention",
  lnAttention: "LN + attention, no residual",
  lnAttentionResidual: "LN + attention + residual",
  noAttention: "no attention",
  noMlp: "no MLPs",
  untrainedNoMlp: "untrained, no MLPs",
  trainedNoMlp: "trained, no MLPs",
} as const;

/** A row's typed id. */
export type RowId = keyof typeof ROWS;

/**
 * The grid label of row `id` drawn with `seed`: the row's label, with
 * ", seed N" for seeds other than 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowLabel } from "./experiments.ts";
 * assert.equal(rowLabel("noLn", 0), "no layer norms");
 * assert.equal(rowLabel("noLn", 2), "no layer norms, seed 2");
 * ```
 */
export function rowLabel(id: RowId, seed: number): string {
  return seed === 0 ? ROWS[id] : `${ROWS[id]}, seed ${seed}`;
}

/**
 * A grid label's row id and seed (the inverse of {@linkcode rowLabel}); the
 * one place labels are read. A label no experiment defines (a grid of an
 * earlier version) gives `row: null`, which no claim reads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRowLabel } from "./experiments.ts";
 * assert.deepEqual(parseRowLabel("no layer norms, lr /4, seed 1"), { row: "noLnLr4", seed: 1 });
 * assert.deepEqual(parseRowLabel("intact"), { row: "intact", seed: 0 });
 * assert.deepEqual(parseRowLabel("10000 steps"), { row: null, seed: 0 });
 * ```
 */
export function parseRowLabel(
  label: string,
): { row: RowId | null; seed: number } {
  const m = /^(.*), seed (\d+)$/.exec(label);
  const base = m ? m[1] : label;
  const seed = m ? Number(m[2]) : 0;
  const row = (Object.keys(ROWS) as RowId[]).find((k) => ROWS[k] === base);
  return { row: row ?? null, seed };
}

/** A row of a grid: its typed id, weight draw, label ({@linkcode rowLabel}) and what it changes (its `changes.seed` is the draw when not 0). */
export interface GridRow extends RowSpec {
  /** The row's id. */
  id: RowId;
  /** The weight draw (0 is the grid's own). */
  seed: number;
}

/** One grid run: what `grid` is given. */
export interface GridRun {
  /** Model folder name. */
  model: string;
  /** The grid's weight set (default untrained). */
  weights?: string;
  /** Invert grid columns: layer numbers. */
  layers?: readonly number[];
  /** Generate grid columns: class indices. */
  classes?: readonly number[];
  /** The rows. */
  rows: readonly GridRow[];
  /** Steps per cell. */
  steps: number;
  /** Settings of every cell. */
  settings?: GridSettings;
}

/** Where an experiment's trained weights come from. */
export type Origin = "untrained" | "ImageNet" | "small";

/** One planned experiment. */
export interface Planned {
  /** Identifier (the folder under `OUT/cells/`). */
  id: string;
  /** What it shows. */
  title: string;
  /** "run" when everything it needs is there. */
  status: "run" | "not run";
  /** Why not, and the command that would make it runnable. */
  missing?: { reason: string; command: string };
  /** The grid, or null for an experiment that reads weights only (filters). */
  grid: GridRun | null;
  /** Weights a trained experiment reads (model folder and weight set). */
  trained?: { model: string; weights: string };
  /** Another trained model with the same classes that scores generated images (generation). */
  judge?: { model: string; weights: string };
  /** Untrained models only, or which trained ones. */
  origin: Origin;
  /** The weight draws it runs ([0] when it draws no untrained weights). */
  seeds: number[];
  /** Cells of the grid. */
  cells: number;
  /** Estimated CPU seconds. */
  seconds: number;
  /** A value experiment: the vitrep commands that measure its numbers, one per row and weight draw. */
  commands?: ValueCommand[];
  /** The model a value experiment measures (a grid's is the grid's). */
  model?: string;
  /** A value experiment whose numbers a run outside vitrep wrote (a training run): the JSON file given with `essay --values ID=FILE`. */
  valuesFile?: string;
}

/**
 * One command of a value experiment: a vitrep command that writes `file` (JSON) into `OUT/cells/<id>/<dir>/`,
 * whose `field` becomes the value `key` of weight draw `seed`.
 */
export interface ValueCommand {
  /** The weight draw. */
  seed: number;
  /** The value's key, e.g. `kappa:intact`. */
  key: string;
  /** The folder under the experiment's, e.g. `intact-seed0`. */
  dir: string;
  /** The command, without its output folder (the essay adds it). */
  call: ConditionCall;
  /** The JSON file it writes. */
  file: string;
  /** The number read from it. */
  field: string;
  /** Estimated CPU seconds. */
  seconds: number;
}

/** A row without weight draws (seed 0). */
const row = (id: RowId, changes: RowChanges = {}): GridRow => ({
  id,
  seed: 0,
  label: ROWS[id],
  changes,
});

/** Every row drawn with each of `seeds` (the seed a change for N > 0). */
function drawn(rows: readonly GridRow[], seeds: readonly number[]): GridRow[] {
  return seeds.flatMap((s) =>
    rows.map((r) => ({
      ...r,
      seed: s,
      label: rowLabel(r.id, s),
      changes: s === 0 ? r.changes : { ...r.changes, seed: s },
    }))
  );
}

/** Seeds 0…n−1 of a budget. */
const seedsOf = (b: Budget) => Array.from({ length: b.seeds }, (_, i) => i);

/** A number without float noise (6 significant digits). */
const round6 = (v: number) => Number(v.toPrecision(6));

/** A budget's schedule text (`START:END`, or one number: constant) as a schedule. */
function scheduleOf(text: string): Schedule {
  const [start, end = start] = text.split(":").map(Number);
  return { start, end };
}

/** The learning-rate schedule `factor` × the budget's (or the default). */
function lrTimes(b: Budget, factor: number): Schedule {
  const d = b.lr === null ? INVERT_DEFAULTS.lr : scheduleOf(b.lr);
  return { start: round6(d.start * factor), end: round6(d.end * factor) };
}

/** Rows at smaller learning rates: `factor` (e.g. 1/10) of the budget's, when the budget has them. */
function lrRow(
  b: Budget,
  id: RowId,
  factor: number,
  more: RowChanges = {},
  on = b.lrRows,
): GridRow[] {
  return on ? [row(id, { ...more, lr: lrTimes(b, factor) })] : [];
}

/** Parts removed in every layer, or in `layers` (ranges). */
const removing = (
  parts: readonly RemoveName[],
  layers?: readonly (readonly [number, number])[],
): RowChanges => ({ remove: [{ parts, ...(layers ? { layers } : {}) }] });

/** The trained weight set `w`'s tensors of `parts`, swapped in. */
const swapping = (w: string, ...parts: string[]): RowChanges => ({
  swaps: parts.map((part) => ({ part, weights: w })),
});

const INTACT = row("intact");
const NO_LN = row("noLn", removing(["layernorm"]));
/** The learning-rate rows both sides of a ViT/ResNet comparison run: the budget's rate and a tenth of it. */
const matchedRows = (b: Budget) => [
  INTACT,
  ...lrRow(b, "lr10", 1 / 10, {}, b.vitLrRows),
];
/** The mixer and FF-only ViT rows: with and without layer norms, each at the budget's rate and a quarter of it. */
const mixerRows = (b: Budget) => [
  INTACT,
  NO_LN,
  ...lrRow(b, "lr4", 1 / 4),
  ...lrRow(b, "noLnLr4", 1 / 4, removing(["layernorm"])),
];

/** Settings every inversion of a budget gets: its normalization and learning rate. */
function budgetSettings(b: Budget): GridSettings {
  return {
    ...(b.normalize ? {} : { normalize: false }),
    ...(b.lr === null ? {} : { lr: scheduleOf(b.lr) }),
  };
}

/** The converter command that makes a model folder (untrained graphs). */
function convertCommand(
  model: string,
  env: Pick<Environment, "root" | "byName">,
  weights?: string,
): string {
  return `python3 tools/convert.py ${model}${
    weights ? ` --weights ${weights}` : ""
  } --out ${env.byName ? `weights/${model}` : join(env.root, model)}`;
}

/** The allowed trained weight sets of a model folder (ImageNet's first). */
function allowedSets(env: Environment, model: string): string[] {
  const sets =
    env.models.get(model)?.weightSets.filter((w) =>
      env.weights.length === 0 || env.weights.includes(w)
    ) ?? [];
  return sets.sort((a, b) =>
    Number(b === "IMAGENET1K_V1") - Number(a === "IMAGENET1K_V1")
  );
}

/** The trained ViTs the trained-model claims may use, in order: ImageNet ViT-B/32, else the small Fashion-MNIST ViT (a stated stand-in). */
export const TRAINED_VITS: readonly (readonly [string, Origin])[] = [
  ["vit_b_32", "ImageNet"],
  ["fmnist_vit", "small"],
];

/**
 * For the stem and filter claims: ImageNet ViT-B/32, else the small colour ViT
 * whose stem compresses (weights/colour_vit: 8×8 patches, 192 → 64, trained on
 * colour photographs), else the Fashion-MNIST ViT (its claims then come out
 * "not testable").
 */
export const STEM_VITS: readonly (readonly [string, Origin])[] = [
  ["vit_b_32", "ImageNet"],
  ["colour_vit", "small"],
  ["fmnist_vit", "small"],
];

/**
 * The trained ViT the trained-model claims use: the first of `order` with a
 * weight set allowed (default {@linkcode TRAINED_VITS}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainedVit } from "./experiments.ts";
 * const env = { models: new Map(), root: "w", weights: [], image: "x.png" };
 * assert.equal(trainedVit(env), null);
 * ```
 */
export function trainedVit(
  env: Environment,
  order: readonly (readonly [string, Origin])[] = TRAINED_VITS,
): { model: string; weights: string; origin: Origin } | null {
  for (const [model, origin] of order) {
    const sets = allowedSets(env, model);
    if (sets.length > 0) return { model, weights: sets[0], origin };
  }
  return null;
}

/**
 * A trained model other than `model` with the same classes (the same class
 * names where both manifests list them), to score the images `model`
 * generated: null when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeFor } from "./experiments.ts";
 * const m = (name: string) => ({ name, dir: name, weightSets: ["trained"], imageSize: 32, patchSize: 4, layers: 4, numClasses: 10 });
 * const env = { models: new Map([["a", m("a")], ["b", m("b")]]), root: "w", weights: [], image: "x.png" };
 * assert.deepEqual(judgeFor(env, "a"), { model: "b", weights: "trained" });
 * ```
 */
export function judgeFor(
  env: Environment,
  model: string,
): { model: string; weights: string } | null {
  const g = env.models.get(model);
  if (!g) return null;
  const same = (a?: readonly string[], b?: readonly string[]) =>
    !a || !b || (a.length === b.length && a.every((x, i) => x === b[i]));
  for (const m of env.models.values()) {
    const sets = allowedSets(env, m.name);
    if (
      m.name !== model && sets.length > 0 && m.numClasses === g.numClasses &&
      same(m.categories, g.categories)
    ) {
      return { model: m.name, weights: sets[0] };
    }
  }
  return null;
}

const TRAINED_HINT = (env: Pick<Environment, "root" | "byName">) =>
  `${
    convertCommand("vit_b_32", env, "IMAGENET1K_V1")
  } (ImageNet; needs a network), or the small Fashion-MNIST ViT: /usr/bin/python3 tools/train_fmnist.py --out out/fmnist, then convert out/fmnist/vit.pth as its training log says into ${
    env.byName ? "weights/fmnist_vit" : join(env.root, "fmnist_vit")
  }`;

interface Made {
  grid: GridRun | null;
  trained?: Planned["trained"];
  judge?: Planned["judge"];
  origin: Origin;
  /** Whether it draws untrained weights (then it runs the budget's seeds). */
  drawn: boolean;
  /** A value experiment's commands and model (see {@linkcode Planned}). */
  commands?: ValueCommand[];
  model?: string;
  valuesFile?: string;
}

interface Draft {
  id: ExperimentId;
  title: string;
  /** A grid for the budget, or why it cannot be made. */
  make: (
    b: Budget,
    env: Environment,
  ) => Made | { reason: string; command: string };
}

/** An untrained-model experiment on `model` (not run, with the converter command, when the folder is missing); its rows are drawn with the budget's seeds. */
function untrained(
  model: string | ((b: Budget) => string),
  grid: (b: Budget, m: ModelInfo, env: Environment) => Omit<GridRun, "model">,
): Draft["make"] {
  return (b, env) => {
    const name = typeof model === "string" ? model : model(b);
    const m = env.models.get(name);
    if (!m) {
      return {
        reason: `the model folder ${join(env.root, name)} is missing`,
        command: convertCommand(name, env),
      };
    }
    const g = grid(b, m, env);
    return {
      grid: { model: name, ...g, rows: drawn(g.rows, seedsOf(b)) },
      origin: "untrained",
      drawn: true,
    };
  };
}

/** A trained-ViT experiment (not run, with the commands that give trained weights, when none are there); `draws`: its rows rest on untrained weights too and are drawn with the budget's seeds. */
function trained(
  grid: (
    b: Budget,
    m: ModelInfo,
    weights: string,
  ) => Omit<GridRun, "model"> | null,
  draws = false,
  order: readonly (readonly [string, Origin])[] = TRAINED_VITS,
): Draft["make"] {
  return (b, env) => {
    const t = trainedVit(env, order);
    if (!t && order === TRAINED_CONVNETS) {
      return {
        reason:
          "no trained convnet weights are converted (ImageNet ResNet50, or the small Fashion-MNIST ResNet)",
        command: `${
          convertCommand("resnet50", env, "IMAGENET1K_V1")
        } (ImageNet; needs a network), or the Fashion-MNIST ResNet: /usr/bin/python3 tools/train_fmnist.py --out out/fmnist, then convert out/fmnist/resnet.pth as its training log says`,
      };
    }
    if (!t) {
      return {
        reason: "no trained ViT weights are converted",
        command: TRAINED_HINT(env),
      };
    }
    const g = grid(b, env.models.get(t.model)!, t.weights);
    return {
      grid: g
        ? {
          model: t.model,
          ...g,
          rows: draws ? drawn(g.rows, seedsOf(b)) : g.rows,
        }
        : null,
      trained: { model: t.model, weights: t.weights },
      origin: t.origin,
      drawn: draws && g !== null,
    };
  };
}

/** The ImageNet weight set of `model` the user allows, if converted. */
function imagenetSet(env: Environment, model: string): string | undefined {
  return allowedSets(env, model).find((w) => /IMAGENET|in1k|in21k/i.test(w));
}

/**
 * An experiment that needs ImageNet-trained weights of `model` (ViT-L/16,
 * the mixers): not run, with the converter and essay commands, until they
 * are converted; `grid` null: it reads the weights only (filters).
 */
function imagenetOnly(
  id: string,
  model: string,
  what: string,
  grid:
    | ((b: Budget, m: ModelInfo, weights: string) => Omit<GridRun, "model">)
    | null,
  weightsName = "IMAGENET1K_V1",
): Draft["make"] {
  return (b, env) => {
    const w = imagenetSet(env, model);
    if (!w || !env.models.has(model)) {
      return {
        reason:
          `it needs ${what} (ImageNet-trained ${model} weights are not converted here: they need a download)`,
        command: `${
          convertCommand(model, env, weightsName)
        }, then deno run -A mod.ts essay --weights ${weightsName} --only ${id}`,
      };
    }
    if (grid === null) {
      return {
        grid: null,
        trained: { model, weights: w },
        origin: "ImageNet",
        drawn: false,
      };
    }
    const g = grid(b, env.models.get(model)!, w);
    return {
      grid: { model, ...g },
      trained: { model, weights: w },
      origin: "ImageNet",
      drawn: false,
    };
  };
}

/**
 * The trained ViTs of the attention claims (the essay's ViT-L/16): ImageNet
 * ViT-L/16, else ImageNet ViT-B/32, else the small colour ViT (a stated
 * stand-in: 32 px, 8 px patches, 4 encoders).
 */
export const ATTENTION_VITS: readonly (readonly [string, Origin])[] = [
  ["vit_l_16", "ImageNet"],
  ["vit_b_32", "ImageNet"],
  ["colour_vit", "small"],
];

/** The trained convnets whose generated images the ViT's are compared with: ImageNet ResNet50, else the small Fashion-MNIST ResNet. */
export const TRAINED_CONVNETS: readonly (readonly [string, Origin])[] = [
  ["resnet50", "ImageNet"],
  ["fmnist_resnet", "small"],
];

/** Grid options of a generation: steps, jitter, a canvas at the model's ratio (600 px for 224). */
function generationGrid(
  b: Budget,
  m: ModelInfo,
  w: string,
): Omit<GridRun, "model"> {
  return {
    weights: w,
    classes: m.numClasses >= 1000 ? [251, 281, 11] : [1, 7, 9],
    // a small model's logits move little at the ImageNet learning rate: it gets a row at 250×
    rows: m.imageSize < 224
      ? [row("trained"), row("trainedLr250", { lr: { start: 5, end: 0.5 } })]
      : [row("trained")],
    steps: b.generateSteps,
    settings: {
      jitterAfter: b.jitterAfter,
      canvas: Math.round(m.imageSize * GENERATE_DEFAULTS.canvasSize / 224),
    },
  };
}

/**
 * Settings of a long run: about 500 trace rows (its convergence plot)
 * and, from 1000 steps on, a snapshot every tenth of the run, so a stopped
 * run continues where it was.
 */
const traced = (steps: number): GridSettings => ({
  traceEvery: Math.max(1, Math.round(steps / 500)),
  ...(steps >= 1000 ? { saveEvery: Math.round(steps / 10) } : {}),
});

/** The trained stem swapped into an untrained ViT-B/32 (the essay's recovery run), when ImageNet weights are there. */
function recoveryStem(env: Environment): RowChanges {
  const w = allowedSets(env, "vit_b_32")[0];
  return w ? swapping(w, "conv_proj") : {};
}

/** Every experiment of the essay, in the order of its sections. */
const DRAFTS: readonly Draft[] = [
  {
    id: EXP.generation,
    title:
      "input generation for three classes with a trained model, scored by another trained model",
    make: (b, env) => {
      const made = trained(generationGrid)(b, env);
      if ("reason" in made) return made;
      const judge = judgeFor(env, made.trained!.model);
      return judge ? { ...made, judge } : made;
    },
  },
  {
    id: EXP.generationConv,
    title:
      "input generation for the same classes with a trained convnet, to compare the sharpness of generated images",
    make: trained(generationGrid, false, TRAINED_CONVNETS),
  },
  {
    id: EXP.vitDepth,
    title:
      "untrained ViT-B/32: representation against depth, with and without layer norms",
    make: untrained("vit_b_32", (b) => ({
      layers: b.vitLayers,
      rows: [INTACT, NO_LN, ...lrRow(b, "lr10", 1 / 10, {}, b.vitLrRows)],
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.resnetDepth,
    title:
      "untrained ResNet50: representation against depth (first, middle and last bottleneck), at ViT-B/32's steps and learning-rate rows",
    make: untrained("resnet50", (b) => ({
      // the deep bottlenecks cost most at ViT-B/32's steps: first, (middle,) last
      layers: b.resnetLayers,
      rows: matchedRows(b),
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.vitStem,
    title: "input processing (layer 0) against encoder 1: ViT-B/32",
    make: untrained("vit_b_32", (b) => ({
      layers: [0, 1],
      rows: matchedRows(b),
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.resnetStem,
    title:
      "untrained ResNet50's stem (conv, batch norm, ReLU, max-pool), at ViT-B/32's steps and rows",
    make: untrained("resnet50", (b) => ({
      layers: [0],
      rows: matchedRows(b),
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.stemTrained,
    title: "input processing and encoder 1, untrained against trained",
    make: trained(
      (b, _m, w) => ({
        layers: [0, 1],
        rows: [row("untrained", { weights: "untrained" }), row("trained")],
        weights: w,
        steps: b.vitSteps,
        settings: budgetSettings(b),
      }),
      true,
      STEM_VITS,
    ),
  },
  {
    id: EXP.filters,
    title: "the trained patch-embedding filters: wavelets or no pattern",
    make: trained(() => null, false, STEM_VITS),
  },
  {
    id: EXP.l16Filters,
    title:
      "ViT-L/16's trained patch-embedding filters (overcomplete: 768 → 1024)",
    make: imagenetOnly(
      EXP.l16Filters,
      "vit_l_16",
      "ImageNet-trained ViT-L/16 filters",
      null,
    ),
  },
  {
    id: EXP.overcompleteStem,
    title:
      "an overcomplete untrained stem (ViT-L/16) against ViT-B/32's, at the same steps and rows",
    make: untrained((b) => b.overcomplete, (b) => ({
      layers: [0],
      rows: matchedRows(b),
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.swaps,
    title:
      "trained parts in an untrained ViT with a trained stem: position embedding, first ln_1",
    make: trained((b, _m, w) => ({
      layers: [1],
      rows: [
        row("stem", swapping(w, "conv_proj")),
        row("stemPos", swapping(w, "conv_proj", "pos_embedding")),
        row("stemLn1", swapping(w, "conv_proj", "encoder.layers.0.ln_1")),
      ],
      steps: b.vitSteps,
      settings: budgetSettings(b),
    }), true),
  },
  {
    id: EXP.stemDepth,
    title:
      "an untrained ViT with the trained stem swapped in: encoders 1 and 4 at the budget's steps",
    make: trained(
      (b, m, w) => ({
        layers: [1, Math.min(4, m.layers)],
        rows: [row("stem", swapping(w, "conv_proj"))],
        steps: b.vitSteps,
        settings: budgetSettings(b),
      }),
      true,
      STEM_VITS,
    ),
  },
  {
    id: EXP.l16Swaps,
    title:
      "ViT-L/16 with its trained stem, with and without its trained first layer norm",
    make: imagenetOnly(EXP.l16Swaps, "vit_l_16", "ImageNet-trained ViT-L/16", (
      b,
      _m,
      w,
    ) => ({
      layers: [1],
      rows: [
        row("stem", swapping(w, "conv_proj")),
        row("stemLn1", swapping(w, "conv_proj", "encoder.layers.0.ln_1")),
      ],
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.vitRecovery,
    title:
      "untrained ViT-B/32 encoders 1 and 12 at the ordinary budget, and run long",
    make: (b, env) =>
      b.recoverySteps === null
        ? {
          reason:
            `the ${b.name} budget leaves out the long run (the essay's 105,000 steps on encoder 12: about 17 CPU-hours at 2 cores)`,
          command:
            "deno run -A mod.ts essay --budget essay --only vit_recovery --out out/essay-recovery (or add --plan --emit slurm to run it as a cluster array)",
        }
        : untrained("vit_b_32", (b, _m, env) => ({
          layers: [1, 12],
          rows: [
            row("ordinary", recoveryStem(env)),
            row("long", { ...recoveryStem(env), steps: b.recoverySteps! }),
          ],
          steps: b.vitSteps,
          settings: { ...budgetSettings(b), ...traced(b.recoverySteps!) },
        }))(b, env),
  },
  {
    id: EXP.residual,
    title:
      "untrained ViT-B/32 encoder 4 without residuals in encoders 1-4, with and without attention",
    make: untrained("vit_b_32", (b) => ({
      layers: [4],
      rows: [
        INTACT,
        row("noResidual", removing(["residual"], [[1, 4]])),
        row(
          "noResidualNoAttention",
          removing(["residual", "attention"], [[1, 4]]),
        ),
      ],
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.noninvertible,
    title:
      "one encoder of LN + attention without residual, run long; with the residual as control",
    make: untrained("vit_b_32", (b) => ({
      layers: [1],
      rows: [
        row("lnAttention", removing(["residual", "mlp", "ln2"], [[1, 1]])),
        row("lnAttentionResidual", removing(["mlp", "ln2"], [[1, 1]])),
      ],
      steps: b.longSteps,
      settings: { ...budgetSettings(b), ...traced(b.longSteps) },
    })),
  },
  {
    id: EXP.l16Survey,
    title:
      "the ViT-L/16 ablation survey: every encoder without attention, without layer norms or without MLPs, at encoders 12 and 24",
    make: imagenetOnly(EXP.l16Survey, "vit_l_16", "ImageNet-trained ViT-L/16", (
      b,
      _m,
      w,
    ) => ({
      weights: w,
      layers: [1, 12, 24],
      rows: [
        INTACT,
        row("noAttention", removing(["attention"])),
        NO_LN,
        row("noMlp", removing(["mlp"])),
      ],
      steps: b.vitSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.conditioning,
    title:
      "the conditioning of untrained ViT-B/32's encoder 1: its Jacobian's singular values with and without attention (Lanczos on the VJP graphs)",
    make: (b, env) => {
      if (!env.models.has("vit_b_32")) {
        return {
          reason: `the model folder ${join(env.root, "vit_b_32")} is missing`,
          command: convertCommand("vit_b_32", env),
        };
      }
      const rows: readonly (readonly [RowId, RowChanges])[] = [
        ["intact", {}],
        ["noAttention", removing(["attention"], [[1, 1]])],
        ["noMlp", removing(["mlp"], [[1, 1]])],
        ["lnAttention", removing(["residual", "mlp", "ln2"], [[1, 1]])],
      ];
      const t = STEP_TIMES.vit_b_32;
      const commands = seedsOf(b).flatMap((seed) =>
        rows.map(([id, remove]): ValueCommand => ({
          seed,
          key: `kappa:${id}`,
          dir: `${id}-seed${seed}`,
          call: {
            command: "condition",
            model: modelArg(env, "vit_b_32"),
            layer: 1,
            ...remove,
            seed,
            image: env.image,
            iterations: b.conditionIterations,
          },
          file: "condition.json",
          field: "kappa_lower",
          // per iteration two forward passes and one VJP through encoder 1
          seconds: GRID_START_SECONDS + t.load +
            b.conditionIterations * 3 * (t.base + t.perLayer) / 1000,
        }))
      );
      return {
        grid: null,
        origin: "untrained",
        drawn: true,
        model: "vit_b_32",
        commands,
      };
    },
  },
  {
    id: EXP.trainedAttention,
    title:
      "attention without MLPs, trained against untrained: encoder 1 run long",
    make: trained(
      (b, _m, w) => ({
        weights: w,
        layers: [1],
        rows: [
          row("untrainedNoMlp", {
            weights: "untrained",
            ...removing(["mlp"]),
          }),
          row("trainedNoMlp", removing(["mlp"])),
        ],
        steps: b.longSteps,
        settings: { ...budgetSettings(b), ...traced(b.longSteps) },
      }),
      true,
      ATTENTION_VITS,
    ),
  },
  {
    id: EXP.trainedAblation,
    title:
      "a trained ViT without attention or without MLPs in every encoder: encoder 4",
    make: trained(
      (b, m, w) => ({
        weights: w,
        layers: [Math.min(4, m.layers)],
        rows: [
          row("noAttention", removing(["attention"])),
          row("noMlp", removing(["mlp"])),
        ],
        steps: b.vitSteps,
        settings: budgetSettings(b),
      }),
      false,
      ATTENTION_VITS,
    ),
  },
  {
    id: EXP.residualTraining,
    title:
      "training ViTs and MLP-mixers without residual connections (CIFAR-10)",
    make: (_b, env) => {
      const file = env.values?.get(EXP.residualTraining);
      if (file) {
        return { grid: null, origin: "small", drawn: false, valuesFile: file };
      }
      return {
        reason:
          "it needs training runs (the essay: CIFAR-10, a download); the essay reports a training outcome, which no inversion measures",
        command:
          "/usr/bin/python3 tools/train_residual.py --data cifar10 --out out/residual (trains a small ViT and an MLP-mixer with and without residual connections; --data fmnist uses Debian's Fashion-MNIST), then deno run -A mod.ts essay --values residual_training=out/residual/values.json",
      };
    },
  },
  {
    id: EXP.mixerP16,
    title:
      "untrained MLP-Mixer, patch 16, hidden 1024: depth, with and without layer norms",
    make: untrained("mixer_p16_d1024", (b) => ({
      layers: [1, 4, 8],
      rows: mixerRows(b),
      steps: b.archSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.mixerP16Match,
    title:
      "untrained MLP-Mixer, patch 16: the patch comparison's blocks and steps",
    make: untrained("mixer_p16_d1024", (b) => ({
      layers: b.patchLayers,
      rows: [INTACT, ...lrRow(b, "lr4", 1 / 4)],
      steps: b.patchSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.mixerP8,
    title:
      "untrained MLP-Mixer, patch 8, hidden 1024: the patch comparison's blocks and steps",
    make: untrained("mixer_p8_d1024", (b) => ({
      layers: b.patchLayers,
      rows: [INTACT, ...lrRow(b, "lr4", 1 / 4)],
      steps: b.patchSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.ffvit,
    title:
      "untrained FF-only ViT (Melas-Kyriazi's linear_base): depth, with and without layer norms",
    make: untrained("linear_base", (b) => ({
      layers: b.ffvitLayers,
      rows: mixerRows(b),
      steps: b.archSteps,
      settings: budgetSettings(b),
    })),
  },
  {
    id: EXP.trainedMixer,
    title: "an ImageNet-trained MLP-Mixer (B/16): representation against depth",
    make: imagenetOnly(
      EXP.trainedMixer,
      "mixer_b16_224",
      "ImageNet-trained MLP-Mixer weights",
      (b, _m, w) => ({
        weights: w,
        layers: [1, 4, 8, 12],
        rows: [INTACT],
        steps: b.vitSteps,
        settings: budgetSettings(b),
      }),
      "jx_mixer_b16_224-76587d61.pth",
    ),
  },
];

/** Every experiment's identifier, in report order. */
export const EXPERIMENT_IDS: readonly string[] = DRAFTS.map((d) => d.id);

/**
 * One experiment's grid as `grid` is given it (see src/grid/spec.ts),
 * writing to `out`: the model as commands name it, the target image with
 * layers, the grid's own seed 0, quiet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gridSpec } from "./experiments.ts";
 * const g = { model: "vit_b_32", layers: [1, 4], rows: [{ id: "intact", seed: 0, label: "intact", changes: {} }] as const, steps: 10 };
 * const spec = gridSpec(g, { root: "weights", image: "cat.png" }, "out/x");
 * assert.equal(spec.model, "weights/vit_b_32");
 * assert.deepEqual(spec.columns, { layers: [1, 4], image: "cat.png" });
 * ```
 */
export function gridSpec(
  g: GridRun,
  env: Pick<Environment, "root" | "byName" | "image">,
  out: string,
): GridSpec {
  return {
    model: modelArg(env, g.model),
    ...(g.weights ? { weights: g.weights } : {}),
    columns: g.layers
      ? { layers: g.layers, image: env.image }
      : { classes: g.classes! },
    steps: g.steps,
    seed: 0,
    rows: g.rows,
    settings: g.settings ?? {},
    quiet: true,
    out,
  };
}

/**
 * An experiment's grid as `claims.json` records it: each row's changes as
 * its `--variant` OPTIONS text (`options`, with `steps` when the row sets
 * them) and the grid's settings as options (`extra`), both written by
 * src/grid/spec.ts; every other field as it is, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gridRecord } from "./experiments.ts";
 * import { rowText } from "../grid/spec.ts";
 * const g = { model: "m", layers: [1], rows: [{ id: "noLn", seed: 1, label: "no layer norms, seed 1", changes: { remove: [{ parts: ["layernorm"] }], seed: 1 } }] as const, steps: 9, settings: {} };
 * const r = gridRecord(g) as { rows: { options: string }[]; extra: string[] };
 * assert.equal(r.rows[0].options, rowText(g.rows[0].changes));
 * assert.deepEqual(r.extra, []);
 * ```
 */
export function gridRecord(g: GridRun): Record<string, unknown> {
  const row = (r: GridRow) => ({
    id: r.id,
    seed: r.seed,
    label: r.label,
    options: rowText(r.changes),
    ...(r.changes.steps === undefined ? {} : { steps: r.changes.steps }),
  });
  return Object.fromEntries(
    Object.entries(g).map(([k, v]) =>
      k === "rows"
        ? [k, g.rows.map(row)]
        : k === "settings"
        ? ["extra", settingArgs(g.settings ?? {})]
        : [k, v]
    ),
  );
}

/** Estimated CPU seconds of a grid: its model's load per weight draw, then every cell. */
function gridSeconds(g: GridRun): number {
  const cols = g.layers ?? g.classes!.map(() => "logits" as const);
  const draws = new Set(g.rows.map((r) => r.seed)).size;
  let s = GRID_START_SECONDS + draws * loadSeconds(g.model);
  for (const r of g.rows) {
    for (const c of cols) {
      s += cellSeconds(g.model, c, r.changes.steps ?? g.steps);
    }
  }
  return s;
}

/**
 * Plans every experiment (or those in `only`) for a budget: runnable ones
 * with their grid (every row of an experiment on untrained weights drawn
 * with each of the budget's seeds), cells and estimated CPU seconds; the
 * others "not run" with the reason and the command that would make them
 * runnable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUDGETS } from "./budgets.ts";
 * import { plan } from "./experiments.ts";
 * const p = plan(BUDGETS.smoke, { models: new Map(), root: "weights", weights: [], image: "cat.png" });
 * assert.ok(p.every((e) => e.status === "not run" && e.missing));
 * ```
 */
export function plan(
  b: Budget,
  env: Environment,
  only: readonly string[] = [],
): Planned[] {
  for (const id of only) {
    if (!EXPERIMENT_IDS.includes(id)) {
      throw new RangeError(
        `Invalid experiment "${id}": expected one of ${
          EXPERIMENT_IDS.join(", ")
        }`,
      );
    }
  }
  return DRAFTS.map((d): Planned => {
    const none = { grid: null, origin: "untrained" as const, seeds: [0] };
    if (only.length > 0 && !only.includes(d.id)) {
      return {
        id: d.id,
        title: d.title,
        status: "not run",
        missing: {
          reason: "not selected (--only)",
          command: `add ${d.id} to --only`,
        },
        ...none,
        cells: 0,
        seconds: 0,
      };
    }
    const r = d.make(b, env);
    if ("reason" in r) {
      return {
        id: d.id,
        title: d.title,
        status: "not run",
        missing: r,
        ...none,
        cells: 0,
        seconds: 0,
      };
    }
    const g = r.grid;
    return {
      id: d.id,
      title: d.title,
      status: "run",
      grid: g,
      ...(r.trained ? { trained: r.trained } : {}),
      ...(r.judge ? { judge: r.judge } : {}),
      origin: r.origin,
      seeds: r.drawn ? seedsOf(b) : [0],
      cells: g ? g.rows.length * (g.layers ?? g.classes!).length : 0,
      seconds: g
        ? gridSeconds(g) + (r.judge ? judgeSeconds(g) : 0)
        : 1 + (r.commands ?? []).reduce((a, c) => a + c.seconds, 0),
      ...(r.commands ? { commands: r.commands } : {}),
      ...(r.model ? { model: r.model } : {}),
      ...(r.valuesFile ? { valuesFile: r.valuesFile } : {}),
    };
  });
}

/** Estimated seconds of scoring a generation grid's images with another model (a process per image). */
const judgeSeconds = (g: GridRun) =>
  g.rows.length * (g.classes?.length ?? 0) * GRID_START_SECONDS;
