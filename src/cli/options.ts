/**
 * Internal to the command line (src/cli.ts): option tables, argument parsing,
 * typed option values, usage errors (exit 2), model paths and the options a
 * snapshot saves.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { BACKEND_NAMES, type BackendName } from "../model/mod.ts";
import { parseSchedule, type Schedule } from "../optimize/mod.ts";

/** The repository root (for weights/ and assets/). */
export const ROOT: URL = new URL("../../", import.meta.url);
/** `--image` as the help shows its default. */
export const DEFAULT_IMAGE_TEXT = "assets/chelsea.png";
const DEFAULT_IMAGE = new URL(DEFAULT_IMAGE_TEXT, ROOT);

// ---------------------------------------------------------------------------
// Errors: usage errors (exit 2) are marked; everything else exits 1.

const USAGE = new WeakSet<object>();

/** Marks an error as a usage error (exit 2) and returns it. */
export function usage<E extends Error>(err: E): E {
  USAGE.add(err);
  return err;
}

/** Runs `fn`, marking what it throws as a usage error. */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error) USAGE.add(err);
    throw err;
  }
}

/** Whether `err` was marked by {@linkcode usage}. */
export function isUsage(err: unknown): boolean {
  return err instanceof Error && USAGE.has(err);
}

// ---------------------------------------------------------------------------
// Options: one table per command gives parseArgs' options and the help text.

/** One option of a command: its parseArgs type, default and help. */
export interface Opt {
  type: "string" | "boolean";
  /** Default value, as typed on the command line. */
  default?: string | boolean;
  /** Shown instead of the default when there is none. */
  defaultText?: string;
  arg?: string;
  help: string;
  multiple?: boolean;
  /** A repeatable option saved as a list (its order matters), not joined by commas. */
  list?: boolean;
  /** Saved in snapshot.json and taken from it on --resume. */
  saved?: boolean;
  /** Fixed by the snapshot: a different value on --resume is an error. */
  identity?: boolean;
}

/** A command's options by name (without the leading --). */
export type Spec = Record<string, Opt>;
/** Option values as parsed (strings as typed; lists for repeatable options). */
export type Raw = Record<string, string | boolean | string[] | undefined>;

/** What {@linkcode Command.run} gets besides the options. */
export interface Context {
  /** Aborting it acts as Ctrl-C. */
  signal?: AbortSignal;
}

/** A command of the command line. */
export interface Command {
  /** One line for the help. */
  about: string;
  /** What follows the command name in the usage line. */
  synopsis: string;
  /** The options. */
  spec: Spec;
  /** Runs the command with the options given (no defaults applied); returns the exit code. */
  run(given: Raw, ctx: Context): Promise<number>;
}

/** A schedule as typed on the command line. */
export const sched = (s: Schedule): string => `${s.start}:${s.end}`;

/** Model, weights and runtime options shared by the commands. */
export const MODEL_OPTS: Spec = {
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
      "untrained (drawn with --seed), untrained:SEED, a weight set converted into the model folder, or a .safetensors file or URL",
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

/** Ablations and component swaps: what makes a model variant. */
export const VARIANT_OPTS: Spec = {
  remove: {
    type: "string",
    multiple: true,
    list: true,
    arg: "PART[,PART…]",
    defaultText: "none",
    help:
      "remove parts of encoder blocks: residual (= res1,res2), layernorm (= ln1,ln2), ln1, ln2, attention (= attn), mlp, res1, res2, batchnorm (= bn; ResNets). A removed op is the identity, a removed residual drops its addition. Repeatable, each with its own --remove-layers",
    saved: true,
    identity: true,
  },
  "remove-layers": {
    type: "string",
    multiple: true,
    list: true,
    arg: "1-4|all|3,7",
    defaultText: "all",
    help:
      "encoder layers (1-based) of --remove: one for every --remove, or one per --remove in order",
    saved: true,
    identity: true,
  },
  "pos-embedding": {
    type: "boolean",
    default: true,
    help:
      "add the position embedding (--no-pos-embedding: leave it out of input processing)",
    saved: true,
    identity: true,
  },
  swap: {
    type: "string",
    multiple: true,
    list: true,
    arg: "PART=WEIGHTS",
    defaultText: "none",
    help:
      "take PART's tensors from another weight set (WEIGHTS as for --weights, untrained:SEED included), e.g. conv_proj=untrained:1, pos_embedding=IMAGENET1K_V1, class_token, encoder.layers.0.ln_1, encoder.layers.3, heads. Repeatable; later swaps win",
    saved: true,
    identity: true,
  },
};

/** Learning-rate and blur schedule options with the given defaults. */
export const SCHEDULE_OPTS = (d: {
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

/** Options that drive a run (output, snapshots, --resume, progress) with the output folder `out`. */
export const RUN_OPTS = (out: string): Spec => ({
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

/** The help option every command has. */
export const HELP_OPT: Spec = {
  help: { type: "boolean", default: false, help: "show this help" },
};

/** Parses a command's arguments: only the options given (no defaults). */
export function parse(cmd: string, spec: Spec, args: string[]): Raw {
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

/** A spec's default values, as typed on the command line. */
export function defaults(spec: Spec): Raw {
  return Object.fromEntries(
    Object.entries(spec).filter(([, o]) => o.default !== undefined).map((
      [k, o],
    ) => [k, o.default]),
  );
}

/** An option as a string (a repeated one joined by commas). */
export function str(raw: Raw, name: string): string {
  const v = raw[name];
  return Array.isArray(v) ? v.join(",") : String(v);
}

/** A repeatable option's values (none when not given). */
export function list(raw: Raw, name: string): string[] {
  const v = raw[name];
  if (v === undefined || v === false) return [];
  return Array.isArray(v) ? v : [String(v)];
}

/** An integer option ≥ `min` (a usage error naming the value otherwise). */
export function intOpt(raw: Raw, name: string, min: number): number {
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

/** A finite number option (a usage error naming the value otherwise). */
export function numOpt(raw: Raw, name: string): number {
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

/** A START:END schedule option. */
export function schedOpt(raw: Raw, name: string): Schedule {
  return asUsage(() => parseSchedule(str(raw, name), name));
}

/** `--kernel-size`: an odd positive integer. */
export function kernelOpt(raw: Raw): number {
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

/** Checks that the blur kernel fits the model's image size. */
export function checkKernel(kernelSize: number, size: number): void {
  if ((kernelSize - 1) / 2 >= size) {
    throw usage(
      new RangeError(
        `Invalid --kernel-size "${kernelSize}": expected a kernel narrower than twice the model's ${size}px image`,
      ),
    );
  }
}

/** `--backend`: one of the backend names. */
export function backendOpt(raw: Raw): BackendName {
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

/** Control options shared by invert and generate. */
export function controlOpts(raw: Raw) {
  return {
    traceEvery: intOpt(raw, "trace-every", 1),
    saveEvery: intOpt(raw, "save-every", 0),
    stopAt: raw["stop-at"] === undefined ? null : intOpt(raw, "stop-at", 1),
    quiet: raw.quiet === true,
  };
}

// ---------------------------------------------------------------------------
// Paths.

/** Whether `path` is a folder. */
export function isDir(path: string): boolean {
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
export function modelKey(name: string): string {
  if (/^https?:\/\//.test(name)) return name;
  if (/[/\\]/.test(name) || name.startsWith(".") || isDir(name)) {
    return resolvePath(name);
  }
  return name;
}

/** Resolves `--model`: an http(s) URL, a folder (made absolute), or a name under weights/. */
export function modelSource(name: string): string {
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
export function absolutePath(path: string): string {
  return /^https?:\/\//.test(path) ? path : resolvePath(path);
}

/** `--image` made absolute; the default photo wherever the repository is. */
export function defaultImage(raw: Raw): string {
  const v = str(raw, "image");
  if (v === DEFAULT_IMAGE_TEXT && DEFAULT_IMAGE.protocol === "file:") {
    return fileURLToPath(DEFAULT_IMAGE);
  }
  return absolutePath(v);
}

// ---------------------------------------------------------------------------
// Saved options (snapshot.json, metrics.json) and --resume.

/** The options a snapshot records: the `saved` ones given or defaulted. */
export function savedOptions(spec: Spec, raw: Raw): Raw {
  return Object.fromEntries(
    Object.entries(spec).filter(([k, o]) => o.saved && raw[k] !== undefined)
      .map((
        [k, o],
      ) => [k, Array.isArray(raw[k]) && !o.list ? str(raw, k) : raw[k]]),
  );
}
