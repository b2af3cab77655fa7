/**
 * Internal to the command line: the edge of `grid`, where its options — CLI
 * text keyed by option names — become typed inputs of a plan: the rows
 * (--variant) with their models opened and checked, the columns (--layers or
 * --classes) resolved against the model, the target image hashed. Every bad
 * value is an error here, before anything is written.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { type Manifest, type Model, resolveClass } from "../model/mod.ts";
import { INVERT_SPEC, invertSettings } from "./invert.ts";
import { GENERATE_SPEC, generateSettings } from "./generate.ts";
import type { InvertSettings } from "../run/invert.ts";
import {
  asUsage,
  backendOpt,
  checkKernel,
  defaultImage,
  defaults,
  intOpt,
  isUsage,
  kernelOpt,
  LIMITS,
  list,
  modelKey,
  modelSource,
  numOpt,
  parse,
  type Raw,
  savedOptions,
  schedOpt,
  type Spec,
  stepsOpt,
  str,
  usage,
} from "./options.ts";
import {
  checkVariantOpts,
  describeOptions,
  layerArg,
  openModel,
  parseLayers,
  parseRemove,
  removeRequests,
  swapRequests,
  weightsText,
} from "./model.ts";
import type {
  LayerSet,
  RemoveName,
  RowChanges,
  RowSpec,
} from "../grid/spec.ts";
import { loadTarget } from "../run/images.ts";
import { removedParts, resolveAblations } from "../run/variant.ts";
import { type CellSettings, type Mode, MODES } from "../grid/modes.ts";
import {
  type GridInput,
  type GridPlan,
  loadKey,
  type ModelLoad,
  planGrid,
  type PlanRow,
  targetHash,
} from "../grid/plan.ts";

/** Options a row (--variant) may change. */
const ROW_OPTS = [
  "weights",
  "seed",
  "normalize",
  "remove",
  "remove-layers",
  "pos-embedding",
  "swap",
  "steps",
  "lr",
  "sigma",
  "kernel-size",
];

/** No model has more layers than this: a range beyond it is refused before it is expanded. */
const MAX_LAYER = 1024;

/** --layers as items: numbers (ranges expanded) and layer names, resolved once the model is known. */
function parseGridLayers(text: string): string[] {
  const out: string[] = [];
  for (const item of text.split(",").map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    if (!m && /^[A-Za-z_][\w.]*$/.test(item)) {
      if (!out.includes(item)) out.push(item);
      continue;
    }
    const a = m ? Number(m[1]) : NaN, b = m?.[2] ? Number(m[2]) : a;
    if (!m || b < a || !Number.isSafeInteger(b)) {
      throw usage(
        new RangeError(
          `Invalid --layers "${text}": expected comma-separated layers, ranges or layer names, e.g. 1,4,8,12, 1-3 or layer1,layer4 (ResNets)`,
        ),
      );
    }
    if (b > MAX_LAYER) {
      throw usage(
        new RangeError(
          `Invalid --layers "${text}": layer ${b} is beyond any model (at most ${MAX_LAYER}); a model's layers are 0..N, N its depth`,
        ),
      );
    }
    for (let l = a; l <= b; l++) if (!out.includes(`${l}`)) out.push(`${l}`);
  }
  return out;
}

function gridClasses(given: Raw): string[] {
  const queries = list(given, "classes").flatMap((s) => s.split(","))
    .map((s) => s.trim());
  if (queries.length === 0 || queries.some((q) => q === "")) {
    throw usage(
      new TypeError(
        `Invalid --classes "${
          list(given, "classes").join(",")
        }": expected class indices or names, e.g. --classes 1,207,dalmatian`,
      ),
    );
  }
  return queries;
}

/** What the command line knows of each kind of grid: its options, and how its columns and rows are read. */
interface ArgMode {
  /** The command each cell runs (a row's options are parsed with its spec). */
  spec: Spec;
  /** Options only this kind of grid takes. */
  only: readonly string[];
  /** The grid option that gives the columns. */
  columnsFlag: "--layers" | "--classes";
  /** The columns as given, before the model is known. */
  columnItems(given: Raw): string[];
  /** The columns given by number (NaN for names), for checks before the model is known. */
  numbered(items: readonly string[]): number[];
  /** The columns' layers or classes, resolved with the model (each once); `whole` is the option as given. */
  resolve(items: readonly string[], m: Manifest, whole: string): number[];
  /** A row's typed settings from its options (usage errors); `size` checks sizes against the model. */
  rowSettings(raw: Raw, size?: number): CellSettings;
  /** Checks the columns against a row's settings (usage errors). */
  checkColumns(s: CellSettings, values: readonly number[]): void;
}

const ARG_MODES: Readonly<Record<Mode, ArgMode>> = {
  invert: {
    spec: INVERT_SPEC,
    only: ["image", "only-layer", "loss"],
    columnsFlag: "--layers",
    columnItems: (given) => parseGridLayers(str(given, "layers")),
    numbered: (items) => items.map(Number),
    resolve: (items, m, whole) => [
      ...new Set(items.map((t) => layerArg(t, "layers", m, whole))),
    ],
    // the layer comes with each column; 1 stands in (0 is not allowed with --only-layer)
    rowSettings: (raw) => invertSettings({ ...raw, layer: "1" }),
    checkColumns(s, layers) {
      if ((s as InvertSettings).onlyLayer && layers.includes(0)) {
        throw usage(
          new RangeError(
            `Invalid --layers "${
              layers.join(",")
            }" with --only-layer: expected encoder blocks 1..N (layer 0 is input processing)`,
          ),
        );
      }
    },
  },
  generate: {
    spec: GENERATE_SPEC,
    only: ["constant", "jitter-after", "canvas"],
    columnsFlag: "--classes",
    columnItems: gridClasses,
    numbered: () => [],
    resolve: (items, m) => [
      ...new Set(
        items.map((q) =>
          asUsage(() => resolveClass(q, m.categories, m.num_classes))
        ),
      ),
    ],
    rowSettings: (raw, size) => ({ ...generateSettings(raw, size), index: 0 }),
    checkColumns() {},
  },
};

/** Splits a --variant's OPTIONS like a shell: whitespace, '…', "…" and \ escapes. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = "", inWord = false, quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else cur += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) {
        cur += text[++i];
      } else cur += ch;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      inWord = true;
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === "\\" && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    }
  }
  if (quote !== null) {
    throw usage(
      new TypeError(
        `Invalid options "${text}": unterminated ${quote} quote: expected a closing ${quote}`,
      ),
    );
  }
  if (inWord) out.push(cur);
  return out;
}

function gridMode(given: Raw): Mode {
  if (given.layers !== undefined && given.classes !== undefined) {
    throw usage(
      new TypeError(
        `Invalid grid with both --layers and --classes: expected --layers (an invert grid) or --classes (a generate grid)`,
      ),
    );
  }
  if (given.layers !== undefined) return "invert";
  if (given.classes !== undefined) return "generate";
  throw usage(
    new TypeError(
      `Invalid grid: expected --layers L,L… (invert over layers, e.g. --layers 1,4,8,12) or --classes C,C… (generate over classes)`,
    ),
  );
}

/** Runs `fn`; an error it throws names the row it is about. */
async function inRow<T>(label: string | null, fn: () => T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (label === null || !(err instanceof Error)) throw err;
    const Err = err instanceof RangeError ? RangeError : TypeError;
    const wrapped = new Err(`--variant "${label}": ${err.message}`, {
      cause: err,
    });
    throw isUsage(err) ? usage(wrapped) : wrapped;
  }
}

/** A row as the command line gives it. */
interface VariantRow {
  /** The label, or null for the single row of a grid without --variant. */
  label: string | null;
  /** OPTIONS as given. */
  text: string;
  /** The options this row gives. */
  given: Raw;
  /** The row as typed values (src/grid/spec.ts): what it changes. */
  row: RowSpec | null;
}

/** A value if the option was given, else nothing (a spread). */
function some<K extends keyof RowChanges>(
  raw: Raw,
  name: string,
  key: K,
  read: (raw: Raw) => RowChanges[K],
): Partial<RowChanges> {
  return raw[name] === undefined ? {} : { [key]: read(raw) };
}

/** A row's `--remove` requests as typed removals (each with its layers when --remove-layers is given). */
function removals(raw: Raw): RowChanges["remove"] {
  const layers = list(raw, "remove-layers");
  return list(raw, "remove").map((text, i) => {
    const parts = parseRemove(text).names as RemoveName[];
    const l = layers.length === 0
      ? undefined
      : layers[layers.length === 1 ? 0 : i];
    return l === undefined
      ? { parts }
      : { parts, layers: parseLayers(l) as LayerSet };
  });
}

/**
 * A row's options (as parsed, allowed in a row) as typed changes, each value
 * checked as the run commands check it (usage errors): the type the essay
 * builds its rows with; {@linkcode rowText} writes it back.
 */
export function rowChangesOf(raw: Raw): RowChanges {
  if (raw.remove !== undefined) removeRequests(raw);
  const flagOf = (name: string) => (r: Raw) => r[name] !== false;
  return {
    ...some(raw, "weights", "weights", (r) => str(r, "weights")),
    ...some(raw, "remove", "remove", removals),
    ...(raw.remove === undefined
      ? some(
        raw,
        "remove-layers",
        "removeLayers",
        (r) => list(r, "remove-layers").map((t) => parseLayers(t) as LayerSet),
      )
      : {}),
    ...some(raw, "pos-embedding", "positionEmbedding", flagOf("pos-embedding")),
    ...some(
      raw,
      "swap",
      "swaps",
      (r) => swapRequests(r).map(({ part, weights }) => ({ part, weights })),
    ),
    ...some(raw, "steps", "steps", (r) => stepsOpt(r, "steps", 1)),
    ...some(raw, "lr", "lr", (r) => schedOpt(r, "lr")),
    ...some(raw, "sigma", "sigma", (r) => schedOpt(r, "sigma")),
    ...some(raw, "kernel-size", "kernelSize", kernelOpt),
    ...some(raw, "normalize", "normalize", flagOf("normalize")),
    ...some(raw, "only-layer", "onlyLayer", flagOf("only-layer")),
    ...some(raw, "loss", "loss", (r) => str(r, "loss")),
    ...some(raw, "constant", "constant", (r) => numOpt(r, "constant")),
    ...some(
      raw,
      "jitter-after",
      "jitterAfter",
      (r) => stepsOpt(r, "jitter-after", 0),
    ),
    ...some(
      raw,
      "canvas",
      "canvas",
      (r) => intOpt(r, "canvas", 1, LIMITS.canvas),
    ),
    ...some(raw, "seed", "seed", (r) => intOpt(r, "seed", 0)),
  };
}

/**
 * One `--variant LABEL=OPTIONS` of a grid of `mode` read into a typed row
 * (usage errors name it): its options parsed as the cells' command parses
 * them, only options a row may change, each value checked.
 */
export function parseVariant(
  v: string,
  mode: Mode,
): { row: RowSpec; text: string; given: Raw } {
  const { spec, only } = ARG_MODES[mode];
  const allowed = [...ROW_OPTS, ...only.filter((k) => k !== "image")];
  const i = v.indexOf("=");
  const label = i < 0 ? "" : v.slice(0, i).trim();
  if (label === "") {
    throw usage(
      new TypeError(
        `Invalid --variant "${v}": expected LABEL=OPTIONS, e.g. "no LN=--remove layernorm" or "baseline="`,
      ),
    );
  }
  const text = v.slice(i + 1);
  const given = asUsage(() => {
    try {
      return parse(MODES[mode].command, spec, splitArgs(text));
    } catch (err) {
      throw new TypeError(
        `--variant "${label}": ${err instanceof Error ? err.message : err}`,
      );
    }
  });
  for (const k of Object.keys(given)) {
    if (!allowed.includes(k)) {
      const why = k === "layer" || k === "class"
        ? `the columns are the grid's --${k === "layer" ? "layers" : "classes"}`
        : "it applies to the whole grid";
      throw usage(
        new TypeError(
          `--variant "${label}": Invalid --${k} in a row: ${why}: expected row options such as ${
            allowed.map((a) => `--${a}`).join(", ")
          }`,
        ),
      );
    }
  }
  const changes = inRowSync(label, () => rowChangesOf(given));
  return { row: { label, changes }, text, given };
}

/** Runs `fn`; an error it throws names the row it is about (see {@linkcode inRow}). */
function inRowSync<T>(label: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    const Err = err instanceof RangeError ? RangeError : TypeError;
    const wrapped = new Err(`--variant "${label}": ${err.message}`, {
      cause: err,
    });
    throw isUsage(err) ? usage(wrapped) : wrapped;
  }
}

function parseVariants(values: readonly string[], mode: Mode): VariantRow[] {
  const rows = values.map((v): VariantRow => {
    const { row, text, given } = parseVariant(v, mode);
    return { label: row.label, text, given, row };
  });
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r.label!)) {
      throw usage(
        new TypeError(
          `Invalid --variant "${r.label}=${r.text}": the label "${r.label}" is taken by another row: expected a label per row`,
        ),
      );
    }
    seen.add(r.label!);
  }
  return rows;
}

/** A row's options: the grid's, then the row's (a row's --remove comes with its own --remove-layers). */
function rowOptions(base: Raw, row: Raw): Raw {
  const raw: Raw = { ...base, ...row };
  if (row.remove !== undefined && row["remove-layers"] === undefined) {
    delete raw["remove-layers"];
  }
  return raw;
}

/** Checks everything about a row's options that needs no model. */
function checkRow(raw: Raw, mode: Mode, layers: readonly number[]): void {
  ARG_MODES[mode].checkColumns(ARG_MODES[mode].rowSettings(raw), layers);
  intOpt(raw, "seed", 0);
  checkVariantOpts(raw);
}

/** The model as --model names it (a folder's or URL's last part), else the manifest's name. */
function modelTitle(given: string, m: Manifest): string {
  return given.replace(/[/\\]+$/, "").split(/[/\\]/).pop() || m.name;
}

/** The grid's own options (no model needed): mode, the options every cell starts from, the rows. */
function readOptions(given: Raw) {
  const mode = gridMode(given);
  const def = ARG_MODES[mode];
  for (const [command, m] of Object.entries(ARG_MODES)) {
    if (m === def) continue;
    for (const k of m.only) {
      if (given[k] === undefined) continue;
      throw usage(
        new TypeError(
          `Invalid --${k} with ${def.columnsFlag}: it is ${
            command === "invert" ? "an" : "a"
          } ${command} option: expected the options of ${mode} for this grid`,
        ),
      );
    }
  }
  // Every cell's options: the mode's defaults, then the grid's, then its row's.
  const base: Raw = { ...defaults(def.spec) };
  for (const [k, v] of Object.entries(given)) {
    if (k in def.spec && v !== undefined) base[k] = v;
  }
  const items = def.columnItems(given);
  const numbered = def.numbered(items);
  backendOpt(base);
  if (base.threads !== undefined) intOpt(base, "threads", 1);
  checkRow(base, mode, numbered);
  const specs: VariantRow[] = given.variant === undefined
    ? [{ label: null, text: "", given: {}, row: null }]
    : parseVariants(list(given, "variant"), mode);
  const raws = specs.map((r) => rowOptions(base, r.given));
  return { mode, base, items, numbered, specs, raws };
}

/** A row's model load: weights, seed and swaps (its ablations come after). */
function plainOptions(raw: Raw): Raw {
  return {
    ...raw,
    remove: undefined,
    "remove-layers": undefined,
    "pos-embedding": true,
  };
}

/** Opens each row's model once per load (rows differing in ablations share it): usage errors name the row. */
async function openRows(
  specs: readonly VariantRow[],
  raws: readonly Raw[],
  source: string,
  models: Map<string, Model>,
): Promise<Omit<PlanRow, "settings" | "options">[]> {
  const groups = new Map<string, { model: Model; load: ModelLoad }>();
  const rows: Omit<PlanRow, "settings" | "options">[] = [];
  for (const [i, raw] of raws.entries()) {
    const label = specs[i].label;
    const weights = str(raw, "weights"), seed = Number(str(raw, "seed"));
    const seedMatters = weights === "untrained" ||
      list(raw, "swap").some((s) => /=\s*untrained\s*$/.test(s));
    const gkey = JSON.stringify([
      weights,
      seedMatters ? seed : null,
      list(raw, "swap"),
    ]);
    if (!groups.has(gkey)) {
      const { model, variant } = await inRow(
        label,
        () => openModel(plainOptions(raw), source),
      );
      const load: ModelLoad = {
        source,
        weights,
        seed,
        backend: backendOpt(raw),
        ...(raw.threads === undefined
          ? {}
          : { threads: intOpt(raw, "threads", 1) }),
        swaps: variant.swaps,
        verify: raw.verify !== false,
      };
      groups.set(gkey, { model, load });
      models.set(loadKey(load), model);
    }
    const { model, load } = groups.get(gkey)!;
    const n = model.manifest.num_layers;
    const ablations = await inRow(
      label,
      () => resolveAblations(removeRequests(raw), n),
    );
    const tag = describeOptions(raw, n);
    const w = weightsText(raw);
    rows.push({
      label: label ?? (tag ? `${w}, ${tag}` : w),
      text: specs[i].text,
      load: { ...load, seed },
      variant: {
        ablations,
        positionEmbedding: raw["pos-embedding"] !== false,
        swaps: load.swaps,
        tag,
      },
      weights: model.weights,
      removed: removedParts(removeRequests(raw), n),
      normalize: raw.normalize !== false,
    });
  }
  return rows;
}

/** A grid's options, checked and resolved, and its plan; the models opened for the checks (by load key). */
export interface Resolved {
  plan: GridPlan;
  models: Map<string, Model>;
}

/**
 * Resolves `grid`'s options (`gridDefaults` are GRID_SPEC's defaults) into a
 * plan, opening each row's model to check it; on an error the models are
 * released and nothing is written.
 */
export async function resolveGrid(
  given: Raw,
  gridDefaults: Raw,
): Promise<Resolved> {
  const { mode, base, items, numbered, specs, raws } = readOptions(given);
  const def = MODES[mode], arg = ARG_MODES[mode];
  for (let i = 0; i < specs.length; i++) {
    await inRow(specs[i].label, () => checkRow(raws[i], mode, numbered));
  }
  const graw: Raw = { ...gridDefaults, ...given };
  const traceEvery = intOpt(graw, "trace-every", 1);
  const imagePath = def.targetColumn ? defaultImage(base) : null;
  const source = modelSource(str(base, "model"));
  const models = new Map<string, Model>();
  try {
    const opened = await openRows(specs, raws, source, models);
    const m = models.values().next().value!.manifest;
    const values = arg.resolve(
      items,
      m,
      str({ layers: given.layers }, "layers"),
    );
    const columns = def.columns(values, m, base["only-layer"] === true);
    const rows: PlanRow[] = [];
    for (const [i, row] of opened.entries()) {
      const settings = await inRow(
        specs[i].label,
        () => arg.rowSettings(raws[i], m.image_size),
      );
      await inRow(
        specs[i].label,
        () => checkKernel(settings.kernelSize, m.image_size),
      );
      arg.checkColumns(settings, columns.map((c) => c.value));
      rows.push({ ...row, settings, options: savedOptions(arg.spec, raws[i]) });
    }
    const image = imagePath === null
      ? null
      : await targetOf(imagePath, m.image_size);
    const input: GridInput = {
      mode,
      out: resolvePath(str(graw, "out")),
      modelKey: modelKey(str(base, "model")),
      title: `${modelTitle(str(base, "model"), m)}: ${def.title}`,
      image,
      rows,
      columns,
      traceEvery,
      options: {
        ...Object.fromEntries(
          Object.entries(given).filter(([k]) => k !== "help"),
        ),
        model: modelKey(str(base, "model")),
        ...(imagePath === null ? {} : { image: imagePath }),
      },
    };
    return { plan: await planGrid(input, m), models };
  } catch (err) {
    for (const model of new Set(models.values())) await model.release();
    throw err;
  }
}

/** The target image's path and the hash of its pixels at the model's size. */
async function targetOf(path: string, size: number) {
  return { path, sha256: await targetHash(await loadTarget(path, size)) };
}
