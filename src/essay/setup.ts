/**
 * A claim's setup — model, weights, stem, image, image size, steps,
 * learning rate, input normalization, weight draws — as the essay states it
 * and as this run has it (derived from the plan, never typed twice), the
 * deviations between the two in words, and what a stand-in model implies.
 *
 * @module
 */
import { basename } from "node:path";
import { GENERATE_DEFAULTS, INVERT_DEFAULTS } from "../optimize/mod.ts";
import { scheduleText } from "../grid/spec.ts";
import type { Budget } from "./budgets.ts";
import type {
  ExperimentId,
  GridRow,
  ModelInfo,
  Planned,
  RowId,
} from "./experiments.ts";

/** A setup: each field in words, null where the essay does not state it (or nothing ran). */
export interface Setup {
  /** The models ("; " between sides of a comparison). */
  model: string | null;
  /** The weights. */
  weights: string | null;
  /** The input processing (stem): trained or untrained. */
  stem: string | null;
  /** The target image. */
  image: string | null;
  /** Image side(s). */
  image_size: string | null;
  /** Gradient steps. */
  steps: string | null;
  /** Learning rate (schedule start→end, or one constant). */
  lr: string | null;
  /** Input normalization. */
  normalization: string | null;
  /** Weight draws (this run only). */
  seeds?: string | null;
}

/** The setup fields in report order, with their names. */
export const SETUP_FIELDS: readonly { key: keyof Setup; label: string }[] = [
  { key: "model", label: "model" },
  { key: "weights", label: "weights" },
  { key: "stem", label: "input processing (stem)" },
  { key: "image", label: "target image" },
  { key: "image_size", label: "image size" },
  { key: "steps", label: "steps" },
  { key: "lr", label: "learning rate" },
  { key: "normalization", label: "input normalization" },
  { key: "seeds", label: "weight draws" },
];

/** Input normalization in words: the essay's code feeds pixels/255 as they are. */
export const NO_NORMALIZATION = "none (pixels/255)";
/** The project's default: each model's mean/std. */
export const MODEL_NORMALIZATION = "the model's mean/std";

const NAMES: Readonly<Record<string, string>> = {
  vit_b_32: "ViT-B/32",
  vit_b_16: "ViT-B/16",
  vit_l_16: "ViT-L/16",
  vit_l_16_512: "ViT-L/16",
  vit_l_32: "ViT-L/32",
  vit_h_14: "ViT-H/14",
  vit_h_14_518: "ViT-H/14",
  resnet50: "ResNet50",
  mixer_p16_d1024: "MLP-Mixer (patch 16, hidden 1024)",
  mixer_p8_d1024: "MLP-Mixer (patch 8, hidden 1024)",
  linear_base: "FF-only ViT (linear_base)",
  fmnist_vit: "Fashion-MNIST ViT (fmnist_vit)",
  fmnist_resnet: "Fashion-MNIST ResNet (fmnist_resnet)",
};

/**
 * A model folder's name as the essay would write it (ViT-B/32 for
 * `vit_b_32`); the folder name when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelName } from "./setup.ts";
 * assert.equal(modelName("vit_l_16_512"), "ViT-L/16");
 * assert.equal(modelName("my_vit"), "my_vit");
 * ```
 */
export function modelName(folder: string): string {
  return NAMES[folder] ?? folder;
}

/** A learning-rate schedule's text in words: "0.01→0.001", or "0.006" for a constant. */
function lrWords(text: string): string {
  const [a, b = a] = text.split(":");
  return a === b ? a : `${a}→${b}`;
}

/** What a row's weights are, in words. */
function rowWeights(
  p: Planned,
  r: GridRow | null,
  models: ReadonlyMap<string, ModelInfo>,
): string {
  const model = p.grid?.model ?? p.trained?.model ?? p.model ?? "";
  const opt = r?.changes.weights;
  const w = opt ??
    (p.grid ? p.grid.weights : p.trained?.weights) ?? "untrained";
  const swaps = r?.changes.swaps ?? [];
  const parts = swaps.map((s) => s.part);
  const on = (set: string) => {
    const t = models.get(model)?.trainedOn?.[set];
    // the essay's weights are ImageNet's: other data is said
    return t?.data && t.data !== "ImageNet-1k"
      ? ` (${t.data}${t.colour === false ? ", grey images" : ""})`
      : "";
  };
  if (w === "untrained" && parts.length > 0) {
    const from = swaps[0].weights;
    return `untrained, with trained ${parts.join(", ")} from ${from}${
      on(from)
    }`;
  }
  return w === "untrained" ? "untrained" : `${w}${on(w)}`;
}

/** One side of a claim (an experiment it reads): each setup field's value(s). */
function side(
  p: Planned,
  rows: readonly RowId[] | null,
  models: ReadonlyMap<string, ModelInfo>,
  budget: Budget | undefined,
  image: string | undefined,
): Record<keyof Setup, string[]> {
  const g = p.grid;
  const model = g?.model ?? p.trained?.model ?? p.model ?? "";
  const info = models.get(model);
  const read = g
    ? g.rows.filter((r) =>
      r.seed === 0 && (rows === null || rows.includes(r.id))
    )
    : [];
  const each = <T>(f: (r: GridRow | null) => T) =>
    read.length ? read.map(f) : [f(null)];
  const weights = each((r) => rowWeights(p, r, models));
  const lr = g === null ? [] : each((r) => {
    const opt = r?.changes.lr && scheduleText(r.changes.lr);
    if (opt) return lrWords(opt);
    const d = g.classes ? GENERATE_DEFAULTS.lr : INVERT_DEFAULTS.lr;
    return g.classes || !budget?.lr
      ? `${d.start}→${d.end}`
      : lrWords(budget.lr);
  });
  return {
    model: [NAMES[model] ?? model],
    weights,
    stem: each((r) =>
      r?.changes.swaps?.some((s) => s.part === "conv_proj") ||
        !rowWeights(p, r, models).startsWith("untrained")
        ? "trained"
        : "untrained"
    ),
    image: g === null
      ? []
      : g.classes
      ? ["none (generated from noise)"]
      : image
      ? [basename(image)]
      : [],
    image_size: info ? [`${info.imageSize}²`] : [],
    steps: g === null ? [] : each((r) => String(r?.changes.steps ?? g.steps)),
    lr,
    normalization: g === null || !budget
      ? []
      : [budget.normalize ? MODEL_NORMALIZATION : NO_NORMALIZATION],
    seeds: [
      p.seeds.length > 1
        ? `${p.seeds.length} (seeds ${p.seeds.join(", ")})`
        : "1",
    ],
  };
}

/**
 * This run's setup of a claim that reads experiments `reads` (each with the
 * rows it reads, null: all), derived from the plan: one value per field when
 * every side agrees, else "model: value" per side ("; " between sides); the
 * rows of one side that differ are joined by " and ".
 * Fields nothing ran for are null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runSetup } from "./setup.ts";
 * import { BUDGETS } from "./budgets.ts";
 * const p = { id: "vit_depth", status: "run", origin: "untrained", seeds: [0, 1, 2], cells: 1, seconds: 1, grid: { model: "vit_b_32", layers: [1], steps: 1500, rows: [{ id: "intact", seed: 0, label: "intact", changes: {} }] } };
 * const s = runSetup(new Map([["vit_depth", ["intact"]]]), [p as never], new Map(), BUDGETS.standard, "cat.png");
 * assert.equal(s.model, "ViT-B/32");
 * assert.equal(s.steps, "1500");
 * assert.equal(s.lr, "0.01→0.001");
 * assert.equal(s.seeds, "3 (seeds 0, 1, 2)");
 * ```
 */
export function runSetup(
  reads: ReadonlyMap<ExperimentId, RowId[] | null>,
  planned: readonly Planned[],
  models: ReadonlyMap<string, ModelInfo>,
  budget?: Budget,
  image?: string,
): Setup {
  const sides = [...reads].flatMap(([exp, rows]) => {
    const p = planned.find((x) => x.id === exp);
    return p && p.status === "run"
      ? [side(p, rows, models, budget, image)]
      : [];
  });
  const field = (k: keyof Setup): string | null => {
    if (k === "model") {
      const names = [...new Set(sides.flatMap((s) => s.model))];
      return names.length ? names.join("; ") : null;
    }
    const per = sides.filter((s) => s[k].length > 0).map((s) => ({
      name: s.model[0],
      v: [...new Set(s[k])].join(" and "),
    }));
    if (per.length === 0) return null;
    const values = [...new Set(per.map((x) => x.v))];
    if (values.length === 1) return values[0];
    return [...new Set(per.map((x) => `${x.name}: ${x.v}`))].join("; ");
  };
  return Object.fromEntries(
    SETUP_FIELDS.map((f) => [f.key, field(f.key)]),
  ) as unknown as Setup;
}

/** A field's value in a form where the order of sides and values does not matter. */
const canonical = (v: string) =>
  v.split(/;\s*/).map((x) => x.split(/ and /).sort().join(" and ")).sort()
    .join("; ");

/**
 * The deviations of this run's setup from the essay's, in words: every
 * field both state that differs ("steps: essay 1500 and 105000, here 1500
 * and 10000"), the order of sides and rows aside. Fields
 * the essay does not state, and the number of weight draws (the essay shows
 * one), are not deviations.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviations } from "./setup.ts";
 * const essay = { model: "ViT-B/32", weights: "untrained", stem: null, image: null, image_size: "224²", steps: "1500", lr: "0.006", normalization: "none (pixels/255)" };
 * const run = { ...essay, lr: "0.01→0.001", normalization: "the model's mean/std" };
 * assert.deepEqual(deviations(essay, run), ["learning rate: essay 0.006, here 0.01→0.001", "input normalization: essay none (pixels/255), here the model's mean/std"]);
 * ```
 */
export function deviations(essay: Setup, run: Setup): string[] {
  return SETUP_FIELDS.filter((f) => f.key !== "seeds").flatMap((f) => {
    const e = essay[f.key], r = run[f.key];
    return e && r && canonical(e) !== canonical(r)
      ? [`${f.label}: essay ${e}, here ${r}`]
      : [];
  });
}

/**
 * What a model folder standing in for the essay's model is, in words: image
 * size, patches, the stem's inputs against its outputs (3·p² against the
 * hidden width: undercomplete when the stem compresses, as ViT-B/32's
 * 3072 → 768) and what its weights were trained on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelFacts } from "./setup.ts";
 * const m = { name: "fmnist_vit", dir: "", weightSets: ["trained"], imageSize: 32, patchSize: 4, layers: 4, numClasses: 10, hidden: 64, channels: 3, trainedOn: { trained: { data: "Fashion-MNIST", colour: false, source: "log" } } };
 * assert.equal(modelFacts(m, "trained"), "32 px images, 4×4 patches, stem 3·4² = 48 → 64 (overcomplete), trained on Fashion-MNIST (grey images)");
 * ```
 */
export function modelFacts(m: ModelInfo, weights?: string): string {
  const facts = [`${m.imageSize} px images`];
  if (m.patchSize > 0) {
    facts.push(`${m.patchSize}×${m.patchSize} patches`);
    if (m.hidden) {
      const c = m.channels ?? 3, inputs = c * m.patchSize ** 2;
      facts.push(
        `stem ${c}·${m.patchSize}² = ${inputs} → ${m.hidden} (${
          inputs > m.hidden
            ? "undercomplete"
            : inputs === m.hidden
            ? "exactly complete"
            : "overcomplete"
        })`,
      );
    }
  }
  const t = weights ? m.trainedOn?.[weights] : undefined;
  if (weights && weights !== "untrained") {
    facts.push(
      t?.data
        ? `trained on ${t.data}${t.colour === false ? " (grey images)" : ""}`
        : `trained on data its folder does not record`,
    );
  }
  return facts.join(", ");
}
