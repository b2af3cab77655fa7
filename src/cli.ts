/**
 * The command line: `deno run -A mod.ts <command> [options]` with the commands
 * `invert` (layer representation), `generate` (input generation) and `demo`.
 * Progress goes to stderr, a summary to stdout, results to files under `--out`
 * (each written to a temporary name, then renamed). Nothing is written before
 * the inputs validate: the model loads, the image decodes, the numbers make
 * sense.
 *
 * Exit codes: 0 done, 1 runtime error (unreadable input, model or weights not
 * found, divergence), 2 usage error (unknown option, bad value), 130
 * interrupted (Ctrl-C).
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { BACKEND_NAMES, type BackendName } from "./backend.ts";
import { resolveClass } from "./classes.ts";
import {
  fitToSize,
  type ImageTensor,
  normalize as normalizeImage,
  type PerChannel,
  readImage,
  writePng,
} from "./image.ts";
import { loadModel, type Model } from "./model.ts";
import { decodeNpy, encodeNpy } from "./npy.ts";
import { linePlot, montage } from "./plot.ts";
import {
  DivergedError,
  generate,
  GENERATE_DEFAULTS,
  type GenerateResult,
  invert,
  INVERT_DEFAULTS,
  type InvertResult,
  psnr,
  randomStart,
} from "./render.ts";
import { parseSchedule, type Schedule } from "./transform.ts";

const ROOT = new URL("../", import.meta.url);
const DEFAULT_IMAGE = new URL("assets/chelsea.png", ROOT);
const SNAPSHOT_FORMAT = "vitrep-snapshot/1";
const EXIT_INTERRUPTED = 130;

// ---------------------------------------------------------------------------
// Errors: usage errors (exit 2) are marked; everything else exits 1.

const USAGE = new WeakSet<object>();

function usage<E extends Error>(err: E): E {
  USAGE.add(err);
  return err;
}

function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error) USAGE.add(err);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Options: one table per command gives parseArgs' options and the help text.

interface Opt {
  type: "string" | "boolean";
  /** Default value, as typed on the command line. */
  default?: string | boolean;
  /** Shown instead of the default when there is none. */
  defaultText?: string;
  arg?: string;
  help: string;
  multiple?: boolean;
  /** Saved in snapshot.json and taken from it on --resume. */
  saved?: boolean;
  /** Fixed by the snapshot: a different value on --resume is an error. */
  identity?: boolean;
}

type Spec = Record<string, Opt>;
type Raw = Record<string, string | boolean | string[] | undefined>;

const sched = (s: Schedule) => `${s.start}:${s.end}`;

const MODEL_OPTS: Spec = {
  model: {
    type: "string",
    default: "vit_b_32",
    arg: "NAME|DIR|URL",
    help:
      "a model under weights/ (vit_b_16, vit_b_32, vit_l_16, …), a converted model folder, or an http(s) URL of one",
    saved: true,
    identity: true,
  },
  weights: {
    type: "string",
    default: "untrained",
    arg: "W",
    help:
      "untrained (drawn with --seed), a weight set converted into the model folder, or a .safetensors file or URL",
    saved: true,
    identity: true,
  },
  seed: {
    type: "string",
    default: "0",
    arg: "N",
    help: "seed of the untrained weights and of the run's random start",
    saved: true,
    identity: true,
  },
  normalize: {
    type: "boolean",
    default: true,
    help:
      "normalize images with the model's mean/std (--no-normalize: raw [0,1] pixels, as the essay's code)",
    saved: true,
    identity: true,
  },
  backend: {
    type: "string",
    default: "auto",
    arg: "NAME",
    help: `${BACKEND_NAMES.join(" | ")}`,
    saved: true,
  },
  threads: {
    type: "string",
    arg: "N",
    defaultText: "all cores",
    help: "threads of the CPU backends",
    saved: true,
  },
};

const SCHEDULE_OPTS = (d: {
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
}): Spec => ({
  lr: {
    type: "string",
    default: sched(d.lr),
    arg: "START:END",
    help: "learning rate, linear from START to END (one number: constant)",
    saved: true,
  },
  sigma: {
    type: "string",
    default: sched(d.sigma),
    arg: "START:END",
    help: "σ of the Gaussian blur after each step, linear from START to END",
    saved: true,
  },
  "kernel-size": {
    type: "string",
    default: String(d.kernelSize),
    arg: "K",
    help: "side of the blur kernel (odd)",
    saved: true,
  },
});

const RUN_OPTS = (out: string): Spec => ({
  "trace-every": {
    type: "string",
    default: "10",
    arg: "K",
    help: "write every K-th trace row (and the last) to traces.csv",
    saved: true,
  },
  out: {
    type: "string",
    default: out,
    arg: "DIR",
    help: "output folder (with --resume: the resumed folder)",
  },
  "save-every": {
    type: "string",
    default: "0",
    arg: "K",
    help:
      "every K steps write snapshot.npy + snapshot.json into --out, to --resume from (0: only on Ctrl-C)",
    saved: true,
  },
  "stop-at": {
    type: "string",
    arg: "N",
    defaultText: "none",
    help:
      "stop after step N as Ctrl-C would (snapshot written; continue with --resume)",
  },
  resume: {
    type: "string",
    arg: "DIR",
    defaultText: "none",
    help:
      "continue the run whose snapshot is in DIR (options come from DIR/snapshot.json; given ones override)",
  },
  quiet: {
    type: "boolean",
    default: false,
    help: "no progress bar on stderr",
  },
  help: { type: "boolean", default: false, help: "show this help" },
});

const INVERT_SPEC: Spec = {
  ...MODEL_OPTS,
  image: {
    type: "string",
    default: "assets/chelsea.png",
    arg: "PATH",
    help:
      "target image (PNG or JPEG), resized and centre-cropped to the model's size",
    saved: true,
    identity: true,
  },
  layer: {
    type: "string",
    default: String(INVERT_DEFAULTS.layer),
    arg: "L",
    help: "layer to represent: 0 = input processing, 1..N = encoder block",
    saved: true,
    identity: true,
  },
  "only-layer": {
    type: "boolean",
    default: false,
    help:
      "represent encoder L alone: input processing, then encoder L (skipping 1..L−1)",
    saved: true,
    identity: true,
  },
  loss: {
    type: "string",
    default: INVERT_DEFAULTS.loss,
    arg: "l1|l2",
    help: "feature loss at the layer",
    saved: true,
    identity: true,
  },
  steps: {
    type: "string",
    default: String(INVERT_DEFAULTS.steps),
    arg: "N",
    help: "gradient steps",
    saved: true,
  },
  ...SCHEDULE_OPTS(INVERT_DEFAULTS),
  ...RUN_OPTS("out/invert"),
};

const GENERATE_SPEC: Spec = {
  ...MODEL_OPTS,
  class: {
    type: "string",
    multiple: true,
    arg: "C[,C…]",
    defaultText: "required",
    help:
      "class index or name (unique part of one); several (comma-separated or repeated) give a grid",
    saved: true,
  },
  constant: {
    type: "string",
    default: String(GENERATE_DEFAULTS.constant),
    arg: "C",
    help: "the constant C of the objective |C − logit|",
    saved: true,
    identity: true,
  },
  steps: {
    type: "string",
    default: String(GENERATE_DEFAULTS.steps),
    arg: "N",
    help: "gradient steps",
    saved: true,
  },
  "jitter-after": {
    type: "string",
    default: String(GENERATE_DEFAULTS.jitterAfter),
    arg: "N",
    help:
      "steps at model size before the image is enlarged and updated in random crops",
    saved: true,
    identity: true,
  },
  canvas: {
    type: "string",
    default: String(GENERATE_DEFAULTS.canvasSize),
    arg: "PX",
    help: "side of the enlarged canvas the crops come from",
    saved: true,
    identity: true,
  },
  ...SCHEDULE_OPTS(GENERATE_DEFAULTS),
  ...RUN_OPTS("out/generate"),
};

const DEMO_SPEC: Spec = Object.fromEntries(
  Object.entries(INVERT_SPEC).flatMap(([k, o]): [string, Opt][] => {
    if (["only-layer", "save-every", "stop-at", "resume"].includes(k)) {
      return [];
    }
    if (k === "layer") {
      return [["layers", {
        type: "string",
        default: "1,12",
        arg: "L,L",
        help: "layers to represent, one run each, files in DIR/layerL/",
      }]];
    }
    if (k === "steps") {
      return [[k, { ...o, default: "300", help: "gradient steps per layer" }]];
    }
    if (k === "out") {
      return [[k, { ...o, default: "out/demo", help: "output folder" }]];
    }
    return [[k, o]];
  }),
);

const ABOUT: Record<string, [string, string, Spec]> = {
  invert: [
    "layer representation: from noise, an image whose layer output matches the target's",
    "--image IMG --layer L [options]",
    INVERT_SPEC,
  ],
  generate: [
    "input generation: an image driving a class logit towards a constant",
    "--class C [options]",
    GENERATE_SPEC,
  ],
  demo: [
    "invert layers of untrained ViT-B/32 for a photo → out/demo/",
    "[options]",
    DEMO_SPEC,
  ],
};

function defaultText(o: Opt): string {
  if (o.defaultText) return o.defaultText;
  if (o.type === "boolean") return o.default ? "on" : "off";
  return String(o.default);
}

function optionsHelp(spec: Spec): string {
  const rows = Object.entries(spec).map(([name, o]) => {
    const flag = o.type === "boolean" && o.default === true
      ? `--${name}, --no-${name}`
      : `--${name}${o.arg ? ` ${o.arg}` : ""}`;
    const dflt = name === "help" ? "" : ` (default: ${defaultText(o)})`;
    return [flag, `${o.help}${dflt}`] as const;
  });
  const w = Math.min(Math.max(...rows.map((r) => r[0].length)) + 2, 24);
  const indent = " ".repeat(2 + w);
  return rows.map(([f, h]) => {
    const lines: string[] = [];
    let line = "";
    for (const word of h.split(" ")) {
      if (line && line.length + 1 + word.length > 78 - indent.length) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
    const head = f.length + 2 <= w
      ? `  ${f.padEnd(w)}${lines[0]}`
      : `  ${f}\n${indent}${lines[0]}`;
    return [head, ...lines.slice(1).map((l) => indent + l)].join("\n");
  }).join("\n");
}

const EXIT_HELP =
  `Exit codes: 0 done, 1 runtime error (unreadable image, model or weights not
found, divergence), 2 usage error (unknown option, bad value), 130 interrupted.`;

function commandHelp(cmd: string): string {
  const [about, synopsis, spec] = ABOUT[cmd];
  return `vitrep ${cmd} — ${about}

Usage: deno run -A mod.ts ${cmd} ${synopsis}

Options:
${optionsHelp(spec)}

${EXIT_HELP}
`;
}

function mainHelp(): string {
  const list = Object.entries(ABOUT).map(([c, [about]]) =>
    `  ${c.padEnd(10)}${about}`
  ).join("\n");
  return `vitrep — what vision transformers keep of their input

Usage: deno run -A mod.ts <command> [options]
       deno run -A mod.ts <command> --help

Commands:
${list}

${
    Object.keys(ABOUT).map((c) => `${c} options:\n${optionsHelp(ABOUT[c][2])}`)
      .join("\n\n")
  }

Ctrl-C stops after the current step and writes the latest image, its metrics
and a snapshot; --resume DIR continues from it.
${EXIT_HELP}
`;
}

/** Parses a command's arguments: only the options given (no defaults). */
function parse(cmd: string, spec: Spec, args: string[]): Raw {
  const options: ParseArgsOptionsConfig = Object.fromEntries(
    Object.entries(spec).map(([name, o]) => [
      name,
      o.multiple ? { type: o.type, multiple: true } : { type: o.type },
    ]),
  );
  try {
    const { values } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
    return values as Raw;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: string }).code;
    const name = msg.match(/'([^']+)'/)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw usage(
        new TypeError(
          `Unknown option "${name}" for ${cmd}: see 'deno run -A mod.ts ${cmd} --help'`,
        ),
      );
    }
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      throw usage(
        new TypeError(
          `Unexpected argument "${name}" for ${cmd}: options start with --, see 'deno run -A mod.ts ${cmd} --help'`,
        ),
      );
    }
    throw usage(
      new TypeError(
        `Invalid option: ${
          msg.split("\n")[0]
        }: see 'deno run -A mod.ts ${cmd} --help'`,
      ),
    );
  }
}

function defaults(spec: Spec): Raw {
  return Object.fromEntries(
    Object.entries(spec).filter(([, o]) => o.default !== undefined).map((
      [k, o],
    ) => [k, o.default]),
  );
}

function str(raw: Raw, name: string): string {
  const v = raw[name];
  return Array.isArray(v) ? v.join(",") : String(v);
}

function intOpt(raw: Raw, name: string, min: number): number {
  const text = str(raw, name).trim();
  const v = Number(text);
  if (!/^\+?\d+$/.test(text) || !Number.isSafeInteger(v) || v < min) {
    throw usage(
      new RangeError(
        `Invalid --${name} "${str(raw, name)}": expected ${
          min === 0
            ? "a non-negative"
            : min === 1
            ? "a positive"
            : `an ≥ ${min}`
        } integer`,
      ),
    );
  }
  return v;
}

function numOpt(raw: Raw, name: string): number {
  const text = str(raw, name).trim();
  const v = Number(text);
  if (text === "" || !Number.isFinite(v)) {
    throw usage(
      new RangeError(
        `Invalid --${name} "${str(raw, name)}": expected a finite number`,
      ),
    );
  }
  return v;
}

function schedOpt(raw: Raw, name: string): Schedule {
  return asUsage(() => parseSchedule(str(raw, name), name));
}

function kernelOpt(raw: Raw): number {
  const k = intOpt(raw, "kernel-size", 1);
  if (k % 2 === 0) {
    throw usage(
      new RangeError(
        `Invalid --kernel-size "${k}": expected an odd positive integer`,
      ),
    );
  }
  return k;
}

function backendOpt(raw: Raw): BackendName {
  const b = str(raw, "backend") as BackendName;
  if (!BACKEND_NAMES.includes(b)) {
    throw usage(
      new TypeError(
        `Invalid --backend "${b}": expected one of ${BACKEND_NAMES.join(", ")}`,
      ),
    );
  }
  return b;
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function localModels(): string[] {
  if (ROOT.protocol !== "file:") return [];
  try {
    return [...Deno.readDirSync(fileURLToPath(new URL("weights/", ROOT)))]
      .filter((e) => e.isDirectory).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** `--model` as saved: a URL or a name as given, a folder made absolute. */
function modelKey(name: string): string {
  if (/^https?:\/\//.test(name)) return name;
  if (/[/\\]/.test(name) || name.startsWith(".") || isDir(name)) {
    return resolvePath(name);
  }
  return name;
}

/** Resolves `--model`: an http(s) URL, a folder (made absolute), or a name under weights/. */
function modelSource(name: string): string {
  if (name === "") {
    throw usage(
      new TypeError(`Invalid --model "": expected a name, a folder or a URL`),
    );
  }
  const key = modelKey(name);
  if (key !== name || /^https?:\/\//.test(name) || /[/\\]/.test(name)) {
    return key;
  }
  const url = new URL(`weights/${name}`, ROOT);
  if (url.protocol !== "file:") return url.href;
  const path = fileURLToPath(url);
  if (!isDir(path)) {
    throw new TypeError(
      `Unknown model "${name}": expected one of ${
        localModels().join(", ")
      } (folders under weights/), a model folder or an http(s) URL`,
    );
  }
  return path;
}

/** Makes a path option absolute so a snapshot works from another folder. */
function absolutePath(path: string): string {
  return /^https?:\/\//.test(path) ? path : resolvePath(path);
}

function defaultImage(raw: Raw): string {
  const v = str(raw, "image");
  if (v === INVERT_SPEC.image.default && DEFAULT_IMAGE.protocol === "file:") {
    return fileURLToPath(DEFAULT_IMAGE);
  }
  return absolutePath(v);
}

// ---------------------------------------------------------------------------
// Files.

async function writeAtomic(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

function writeJson(path: string, value: unknown): Promise<void> {
  return writeAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

function writeNpy(path: string, data: Float32Array): Promise<void> {
  const side = Math.round(Math.sqrt(data.length / 3));
  return writeAtomic(path, encodeNpy(data, [1, 3, side, side]));
}

type Row = Record<string, number | null>;

function toCsv(columns: readonly string[], rows: readonly Row[]): string {
  const lines = rows.map((r) =>
    columns.map((c) => (r[c] === null || r[c] === undefined ? "" : r[c]))
      .join(",")
  );
  return [columns.join(","), ...lines].join("\n") + "\n";
}

async function readCsv(path: string): Promise<Row[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const [head, ...lines] = text.trim().split("\n");
  const cols = head.split(",");
  return lines.filter((l) => l.trim() !== "").map((l) => {
    const cells = l.split(",");
    return Object.fromEntries(
      cols.map((c, i) => [c, cells[i] === "" ? null : Number(cells[i])]),
    );
  });
}

/** Every k-th row and the last. */
function thin(rows: readonly Row[], k: number): Row[] {
  const last = rows.at(-1)?.step;
  return rows.filter((r) => (r.step as number) % k === 0 || r.step === last);
}

function imageOf(data: Float32Array): ImageTensor {
  const side = Math.round(Math.sqrt(data.length / 3));
  return { data, channels: 3, height: side, width: side };
}

/** A labelled row of images, small images enlarged (whole multiples) to ≥128 px. */
function labelledRow(
  images: readonly (ImageTensor | null)[],
  labels: readonly string[],
  title?: string,
): ImageTensor {
  const side = Math.max(...images.map((i) => i?.height ?? 0), 1);
  const cell = side * Math.max(1, Math.ceil(128 / side));
  return montage({
    cells: [images],
    colLabels: labels,
    title,
    cellSize: [cell, cell],
  });
}

// ---------------------------------------------------------------------------
// Snapshots.

interface Snapshot {
  format: string;
  command: string;
  /** The step the run continues from. */
  step: number;
  /** The saved options, as on the command line. */
  options: Raw;
  /** invert: first step meeting the noise criterion so far. */
  criterionStep?: number | null;
}

async function writeSnapshot(
  dir: string,
  command: string,
  image: Float32Array,
  step: number,
  options: Raw,
  extra: Partial<Snapshot> = {},
): Promise<void> {
  await writeNpy(`${dir}/snapshot.npy`, image);
  await writeJson(`${dir}/snapshot.json`, {
    format: SNAPSHOT_FORMAT,
    command,
    step,
    options,
    ...extra,
  });
}

async function readSnapshotJson(dir: string, command: string) {
  let snap: Snapshot;
  try {
    snap = JSON.parse(await Deno.readTextFile(`${dir}/snapshot.json`));
  } catch (err) {
    throw new TypeError(
      `Cannot resume from "${dir}": ${
        err instanceof Deno.errors.NotFound
          ? "no snapshot.json there"
          : err instanceof Error
          ? err.message
          : err
      }: expected the --out folder of a run stopped with Ctrl-C or --stop-at, or run with --save-every`,
    );
  }
  if (snap?.format !== SNAPSHOT_FORMAT || typeof snap.options !== "object") {
    throw new TypeError(
      `Invalid snapshot "${dir}/snapshot.json": expected format ${SNAPSHOT_FORMAT}`,
    );
  }
  if (snap.command !== command) {
    throw usage(
      new TypeError(
        `Invalid --resume "${dir}": its snapshot is of a ${snap.command} run: expected a ${command} run's folder`,
      ),
    );
  }
  return snap;
}

async function readSnapshotImage(
  dir: string,
  sides: readonly number[],
): Promise<Float32Array> {
  let npy: { data: Float32Array; shape: number[] };
  try {
    npy = decodeNpy(await Deno.readFile(`${dir}/snapshot.npy`));
  } catch (err) {
    throw new TypeError(
      `Cannot read "${dir}/snapshot.npy": ${
        err instanceof Error ? err.message : err
      }`,
    );
  }
  const [b, c, h, w] = npy.shape;
  if (
    npy.shape.length !== 4 || b !== 1 || c !== 3 || h !== w ||
    !sides.includes(h)
  ) {
    throw new RangeError(
      `Invalid snapshot image "${dir}/snapshot.npy" of shape [${npy.shape}]: expected [1, 3, S, S] with S in ${
        sides.join(" or ")
      }`,
    );
  }
  return npy.data;
}

/**
 * Options for a resumed run: defaults, then the snapshot's, then those given.
 * A given identity option (model, image, layer, …) must agree with the snapshot.
 */
function mergeResume(
  spec: Spec,
  given: Raw,
  snap: Snapshot,
  dir: string,
  canonical: (raw: Raw) => Record<string, unknown>,
): Raw {
  const base = { ...defaults(spec), ...snap.options };
  const merged = { ...base, ...given };
  const a = canonical(base), b = canonical(merged);
  for (const [name, o] of Object.entries(spec)) {
    if (!o.identity || given[name] === undefined) continue;
    if (JSON.stringify(a[name]) !== JSON.stringify(b[name])) {
      throw usage(
        new RangeError(
          `Invalid --${name} "${
            str(given, name)
          }" with --resume: the snapshot in "${dir}" was made with --${name} ${
            JSON.stringify(snap.options[name] ?? spec[name].default)
          }; leave it out to continue that run`,
        ),
      );
    }
  }
  return merged;
}

function savedOptions(spec: Spec, raw: Raw): Raw {
  return Object.fromEntries(
    Object.entries(spec).filter(([k, o]) => o.saved && raw[k] !== undefined)
      .map(([k]) => [k, Array.isArray(raw[k]) ? str(raw, k) : raw[k]]),
  );
}

// ---------------------------------------------------------------------------
// Progress and interrupts.

interface Bar {
  update(step: number, steps: number, extra: string): void;
  done(): void;
}

function progress(label: string, quiet: boolean): Bar {
  const start = performance.now();
  const enc = new TextEncoder();
  let last = -Infinity;
  let count = 0;
  let pending: string | null = null;
  let open = false;
  const draw = (line: string, end: boolean) => {
    Deno.stderr.writeSync(enc.encode(`\r${line}\x1b[K${end ? "\n" : ""}`));
    last = performance.now();
    pending = null;
    open = !end;
  };
  return {
    update(step, steps, extra) {
      if (quiet) return;
      count++;
      const done = step + 1;
      const width = 24;
      const filled = Math.round((done / steps) * width);
      const secs = (performance.now() - start) / 1000;
      const rate = count / Math.max(secs, 1e-9);
      const eta = (steps - done) / rate;
      const line = `${label} [${"#".repeat(filled)}${
        "-".repeat(width - filled)
      }] ${done}/${steps} ${rate.toFixed(1)} steps/s ETA ${
        eta.toFixed(0)
      }s ${extra}`;
      if (done === steps) draw(line, true);
      else if (performance.now() - last >= 200) draw(line, false);
      else pending = line;
    },
    done() {
      if (quiet) return;
      if (pending !== null) draw(pending, true);
      else if (open) {
        Deno.stderr.writeSync(enc.encode("\n"));
        open = false;
      }
    },
  };
}

/** Ctrl-C (or an abort signal) asks runs to stop after the current step. */
class Stopper {
  requested = false;
  #listener = () => {
    if (this.requested) Deno.exit(EXIT_INTERRUPTED); // a second Ctrl-C quits at once
    this.requested = true;
    console.error("\nvitrep: stopping after this step (Ctrl-C again to quit)");
  };
  #signal?: AbortSignal;
  #onAbort = () => {
    this.requested = true;
  };
  constructor(signal?: AbortSignal) {
    this.#signal = signal;
  }
  install(): void {
    try {
      Deno.addSignalListener("SIGINT", this.#listener);
    } catch {
      // no signals on this platform
    }
    if (this.#signal?.aborted) this.requested = true;
    this.#signal?.addEventListener("abort", this.#onAbort);
  }
  remove(): void {
    try {
      Deno.removeSignalListener("SIGINT", this.#listener);
    } catch {
      // no signals on this platform
    }
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

interface Control {
  /** Output folder of this run. */
  out: string;
  quiet: boolean;
  saveEvery: number;
  stopAt: number | null;
  traceEvery: number;
  stopper: Stopper;
  /** Saved options for snapshot.json and metrics.json. */
  options: Raw;
  /** Model and run description for metrics.json. */
  about: Record<string, unknown>;
  label: string;
}

type StopReason = null | "SIGINT" | "stop-at";

function stopReason(ctl: Control, next: number, steps: number): StopReason {
  if (next >= steps) return null;
  if (ctl.stopper.requested) return "SIGINT";
  if (ctl.stopAt !== null && next >= ctl.stopAt) return "stop-at";
  return null;
}

// ---------------------------------------------------------------------------
// Image quality.

/**
 * Mean SSIM of `x` against `ref` on luminance (Rec. 601), over non-overlapping
 * 8×8 windows (one window for images under 8 px); `x` is clamped to [0,1].
 * Both are [3,H,W] with H = W = `size`.
 *
 * @example
 * ```ts
 * import { ssim } from "./cli.ts";
 * const a = new Float32Array(3 * 16 * 16).map((_, i) => (i % 7) / 7);
 * console.log(ssim(a, a, 16)); // 1
 * ```
 */
export function ssim(x: Float32Array, ref: Float32Array, size: number): number {
  const n = size * size;
  if (x.length !== 3 * n || ref.length !== 3 * n) {
    throw new RangeError(
      `Invalid images of ${x.length} and ${ref.length} values: expected 3x${size}x${size} = ${
        3 * n
      } each`,
    );
  }
  const lum = (a: Float32Array, clamp: boolean) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = (v: number) => clamp ? Math.min(1, Math.max(0, v)) : v;
      out[i] = 0.299 * c(a[i]) + 0.587 * c(a[n + i]) + 0.114 * c(a[2 * n + i]);
    }
    return out;
  };
  const a = lum(x, true), b = lum(ref, false);
  const win = size >= 8 ? 8 : size;
  const c1 = 0.01 ** 2, c2 = 0.03 ** 2;
  let total = 0, count = 0;
  for (let y0 = 0; y0 + win <= size; y0 += win) {
    for (let x0 = 0; x0 + win <= size; x0 += win) {
      let ma = 0, mb = 0;
      for (let y = y0; y < y0 + win; y++) {
        for (let xx = x0; xx < x0 + win; xx++) {
          ma += a[y * size + xx];
          mb += b[y * size + xx];
        }
      }
      const m = win * win;
      ma /= m;
      mb /= m;
      let va = 0, vb = 0, cov = 0;
      for (let y = y0; y < y0 + win; y++) {
        for (let xx = x0; xx < x0 + win; xx++) {
          const da = a[y * size + xx] - ma, db = b[y * size + xx] - mb;
          va += da * da;
          vb += db * db;
          cov += da * db;
        }
      }
      va /= m - 1 || 1;
      vb /= m - 1 || 1;
      cov /= m - 1 || 1;
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) /
        ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

/** Fails like the library when a step's update made the image non-finite, keeping the image before it. */
function checkFinite(
  step: number,
  image: Float32Array,
  before: Float32Array,
): void {
  for (let i = 0; i < image.length; i++) {
    if (!Number.isFinite(image[i])) {
      throw new DivergedError(
        step,
        before,
        `the update made pixel ${i} ${image[i]}`,
      );
    }
  }
}

function norm2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

// ---------------------------------------------------------------------------
// Loading.

async function openModel(raw: Raw, source: string): Promise<Model> {
  const threads = raw.threads === undefined
    ? undefined
    : intOpt(raw, "threads", 1);
  return await loadModel(source, {
    weights: str(raw, "weights"),
    seed: intOpt(raw, "seed", 0),
    backend: backendOpt(raw),
    threads,
  });
}

async function loadTarget(path: string, size: number): Promise<ImageTensor> {
  let img: ImageTensor;
  try {
    img = await readImage(path);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw new TypeError(
      `Cannot read image "${path}": ${
        err instanceof Deno.errors.NotFound
          ? "no such file"
          : err instanceof Error
          ? err.message
          : err
      }: expected a PNG or JPEG file`,
    );
  }
  return fitToSize(img, size);
}

function modelAbout(model: Model, source: string, normalize: boolean) {
  const m = model.manifest;
  return {
    model: {
      name: m.name,
      source,
      imageSize: m.image_size,
      patchSize: m.patch_size,
      layers: m.num_layers,
      classes: m.num_classes,
    },
    weights: model.weights,
    backend: model.backend,
    normalize,
    normalization: normalize ? { mean: m.input.mean, std: m.input.std } : null,
  };
}

/** Removes `dir` if this run created it and left it empty. */
async function cleanEmpty(dir: string, existed: boolean): Promise<void> {
  if (existed) return;
  try {
    for await (const _ of Deno.readDir(dir)) return;
    await Deno.remove(dir);
  } catch {
    // gone already
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// invert

interface InvertSettings {
  layer: number;
  onlyLayer: boolean;
  loss: "l1" | "l2";
  steps: number;
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
  normalize: boolean;
  seed: number;
}

interface InvertResume {
  image: Float32Array;
  step: number;
  rows: Row[];
  criterionStep: number | null;
  from: string;
}

/** Final figures of an invert run, as in metrics.json. */
interface InvertSummary {
  layer: number;
  steps: number;
  embeddingDistance: number;
  inputDistance: number;
  noiseBaseline: number;
  criterionMet: boolean;
  criterionStep: number | null;
  psnr: number;
  ssim: number;
  interrupted: boolean;
  stopReason: StopReason;
}

const INVERT_COLUMNS = [
  "step",
  "loss",
  "embedding_distance",
  "input_distance",
  "noise_baseline",
  "below_noise_baseline",
  "psnr",
  "ssim",
  "lr",
  "sigma",
];

/** Typed settings from raw options (usage errors for bad values). */
function invertSettings(raw: Raw, numLayers?: number): InvertSettings {
  const layer = intOpt(raw, "layer", 0);
  if (numLayers !== undefined && layer > numLayers) {
    throw usage(
      new RangeError(
        `Invalid --layer "${
          str(raw, "layer")
        }": expected 0 (input processing) to ${numLayers} (encoder blocks) for this model`,
      ),
    );
  }
  const onlyLayer = raw["only-layer"] === true;
  if (onlyLayer && layer === 0) {
    throw usage(
      new RangeError(
        `Invalid --layer "0" with --only-layer: expected an encoder block 1..N`,
      ),
    );
  }
  const loss = str(raw, "loss");
  if (loss !== "l1" && loss !== "l2") {
    throw usage(
      new TypeError(`Invalid --loss "${loss}": expected l1 or l2`),
    );
  }
  return {
    layer,
    onlyLayer,
    loss,
    steps: intOpt(raw, "steps", 1),
    lr: schedOpt(raw, "lr"),
    sigma: schedOpt(raw, "sigma"),
    kernelSize: kernelOpt(raw),
    normalize: raw.normalize !== false,
    seed: intOpt(raw, "seed", 0),
  };
}

function checkKernel(kernelSize: number, size: number): void {
  if ((kernelSize - 1) / 2 >= size) {
    throw usage(
      new RangeError(
        `Invalid --kernel-size "${kernelSize}": expected a kernel narrower than twice the model's ${size}px image`,
      ),
    );
  }
}

/** The essay's noise baseline ‖O_L(a) − O_L(a + N(0, 1/18))‖₂, as invert computes it (for per-row criteria). */
async function noiseBaseline(
  model: Model,
  target: Float32Array,
  s: InvertSettings,
): Promise<number> {
  const m = model.manifest;
  const toModel = (a: Float32Array) =>
    s.normalize
      ? normalizeImage(
        imageOf(a),
        m.input.mean as PerChannel,
        m.input.std as PerChannel,
      ).data
      : a;
  const noisy = randomStart(target.length, s.seed + 1, 0, 1 / 18);
  for (let i = 0; i < noisy.length; i++) noisy[i] += target[i];
  const opts = { layer: s.layer, blocks: s.onlyLayer ? [s.layer] : undefined };
  const a = await model.forward(toModel(target), opts);
  const b = await model.forward(toModel(noisy), opts);
  return norm2(b.data, a.data);
}

/** Runs one inversion into `ctl.out` and writes all its files: the path shared by invert and demo. */
async function runInvert(
  model: Model,
  target: ImageTensor,
  s: InvertSettings,
  ctl: Control,
  resume?: InvertResume,
): Promise<{ summary: InvertSummary; image: Float32Array }> {
  const size = model.manifest.image_size;
  const n = 3 * size * size;
  const baseline = await noiseBaseline(model, target.data, s);
  const rows: Row[] = resume
    ? resume.rows.filter((r) => (r.step as number) < resume.step)
    : [];
  let prev = resume ? resume.image : randomStart(n, s.seed);
  let criterionStep = resume?.criterionStep ?? null;
  let reason = null as StopReason;
  const bar = progress(ctl.label, ctl.quiet);
  const started = performance.now();
  const traces = () => toCsv(INVERT_COLUMNS, thin(rows, ctl.traceEvery));
  let result: InvertResult;
  try {
    result = await invert(model, target.data, {
      layer: s.layer,
      blocks: s.onlyLayer ? [s.layer] : undefined,
      steps: s.steps,
      lr: s.lr,
      sigma: s.sigma,
      kernelSize: s.kernelSize,
      loss: s.loss,
      normalize: s.normalize,
      seed: s.seed,
      resume: resume ? { image: resume.image, step: resume.step } : undefined,
      onStep: async (info) => {
        checkFinite(info.step, info.image, prev);
        const below = info.embeddingDistance < baseline;
        rows.push({
          step: info.step,
          loss: info.loss,
          embedding_distance: info.embeddingDistance,
          input_distance: info.inputDistance,
          noise_baseline: baseline,
          below_noise_baseline: below ? 1 : 0,
          psnr: psnr(prev, target.data),
          ssim: ssim(prev, target.data, size),
          lr: info.lr,
          sigma: info.sigma,
        });
        if (below && criterionStep === null) criterionStep = info.step;
        prev = info.image;
        bar.update(
          info.step,
          info.steps,
          `emb ${info.embeddingDistance.toPrecision(4)} (noise ${
            baseline.toPrecision(4)
          })`,
        );
        const next = info.step + 1;
        if (ctl.saveEvery > 0 && next % ctl.saveEvery === 0 && next < s.steps) {
          await writeSnapshot(
            ctl.out,
            "invert",
            info.image,
            next,
            ctl.options,
            { criterionStep },
          );
          await writeAtomic(`${ctl.out}/traces.csv`, traces());
        }
        reason = stopReason(ctl, next, s.steps);
        return reason === null;
      },
    });
  } catch (err) {
    bar.done();
    if (err instanceof DivergedError) {
      await writeSnapshot(
        ctl.out,
        "invert",
        err.lastImage,
        err.step,
        ctl.options,
        { criterionStep },
      );
      await writeAtomic(`${ctl.out}/traces.csv`, traces());
      console.error(
        `vitrep: kept the last finite image (before step ${err.step}) in ${ctl.out}/snapshot.npy; continue with --resume ${ctl.out} and a lower --lr`,
      );
    }
    throw err;
  }
  bar.done();
  const rep = imageOf(result.image);
  const interrupted = reason !== null;
  if (interrupted) {
    await writeSnapshot(
      ctl.out,
      "invert",
      result.image,
      result.final.steps,
      ctl.options,
      { criterionStep: resume?.criterionStep ?? result.criterionStep },
    );
  }
  const written = thin(rows, ctl.traceEvery);
  const finalCriterion = resume?.criterionStep ?? result.criterionStep;
  const summary: InvertSummary = {
    layer: s.layer,
    steps: result.final.steps,
    embeddingDistance: result.final.embeddingDistance,
    inputDistance: result.final.inputDistance,
    noiseBaseline: result.noiseBaseline,
    criterionMet: finalCriterion !== null,
    criterionStep: finalCriterion,
    psnr: result.final.psnr,
    ssim: ssim(result.image, target.data, size),
    interrupted,
    stopReason: reason,
  };
  await writePng(`${ctl.out}/representation.png`, rep);
  await writeNpy(`${ctl.out}/representation.npy`, result.image);
  await writePng(`${ctl.out}/target.png`, target);
  const what = s.onlyLayer ? `encoder ${s.layer} alone` : `layer ${s.layer}`;
  await writePng(
    `${ctl.out}/side_by_side.png`,
    labelledRow([target, rep], [
      "target",
      `representation (${what}, ${result.final.steps} steps)`,
    ]),
  );
  await writeAtomic(`${ctl.out}/traces.csv`, toCsv(INVERT_COLUMNS, written));
  const steps = written.map((r) => r.step as number);
  await writePng(
    `${ctl.out}/convergence.png`,
    linePlot({
      title: `Representation of ${what}`,
      xLabel: "step",
      yLabel: "‖O(a) − O(a_g)‖₂",
      y2Label: "‖a − a_g‖₂",
      logY: true,
      logY2: true,
      series: [
        {
          label: "embedding distance",
          x: steps,
          y: written.map((r) => r.embedding_distance as number),
        },
        {
          label: "input distance",
          x: steps,
          y: written.map((r) => r.input_distance as number),
          axis: "right",
        },
      ],
      hlines: [{
        label: "noise baseline",
        y: result.noiseBaseline,
        dashed: true,
      }],
    }),
  );
  await writeJson(`${ctl.out}/metrics.json`, {
    command: "invert",
    options: ctl.options,
    ...ctl.about,
    settings: {
      ...s,
      blocks: s.onlyLayer
        ? [s.layer]
        : Array.from({ length: s.layer }, (_, i) => i + 1),
    },
    final: summary,
    interrupted,
    stopReason: reason,
    resumedFrom: resume ? { dir: resume.from, step: resume.step } : null,
    seconds: (performance.now() - started) / 1000,
    files: [
      "representation.png",
      "representation.npy",
      "target.png",
      "side_by_side.png",
      "traces.csv",
      "convergence.png",
      ...(interrupted ? ["snapshot.npy", "snapshot.json"] : []),
    ],
  });
  return { summary, image: result.image };
}

function figuresTable(rows: readonly InvertSummary[]): string {
  const f = (v: number, d: number) => Number.isFinite(v) ? v.toFixed(d) : "∞";
  return [
    "| layer | ‖O(a)−O(a_g)‖₂ | noise baseline ‖O(a)−O(a′)‖₂ | criterion met | ‖a−a_g‖₂ | PSNR dB | SSIM |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.layer} | ${f(r.embeddingDistance, 3)} | ${
        f(r.noiseBaseline, 3)
      } | ${r.criterionMet ? `yes (step ${r.criterionStep})` : "no"} | ${
        f(r.inputDistance, 2)
      } | ${f(r.psnr, 2)} | ${f(r.ssim, 3)} |`
    ),
  ].join("\n");
}

/** Control options shared by invert and generate. */
function controlOpts(raw: Raw) {
  return {
    traceEvery: intOpt(raw, "trace-every", 1),
    saveEvery: intOpt(raw, "save-every", 0),
    stopAt: raw["stop-at"] === undefined ? null : intOpt(raw, "stop-at", 1),
    quiet: raw.quiet === true,
  };
}

function canonicalInvert(raw: Raw): Record<string, unknown> {
  return {
    model: modelKey(str(raw, "model")),
    weights: str(raw, "weights"),
    seed: Number(str(raw, "seed")),
    normalize: raw.normalize !== false,
    image: defaultImage(raw),
    layer: Number(str(raw, "layer")),
    "only-layer": raw["only-layer"] === true,
    loss: str(raw, "loss"),
  };
}

async function invertCommand(args: string[], ctx: Context): Promise<number> {
  const given = parse("invert", INVERT_SPEC, args);
  if (given.help) {
    console.log(commandHelp("invert"));
    return 0;
  }
  let raw: Raw = { ...defaults(INVERT_SPEC), ...given };
  let snap: Snapshot | null = null;
  const resumeDir = given.resume as string | undefined;
  if (resumeDir !== undefined) {
    snap = await readSnapshotJson(resumeDir, "invert");
    raw = mergeResume(INVERT_SPEC, given, snap, resumeDir, canonicalInvert);
  }
  // Everything that needs no model first.
  const pre = invertSettings(raw);
  const ctlOpts = controlOpts(raw);
  backendOpt(raw);
  if (raw.threads !== undefined) intOpt(raw, "threads", 1);
  const out = given.out === undefined && resumeDir !== undefined
    ? resumeDir
    : str(raw, "out");
  if (snap && snap.step > pre.steps) {
    throw usage(
      new RangeError(
        `Invalid --steps "${pre.steps}" with --resume: the snapshot is at step ${snap.step}: expected at least that many steps`,
      ),
    );
  }
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const model = await openModel(raw, source);
  try {
    const s = invertSettings(raw, model.manifest.num_layers);
    const size = model.manifest.image_size;
    checkKernel(s.kernelSize, size);
    const target = await loadTarget(imagePath, size);
    let resume: InvertResume | undefined;
    if (snap && resumeDir !== undefined) {
      resume = {
        image: await readSnapshotImage(resumeDir, [size]),
        step: snap.step,
        rows: await readCsv(`${resumeDir}/traces.csv`),
        criterionStep: snap.criterionStep ?? null,
        from: resolvePath(resumeDir),
      };
    }
    await model.prepare(s.layer, {
      gradient: true,
      blocks: s.onlyLayer ? [s.layer] : undefined,
    });
    // Inputs are valid: from here on, files.
    const existed = await exists(out);
    await Deno.mkdir(out, { recursive: true });
    const options = {
      ...savedOptions(INVERT_SPEC, raw),
      image: imagePath,
      model: modelKey(str(raw, "model")),
    };
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    let summary: InvertSummary;
    try {
      ({ summary } = await runInvert(model, target, s, {
        out,
        ...ctlOpts,
        stopper,
        options,
        about: modelAbout(model, source, s.normalize),
        label: `invert ${s.onlyLayer ? "encoder" : "layer"} ${s.layer}`,
      }, resume));
    } catch (err) {
      if (!(err instanceof DivergedError)) await cleanEmpty(out, existed);
      throw err;
    } finally {
      stopper.remove();
    }
    console.log(figuresTable([summary]));
    console.log(
      summary.interrupted
        ? `\nstopped at step ${summary.steps} (${summary.stopReason}); wrote ${out}/ with a snapshot: continue with --resume ${out}`
        : `\nwrote ${out}/ (representation.png, target.png, side_by_side.png, convergence.png, traces.csv, representation.npy, metrics.json)`,
    );
    return summary.stopReason === "SIGINT" ? EXIT_INTERRUPTED : 0;
  } finally {
    await model.release();
  }
}

// ---------------------------------------------------------------------------
// generate

interface GenerateSettings {
  constant: number;
  steps: number;
  jitterAfter: number;
  canvasSize: number;
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
  normalize: boolean;
  seed: number;
}

interface GenerateSummary {
  index: number;
  name: string;
  logit: number;
  probability: number;
  steps: number;
  interrupted: boolean;
  stopReason: StopReason;
  image: Float32Array;
}

const GENERATE_COLUMNS = [
  "step",
  "loss",
  "logit",
  "probability",
  "lr",
  "sigma",
  "crop_y",
  "crop_x",
];

function generateSettings(raw: Raw, size?: number): GenerateSettings {
  const canvasSize = intOpt(raw, "canvas", 1);
  if (size !== undefined && canvasSize < size) {
    throw usage(
      new RangeError(
        `Invalid --canvas "${
          str(raw, "canvas")
        }": expected at least the model's image size ${size}`,
      ),
    );
  }
  return {
    constant: numOpt(raw, "constant"),
    steps: intOpt(raw, "steps", 1),
    jitterAfter: intOpt(raw, "jitter-after", 0),
    canvasSize,
    lr: schedOpt(raw, "lr"),
    sigma: schedOpt(raw, "sigma"),
    kernelSize: kernelOpt(raw),
    normalize: raw.normalize !== false,
    seed: intOpt(raw, "seed", 0),
  };
}

function classQueries(raw: Raw): string[] {
  const v = raw.class;
  const list = (Array.isArray(v) ? v : v === undefined ? [] : [String(v)])
    .flatMap((s) => s.split(",")).map((s) => s.trim());
  if (list.length === 0 || list.some((s) => s === "")) {
    throw usage(
      new TypeError(
        `Invalid --class "${
          v === undefined ? "" : str(raw, "class")
        }": expected a class index or name, e.g. --class 207 or --class dalmatian`,
      ),
    );
  }
  return list;
}

interface GenerateResume {
  image: Float32Array;
  step: number;
  rows: Row[];
  from: string;
}

async function runGenerate(
  model: Model,
  index: number,
  s: GenerateSettings,
  ctl: Control,
  resume?: GenerateResume,
): Promise<GenerateSummary> {
  const name = model.manifest.categories?.[index] ?? `class ${index}`;
  const size = model.manifest.image_size;
  let prev = resume ? resume.image : randomStart(3 * size * size, s.seed);
  const rows: Row[] = resume
    ? resume.rows.filter((r) => (r.step as number) < resume.step)
    : [];
  let reason = null as StopReason;
  const bar = progress(ctl.label, ctl.quiet);
  const started = performance.now();
  const traces = () => toCsv(GENERATE_COLUMNS, thin(rows, ctl.traceEvery));
  let result: GenerateResult;
  try {
    result = await generate(model, index, {
      constant: s.constant,
      steps: s.steps,
      jitterAfter: s.jitterAfter,
      canvasSize: s.canvasSize,
      lr: s.lr,
      sigma: s.sigma,
      kernelSize: s.kernelSize,
      normalize: s.normalize,
      seed: s.seed,
      resume: resume ? { image: resume.image, step: resume.step } : undefined,
      onStep: async (info) => {
        checkFinite(info.step, info.image, prev);
        prev = info.image;
        rows.push({
          step: info.step,
          loss: info.loss,
          logit: info.logit,
          probability: info.probability,
          lr: info.lr,
          sigma: info.sigma,
          crop_y: info.crop?.[0] ?? null,
          crop_x: info.crop?.[1] ?? null,
        });
        bar.update(
          info.step,
          info.steps,
          `logit ${info.logit.toPrecision(4)} p ${
            info.probability.toPrecision(3)
          }`,
        );
        const next = info.step + 1;
        if (ctl.saveEvery > 0 && next % ctl.saveEvery === 0 && next < s.steps) {
          await writeSnapshot(
            ctl.out,
            "generate",
            info.image,
            next,
            ctl.options,
          );
          await writeAtomic(`${ctl.out}/traces.csv`, traces());
        }
        reason = stopReason(ctl, next, s.steps);
        return reason === null;
      },
    });
  } catch (err) {
    bar.done();
    if (err instanceof DivergedError) {
      await writeSnapshot(
        ctl.out,
        "generate",
        err.lastImage,
        err.step,
        ctl.options,
      );
      await writeAtomic(`${ctl.out}/traces.csv`, traces());
      console.error(
        `vitrep: kept the last finite image (before step ${err.step}) in ${ctl.out}/snapshot.npy; continue with --resume ${ctl.out} and a lower --lr`,
      );
    }
    throw err;
  }
  bar.done();
  const interrupted = reason !== null;
  if (interrupted) {
    await writeSnapshot(
      ctl.out,
      "generate",
      result.canvas ?? result.image,
      result.final.steps,
      ctl.options,
    );
  }
  const written = thin(rows, ctl.traceEvery);
  await writePng(`${ctl.out}/generated.png`, imageOf(result.image));
  await writeNpy(`${ctl.out}/generated.npy`, result.image);
  if (result.canvas) {
    await writePng(`${ctl.out}/canvas.png`, imageOf(result.canvas));
  }
  await writeAtomic(`${ctl.out}/traces.csv`, toCsv(GENERATE_COLUMNS, written));
  const steps = written.map((r) => r.step as number);
  await writePng(
    `${ctl.out}/progress.png`,
    linePlot({
      title: `Class ${index} (${name})`,
      xLabel: "step",
      yLabel: "logit",
      y2Label: "softmax probability",
      series: [
        { label: "logit", x: steps, y: written.map((r) => r.logit as number) },
        {
          label: "probability",
          x: steps,
          y: written.map((r) => r.probability as number),
          axis: "right",
        },
      ],
      y2Range: [0, 1],
    }),
  );
  const summary: GenerateSummary = {
    index,
    name,
    logit: result.final.logit,
    probability: result.final.probability,
    steps: result.final.steps,
    interrupted,
    stopReason: reason,
    image: result.image,
  };
  await writeJson(`${ctl.out}/metrics.json`, {
    command: "generate",
    options: ctl.options,
    ...ctl.about,
    class: { index, name },
    settings: { ...s, index, canvasSize: result.canvasSize },
    final: {
      logit: result.final.logit,
      probability: result.final.probability,
      steps: result.final.steps,
    },
    trace: {
      step: steps,
      logit: written.map((r) => r.logit),
      probability: written.map((r) => r.probability),
    },
    interrupted,
    stopReason: reason,
    resumedFrom: resume ? { dir: resume.from, step: resume.step } : null,
    seconds: (performance.now() - started) / 1000,
    files: [
      "generated.png",
      "generated.npy",
      ...(result.canvas ? ["canvas.png"] : []),
      "traces.csv",
      "progress.png",
      ...(interrupted ? ["snapshot.npy", "snapshot.json"] : []),
    ],
  });
  return summary;
}

function canonicalGenerate(raw: Raw): Record<string, unknown> {
  return {
    model: modelKey(str(raw, "model")),
    weights: str(raw, "weights"),
    seed: Number(str(raw, "seed")),
    normalize: raw.normalize !== false,
    constant: Number(str(raw, "constant")),
    "jitter-after": Number(str(raw, "jitter-after")),
    canvas: Number(str(raw, "canvas")),
  };
}

/** What a class folder holds when resuming: done, a snapshot, or nothing. */
async function classState(
  dir: string,
  index: number,
  size: number,
  canvas: number,
): Promise<
  | { kind: "done"; summary: GenerateSummary }
  | { kind: "snapshot"; resume: GenerateResume }
  | { kind: "fresh" }
> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
    if (m.interrupted === false && m.class?.index === index) {
      const img = decodeNpy(await Deno.readFile(`${dir}/generated.npy`));
      return {
        kind: "done",
        summary: {
          index,
          name: m.class.name,
          logit: m.final.logit,
          probability: m.final.probability,
          steps: m.final.steps,
          interrupted: false,
          stopReason: null,
          image: img.data,
        },
      };
    }
  } catch {
    // not finished
  }
  if (await exists(`${dir}/snapshot.json`)) {
    const snap = await readSnapshotJson(dir, "generate");
    return {
      kind: "snapshot",
      resume: {
        image: await readSnapshotImage(dir, [size, canvas]),
        step: snap.step,
        rows: await readCsv(`${dir}/traces.csv`),
        from: resolvePath(dir),
      },
    };
  }
  return { kind: "fresh" };
}

async function generateCommand(args: string[], ctx: Context): Promise<number> {
  const given = parse("generate", GENERATE_SPEC, args);
  if (given.help) {
    console.log(commandHelp("generate"));
    return 0;
  }
  let raw: Raw = { ...defaults(GENERATE_SPEC), ...given };
  let snap: Snapshot | null = null;
  const resumeDir = given.resume as string | undefined;
  if (resumeDir !== undefined) {
    snap = await readSnapshotJson(resumeDir, "generate");
    raw = mergeResume(
      GENERATE_SPEC,
      given,
      snap,
      resumeDir,
      canonicalGenerate,
    );
  }
  const queries = classQueries(raw);
  const pre = generateSettings(raw);
  const ctlOpts = controlOpts(raw);
  backendOpt(raw);
  if (raw.threads !== undefined) intOpt(raw, "threads", 1);
  const out = given.out === undefined && resumeDir !== undefined
    ? resumeDir
    : str(raw, "out");
  if (snap && snap.step > pre.steps) {
    throw usage(
      new RangeError(
        `Invalid --steps "${pre.steps}" with --resume: the snapshot is at step ${snap.step}: expected at least that many steps`,
      ),
    );
  }
  const source = modelSource(str(raw, "model"));
  const model = await openModel(raw, source);
  try {
    const m = model.manifest;
    const s = generateSettings(raw, m.image_size);
    checkKernel(s.kernelSize, m.image_size);
    const indices = [
      ...new Set(
        queries.map((q) =>
          asUsage(() => resolveClass(q, m.categories, m.num_classes))
        ),
      ),
    ];
    if (snap && given.class !== undefined) {
      const before = String(snap.options.class ?? "");
      if (indices.join(",") !== before) {
        throw usage(
          new RangeError(
            `Invalid --class "${
              str(given, "class")
            }" with --resume: the snapshot in "${resumeDir}" is of class ${before}; leave --class out to continue that run`,
          ),
        );
      }
    }
    const multi = indices.length > 1;
    if (
      multi && resumeDir !== undefined &&
      resolvePath(out) !== resolvePath(resumeDir)
    ) {
      throw usage(
        new RangeError(
          `Invalid --out "${out}" with --resume "${resumeDir}": a run of several classes continues in its own folder: leave --out out`,
        ),
      );
    }
    const dirOf = (i: number) => multi ? `${out}/class_${i}` : out;
    // Resume state per class (reads only).
    const states = new Map<number, Awaited<ReturnType<typeof classState>>>();
    if (resumeDir !== undefined) {
      for (const i of indices) {
        const dir = multi ? `${resumeDir}/class_${i}` : resumeDir;
        states.set(
          i,
          multi
            ? await classState(dir, i, m.image_size, s.canvasSize)
            : snap && snap.step !== undefined
            ? {
              kind: "snapshot",
              resume: {
                image: await readSnapshotImage(dir, [
                  m.image_size,
                  s.canvasSize,
                ]),
                step: snap.step,
                rows: await readCsv(`${dir}/traces.csv`),
                from: resolvePath(dir),
              },
            }
            : { kind: "fresh" },
        );
      }
    }
    await model.prepare("logits", { gradient: true });
    // Inputs are valid: from here on, files.
    const existed = await exists(out);
    await Deno.mkdir(out, { recursive: true });
    const baseOptions = {
      ...savedOptions(GENERATE_SPEC, raw),
      class: indices.join(","),
      model: modelKey(str(raw, "model")),
    };
    const about = modelAbout(model, source, s.normalize);
    if (multi) {
      // The run's descriptor, so --resume finds the classes.
      await writeJson(`${out}/snapshot.json`, {
        format: SNAPSHOT_FORMAT,
        command: "generate",
        step: null,
        options: baseOptions,
        classes: indices.map((i) => ({ index: i, dir: `class_${i}` })),
      });
    }
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    const summaries: GenerateSummary[] = [];
    let sigint = false;
    try {
      for (const i of indices) {
        const state = states.get(i) ?? { kind: "fresh" as const };
        if (state.kind === "done") {
          summaries.push(state.summary);
          continue;
        }
        if (sigint) break;
        const dir = dirOf(i);
        await Deno.mkdir(dir, { recursive: true });
        const summary = await runGenerate(model, i, s, {
          out: dir,
          ...ctlOpts,
          stopper,
          options: { ...baseOptions, class: String(i) },
          about,
          label: `class ${i}${m.categories ? ` (${m.categories[i]})` : ""}`,
        }, state.kind === "snapshot" ? state.resume : undefined);
        summaries.push(summary);
        if (summary.stopReason === "SIGINT") sigint = true;
      }
    } catch (err) {
      if (!(err instanceof DivergedError)) await cleanEmpty(out, existed);
      throw err;
    } finally {
      stopper.remove();
    }
    if (multi) {
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
      await writePng(`${out}/generated_grid.png`, montage({ cells: grid }));
      await writeJson(`${out}/metrics.json`, {
        command: "generate",
        options: baseOptions,
        ...about,
        settings: s,
        classes: indices.map((i) => {
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
        }),
        interrupted: summaries.length < indices.length ||
          summaries.some((x) => x.interrupted),
        files: ["generated_grid.png", "snapshot.json"],
      });
    }
    console.log("| class | name | logit | probability | steps |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const x of summaries) {
      console.log(
        `| ${x.index} | ${x.name} | ${x.logit.toFixed(3)} | ${
          x.probability.toFixed(4)
        } | ${x.steps}${x.interrupted ? " (stopped)" : ""} |`,
      );
    }
    const stopped = summaries.length < indices.length ||
      summaries.some((x) => x.interrupted);
    console.log(
      stopped
        ? `\nstopped; wrote ${out}/ with snapshots: continue with --resume ${out}`
        : `\nwrote ${out}/ (${
          multi
            ? "generated_grid.png, metrics.json, class_*/"
            : "generated.png, canvas.png, progress.png, traces.csv, metrics.json"
        })`,
    );
    return sigint ? EXIT_INTERRUPTED : 0;
  } finally {
    await model.release();
  }
}

// ---------------------------------------------------------------------------
// demo

async function demoCommand(args: string[], ctx: Context): Promise<number> {
  const given = parse("demo", DEMO_SPEC, args);
  if (given.help) {
    console.log(commandHelp("demo"));
    return 0;
  }
  const raw: Raw = { ...defaults(DEMO_SPEC), ...given };
  const layerText = str(raw, "layers");
  const layers = layerText.split(",").map((t) => t.trim());
  if (layers.some((t) => !/^\d+$/.test(t))) {
    throw usage(
      new RangeError(
        `Invalid --layers "${layerText}": expected comma-separated layer numbers, e.g. 1,12`,
      ),
    );
  }
  const base = invertSettings({ ...raw, layer: "0" });
  const ctlOpts = controlOpts({ ...raw, "save-every": "0" });
  backendOpt(raw);
  if (raw.threads !== undefined) intOpt(raw, "threads", 1);
  const out = str(raw, "out");
  const imagePath = defaultImage(raw);
  const source = modelSource(str(raw, "model"));
  const model = await openModel(raw, source);
  try {
    const m = model.manifest;
    const settings = layers.map((l) =>
      invertSettings({ ...raw, layer: l }, m.num_layers)
    );
    checkKernel(base.kernelSize, m.image_size);
    const target = await loadTarget(imagePath, m.image_size);
    for (const s of settings) await model.prepare(s.layer, { gradient: true });
    await Deno.mkdir(out, { recursive: true });
    await writePng(`${out}/target.png`, target);
    console.error(
      `vitrep demo: ${m.name}, weights ${model.weights}, on ${model.backend}, ${base.steps} steps per layer`,
    );
    const about = modelAbout(model, source, base.normalize);
    const stopper = new Stopper(ctx.signal);
    stopper.install();
    const rows: InvertSummary[] = [];
    const images: ImageTensor[] = [];
    try {
      for (const s of settings) {
        if (stopper.requested) break;
        const dir = `${out}/layer${s.layer}`;
        await Deno.mkdir(dir, { recursive: true });
        const r = await runInvert(model, target, s, {
          out: dir,
          ...ctlOpts,
          stopper,
          options: {
            ...savedOptions(DEMO_SPEC, raw),
            layer: String(s.layer),
            image: imagePath,
          },
          about,
          label: `layer ${s.layer}`,
        });
        rows.push(r.summary);
        images.push(imageOf(r.image));
      }
    } finally {
      stopper.remove();
    }
    await writePng(
      `${out}/demo.png`,
      labelledRow(
        [target, ...images],
        ["target", ...rows.map((r) => `layer ${r.layer}`)],
        `${m.name}, ${model.weights}: representations after ${base.steps} steps`,
      ),
    );
    await writeJson(`${out}/metrics.json`, {
      command: "demo",
      options: savedOptions(DEMO_SPEC, raw),
      ...about,
      steps: base.steps,
      layers: rows,
      interrupted: stopper.requested,
    });
    console.log(figuresTable(rows));
    console.log(
      `\nwrote ${out}/ (demo.png, target.png, metrics.json, ${
        rows.map((r) => `layer${r.layer}/`).join(", ")
      })`,
    );
    return stopper.requested ? EXIT_INTERRUPTED : 0;
  } finally {
    await model.release();
  }
}

// ---------------------------------------------------------------------------

/**
 * Options of {@linkcode main}.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const stop = new AbortController();
 * setTimeout(() => stop.abort(), 60_000); // like Ctrl-C after a minute
 * const code = await main(["invert", "--layer", "1"], { signal: stop.signal });
 * ```
 */
export interface MainOptions {
  /** Aborting it acts as Ctrl-C: runs stop after the current step and write their outputs. */
  signal?: AbortSignal;
}

interface Context {
  signal?: AbortSignal;
}

const COMMANDS: Record<
  string,
  (args: string[], ctx: Context) => Promise<number>
> = {
  invert: invertCommand,
  generate: generateCommand,
  demo: demoCommand,
};

/**
 * Runs the command line; returns the exit code (0 done, 1 runtime error, 2
 * usage error, 130 interrupted). Errors are printed to stderr, not thrown.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["invert", "--layer", "4", "--steps", "100", "--out", "out/cat"]));
 * ```
 */
export async function main(
  args: string[],
  options: MainOptions = {},
): Promise<number> {
  const [command, ...rest] = args;
  if (!command) {
    console.error(mainHelp());
    return 2;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    if (rest[0] && ABOUT[rest[0]]) console.log(commandHelp(rest[0]));
    else console.log(mainHelp());
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(
      `error: Unknown command "${command}": expected one of ${
        Object.keys(COMMANDS).join(", ")
      } (see 'deno run -A mod.ts --help')`,
    );
    return 2;
  }
  try {
    return await run(rest, { signal: options.signal });
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return err instanceof Error && USAGE.has(err) ? 2 : 1;
  }
}
