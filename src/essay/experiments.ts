/**
 * The essay's experiments as grid runs, and the planner: which of them the
 * model folders and weight sets at hand allow, their grid command lines, cell
 * counts and estimated CPU time.
 *
 * @module
 */
import { join } from "node:path";
import { GENERATE_DEFAULTS } from "../optimize/mod.ts";
import {
  type Budget,
  cellSeconds,
  GRID_START_SECONDS,
  loadSeconds,
} from "./budgets.ts";

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
    out.set(e.name, {
      name: e.name,
      dir,
      weightSets: sets,
      imageSize: m.image_size,
      patchSize: m.patch_size ?? 0,
      layers: m.num_layers,
      numClasses: m.num_classes,
    });
  }
  return out;
}

/** A row of a grid: its label and the options it changes. */
export type GridRow = readonly [label: string, options: string];

/** One grid run: what `grid` is given. */
export interface GridRun {
  /** Model folder name. */
  model: string;
  /** The grid's --weights (default untrained). */
  weights?: string;
  /** Invert grid columns: layer numbers. */
  layers?: readonly number[];
  /** Generate grid columns: class indices. */
  classes?: readonly number[];
  /** The rows. */
  rows: readonly GridRow[];
  /** Steps per cell. */
  steps: number;
  /** Further grid options. */
  extra?: readonly string[];
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
  /** Untrained models only, or which trained ones. */
  origin: Origin;
  /** Cells of the grid. */
  cells: number;
  /** Estimated CPU seconds. */
  seconds: number;
}

const NO_LN: GridRow = ["no layer norms", "--remove layernorm"];
const INTACT: GridRow = ["intact", ""];

/** The smaller learning-rate rows of a model at a fixed budget (the architecture survey tries two). */
function lrRows(model: string, b: Budget): GridRow[] {
  if (!b.lrRows) return [];
  if (model === "resnet50") {
    return [["lr /10", "--lr 0.001:0.0001"], [
      "lr /100",
      "--lr 0.0001:0.00001",
    ]];
  }
  return [
    ["lr /4", "--lr 0.0025:0.00025"],
    ...(model.startsWith("mixer")
      ? [
        [
          "no layer norms, lr /4",
          "--remove layernorm --lr 0.0025:0.00025",
        ] as GridRow,
      ]
      : []),
  ];
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

/** The trained ViT the trained-model claims use: ImageNet ViT-B/32, else the small Fashion-MNIST ViT. */
export function trainedVit(
  env: Environment,
): { model: string; weights: string; origin: Origin } | null {
  const allowed = (w: string) =>
    env.weights.length === 0 || env.weights.includes(w);
  for (
    const [model, origin] of [["vit_b_32", "ImageNet"], [
      "fmnist_vit",
      "small",
    ]] as const
  ) {
    const sets = env.models.get(model)?.weightSets.filter(allowed) ?? [];
    if (sets.length > 0) {
      const w = sets.includes("IMAGENET1K_V1") ? "IMAGENET1K_V1" : sets[0];
      return { model, weights: w, origin };
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

interface Draft {
  id: string;
  title: string;
  /** A grid for the budget, or why it cannot be made. */
  make: (
    b: Budget,
    env: Environment,
  ) =>
    | { grid: GridRun | null; trained?: Planned["trained"]; origin: Origin }
    | {
      reason: string;
      command: string;
    };
}

/** An untrained-model experiment on `model` (not run, with the converter command, when the folder is missing). */
function untrained(
  model: string,
  grid: (b: Budget, m: ModelInfo) => Omit<GridRun, "model">,
): Draft["make"] {
  return (b, env) => {
    const m = env.models.get(model);
    if (!m) {
      return {
        reason: `the model folder ${join(env.root, model)} is missing`,
        command: convertCommand(model, env),
      };
    }
    return { grid: { model, ...grid(b, m) }, origin: "untrained" };
  };
}

/** A trained-ViT experiment (not run, with the commands that give trained weights, when none are there). */
function trained(
  grid: (
    b: Budget,
    m: ModelInfo,
    weights: string,
  ) => Omit<GridRun, "model"> | null,
): Draft["make"] {
  return (b, env) => {
    const t = trainedVit(env);
    if (!t) {
      return {
        reason: "no trained ViT weights are converted",
        command: TRAINED_HINT(env),
      };
    }
    const g = grid(b, env.models.get(t.model)!, t.weights);
    return {
      grid: g ? { model: t.model, ...g } : null,
      trained: { model: t.model, weights: t.weights },
      origin: t.origin,
    };
  };
}

/**
 * Grid options of a long run: about 500 trace rows (its convergence plot)
 * and, from 1000 steps on, a snapshot every tenth of the run, so a stopped
 * run continues where it was.
 */
const traced = (steps: number) => [
  "--trace-every",
  String(Math.max(1, Math.round(steps / 500))),
  ...(steps >= 1000 ? ["--save-every", String(Math.round(steps / 10))] : []),
];

/** Every experiment of the essay, in the order of its sections. */
const DRAFTS: readonly Draft[] = [
  {
    id: "generation",
    title: "input generation for three classes with a trained model",
    make: trained((b, m, w) => ({
      weights: w,
      classes: m.numClasses >= 1000 ? [251, 281, 11] : [1, 7, 9],
      // a small model's logits move little at the ImageNet learning rate: it gets a row at 250×
      rows: m.imageSize < 224
        ? [["trained", ""], ["trained, lr ×250", "--lr 5:0.5"]]
        : [["trained", ""]],
      steps: b.generateSteps,
      extra: [
        "--jitter-after",
        String(b.jitterAfter),
        // the canvas keeps its ratio to the model's side (600 px for 224)
        "--canvas",
        String(Math.round(m.imageSize * GENERATE_DEFAULTS.canvasSize / 224)),
      ],
    })),
  },
  {
    id: "vit_depth",
    title:
      "untrained ViT-B/32: representation against depth, with and without layer norms",
    make: untrained("vit_b_32", (b) => ({
      layers: [1, 4, 8, 12],
      rows: [INTACT, NO_LN],
      steps: b.vitSteps,
    })),
  },
  {
    id: "resnet_depth",
    title:
      "untrained ResNet50: representation against depth (first bottleneck, stage ends)",
    make: untrained("resnet50", (b) => ({
      layers: [1, 3, 7, 13, 16],
      rows: [INTACT, ...lrRows("resnet50", b)],
      steps: b.archSteps,
    })),
  },
  {
    id: "vit_stem",
    title:
      "input processing (layer 0) against encoder 1: ViT-B/32, and ResNet50's stem",
    make: untrained("vit_b_32", (b) => ({
      layers: [0, 1],
      rows: [INTACT],
      steps: b.vitSteps,
    })),
  },
  {
    id: "resnet_stem",
    title: "untrained ResNet50's stem (conv, batch norm, ReLU, max-pool)",
    make: untrained("resnet50", (b) => ({
      layers: [0],
      rows: [INTACT, ...lrRows("resnet50", b)],
      steps: b.vitSteps,
    })),
  },
  {
    id: "stem_trained",
    title: "input processing and encoder 1, untrained against trained",
    make: trained((b, _m, w) => ({
      layers: [0, 1],
      rows: [["untrained", "--weights untrained"], [
        "trained",
        `--weights ${w}`,
      ]],
      steps: b.vitSteps,
    })),
  },
  {
    id: "filters",
    title: "the trained patch-embedding filters: wavelets or no pattern",
    make: trained(() => null),
  },
  {
    id: "overcomplete_stem",
    title: "an overcomplete untrained stem (ViT-L/16) against ViT-B/32's",
    make: (b, env) =>
      untrained(b.overcomplete, (bb) => ({
        layers: [0],
        rows: [INTACT],
        steps: bb.archSteps,
      }))(b, env),
  },
  {
    id: "swaps",
    title: "trained parts in an untrained ViT: position embedding, first ln_1",
    make: trained((b, _m, w) => ({
      layers: [1],
      rows: [
        ["untrained", ""],
        ["pos. embedding trained", `--swap pos_embedding=${w}`],
        ["ln_1 of encoder 1 trained", `--swap encoder.layers.0.ln_1=${w}`],
      ],
      steps: b.vitSteps,
    })),
  },
  {
    id: "vit_recovery",
    title: "untrained ViT-B/32 encoder 12, run long",
    make: untrained("vit_b_32", (b) => ({
      layers: [12],
      rows: [[`${b.recoverySteps} steps`, ""]],
      steps: b.recoverySteps,
      extra: traced(b.recoverySteps),
    })),
  },
  {
    id: "residual",
    title:
      "untrained ViT-B/32 encoder 4 without residuals in encoders 1-4, with and without attention",
    make: untrained("vit_b_32", (b) => ({
      layers: [4],
      rows: [
        INTACT,
        ["no residuals", "--remove residual --remove-layers 1-4"],
        [
          "no residuals, no attention",
          "--remove residual,attention --remove-layers 1-4",
        ],
      ],
      steps: b.vitSteps,
    })),
  },
  {
    id: "noninvertible",
    title:
      "one encoder of LN + attention without residual, run long; with the residual as control",
    make: untrained("vit_b_32", (b) => ({
      layers: [1],
      rows: [
        [
          "LN + attention, no residual",
          "--remove residual,mlp,ln2 --remove-layers 1",
        ],
        ["LN + attention + residual", "--remove mlp,ln2 --remove-layers 1"],
      ],
      steps: b.longSteps,
      extra: traced(b.longSteps),
    })),
  },
  {
    id: "mixer_p16",
    title:
      "untrained MLP-Mixer, patch 16, hidden 1024: depth, with and without layer norms",
    make: untrained("mixer_p16_d1024", (b) => ({
      layers: [1, 4, 8],
      rows: [INTACT, NO_LN, ...lrRows("mixer_p16_d1024", b)],
      steps: b.archSteps,
    })),
  },
  {
    id: "mixer_p8",
    title:
      "untrained MLP-Mixer, patch 8, hidden 1024: blocks 1 and 4, with and without layer norms",
    make: untrained("mixer_p8_d1024", (b) => ({
      layers: [1, 4],
      rows: [INTACT, NO_LN, ...lrRows("mixer_p8_d1024", b)],
      steps: b.archSteps,
    })),
  },
  {
    id: "ffvit",
    title:
      "untrained FF-only ViT (Melas-Kyriazi's linear_base): depth, with and without layer norms",
    make: untrained("linear_base", (b) => ({
      layers: b.name === "smoke" ? [1, 12] : [1, 4, 8, 12],
      rows: [INTACT, NO_LN, ...lrRows("linear_base", b)],
      steps: b.archSteps,
    })),
  },
];

/** Every experiment's identifier, in report order. */
export const EXPERIMENT_IDS: readonly string[] = DRAFTS.map((d) => d.id);

/**
 * The grid's command line (after `grid`) for one experiment, writing to
 * `out`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gridArgs } from "./experiments.ts";
 * const g = { model: "vit_b_32", layers: [1, 4], rows: [["intact", ""]] as const, steps: 10 };
 * const args = gridArgs(g, { root: "weights", image: "cat.png" }, "out/x");
 * assert.deepEqual(args.slice(0, 4), ["--model", "weights/vit_b_32", "--layers", "1,4"]);
 * ```
 */
export function gridArgs(
  g: GridRun,
  env: Pick<Environment, "root" | "byName" | "image">,
  out: string,
): string[] {
  return [
    "--model",
    modelArg(env, g.model),
    ...(g.weights ? ["--weights", g.weights] : []),
    ...(g.layers
      ? ["--layers", g.layers.join(","), "--image", env.image]
      : ["--classes", g.classes!.join(",")]),
    "--steps",
    String(g.steps),
    "--seed",
    "0",
    ...g.rows.flatMap(([label, opts]) => ["--variant", `${label}=${opts}`]),
    ...(g.extra ?? []),
    "--quiet",
    "--out",
    out,
  ];
}

/** Estimated CPU seconds of a grid: its model's load, then every cell. */
function gridSeconds(g: GridRun): number {
  const cols = g.layers ?? g.classes!.map(() => "logits" as const);
  let s = GRID_START_SECONDS + loadSeconds(g.model);
  for (const _ of g.rows) {
    for (const c of cols) s += cellSeconds(g.model, c, g.steps);
  }
  return s;
}

/**
 * Plans every experiment (or those in `only`) for a budget: runnable ones
 * with their grid, cells and estimated CPU seconds; the others "not run" with
 * the reason and the command that would make them runnable.
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
    if (only.length > 0 && !only.includes(d.id)) {
      return {
        id: d.id,
        title: d.title,
        status: "not run",
        missing: {
          reason: "not selected (--only)",
          command: `add ${d.id} to --only`,
        },
        grid: null,
        origin: "untrained",
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
        grid: null,
        origin: "untrained",
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
      trained: r.trained,
      origin: r.origin,
      cells: g ? g.rows.length * (g.layers ?? g.classes!).length : 0,
      seconds: g ? gridSeconds(g) : 1,
    };
  });
}
