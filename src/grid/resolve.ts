/**
 * A grid's resolution: a request read once from typed values (the rows'
 * settings and model variants, the columns as given) becomes the input of a
 * plan ({@linkcode GridInput}) in one manifest-dependent refinement — each
 * row's model opened (rows differing only in ablations share a load), the
 * ablations resolved against its depth, the columns (layers or classes)
 * resolved with its manifest, the kernel and canvas checked against its image
 * size, the target image hashed. Every bad value is a usage error here,
 * before anything is written; on an error the models are released.
 *
 * @module
 */
import { type Manifest, type Model, resolveClass } from "../model/mod.ts";
import {
  describeSpec,
  type ModelSpec,
  openVariant,
  removedParts,
  resolveAblations,
} from "../run/variant.ts";
import { checkCanvasSize, checkKernel, layerArg } from "../run/refine.ts";
import { asUsage, isUsage, type RunOptions, usage } from "../run/settings.ts";
import { modelKey, modelSource } from "../run/models.ts";
import { loadTarget } from "../run/images.ts";
import type { InvertSettings } from "../run/invert.ts";
import type { GenerateSettings } from "../run/generate.ts";
import { type CellSettings, type Mode, MODES } from "./modes.ts";
import type { RowChanges } from "./spec.ts";
import {
  type GridInput,
  type GridPlan,
  loadKey,
  type ModelLoad,
  planGrid,
  type PlanRow,
  targetHash,
} from "./plan.ts";

/** One row of a grid request: read once from its options, before any model is known. */
export interface RowRequest {
  /** The row's label, or null for the one row of a grid without rows (labelled by its weights and variant). */
  label: string | null;
  /** The row's options as given (`--variant`'s OPTIONS). */
  text: string;
  /** The row's model variant, typed (its weights, seed, removals, swaps). */
  model: ModelSpec;
  /** The row's settings (see {@linkcode rowSettings}); the column gives each cell its layer or class. */
  settings: CellSettings;
  /** The row's options record, as plan.json and each cell's metrics.json keep it. */
  options: RunOptions;
}

/** A grid as typed values, read once: what {@linkcode resolveGrid} resolves. */
export interface GridRequest {
  /** invert over layers or generate over classes. */
  mode: Mode;
  /** `--model` as given (a known name, a folder or a URL). */
  model: string;
  /** The columns as given: layer numbers or names (invert), class indices or names (generate). */
  columns: readonly string[];
  /** The columns' option as given, for messages (`--layers`). */
  columnsText: string;
  /** Invert: each encoder represented alone (`--only-layer`). */
  onlyLayer: boolean;
  /** The target image's path (invert), or null. */
  image: string | null;
  /** The rows, in order (one, labelled null, for a grid without `--variant`). */
  rows: readonly RowRequest[];
  /** The grid's folder (an absolute path). */
  out: string;
  /** Trace every this many steps in each cell. */
  traceEvery: number;
  /** The grid's options record, as plan.json keeps it. */
  options: RunOptions;
}

/** A resolved grid: its plan's input and its plan, and the models opened for it (by load key). */
export interface ResolvedGrid {
  /** The plan's input: rows, columns, target, options. */
  input: GridInput;
  /** The plan made of it ({@linkcode planGrid}). */
  plan: GridPlan;
  /** The models opened, by load key (the caller releases them). */
  models: Map<string, Model>;
}

/** Runs `fn`; an error it throws names the row (`--variant "LABEL": …`), a usage error staying one. */
export function inRow<T>(label: string | null, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw rowError(label, err);
  }
}

function rowError(label: string | null, err: unknown): unknown {
  if (label === null || !(err instanceof Error)) return err;
  const Err = err instanceof RangeError ? RangeError : TypeError;
  const wrapped = new Err(`--variant "${label}": ${err.message}`, {
    cause: err,
  });
  return isUsage(err) ? usage(wrapped) : wrapped;
}

/** {@linkcode inRow} for an async `fn`. */
async function inRowAsync<T>(
  label: string | null,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw rowError(label, err);
  }
}

/** `changes`' values defined, as `S`'s fields (a spread). */
function given<S>(fields: Partial<S>): Partial<S> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, v]) => v !== undefined),
  ) as Partial<S>;
}

/**
 * A row's settings: the grid's, with what the row changes (the values
 * checked as the row was read; a row's `loss` is checked here).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowSettings } from "./resolve.ts";
 * const grid = {
 *   layer: 1, onlyLayer: false, loss: "l2" as const, steps: 3,
 *   lr: { start: 1, end: 0 }, sigma: { start: 1, end: 0 }, kernelSize: 1,
 *   normalize: true, seed: 0,
 * };
 * const s = rowSettings("invert", grid, { steps: 5, loss: "l1" });
 * assert.equal(s.steps, 5);
 * assert.equal((s as typeof grid).loss, "l1");
 * assert.throws(() => rowSettings("invert", grid, { loss: "l3" }), /Invalid --loss "l3"/);
 * ```
 */
export function rowSettings(
  mode: Mode,
  grid: CellSettings,
  changes: RowChanges,
): CellSettings {
  const c = changes;
  if (c.loss !== undefined && c.loss !== "l1" && c.loss !== "l2") {
    throw usage(
      new TypeError(`Invalid --loss "${c.loss}": expected l1 or l2`),
    );
  }
  const shared = given<CellSettings>({
    steps: c.steps,
    lr: c.lr,
    sigma: c.sigma,
    kernelSize: c.kernelSize,
    normalize: c.normalize,
    seed: c.seed,
  });
  const own = mode === "invert"
    ? given<InvertSettings>({
      onlyLayer: c.onlyLayer,
      loss: c.loss as InvertSettings["loss"] | undefined,
    })
    : given<GenerateSettings>({
      constant: c.constant,
      jitterAfter: c.jitterAfter,
      canvasSize: c.canvas,
    });
  return { ...grid, ...shared, ...own } as CellSettings;
}

/**
 * Checks a grid's columns (layer numbers, NaN for names not yet resolved)
 * against a row's settings: with `--only-layer` no column is layer 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkColumns } from "./resolve.ts";
 * const s = {
 *   layer: 1, onlyLayer: true, loss: "l2" as const, steps: 3,
 *   lr: { start: 1, end: 0 }, sigma: { start: 1, end: 0 }, kernelSize: 1,
 *   normalize: true, seed: 0,
 * };
 * checkColumns("invert", s, [1, 2]);
 * assert.throws(() => checkColumns("invert", s, [0, 1]), /with --only-layer/);
 * ```
 */
export function checkColumns(
  mode: Mode,
  s: CellSettings,
  layers: readonly number[],
): void {
  if (mode !== "invert" || !(s as InvertSettings).onlyLayer) return;
  if (layers.includes(0)) {
    throw usage(
      new RangeError(
        `Invalid --layers "${
          layers.join(",")
        }" with --only-layer: expected encoder blocks 1..N (layer 0 is input processing)`,
      ),
    );
  }
}

/** The columns' layers or classes, resolved with the model's manifest (each once). */
function resolveColumns(req: GridRequest, m: Manifest): number[] {
  if (req.mode === "invert") {
    return [
      ...new Set(
        req.columns.map((t) => layerArg(t, "layers", m, req.columnsText)),
      ),
    ];
  }
  return [
    ...new Set(
      req.columns.map((q) =>
        asUsage(() => resolveClass(q, m.categories, m.num_classes))
      ),
    ),
  ];
}

/** The row's model load without its ablations: what rows may share. */
function plainSpec(spec: ModelSpec): ModelSpec {
  return { ...spec, removes: [], positionEmbedding: true };
}

/** `--weights` for labels: `untrained` shown with its seed (as given). */
function weightsLabel(row: RowRequest): string {
  const w = row.model.weights;
  return w === "untrained"
    ? `untrained:${row.options.seed ?? row.model.seed}`
    : w;
}

/** Opens each row's model once per load (rows differing in ablations share it): usage errors name the row. */
async function openRows(
  req: GridRequest,
  source: string,
  models: Map<string, Model>,
): Promise<Omit<PlanRow, "settings" | "options">[]> {
  const groups = new Map<string, { model: Model; load: ModelLoad }>();
  const rows: Omit<PlanRow, "settings" | "options">[] = [];
  for (const row of req.rows) {
    const { weights, seed } = row.model;
    const swaps = row.model.swaps.map((s) => s.text);
    const seedMatters = weights === "untrained" ||
      swaps.some((s) => /=\s*untrained\s*$/.test(s));
    const gkey = JSON.stringify([weights, seedMatters ? seed : null, swaps]);
    if (!groups.has(gkey)) {
      const { model, variant } = await inRowAsync(
        row.label,
        () => openVariant(source, plainSpec(row.model)),
      );
      const load: ModelLoad = {
        source,
        weights,
        seed,
        backend: row.model.backend,
        ...(row.model.threads === undefined
          ? {}
          : { threads: row.model.threads }),
        swaps: variant.swaps,
        verify: row.model.verify,
      };
      groups.set(gkey, { model, load });
      models.set(loadKey(load), model);
    }
    const { model, load } = groups.get(gkey)!;
    const n = model.manifest.num_layers;
    const ablations = inRow(
      row.label,
      () => resolveAblations(row.model.removes, n),
    );
    const tag = describeSpec(row.model, n);
    const w = weightsLabel(row);
    rows.push({
      label: row.label ?? (tag ? `${w}, ${tag}` : w),
      text: row.text,
      load: { ...load, seed },
      variant: {
        ablations,
        positionEmbedding: row.model.positionEmbedding,
        swaps: load.swaps,
        tag,
      },
      weights: model.weights,
      removed: removedParts(row.model.removes, n),
      normalize: row.settings.normalize,
    });
  }
  return rows;
}

/** Checks a row's settings against the model's image size (usage errors name the row). */
function checkSizes(row: RowRequest, mode: Mode, size: number): void {
  inRow(row.label, () => {
    if (mode === "generate") {
      const canvas = (row.settings as GenerateSettings).canvasSize;
      checkCanvasSize(canvas, String(row.options.canvas ?? canvas), size);
    }
  });
  inRow(row.label, () => checkKernel(row.settings.kernelSize, size));
}

/** The model as --model names it (a folder's or URL's last part), else the manifest's name. */
function modelTitle(given: string, m: Manifest): string {
  return given.replace(/[/\\]+$/, "").split(/[/\\]/).pop() || m.name;
}

/**
 * Resolves a grid request into its plan: each row's model opened (once per
 * load) and checked, the columns resolved with its manifest, the settings
 * checked against its image size, the target image hashed; on an error the
 * models are released and nothing is written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveGrid } from "./resolve.ts";
 * const settings = {
 *   layer: 1, onlyLayer: false, loss: "l2" as const, steps: 2,
 *   lr: { start: 0.5, end: 0.1 }, sigma: { start: 1, end: 0 },
 *   kernelSize: 1, normalize: true, seed: 0,
 * };
 * const model = {
 *   weights: "fixture", seed: 0, backend: "native" as const, verify: true,
 *   removes: [], positionEmbedding: true, swaps: [],
 * };
 * const { input, plan, models } = await resolveGrid({
 *   mode: "invert", model: "tests/fixtures/tiny_vit",
 *   columns: ["1", "encoder_layer_1"], columnsText: "1,encoder_layer_1",
 *   onlyLayer: false, image: "tests/fixtures/fmnist/sample_0.png",
 *   rows: [{ label: null, text: "", model, settings, options: {} }],
 *   out: "/tmp/grid", traceEvery: 1, options: {},
 * });
 * assert.deepEqual(input.columns.map((c) => c.value), [1, 2]);
 * assert.equal(input.rows[0].label, "fixture");
 * assert.equal(plan.cells.length, 2);
 * for (const m of new Set(models.values())) await m.release();
 * ```
 */
export async function resolveGrid(req: GridRequest): Promise<ResolvedGrid> {
  const def = MODES[req.mode];
  const source = modelSource(req.model);
  const models = new Map<string, Model>();
  try {
    const opened = await openRows(req, source, models);
    const m = models.values().next().value!.manifest;
    const columns = def.columns(resolveColumns(req, m), m, req.onlyLayer);
    const rows: PlanRow[] = opened.map((row, i) => {
      const r = req.rows[i];
      checkSizes(r, req.mode, m.image_size);
      checkColumns(req.mode, r.settings, columns.map((c) => c.value));
      return { ...row, settings: r.settings, options: r.options };
    });
    const image = req.image === null ? null : {
      path: req.image,
      sha256: await targetHash(await loadTarget(req.image, m.image_size)),
    };
    const input: GridInput = {
      mode: req.mode,
      out: req.out,
      modelKey: modelKey(req.model),
      title: `${modelTitle(req.model, m)}: ${def.title}`,
      image,
      rows,
      columns,
      traceEvery: req.traceEvery,
      options: req.options,
    };
    return { input, plan: await planGrid(input, m), models };
  } catch (err) {
    for (const model of new Set(models.values())) await model.release();
    throw err;
  }
}
