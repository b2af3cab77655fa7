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
import { BACKEND_NAMES, didYouMean } from "../model/mod.ts";
import type { Schedule } from "../optimize/mod.ts";
import { list, str } from "../run/read.ts";
import type { OptionTable } from "../run/prelude.ts";
import {
  ROOT,
  type RunContext,
  type RunOptions,
  type SavedTypes,
  usage,
} from "../run/settings.ts";

/** `--image` as the help shows its default. */
export const DEFAULT_IMAGE_TEXT = "assets/chelsea.png";
const DEFAULT_IMAGE = new URL(DEFAULT_IMAGE_TEXT, ROOT);

// kept for src/cli/essay.ts (which imports them from here)

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
export type Raw = RunOptions;

/** What {@linkcode Command.run} gets besides the options. */
export type Context = RunContext;

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
  verify: {
    type: "boolean",
    default: true,
    help:
      "check the graphs' and weights' sha256 and that weights are finite on load (--no-verify: skip; metrics.json records it)",
    saved: true,
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
      "every K steps write a snapshot (DIR/snapshot/: image, step, traces) into --out, to --resume from (0: only on Ctrl-C)",
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
      "continue the run whose snapshot is in DIR (options come from DIR/snapshot/state.json; given ones override)",
  },
  overwrite: {
    type: "boolean",
    default: false,
    help:
      "replace the results of another run in --out (without it, a folder holding a run with other options is refused)",
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

/**
 * The arguments with `-h` as `--help`, and a value that starts with a dash
 * (`--steps -1`, `--lr -0.1:0`) joined to its option (`--steps=-1`), so that
 * the option's own check names it instead of parseArgs' "ambiguous" error.
 */
function normalizeArgs(spec: Spec, args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") ? a.slice(2) : "";
    const next = args[i + 1];
    if (a === "-h") out.push("--help");
    else if (
      spec[name]?.type === "string" && next !== undefined &&
      /^-[\d.]/.test(next)
    ) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * Usage errors in our own words for what parseArgs would word itself: a
 * value missing after an option that takes one, a value given to a switch.
 */
function checkValues(cmd: string, spec: Spec, args: readonly string[]): void {
  const hint = `see 'deno run -A mod.ts ${cmd} --help'`;
  for (let i = 0; i < args.length && args[i] !== "--"; i++) {
    const m = args[i].match(/^--([^=]+)(=.*)?$/);
    const o = m && spec[m[1]];
    if (!m || !o) continue;
    const next = args[i + 1];
    if (o.type === "string" && m[2] === undefined) {
      if (next === undefined || next.startsWith("-")) {
        throw usage(
          new TypeError(
            `Missing value for --${m[1]}: expected --${m[1]} ${
              o.arg ?? "VALUE"
            }${next === undefined ? "" : ` before "${next}"`}, ${hint}`,
          ),
        );
      }
      i++;
    } else if (o.type === "boolean" && m[2] !== undefined) {
      throw usage(
        new TypeError(
          `Invalid --${m[1]} "${m[2].slice(1)}": a switch takes no value (${
            o.default === true ? `--${m[1]} or --no-${m[1]}` : `just --${m[1]}`
          }), ${hint}`,
        ),
      );
    }
  }
}

/** Parses a command's arguments: only the options given (no defaults). */
export function parse(cmd: string, spec: Spec, argv: string[]): Raw {
  const args = normalizeArgs(spec, argv);
  checkValues(cmd, spec, args);
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
      const near = didYouMean(name, Object.keys(spec).map((o) => `--${o}`));
      throw usage(
        new TypeError(
          `Unknown option "${name}" for ${cmd}: ${
            near.length ? `did you mean ${near.join(", ")}? ` : ""
          }see 'deno run -A mod.ts ${cmd} --help'`,
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

// ---------------------------------------------------------------------------
// Paths.

/** Makes a path option absolute so a snapshot works from another folder. */
export function absolutePath(path: string): string {
  return /^https?:\/\//.test(path) ? path : resolvePath(path);
}

/** A `.safetensors` weights path made absolute (URLs and weight-set names as given). */
function absoluteWeightsPath(w: string): string {
  return w.endsWith(".safetensors") && !/^[a-z][a-z0-9+.-]*:\/\//i.test(w)
    ? resolvePath(w)
    : w;
}

/**
 * The options with `.safetensors` paths of `--weights`, `--swap` and
 * `--compare` made absolute, so that a relative path means the current folder
 * (like `--image`) and a snapshot works from anywhere.
 */
export function absoluteWeights(raw: Raw): Raw {
  const out: Raw = { ...raw };
  if (typeof raw.weights === "string") {
    out.weights = absoluteWeightsPath(raw.weights);
  }
  if (raw.swap !== undefined) {
    out.swap = list(raw, "swap").map((t) => {
      const i = t.indexOf("=");
      return i < 0
        ? t
        : `${t.slice(0, i)}=${absoluteWeightsPath(t.slice(i + 1).trim())}`;
    });
  }
  if (raw.compare !== undefined) {
    out.compare = list(raw, "compare").map(absoluteWeightsPath);
  }
  return out;
}

/** `--image` made absolute (URLs as given); the default photo beside the module, wherever it is served from. */
export function defaultImage(raw: Raw): string {
  const v = str(raw, "image");
  if (v === DEFAULT_IMAGE_TEXT) {
    // beside this module: a file in a checkout, a URL when run by URL
    return DEFAULT_IMAGE.protocol === "file:"
      ? fileURLToPath(DEFAULT_IMAGE)
      : DEFAULT_IMAGE.href;
  }
  return absolutePath(v);
}

// ---------------------------------------------------------------------------
// Saved options (snapshot.json, metrics.json) and --resume.

/** A spec as a run reads its options record: defaults, saved and identity options (see src/run/prelude.ts). */
export function optionTable(spec: Spec): OptionTable {
  return {
    defaults: defaults(spec),
    saved: savedTypes(spec),
    identity: Object.keys(spec).filter((k) => spec[k].identity),
  };
}

/** The types of a spec's `saved` options, as a snapshot's are checked against. */
export function savedTypes(spec: Spec): SavedTypes {
  return Object.fromEntries(
    Object.entries(spec).filter(([, o]) => o.saved).map((
      [k, o],
    ) => [k, o.type]),
  );
}

/** The options a snapshot records: the `saved` ones given or defaulted. */
export function savedOptions(spec: Spec, raw: Raw): Raw {
  return Object.fromEntries(
    Object.entries(spec).filter(([k, o]) => o.saved && raw[k] !== undefined)
      .map((
        [k, o],
      ) => [k, Array.isArray(raw[k]) && !o.list ? str(raw, k) : raw[k]]),
  );
}
