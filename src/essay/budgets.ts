/**
 * The essay command's budgets (steps per experiment) and its CPU-time model:
 * measured step times per model, so a plan can say what a budget costs before
 * anything runs.
 *
 * @module
 */

/** A budget's name. */
export type BudgetName = "smoke" | "standard" | "essay";

/** Every budget, cheapest first. */
export const BUDGET_NAMES: readonly BudgetName[] = [
  "smoke",
  "standard",
  "essay",
];

/** How much a budget runs. */
export interface Budget {
  /** The budget's name. */
  name: BudgetName;
  /** One line on what it is for. */
  about: string;
  /** Steps per ViT-B/32 cell (the essay's n = 1500); the matched comparisons (ResNet50 against ViT-B/32, the stems) run both sides at this. */
  vitSteps: number;
  /** Steps per cell of the other architectures' depth grids (mixer, FF-only ViT). */
  archSteps: number;
  /** Steps of the matched mixer patch-8 against patch-16 comparison (both sides; patch 8 has 4× the tokens and needs more steps to converge). */
  patchSteps: number;
  /** Whether the mixer and FF-only ViT grids add rows at a quarter of the learning rate (a fixed budget favours the rate that suits a model). */
  lrRows: boolean;
  /** Whether both sides of the ViT-B/32 and ResNet50 comparisons add a row at a tenth of the learning rate. */
  vitLrRows: boolean;
  /** ViT-B/32's encoders in the depth experiment. */
  vitLayers: readonly number[];
  /** ResNet50's bottlenecks in the depth experiment (first, …, last). */
  resnetLayers: readonly number[];
  /** The FF-only ViT's blocks in its depth experiment. */
  ffvitLayers: readonly number[];
  /** The mixer blocks of the patch-8 against patch-16 comparison. */
  patchLayers: readonly number[];
  /** Steps of the one-encoder non-invertibility run. */
  longSteps: number;
  /** Lanczos iterations of the conditioning measurement. */
  conditionIterations: number;
  /** Steps of the long encoder-12 run (the essay's 105,000); null: the budget does not run it (the recovery claim is "not run", with the command that runs it). */
  recoverySteps: number | null;
  /** Steps of input generation, and the steps before jitter starts. */
  generateSteps: number;
  /** Steps at model size before generation jitters. */
  jitterAfter: number;
  /** The ViT whose overcomplete stem is tested (ViT-L/16 at 512² in the essay). */
  overcomplete: string;
  /** Weight draws (seeds 0…n−1) of every experiment that rests on untrained weights. */
  seeds: number;
  /** Whether inputs are normalized with the model's mean/std (the essay's code feeds pixels/255 as they are). */
  normalize: boolean;
  /** The inversions' learning rate (`--lr`), or null for the project's default schedule. */
  lr: string | null;
}

/**
 * The three budgets: `smoke` (every experiment a few steps and 2 weight
 * draws: minutes, a check of the pipeline, for CI), `standard` (the budgets
 * of the tables in docs/: hours on 2 cores, 3 weight draws; its departures
 * from the essay's settings are listed by {@linkcode budgetDeviations}) and
 * `essay` (the essay's own settings: no input normalization, learning rate
 * 0.006, 1500 steps everywhere, 105,000 for encoder 12, ViT-L/16 at 512²:
 * meant for a cluster).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUDGETS } from "./budgets.ts";
 * assert.equal(BUDGETS.essay.vitSteps, 1500);
 * assert.ok(BUDGETS.smoke.vitSteps < BUDGETS.standard.vitSteps);
 * assert.ok(BUDGETS.standard.seeds >= 3);
 * assert.equal(BUDGETS.essay.normalize, false);
 * ```
 */
export const BUDGETS: Readonly<Record<BudgetName, Budget>> = {
  smoke: {
    name: "smoke",
    about:
      "every experiment at a few steps, 2 weight draws: a check of the pipeline, not of the essay (minutes on 2 cores, for CI)",
    vitSteps: 3,
    archSteps: 2,
    patchSteps: 2,
    lrRows: false,
    vitLrRows: false,
    vitLayers: [1, 4, 8, 12],
    resnetLayers: [1, 7, 16],
    ffvitLayers: [1, 12],
    patchLayers: [1, 4],
    longSteps: 16,
    conditionIterations: 8,
    recoverySteps: 8,
    generateSteps: 12,
    jitterAfter: 6,
    overcomplete: "vit_b_16",
    seeds: 2,
    normalize: true,
    lr: null,
  },
  standard: {
    name: "standard",
    about:
      "1000 steps on ViT-B/32 and on both sides of every matched comparison (encoders 1, 4, 12; ResNet50 bottlenecks 1 and 16), 200 per mixer or FF-only ViT depth cell (FF-only ViT blocks 1 and 4), 400 for the mixer patch comparison (block 1), 3000 for the non-invertibility run, no extra learning-rate rows, no 105,000-step run; 3 weight draws (about 1.5 hours on 2 cores, two cells at a time)",
    vitSteps: 1000,
    archSteps: 200,
    patchSteps: 400,
    lrRows: false,
    vitLrRows: false,
    vitLayers: [1, 4, 12],
    resnetLayers: [1, 16],
    ffvitLayers: [1, 4],
    patchLayers: [1],
    longSteps: 3000,
    conditionIterations: 40,
    recoverySteps: null,
    generateSteps: 720,
    jitterAfter: 220,
    overcomplete: "vit_l_16",
    seeds: 3,
    normalize: true,
    lr: null,
  },
  essay: {
    name: "essay",
    about:
      "the essay's settings: pixels/255 without input normalization, learning rate 0.006, 1500 steps everywhere, 105,000 for encoder 12, ViT-L/16 at 512²; 3 weight draws (a cluster)",
    vitSteps: 1500,
    archSteps: 1500,
    patchSteps: 1500,
    lrRows: true,
    vitLrRows: true,
    vitLayers: [1, 4, 8, 12],
    resnetLayers: [1, 7, 16],
    ffvitLayers: [1, 4, 8, 12],
    patchLayers: [1, 4],
    longSteps: 10000,
    conditionIterations: 80,
    recoverySteps: 105000,
    generateSteps: 720,
    jitterAfter: 220,
    overcomplete: "vit_l_16_512",
    seeds: 3,
    normalize: false,
    lr: "0.006",
  },
};

/** The budget fields that set an experiment's conditions, in words, for {@linkcode budgetDeviations}. */
const CONDITIONS: readonly {
  key: keyof Budget;
  what: string;
  text: (v: Budget[keyof Budget]) => string;
}[] = [
  {
    key: "normalize",
    what: "input normalization",
    text: (v) => v ? "the model's mean/std" : "none (pixels/255)",
  },
  {
    key: "lr",
    what: "inversion learning rate",
    text: (v) => v === null ? "the default schedule 0.01→0.001" : String(v),
  },
  { key: "vitSteps", what: "steps per ViT-B/32 cell", text: String },
  {
    key: "archSteps",
    what: "steps per mixer and FF-only ViT depth cell",
    text: String,
  },
  {
    key: "patchSteps",
    what: "steps of the mixer patch-8 against patch-16 comparison",
    text: String,
  },
  {
    key: "recoverySteps",
    what: "steps of the long encoder-12 run",
    text: (v) => v === null ? "not run" : String(v),
  },
  {
    key: "longSteps",
    what: "steps of the one-encoder non-invertibility run",
    text: String,
  },
  {
    key: "vitLayers",
    what: "ViT-B/32 encoders of the depth grid",
    text: String,
  },
  {
    key: "resnetLayers",
    what: "ResNet50 bottlenecks of the depth grid",
    text: String,
  },
  {
    key: "ffvitLayers",
    what: "FF-only ViT blocks of the depth grid",
    text: String,
  },
  {
    key: "patchLayers",
    what: "mixer blocks of the patch comparison",
    text: String,
  },
  {
    key: "overcomplete",
    what: "the overcomplete-stem ViT",
    text: (v) =>
      v === "vit_l_16_512"
        ? "ViT-L/16 at 512²"
        : v === "vit_l_16"
        ? "ViT-L/16 at 224²"
        : v === "vit_b_16"
        ? "ViT-B/16 at 224² (exactly complete: 768 → 768)"
        : String(v),
  },
  {
    key: "lrRows",
    what: "mixer and FF-only ViT rows at a quarter of the learning rate",
    text: (v) => v ? "yes" : "no",
  },
  {
    key: "vitLrRows",
    what: "ViT-B/32 and ResNet50 rows at a tenth of the learning rate",
    text: (v) => v ? "yes" : "no",
  },
];

/**
 * How a budget departs from the essay's own settings (the `essay` budget),
 * one line per setting in words; empty for the `essay` budget itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUDGETS, budgetDeviations } from "./budgets.ts";
 * assert.deepEqual(budgetDeviations(BUDGETS.essay), []);
 * assert.ok(budgetDeviations(BUDGETS.standard).includes("input normalization: the model's mean/std (essay: none (pixels/255))"));
 * ```
 */
export function budgetDeviations(b: Budget): string[] {
  const e = BUDGETS.essay;
  return CONDITIONS.filter((c) => String(b[c.key]) !== String(e[c.key])).map((
    c,
  ) => `${c.what}: ${c.text(b[c.key])} (essay: ${c.text(e[c.key])})`);
}

/** Step time of one model: `base + perLayer × L` ms for a representation of layer L. */
export interface StepTime {
  /** ms of a step at layer 0 (input processing, loss, gradient). */
  base: number;
  /** ms per block the step runs through. */
  perLayer: number;
  /** Layers up to the logits (a generation step runs them all). */
  layers: number;
  /** Seconds to load the model (untrained weights generated). */
  load: number;
  /** Where the numbers come from. */
  source: string;
}

const BENCH = "measured: README bench, native, 2 threads";
const scaled = (of: string) => `estimated: ${of}, scaled by FLOPs`;

/**
 * Step times per model folder on this project's 2-core machine (native
 * backend). ViT-B/32, ResNet50 and the patch-16 mixer are fitted to the
 * README's bench (two depths each); the others are scaled from them by their
 * multiply-adds per block, which the `source` field says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STEP_TIMES } from "./budgets.ts";
 * const t = STEP_TIMES.vit_b_32;
 * assert.ok(Math.abs(t.base + 12 * t.perLayer - 175.7) < 1);
 * ```
 */
export const STEP_TIMES: Readonly<Record<string, StepTime>> = {
  vit_b_32: {
    base: 4.6,
    perLayer: 14.25,
    layers: 12,
    load: 4,
    source: BENCH,
  },
  resnet50: {
    base: 32.4,
    perLayer: 11.95,
    layers: 16,
    load: 2,
    source: BENCH,
  },
  mixer_p16_d1024: {
    base: 0,
    perLayer: 62.4,
    layers: 8,
    load: 4,
    source: BENCH,
  },
  mixer_p8_d1024: {
    base: 0,
    perLayer: 250,
    layers: 8,
    load: 4,
    source: scaled("mixer_p16_d1024 × 4 tokens"),
  },
  vit_b_16: {
    base: 18,
    perLayer: 62,
    layers: 12,
    load: 4,
    source: scaled("vit_b_32 × 4 tokens"),
  },
  linear_base: {
    base: 18,
    perLayer: 60,
    layers: 12,
    load: 4,
    source: scaled("vit_b_16"),
  },
  vit_l_16: {
    base: 25,
    perLayer: 110,
    layers: 24,
    load: 14,
    source: scaled("vit_b_16 × 1.8 width²"),
  },
  vit_l_16_512: {
    base: 130,
    perLayer: 700,
    layers: 24,
    load: 16,
    source: scaled("vit_l_16 × 5.2 tokens, quadratic attention"),
  },
  fmnist_vit: {
    base: 0.3,
    perLayer: 0.4,
    layers: 4,
    load: 0.2,
    source: scaled("vit_b_32 to 64 wide, 65 tokens"),
  },
  colour_vit: {
    base: 0.3,
    perLayer: 0.3,
    layers: 4,
    load: 0.2,
    source: scaled("vit_b_32 to 64 wide, 17 tokens"),
  },
  fmnist_resnet: {
    base: 0.5,
    perLayer: 0.5,
    layers: 4,
    load: 0.2,
    source: scaled("resnet50, 32² input"),
  },
};

/** Seconds to start one grid (a Deno process, the runtime), besides loading models. */
export const GRID_START_SECONDS = 3;

/**
 * Estimated seconds of one cell: `steps` steps at `layer` (a generation cell:
 * `layer = "logits"`) of `model`. A model missing from {@linkcode STEP_TIMES}
 * is costed like ViT-B/16.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellSeconds } from "./budgets.ts";
 * assert.ok(Math.abs(cellSeconds("vit_b_32", 12, 1000) - 175.6) < 0.1);
 * ```
 */
export function cellSeconds(
  model: string,
  layer: number | "logits",
  steps: number,
): number {
  const t = STEP_TIMES[model] ?? STEP_TIMES.vit_b_16;
  const depth = layer === "logits" ? t.layers + 1 : layer;
  return (steps * (t.base + t.perLayer * depth)) / 1000;
}

/**
 * Estimated seconds to load `model` once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSeconds } from "./budgets.ts";
 * assert.ok(loadSeconds("vit_b_32") > 0);
 * ```
 */
export function loadSeconds(model: string): number {
  return (STEP_TIMES[model] ?? STEP_TIMES.vit_b_16).load;
}
