/**
 * The command line: `deno run -A mod.ts <command> [options]` with the commands
 * `invert` (layer representation), `generate` (input generation), `demo`,
 * `forward` (one layer's output), `grid` (a figure of invert or generate runs
 * over model variants × layers or classes) and `filters` (the patch-embedding
 * filters). Progress goes to stderr, a summary to stdout, results to files
 * under `--out` (each written to a temporary name, then renamed). Nothing is
 * written before the inputs validate: the model loads, the image decodes, the
 * numbers make sense.
 *
 * Exit codes: 0 done, 1 runtime error (unreadable input, model or weights not
 * found, divergence), 2 usage error (unknown option, bad value), 3 grid
 * incomplete (another process holds some of its cells), 130 interrupted
 * (Ctrl-C, or SIGTERM from a batch system).
 *
 * This module holds the dispatch and the help; the commands live in
 * `invert.ts` (invert, its batch form, demo), `generate.ts`, `inspect.ts`
 * (forward, filters), `condition.ts`, `grid.ts` and `essay.ts`, each its
 * option table, its options read once into typed settings, the call of
 * src/run and the results printed; `options.ts` holds the tables' common
 * options and the parsing. The runs themselves — the `--resume` prelude, the
 * one refinement by the model's manifest, the harness — are src/run's.
 *
 * @module
 */
import { EXIT_HELD, EXIT_INTERRUPTED } from "../run/exit.ts";
import {
  type Command,
  type Opt,
  parse,
  type Raw,
  type Spec,
} from "./options.ts";
import { modelSource } from "../run/models.ts";
import {
  manifestRecommends,
  RECOMMENDABLE,
  type Recommending,
} from "../run/refine.ts";
import { didYouMean } from "../model/mod.ts";
import { isUsage } from "../run/settings.ts";
import { DEMO_COMMAND, INVERT_COMMAND } from "./invert.ts";
import { GENERATE_COMMAND } from "./generate.ts";
import { FILTERS_COMMAND, FORWARD_COMMAND } from "./inspect.ts";
import { GRID_COMMAND } from "./grid.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { ESSAY_COMMAND } from "./essay.ts";
import { CONDITION_COMMAND } from "./condition.ts";

/** The version, from deno.json. */
export const VERSION: string = denoJson.version;

/** The commands by name, in the order the help lists them. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  invert: INVERT_COMMAND,
  generate: GENERATE_COMMAND,
  demo: DEMO_COMMAND,
  forward: FORWARD_COMMAND,
  grid: GRID_COMMAND,
  filters: FILTERS_COMMAND,
  condition: CONDITION_COMMAND,
  essay: ESSAY_COMMAND,
};

// ---------------------------------------------------------------------------
// Help.

function defaultText(o: Opt): string {
  if (o.defaultText) return o.defaultText;
  if (o.type === "boolean") return o.default ? "on" : "off";
  return String(o.default);
}

/** `text` broken at spaces into lines of at most `width` characters (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines;
}

/** What the help says of defaults a model may set: the options it may set, and with --model, the model and its values. */
interface HelpDefaults {
  names: readonly string[];
  model?: string;
  values?: Raw;
}

/** An option's default as the help gives it: built in, or a model's recommended setting. */
function defaultNote(name: string, o: Opt, rec?: HelpDefaults): string {
  const builtIn = defaultText(o);
  if (!rec?.names.includes(name)) return `default: ${builtIn}`;
  const v = rec.values?.[name];
  if (rec.model === undefined) {
    return `default: ${builtIn}, or the model's recommended setting`;
  }
  return v === undefined
    ? `default: ${builtIn}`
    : `default: ${v}, recommended by ${rec.model}'s manifest; built in: ${builtIn}`;
}

function optionsHelp(spec: Spec, rec?: HelpDefaults): string {
  const rows = Object.entries(spec).map(([name, o]) => {
    const flag = o.type === "boolean" && o.default === true
      ? `--${name}, --no-${name}`
      : `--${name}${o.arg ? ` ${o.arg}` : ""}`;
    const dflt = name === "help" ? "" : ` (${defaultNote(name, o, rec)})`;
    return [flag, `${o.help}${dflt}`] as const;
  });
  const w = Math.min(Math.max(...rows.map((r) => r[0].length)) + 2, 24);
  const indent = " ".repeat(2 + w);
  return rows.map(([f, h]) => {
    const lines = wrap(h, 78 - indent.length);
    const head = f.length + 2 <= w
      ? `  ${f.padEnd(w)}${lines[0]}`
      : `  ${f}\n${indent}${lines[0]}`;
    return [head, ...lines.slice(1).map((l) => indent + l)].join("\n");
  }).join("\n");
}

const EXIT_HELP =
  `Exit codes: 0 done, 1 runtime error (unreadable image, model or weights not
found, divergence), 2 usage error (unknown option, bad value), ${EXIT_HELD} grid incomplete
(another process holds some of its cells), ${EXIT_INTERRUPTED} interrupted (Ctrl-C or SIGTERM).`;

/** The commands whose settings a model's manifest may recommend, and which settings they take. */
const RECOMMENDING: Readonly<Record<string, Recommending>> = {
  invert: "invert",
  demo: "invert",
  generate: "generate",
};

/**
 * The defaults the help shows for `cmd`: with `--model` (a name or a folder),
 * the settings its manifest recommends; none for a URL.
 */
async function helpDefaults(
  cmd: string,
  given: Raw,
): Promise<HelpDefaults | undefined> {
  const kind = RECOMMENDING[cmd];
  if (kind === undefined) return undefined;
  const names = RECOMMENDABLE[kind];
  if (typeof given.model !== "string") return { names };
  const values = await manifestRecommends(modelSource(given.model), kind);
  return values === undefined
    ? { names }
    : { names, model: given.model, values };
}

function commandHelp(cmd: string, rec?: HelpDefaults): string {
  const { about, synopsis, spec } = COMMANDS[cmd];
  const note = rec?.model === undefined
    ? ""
    : Object.keys(rec.values ?? {}).length
    ? `\nDefaults for --model ${rec.model}: its manifest's recommended settings where it has them.\n`
    : `\n--model ${rec.model} recommends no settings: the built-in defaults apply.\n`;
  return `vitrep ${cmd} — ${about}

Usage: deno run -A mod.ts ${cmd} ${synopsis}
${note}
Options:
${optionsHelp(spec, rec)}

${EXIT_HELP}
`;
}

function mainHelp(): string {
  const list = Object.entries(COMMANDS).map(([c, { about }]) =>
    wrap(about, 78 - 12).map((l, i) => `${i ? "" : `  ${c}`}`.padEnd(12) + l)
      .join("\n")
  ).join("\n");
  return `vitrep ${VERSION} — what vision transformers keep of their input

Usage: deno run -A mod.ts <command> [options]

Commands:
${list}

Run \`deno run -A mod.ts <command> --help\` for its options (also -h).
  -h, --help     show this help
  -V, --version  print the version

Ctrl-C stops after the current step and writes the latest image, its metrics
and a snapshot; --resume DIR continues from it.
${EXIT_HELP}
`;
}

// ---------------------------------------------------------------------------

/**
 * Options of {@linkcode main}.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * const stop = new AbortController();
 * setTimeout(() => stop.abort(), 60_000); // like Ctrl-C after a minute
 * const code = await main(["invert", "--layer", "1"], { signal: stop.signal });
 * ```
 */
export interface MainOptions {
  /** Aborting it acts as Ctrl-C: runs stop after the current step and write their outputs. */
  signal?: AbortSignal;
}

/**
 * Runs the command line; returns the exit code (0 done, 1 runtime error, 2
 * usage error, 130 interrupted). Errors are printed to stderr, not thrown.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
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
  if (command === "--version" || command === "-V") {
    console.log(`vitrep ${VERSION}`);
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    if (rest[0] && Object.hasOwn(COMMANDS, rest[0])) {
      console.log(commandHelp(rest[0], await helpDefaults(rest[0], {})));
    } else console.log(mainHelp());
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    const near = didYouMean(command, Object.keys(COMMANDS));
    console.error(
      `error: Unknown command "${command}": ${
        near.length ? `did you mean ${near.join(", ")}? ` : ""
      }expected one of ${
        Object.keys(COMMANDS).join(", ")
      } (see 'deno run -A mod.ts --help')`,
    );
    return 2;
  }
  const cmd = COMMANDS[command];
  try {
    const given = parse(command, cmd.spec, rest);
    if (given.help) {
      console.log(commandHelp(command, await helpDefaults(command, given)));
      return 0;
    }
    return await cmd.run(given, { signal: options.signal });
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return isUsage(err) ? 2 : 1;
  }
}
