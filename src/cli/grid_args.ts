/**
 * Internal to the command line: the edge of `grid`, where its options — CLI
 * text keyed by option names — are read once into a typed request
 * (src/grid/resolve.ts): the mode, the columns as given, each row
 * (--variant) as its typed settings, model variant and options record. Every
 * value that needs no model is checked here; {@linkcode resolveGrid} opens
 * the models and resolves the rest.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { INVERT_SPEC } from "./invert.ts";
import { GENERATE_SPEC } from "./generate.ts";
import { invertSettings } from "../run/invert.ts";
import { generateSettings } from "../run/generate.ts";
import {
  defaultImage,
  defaults,
  parse,
  type Raw,
  savedOptions,
  type Spec,
} from "./options.ts";
import {
  backendOpt,
  intOpt,
  kernelOpt,
  list,
  numOpt,
  schedOpt,
  stepsOpt,
  str,
} from "../run/read.ts";
import {
  checkVariantOpts,
  modelSpec,
  parseLayers,
  parseRemove,
  removeRequests,
  swapRequests,
} from "../run/model_options.ts";
import { asUsage, LIMITS, usage } from "../run/settings.ts";
import { modelKey } from "../run/models.ts";
import type { ModelSpec } from "../run/variant.ts";
import type {
  LayerSet,
  RemoveName,
  RowChanges,
  RowSpec,
} from "../grid/spec.ts";
import { type CellSettings, type Mode, MODES } from "../grid/modes.ts";
import {
  checkColumns,
  type GridRequest,
  inRow,
  type RowRequest,
  rowSettings,
} from "../grid/resolve.ts";

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
  /** The grid's typed settings from its options (usage errors), before the model is known. */
  settings(raw: Raw): CellSettings;
}

const ARG_MODES: Readonly<Record<Mode, ArgMode>> = {
  invert: {
    spec: INVERT_SPEC,
    only: ["image", "only-layer", "loss"],
    columnsFlag: "--layers",
    columnItems: (given) => parseGridLayers(str(given, "layers")),
    numbered: (items) => items.map(Number),
    // the layer comes with each column; 1 stands in (0 is not allowed with --only-layer)
    settings: (raw) => invertSettings({ ...raw, layer: "1" }),
  },
  generate: {
    spec: GENERATE_SPEC,
    only: ["constant", "jitter-after", "canvas"],
    columnsFlag: "--classes",
    columnItems: gridClasses,
    numbered: () => [],
    settings: (raw) => ({ ...generateSettings(raw), index: 0 }),
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
  const changes = inRow(label, () => rowChangesOf(given));
  return { row: { label, changes }, text, given };
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
  // the grid's settings, read once: every row starts from them
  const settings = def.settings(base);
  checkColumns(mode, settings, numbered);
  intOpt(base, "seed", 0);
  checkVariantOpts(base);
  const specs: VariantRow[] = given.variant === undefined
    ? [{ label: null, text: "", given: {}, row: null }]
    : parseVariants(list(given, "variant"), mode);
  const raws = specs.map((r) => rowOptions(base, r.given));
  return { mode, base, items, numbered, settings, specs, raws };
}

/** A row's model variant, typed (`--threads` as the grid reads it: any positive count). */
function rowModel(raw: Raw): ModelSpec {
  const spec = modelSpec({ ...raw, threads: undefined });
  return raw.threads === undefined
    ? spec
    : { ...spec, threads: intOpt(raw, "threads", 1) };
}

/**
 * `grid`'s options (`gridDefaults` are GRID_SPEC's defaults) read once into
 * a typed request (usage errors for every value that needs no model): each
 * row's settings are the grid's with what its --variant changes.
 */
export function gridRequest(given: Raw, gridDefaults: Raw): GridRequest {
  const { mode, base, items, numbered, settings, specs, raws } = readOptions(
    given,
  );
  const spec = ARG_MODES[mode].spec;
  const rows = specs.map((r, i): RowRequest =>
    inRow(r.label, () => {
      const s = r.row === null
        ? settings
        : rowSettings(mode, settings, r.row.changes);
      checkColumns(mode, s, numbered);
      return {
        label: r.label,
        text: r.text,
        model: rowModel(raws[i]),
        settings: s,
        options: savedOptions(spec, raws[i]),
      };
    })
  );
  const graw: Raw = { ...gridDefaults, ...given };
  const traceEvery = intOpt(graw, "trace-every", 1);
  const image = MODES[mode].targetColumn ? defaultImage(base) : null;
  return {
    mode,
    model: str(base, "model"),
    columns: items,
    columnsText: str({ layers: given.layers }, "layers"),
    onlyLayer: base["only-layer"] === true,
    image,
    rows,
    out: resolvePath(str(graw, "out")),
    traceEvery,
    options: {
      ...Object.fromEntries(
        Object.entries(given).filter(([k]) => k !== "help"),
      ),
      model: modelKey(str(base, "model")),
      ...(image === null ? {} : { image }),
    },
  };
}
