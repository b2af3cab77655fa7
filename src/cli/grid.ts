/**
 * Internal to the command line (src/cli.ts): the `grid` command. It runs
 * invert over model variants × layers, or generate over variants × classes,
 * and writes a labelled montage like the essay's figures plus one table of the
 * figures per cell. Each cell is an ordinary invert or generate run in
 * `OUT/cells/KEY/`, KEY a hash of the cell's fully resolved options, so a grid
 * run again reuses finished cells, continues stopped ones and computes only
 * new ones.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { resolveClass } from "../model/mod.ts";
import { type ImageTensor, writePng } from "../io/mod.ts";
import type { Manifest, Model } from "../model/mod.ts";
import { decodeNpy } from "../io/mod.ts";
import { montage } from "../figures/mod.ts";
import {
  DivergedError,
  GENERATE_DEFAULTS,
  INVERT_DEFAULTS,
} from "../optimize/mod.ts";
import {
  asUsage,
  backendOpt,
  checkKernel,
  type Command,
  type Context,
  defaultImage,
  defaults,
  HELP_OPT,
  intOpt,
  isUsage,
  list,
  MODEL_OPTS,
  modelKey,
  modelSource,
  parse,
  type Raw,
  savedOptions,
  sched,
  type Spec,
  str,
  usage,
  VARIANT_OPTS,
} from "./options.ts";
import {
  checkVariantOpts,
  describeOptions,
  layerArg,
  modelAbout,
  openModel,
  removedParts,
  removeRequests,
  resolveAblations,
  type Variant,
  weightsText,
} from "./model.ts";
import {
  INVERT_SPEC,
  type InvertResume,
  type InvertSettings,
  invertSettings,
  type InvertSummary,
  runInvert,
} from "./invert.ts";
import {
  classState,
  GENERATE_SPEC,
  type GenerateSettings,
  generateSettings,
  type GenerateSummary,
  runGenerate,
} from "./generate.ts";
import {
  type Control,
  enlargedSide,
  exists,
  EXIT_INTERRUPTED,
  imageOf,
  loadTarget,
  readCsv,
  readSnapshotImage,
  readSnapshotJson,
  Stopper,
  writeAtomic,
  writeJson,
} from "./io.ts";

type Mode = "invert" | "generate";

const CELL_FORMAT = "vitrep-grid-cell/1";

/** Options only an invert grid (--layers) or only a generate grid (--classes) takes. */
const ONLY: Record<Mode, readonly string[]> = {
  invert: ["image", "only-layer", "loss"],
  generate: ["constant", "jitter-after", "canvas"],
};

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

const both = (inv: string | number, gen: string | number) =>
  inv === gen ? `${inv}` : `${inv} (invert), ${gen} (generate)`;

/** Options of `grid`. */
export const GRID_SPEC: Spec = {
  ...MODEL_OPTS,
  layers: {
    type: "string",
    arg: "L,L…",
    defaultText: "none",
    help:
      "an invert grid: the layers (columns), e.g. 1,4,8,12 or 1-3; 0 = input processing; layer names too, e.g. stem,layer1,layer2,layer3,layer4 for a ResNet's stages",
  },
  classes: {
    type: "string",
    multiple: true,
    arg: "C[,C…]",
    defaultText: "none",
    help:
      "a generate grid: the classes (columns), indices or names (unique parts of one)",
  },
  variant: {
    type: "string",
    multiple: true,
    arg: "LABEL=OPTIONS",
    defaultText: "one row with the options given",
    help:
      'a row: its label, then the options (CLI syntax) it changes, e.g. "no LN=--remove layernorm", "trained stem=--swap conv_proj=IMAGENET1K_V1", "seed 3=--weights untrained --seed 3". A row may change --weights, --seed, --normalize, --remove, --remove-layers, --pos-embedding, --swap, --steps, --lr, --sigma, --kernel-size, and --loss, --only-layer (invert) or --constant, --jitter-after, --canvas (generate); what it gives replaces the grid\'s own. Repeatable',
  },
  image: {
    ...INVERT_SPEC.image,
    help:
      "invert: the target image (the first column), resized and centre-cropped to the model's size",
  },
  "only-layer": {
    ...INVERT_SPEC["only-layer"],
    help: "invert: represent each encoder L alone (input processing, then L)",
  },
  loss: { ...INVERT_SPEC.loss, help: "invert: feature loss at the layer" },
  constant: {
    ...GENERATE_SPEC.constant,
    help: "generate: the constant C of the objective |C − logit|",
  },
  "jitter-after": {
    ...GENERATE_SPEC["jitter-after"],
    help:
      "generate: steps at model size before the image is enlarged and updated in random crops",
  },
  canvas: {
    ...GENERATE_SPEC.canvas,
    help: "generate: side of the enlarged canvas the crops come from",
  },
  steps: {
    type: "string",
    arg: "N",
    defaultText: both(INVERT_DEFAULTS.steps, GENERATE_DEFAULTS.steps),
    help: "gradient steps per cell",
  },
  lr: {
    type: "string",
    arg: "START:END",
    defaultText: both(
      sched(INVERT_DEFAULTS.lr),
      sched(GENERATE_DEFAULTS.lr),
    ),
    help: INVERT_SPEC.lr.help,
  },
  sigma: {
    type: "string",
    arg: "START:END",
    defaultText: both(
      sched(INVERT_DEFAULTS.sigma),
      sched(GENERATE_DEFAULTS.sigma),
    ),
    help: INVERT_SPEC.sigma.help,
  },
  "kernel-size": {
    type: "string",
    arg: "K",
    defaultText: both(
      INVERT_DEFAULTS.kernelSize,
      GENERATE_DEFAULTS.kernelSize,
    ),
    help: INVERT_SPEC["kernel-size"].help,
  },
  ...VARIANT_OPTS,
  "trace-every": INVERT_SPEC["trace-every"],
  out: {
    type: "string",
    default: "out/grid",
    arg: "DIR",
    help:
      "output folder: grid.png, grid.csv, grid.md, metrics.json, and cells/KEY/ with each cell's invert or generate outputs. Run the same grid again to reuse finished cells, continue stopped ones and compute only new ones",
  },
  quiet: { ...INVERT_SPEC.quiet, help: "no progress bars on stderr" },
  ...HELP_OPT,
};

// ---------------------------------------------------------------------------
// Parsing.

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

/** The model as --model names it (a folder's or URL's last part), else the manifest's name. */
function modelTitle(given: string, m: Manifest): string {
  return given.replace(/[/\\]+$/, "").split(/[/\\]/).pop() || m.name;
}

/** A column's name: `layer 7`, and for a ResNet the block's own name, `layer2.3 (7)`. */
function layerLabel(m: Manifest, layer: number): string {
  return m.architecture === "resnet"
    ? `${m.layers[layer].name} (${layer})`
    : `layer ${layer}`;
}

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

interface RowSpec {
  /** The label, or null for the single row of a grid without --variant. */
  label: string | null;
  /** OPTIONS as given. */
  text: string;
  /** The options this row gives. */
  given: Raw;
}

function parseVariants(values: readonly string[], mode: Mode): RowSpec[] {
  const spec = mode === "invert" ? INVERT_SPEC : GENERATE_SPEC;
  const allowed = [
    ...ROW_OPTS,
    ...ONLY[mode].filter((k) => k !== "image"),
  ];
  const rows = values.map((v): RowSpec => {
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
        return parse(mode, spec, splitArgs(text));
      } catch (err) {
        throw new TypeError(
          `--variant "${label}": ${err instanceof Error ? err.message : err}`,
        );
      }
    });
    for (const k of Object.keys(given)) {
      if (!allowed.includes(k)) {
        const why = k === "layer" || k === "class"
          ? `the columns are the grid's --${
            k === "layer" ? "layers" : "classes"
          }`
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
    return { label, text, given };
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
  if (mode === "invert") {
    const s = invertSettings({ ...raw, layer: "0" });
    if (s.onlyLayer && layers.includes(0)) {
      throw usage(
        new RangeError(
          `Invalid --layers "${
            layers.join(",")
          }" with --only-layer: expected encoder blocks 1..N (layer 0 is input processing)`,
        ),
      );
    }
  } else generateSettings(raw);
  intOpt(raw, "seed", 0);
  checkVariantOpts(raw);
}

// ---------------------------------------------------------------------------
// Cells.

/** JSON with object keys sorted, so equal values give equal text. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${
          canonicalJson((v as Record<string, unknown>)[k])
        }`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

async function sha256(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

interface Row {
  label: string;
  text: string;
  raw: Raw;
  model: Model;
  variant: Variant;
}

interface Cell {
  row: number;
  col: number;
  key: string;
  dir: string;
  /** The resolved options the key hashes. */
  canonical: Record<string, unknown>;
  invert?: InvertSettings;
  generate?: GenerateSettings & { index: number };
}

type Status = "reused" | "computed" | "diverged" | "stopped" | "not run";

interface Outcome {
  status: Status;
  image: Float32Array | null;
  invert?: InvertSummary;
  generate?: GenerateSummary;
  /** Why a diverged cell failed. */
  error?: string;
}

type InvertState =
  | { kind: "done"; summary: InvertSummary; image: Float32Array }
  | { kind: "snapshot"; resume: InvertResume }
  | { kind: "fresh" };

async function invertState(dir: string, size: number): Promise<InvertState> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
    if (m.interrupted === false && m.final) {
      const img = decodeNpy(await Deno.readFile(`${dir}/representation.npy`));
      if (img.data.length === 3 * size * size) {
        return { kind: "done", summary: m.final, image: img.data };
      }
    }
  } catch {
    // not finished
  }
  try {
    if (await exists(`${dir}/snapshot.json`)) {
      const snap = await readSnapshotJson(dir, "invert");
      return {
        kind: "snapshot",
        resume: {
          image: await readSnapshotImage(dir, [size]),
          step: snap.step,
          rows: await readCsv(`${dir}/traces.csv`),
          criterionStep: snap.criterionStep ?? null,
          from: resolvePath(dir),
        },
      };
    }
  } catch {
    // an unreadable snapshot: start over
  }
  return { kind: "fresh" };
}

// ---------------------------------------------------------------------------
// Outputs.

function csvField(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    return Number.isFinite(v) ? String(v) : v > 0 ? "inf" : "nan";
  }
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function mdCell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

const fix = (v: number | null | undefined, d: number) =>
  v === null || v === undefined
    ? "—"
    : Number.isFinite(v)
    ? v.toFixed(d)
    : v > 0
    ? "∞"
    : "NaN";

interface Table {
  csv: string;
  md: string;
  rows: Record<string, unknown>[];
}

function invertTable(
  rows: readonly Row[],
  layers: readonly number[],
  cells: readonly Cell[],
  outcomes: readonly Outcome[],
): Table {
  const cols = [
    "variant",
    "layer",
    "embedding_distance",
    "noise_baseline",
    "criterion_met",
    "criterion_step",
    "input_distance",
    "psnr",
    "ssim",
    "steps",
    "cell",
  ];
  const records = cells.map((c, i) => {
    const s = outcomes[i].invert;
    return {
      variant: rows[c.row].label,
      layer: layers[c.col],
      embedding_distance: s?.embeddingDistance ?? null,
      noise_baseline: s?.noiseBaseline ?? null,
      criterion_met: s ? (s.criterionMet ? 1 : 0) : null,
      criterion_step: s?.criterionStep ?? null,
      input_distance: s?.inputDistance ?? null,
      psnr: s?.psnr ?? null,
      ssim: s?.ssim ?? null,
      steps: s?.steps ?? null,
      cell: c.key,
    } as Record<string, unknown>;
  });
  const md = [
    "| variant | layer | ‖O(a)−O(a_g)‖₂ | noise baseline ‖O(a)−O(a′)‖₂ | criterion met | ‖a−a_g‖₂ | PSNR dB | SSIM |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...cells.map((c, i) => {
      const s = outcomes[i].invert;
      const crit = !s
        ? outcomes[i].status
        : s.criterionMet
        ? `yes (step ${s.criterionStep})`
        : "no";
      return `| ${mdCell(rows[c.row].label)} | ${layers[c.col]} | ${
        fix(s?.embeddingDistance, 3)
      } | ${fix(s?.noiseBaseline, 3)} | ${crit} | ${
        fix(s?.inputDistance, 2)
      } | ${fix(s?.psnr, 2)} | ${fix(s?.ssim, 3)} |`;
    }),
  ].join("\n");
  return { csv: toCsvText(cols, records), md, rows: records };
}

function generateTable(
  rows: readonly Row[],
  classes: readonly { index: number; name: string }[],
  cells: readonly Cell[],
  outcomes: readonly Outcome[],
): Table {
  const cols = [
    "variant",
    "class",
    "name",
    "logit",
    "probability",
    "steps",
    "cell",
  ];
  const records = cells.map((c, i) => {
    const s = outcomes[i].generate;
    return {
      variant: rows[c.row].label,
      class: classes[c.col].index,
      name: classes[c.col].name,
      logit: s?.logit ?? null,
      probability: s?.probability ?? null,
      steps: s?.steps ?? null,
      cell: c.key,
    } as Record<string, unknown>;
  });
  const md = [
    "| variant | class | name | final logit | probability |",
    "| --- | --- | --- | --- | --- |",
    ...cells.map((c, i) => {
      const s = outcomes[i].generate;
      const { index, name } = classes[c.col];
      return `| ${mdCell(rows[c.row].label)} | ${index} | ${mdCell(name)} | ${
        s ? fix(s.logit, 3) : outcomes[i].status
      } | ${fix(s?.probability, 4)} |`;
    }),
  ].join("\n");
  return { csv: toCsvText(cols, records), md, rows: records };
}

function toCsvText(
  cols: readonly string[],
  records: readonly Record<string, unknown>[],
): string {
  return [
    cols.join(","),
    ...records.map((r) => cols.map((c) => csvField(r[c])).join(",")),
  ].join("\n") + "\n";
}

// ---------------------------------------------------------------------------
// The command.

async function gridCommand(given: Raw, ctx: Context): Promise<number> {
  const mode = gridMode(given);
  const spec = mode === "invert" ? INVERT_SPEC : GENERATE_SPEC;
  const otherMode: Mode = mode === "invert" ? "generate" : "invert";
  for (const k of ONLY[otherMode]) {
    if (given[k] !== undefined) {
      throw usage(
        new TypeError(
          `Invalid --${k} with ${
            mode === "invert" ? "--layers" : "--classes"
          }: it is ${
            otherMode === "invert" ? "an" : "a"
          } ${otherMode} option: expected the options of ${mode} for this grid`,
        ),
      );
    }
  }
  const graw: Raw = { ...defaults(GRID_SPEC), ...given };
  // Every cell's options: the mode's defaults, then the grid's, then its row's.
  const base: Raw = { ...defaults(spec) };
  for (const [k, v] of Object.entries(given)) {
    if (k in spec && v !== undefined) base[k] = v;
  }
  const layerItems = mode === "invert"
    ? parseGridLayers(str(given, "layers"))
    : [];
  // the layers given by number; a name is NaN until the model is known
  const numbered = layerItems.map(Number);
  const queries = mode === "generate" ? gridClasses(given) : [];
  const traceEvery = intOpt(graw, "trace-every", 1);
  const quiet = graw.quiet === true;
  backendOpt(base);
  if (base.threads !== undefined) intOpt(base, "threads", 1);
  checkRow(base, mode, numbered);
  const specs: RowSpec[] = given.variant === undefined
    ? [{ label: null, text: "", given: {} }]
    : parseVariants(list(given, "variant"), mode);
  const raws = specs.map((r) => rowOptions(base, r.given));
  for (let i = 0; i < specs.length; i++) {
    await inRow(specs[i].label, () => checkRow(raws[i], mode, numbered));
  }
  const out = str(graw, "out");
  const imagePath = mode === "invert" ? defaultImage(base) : null;
  const source = modelSource(str(base, "model"));

  // One model per weight set and swaps; rows differing in ablations share it.
  const groups = new Map<string, { model: Model; variant: Variant }>();
  const rows: Row[] = [];
  const groupOf: string[] = [];
  try {
    for (let i = 0; i < specs.length; i++) {
      const raw = raws[i];
      const seedMatters = str(raw, "weights") === "untrained" ||
        list(raw, "swap").some((s) => /=\s*untrained\s*$/.test(s));
      const gkey = JSON.stringify([
        str(raw, "weights"),
        seedMatters ? str(raw, "seed") : null,
        list(raw, "swap"),
      ]);
      if (!groups.has(gkey)) {
        const plain: Raw = {
          ...raw,
          remove: undefined,
          "remove-layers": undefined,
          "pos-embedding": true,
        };
        groups.set(
          gkey,
          await inRow(specs[i].label, () => openModel(plain, source)),
        );
      }
      groupOf.push(gkey);
      const g = groups.get(gkey)!;
      const n = g.model.manifest.num_layers;
      const ablations = await inRow(
        specs[i].label,
        () => resolveAblations(removeRequests(raw), n),
      );
      const pe = raw["pos-embedding"] !== false;
      const tag = describeOptions(raw, n);
      const w = weightsText(raw);
      rows.push({
        label: specs[i].label ?? (tag ? `${w}, ${tag}` : w),
        text: specs[i].text,
        raw,
        model: ablations.length > 0 || !pe
          ? g.model.withAblations(ablations, pe)
          : g.model,
        variant: {
          ablations,
          positionEmbedding: pe,
          swaps: g.variant.swaps,
          tag,
        },
      });
    }
    const m = rows[0].model.manifest;
    const size = m.image_size;
    const n = m.num_layers;
    const layers = [
      ...new Set(
        layerItems.map((t) => layerArg(t, "layers", m, str(given, "layers"))),
      ),
    ];
    const target = imagePath === null
      ? null
      : await loadTarget(imagePath, size);
    const targetHash = target === null ? null : await sha256(
      new Uint8Array(
        target.data.buffer,
        target.data.byteOffset,
        target.data.byteLength,
      ),
    );
    const classes = queries.length === 0 ? [] : [
      ...new Set(
        queries.map((q) =>
          asUsage(() => resolveClass(q, m.categories, m.num_classes))
        ),
      ),
    ].map((index) => ({
      index,
      name: m.categories?.[index] ?? `class ${index}`,
    }));

    // Cells: every row × column, keyed by the cell's resolved options.
    const cells: Cell[] = [];
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      const common = {
        format: CELL_FORMAT,
        command: mode,
        model: modelKey(str(row.raw, "model")),
        weights: str(row.raw, "weights"),
        seed: Number(str(row.raw, "seed")),
        normalize: row.raw.normalize !== false,
        removed: removedParts(removeRequests(row.raw), n),
        positionEmbedding: row.variant.positionEmbedding,
        swaps: row.variant.swaps,
      };
      const ncols = mode === "invert" ? layers.length : classes.length;
      for (let c = 0; c < ncols; c++) {
        let canonical: Record<string, unknown>;
        const cell = { row: r, col: c } as Cell;
        if (mode === "invert") {
          const s = await inRow(
            specs[r].label,
            () => invertSettings({ ...row.raw, layer: String(layers[c]) }, m),
          );
          await inRow(specs[r].label, () => checkKernel(s.kernelSize, size));
          cell.invert = s;
          canonical = {
            ...common,
            target: targetHash,
            layer: s.layer,
            onlyLayer: s.onlyLayer,
            loss: s.loss,
            steps: s.steps,
            lr: s.lr,
            sigma: s.sigma,
            kernelSize: s.kernelSize,
          };
        } else {
          const s = await inRow(
            specs[r].label,
            () => generateSettings(row.raw, size),
          );
          await inRow(specs[r].label, () => checkKernel(s.kernelSize, size));
          cell.generate = { ...s, index: classes[c].index };
          canonical = {
            ...common,
            class: classes[c].index,
            constant: s.constant,
            steps: s.steps,
            jitterAfter: s.jitterAfter,
            canvasSize: s.canvasSize,
            lr: s.lr,
            sigma: s.sigma,
            kernelSize: s.kernelSize,
          };
        }
        cell.canonical = canonical;
        cell.key = (await sha256(canonicalJson(canonical))).slice(0, 16);
        cell.dir = `${out}/cells/${cell.key}`;
        cells.push(cell);
      }
    }

    // Inputs are valid: from here on, files.
    await Deno.mkdir(`${out}/cells`, { recursive: true });
    const outcomes: Outcome[] = cells.map(() => ({
      status: "not run",
      image: null,
    }));
    const colName = (c: Cell) =>
      mode === "invert"
        ? layerLabel(m, layers[c.col])
        : `class ${classes[c.col].index}`;
    const order = [...cells.keys()].sort((a, b) =>
      [...groups.keys()].indexOf(groupOf[cells[a].row]) -
        [...groups.keys()].indexOf(groupOf[cells[b].row]) || a - b
    );
    /** Reuses a finished cell, or runs (or continues) it. */
    const runCell = async (
      cell: Cell,
      row: Row,
      ctl: Control,
      report: (state: "done" | "run", from: number | null) => void,
    ): Promise<Outcome> => {
      if (mode === "invert") {
        const state = await invertState(cell.dir, size);
        if (state.kind === "done") {
          report("done", null);
          return {
            status: "reused",
            image: state.image,
            invert: state.summary,
          };
        }
        const resume = state.kind === "snapshot" ? state.resume : undefined;
        report("run", resume?.step ?? null);
        await Deno.mkdir(cell.dir, { recursive: true });
        await writeJson(`${cell.dir}/cell.json`, {
          key: cell.key,
          ...cell.canonical,
        });
        const r = await runInvert(
          row.model,
          target!,
          cell.invert!,
          ctl,
          resume,
        );
        return {
          status: r.summary.interrupted ? "stopped" : "computed",
          image: r.image,
          invert: r.summary,
        };
      }
      const s = cell.generate!;
      const state = await classState(cell.dir, s.index, size, s.canvasSize)
        .catch(() => ({ kind: "fresh" as const }));
      if (state.kind === "done") {
        report("done", null);
        return {
          status: "reused",
          image: state.summary.image,
          generate: state.summary,
        };
      }
      const resume = state.kind === "snapshot" ? state.resume : undefined;
      report("run", resume?.step ?? null);
      await Deno.mkdir(cell.dir, { recursive: true });
      await writeJson(`${cell.dir}/cell.json`, {
        key: cell.key,
        ...cell.canonical,
      });
      const summary = await runGenerate(row.model, s.index, s, ctl, resume);
      return {
        status: summary.interrupted ? "stopped" : "computed",
        image: summary.image,
        generate: summary,
      };
    };
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    try {
      let done = 0;
      for (const i of order) {
        const cell = cells[i];
        const row = rows[cell.row];
        const what = `${row.label} × ${colName(cell)}`;
        const k = `[${++done}/${cells.length}]`;
        const rel = `cells/${cell.key}`;
        if (stopper.requested) {
          outcomes[i].status = "stopped";
          continue;
        }
        const ctl: Control = {
          out: cell.dir,
          quiet,
          saveEvery: 0,
          stopAt: null,
          traceEvery,
          stopper,
          options: {
            ...savedOptions(spec, row.raw),
            ...(mode === "invert"
              ? { layer: String(layers[cell.col]), image: imagePath! }
              : { class: String(classes[cell.col].index) }),
            model: modelKey(str(row.raw, "model")),
          },
          about: modelAbout(
            row.model,
            source,
            row.raw.normalize !== false,
            row.variant,
          ),
          label: `${k} ${row.label}, ${colName(cell)}`,
          tag: row.variant.tag,
        };
        try {
          outcomes[i] = await runCell(cell, row, ctl, (state, from) => {
            console.error(
              `grid ${k} ${what}: ${
                state === "done"
                  ? `reused ${rel}`
                  : `computing in ${rel}${
                    from === null ? "" : ` (continuing from step ${from})`
                  }`
              }`,
            );
          });
        } catch (err) {
          if (!(err instanceof DivergedError)) throw err;
          console.error(`grid ${k} ${what}: ${err.message}`);
          outcomes[i] = { status: "diverged", image: null, error: err.message };
        }
        // a group's sessions go once its last cell is done
        const g = groupOf[cell.row];
        if (order.slice(done).every((j) => groupOf[cells[j].row] !== g)) {
          await groups.get(g)!.model.release();
        }
      }
    } finally {
      stopper.remove();
    }

    // The figure, the table, metrics.json.
    const images = outcomes.map((o) => o.image ? imageOf(o.image) : null);
    const side = enlargedSide([target, ...images]);
    const grid: (ImageTensor | null)[][] = rows.map((_, r) => {
      const line = cells.flatMap((c, i) => c.row === r ? [images[i]] : []);
      return mode === "invert" ? [target, ...line] : line;
    });
    const colLabels = mode === "invert"
      ? [
        "target",
        ...layers.map((l) =>
          base["only-layer"] === true ? `encoder ${l} alone` : layerLabel(m, l)
        ),
      ]
      : classes.map((c) =>
        m.categories ? `${c.index}: ${c.name}` : `class ${c.index}`
      );
    const stepCounts = new Set(
      cells.map((c) => (c.invert ?? c.generate)!.steps),
    );
    const steps = stepCounts.size === 1 ? `, ${[...stepCounts][0]} steps` : "";
    await writePng(
      `${out}/grid.png`,
      montage({
        cells: grid,
        rowLabels: rows.map((r) => r.label),
        colLabels,
        title: `${modelTitle(str(base, "model"), m)}: ${
          mode === "invert" ? "layer representations" : "generated inputs"
        }${steps}`,
        cellSize: [side, side],
      }),
    );
    const table = mode === "invert"
      ? invertTable(rows, layers, cells, outcomes)
      : generateTable(rows, classes, cells, outcomes);
    await writeAtomic(`${out}/grid.csv`, table.csv);
    await writeAtomic(`${out}/grid.md`, table.md + "\n");
    const count = (s: Status) => outcomes.filter((o) => o.status === s).length;
    const stopped = stopper.requested || count("stopped") > 0 ||
      count("not run") > 0;
    await writeJson(`${out}/metrics.json`, {
      command: "grid",
      mode,
      options: {
        ...Object.fromEntries(
          Object.entries(given).filter(([k]) => k !== "help"),
        ),
        model: modelKey(str(base, "model")),
        ...(imagePath === null ? {} : { image: imagePath }),
      },
      model: {
        name: m.name,
        source,
        imageSize: size,
        layers: n,
        classes: m.num_classes,
      },
      rows: rows.map((r) => ({
        label: r.label,
        options: r.text,
        weights: r.model.weights,
        ablations: r.variant.ablations,
        positionEmbedding: r.variant.positionEmbedding,
        swaps: r.variant.swaps,
        tag: r.variant.tag,
      })),
      columns: mode === "invert" ? layers : classes,
      cells: cells.map((c, i) => ({
        row: rows[c.row].label,
        column: mode === "invert" ? layers[c.col] : classes[c.col].index,
        key: c.key,
        dir: `cells/${c.key}`,
        status: outcomes[i].status,
        ...(outcomes[i].error ? { error: outcomes[i].error } : {}),
        final: table.rows[i],
      })),
      reused: count("reused"),
      computed: count("computed"),
      diverged: count("diverged"),
      interrupted: stopped,
      files: ["grid.png", "grid.csv", "grid.md", "metrics.json", "cells/"],
    });
    console.log(table.md);
    const reused = cells.flatMap((c, i) =>
      outcomes[i].status === "reused"
        ? [`${rows[c.row].label} × ${colName(c)}`]
        : []
    );
    console.log(
      `\nreused ${reused.length} of ${cells.length} cells${
        reused.length ? ` (${reused.join("; ")})` : ""
      }; computed ${count("computed")}${
        count("diverged") ? `; ${count("diverged")} diverged` : ""
      }`,
    );
    console.log(
      stopped
        ? `stopped; wrote ${out}/ (grid.png, grid.csv, grid.md, metrics.json, cells/): run the same command again to continue`
        : `wrote ${out}/ (grid.png, grid.csv, grid.md, metrics.json, cells/)`,
    );
    if (stopper.requested) return EXIT_INTERRUPTED;
    return count("diverged") > 0 ? 1 : 0;
  } finally {
    for (const g of groups.values()) await g.model.release();
  }
}

/** `grid`: invert or generate over model variants × layers or classes, as one figure and table. */
export const GRID_COMMAND: Command = {
  about:
    "a figure: invert over variants × layers, or generate over variants × classes, with a table; cells cached",
  synopsis:
    '(--layers L,L… | --classes C,C…) [--variant "LABEL=OPTIONS" …] [options]',
  spec: GRID_SPEC,
  run: gridCommand,
};
