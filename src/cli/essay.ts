/**
 * Internal to the command line: the `essay` command. It plans every
 * experiment of the essay that the model folders and weights at hand allow,
 * runs each as a `grid` (a `deno run mod.ts grid …` process, so cells are
 * cached and resumable), judges every claim by its stated rule and writes
 * `OUT/index.html` and `OUT/claims.json`. `--plan` prints the experiments,
 * their grid command lines, cells and estimated CPU time per budget.
 *
 * @module
 */
import { resolve, sep } from "node:path";
import { resolveReal } from "../io/mod.ts";
import { checkOutPath, inspectOut } from "./outdir.ts";
import { fileURLToPath } from "node:url";
import {
  BUDGET_NAMES,
  type BudgetName,
  BUDGETS,
  type CommandRunner,
  discoverModels,
  type Environment,
  EXPERIMENT_IDS,
  gridArgs,
  plan,
  publishHint,
  publishReport,
  runEssay,
} from "../essay/mod.ts";
import {
  type Command,
  type Context,
  DEFAULT_IMAGE_TEXT,
  defaultImage,
  HELP_OPT,
  list,
  type Raw,
  ROOT,
  type Spec,
  str,
  usage,
} from "./options.ts";

/** Options of `essay`. */
export const ESSAY_SPEC: Spec = {
  out: {
    type: "string",
    default: "out/essay",
    arg: "DIR",
    help:
      "report folder: index.html, claims.json, summary.md (the claims table in Markdown), cells/<experiment>/ (each a grid folder, cached: run again to continue), maps/ (per-patch PSNR)",
  },
  budget: {
    type: "string",
    default: "smoke",
    arg: BUDGET_NAMES.join("|"),
    help:
      "smoke: every experiment a few steps (minutes); standard: 1500 steps on ViT-B/32, 300 per architecture cell (hours on 2 cores); essay: the essay's own (a cluster)",
  },
  weights: {
    type: "string",
    multiple: true,
    arg: "NAME",
    defaultText: "every weight set converted into the model folders",
    help:
      "trained weight sets the trained-model claims may use (ImageNet ViT-B/32 first, else the small Fashion-MNIST ViT weights/fmnist_vit). Repeatable",
  },
  image: {
    type: "string",
    default: DEFAULT_IMAGE_TEXT,
    arg: "PATH",
    help: "the target image of every representation",
  },
  models: {
    type: "string",
    default: "weights",
    arg: "DIR",
    help:
      "the folder of model folders (vit_b_32, resnet50, …; weights/ of this repository by default)",
  },
  only: {
    type: "string",
    arg: "ID,ID…",
    defaultText: "all",
    help: `run only these experiments: ${EXPERIMENT_IDS.join(", ")}`,
  },
  plan: {
    type: "boolean",
    default: false,
    help:
      "print the experiments, their grid command lines, cells and estimated CPU time per budget; run nothing",
  },
  "report-only": {
    type: "boolean",
    default: false,
    help:
      "compute nothing: write the report (and --publish) from the cells already finished, each grid collected as it stands; experiments never started are not run",
  },
  publish: {
    type: "string",
    arg: "DIR",
    defaultText: "none",
    help:
      "also write a lean copy of the report into DIR (the page, claims.json, summary.md and only the files the page shows; thumbnails shrunk, montages as JPEG): a few MB to commit or share, e.g. docs/essay. DIR must be new, empty or a copy published earlier (marked by .vitrep-run.json), whose files it replaces; a folder holding other files is refused",
  },
  ...HELP_OPT,
};

/** The models folder: --models, or this repository's weights/. */
function modelsRoot(given: Raw): string {
  const v = given.models === undefined ? null : str(given, "models");
  if (v !== null) return resolve(v);
  const url = new URL("weights/", ROOT);
  if (url.protocol !== "file:") {
    throw usage(
      new TypeError(
        `Invalid --models: mod.ts runs from ${ROOT.href}: expected --models DIR, a local folder of model folders`,
      ),
    );
  }
  return fileURLToPath(url).replace(/[/\\]$/, "");
}

function budgetOpt(given: Raw): BudgetName {
  const b = given.budget === undefined ? "smoke" : str(given, "budget");
  if (!(BUDGET_NAMES as readonly string[]).includes(b)) {
    throw usage(
      new RangeError(
        `Invalid --budget "${b}": expected one of ${BUDGET_NAMES.join(", ")}`,
      ),
    );
  }
  return b as BudgetName;
}

function onlyOpt(given: Raw): string[] {
  if (given.only === undefined) return [];
  const ids = str(given, "only").split(",").map((s) => s.trim());
  for (const id of ids) {
    if (!EXPERIMENT_IDS.includes(id)) {
      throw usage(
        new RangeError(
          `Invalid --only "${
            str(given, "only")
          }": unknown experiment "${id}": expected ids from ${
            EXPERIMENT_IDS.join(", ")
          }`,
        ),
      );
    }
  }
  return ids;
}

const hms = (s: number) =>
  s >= 3600
    ? `${(s / 3600).toFixed(1)} h`
    : s >= 60
    ? `${(s / 60).toFixed(1)} min`
    : `${s.toFixed(0)} s`;

const quote = (a: string) =>
  /^[\w./:,=-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;

/** The plan as text: every experiment's cells and cost per budget, and the chosen budget's command lines. */
function planText(
  env: Environment,
  chosen: BudgetName,
  only: string[],
  out: string,
): string {
  const plans = BUDGET_NAMES.map((b) => plan(BUDGETS[b], env, only));
  const lines = [
    `experiment           | ${
      BUDGET_NAMES.map((b) => `${b}: cells, CPU`.padEnd(24)).join(" | ")
    }`,
  ];
  for (const [i, p] of plans[0].entries()) {
    lines.push(
      `${p.id.padEnd(20)} | ${
        plans.map((ps) => {
          const q = ps[i];
          return (q.status === "run"
            ? `${q.cells}, ${hms(q.seconds)}`
            : "not run").padEnd(24);
        }).join(" | ")
      }`,
    );
  }
  lines.push(
    `${"total".padEnd(20)} | ${
      plans.map((ps) => {
        const run = ps.filter((q) => q.status === "run");
        return `${run.reduce((a, q) => a + q.cells, 0)}, ${
          hms(run.reduce((a, q) => a + q.seconds, 0))
        }`.padEnd(24);
      }).join(" | ")
    }`,
    "",
    `budget ${chosen}: ${BUDGETS[chosen].about}`,
  );
  for (const p of plans[BUDGET_NAMES.indexOf(chosen)]) {
    if (p.status !== "run") {
      lines.push(
        `  ${p.id}: not run: ${p.missing!.reason}; to run it: ${
          p.missing!.command
        }`,
      );
    } else if (p.grid) {
      lines.push(
        `  ${p.id}: deno run -A mod.ts grid ${
          gridArgs(p.grid, env, `${out}/cells/${p.id}`).map(
            quote,
          ).join(" ")
        }`,
      );
    } else {
      lines.push(
        `  ${p.id}: deno run -A mod.ts filters --weights ${
          p.trained!.weights
        } --compare untrained (and the patterned fraction from the weights)`,
      );
    }
  }
  return lines.join("\n");
}

/** Runs `deno run -A mod.ts ARGS` in the repository; its stdout goes to stderr (progress), Ctrl-C reaches it. */
function processRunner(signal?: AbortSignal): CommandRunner {
  const local = ROOT.protocol === "file:";
  const mod = new URL("mod.ts", ROOT);
  return async (args) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", local ? fileURLToPath(mod) : mod.href, ...args],
      cwd: local ? fileURLToPath(ROOT) : undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const stop = () => child.kill("SIGINT");
    signal?.addEventListener("abort", stop);
    const forward = child.stdout.pipeTo(
      new WritableStream({
        write: (chunk) => Deno.stderr.write(chunk).then(() => {}),
      }),
    );
    try {
      const { code } = await child.status;
      await forward;
      return code;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  };
}

async function essayCommand(given: Raw, ctx: Context): Promise<number> {
  const budget = budgetOpt(given);
  const only = onlyOpt(given);
  const root = modelsRoot(given);
  const image = defaultImage({ image: given.image ?? DEFAULT_IMAGE_TEXT });
  const outText = given.out === undefined ? "out/essay" : str(given, "out");
  const out = resolve(checkOutPath(outText, "--out"));
  const publish = given.publish === undefined
    ? null
    : resolve(checkOutPath(str(given, "publish"), "--publish"));
  if (publish !== null) {
    const [o, p] = [resolveReal(out), resolveReal(publish)];
    if (p === o || p.startsWith(o + sep) || o.startsWith(p + sep)) {
      throw usage(
        new TypeError(
          `Invalid --publish "${given.publish}" (${p}): it is the report folder, inside it or above it (${o}): expected another folder, e.g. docs/essay`,
        ),
      );
    }
  }
  if (!given.plan) {
    // by the rule of src/io/paths.ts, before anything runs
    await inspectOut(out, "essay");
    if (publish !== null) {
      await inspectOut(publish, "publish", {
        flag: "--publish",
        hint: publishHint(str(given, "publish")),
        replace: true,
      });
    }
  }
  const env: Environment = {
    models: await discoverModels(root),
    root,
    weights: list(given, "weights"),
    image,
    byName: given.models === undefined,
  };
  if (!given.plan) {
    await Deno.stat(image).catch(() => {
      throw usage(
        new TypeError(
          `Invalid --image "${given.image}": no such file: expected a PNG or JPEG`,
        ),
      );
    });
  }
  if (given.plan) {
    console.log(planText(env, budget, only, out));
    return 0;
  }
  // Ctrl-C reaches the grid process too (one process group), which stops after its step and
  // writes; this process stays to write the report. SIGTERM or an aborted ctx.signal stop the
  // grid process with one SIGINT (two would make it quit at once).
  const stop = new AbortController();
  ctx.signal?.addEventListener("abort", () => stop.abort());
  const onInt = () => {};
  const onTerm = () => stop.abort();
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const started = performance.now();
  try {
    const r = await runEssay({
      out,
      budget: BUDGETS[budget],
      env,
      only,
      run: processRunner(stop.signal),
      reportOnly: given["report-only"] === true,
      signal: stop.signal,
      log: (line) => console.error(line),
    });
    const width = Math.max(...r.claims.map((c) => c.id.length));
    for (const c of r.claims) {
      console.log(`${c.id.padEnd(width)}  ${c.verdict}`);
    }
    console.log(
      `${r.interrupted ? "stopped" : "done"} in ${
        hms((performance.now() - started) / 1000)
      }; wrote ${out}/ (index.html, claims.json, summary.md, cells/, maps/)${
        r.interrupted ? ": run the same command again to continue" : ""
      }`,
    );
    const failed = [...r.results.values()].filter((e) => e.status === "failed");
    for (const e of failed) {
      console.error(`error: experiment ${e.id}: ${e.error}`);
    }
    if (publish !== null) {
      const p = await publishReport(out, publish);
      console.log(
        `published ${publish}/: ${p.files} files, ${
          (p.bytes / 2 ** 20).toFixed(1)
        } MiB`,
      );
    }
    return r.interrupted ? 130 : failed.length > 0 ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
}

/** `essay`: every experiment of the essay as grids, a computed verdict per claim, an HTML report. */
export const ESSAY_COMMAND: Command = {
  about:
    "the essay re-run: every experiment the weights allow, a computed verdict per claim, OUT/index.html and claims.json",
  synopsis:
    "[--budget smoke|standard|essay] [--out DIR] [--weights NAME …] [--image PATH] [--plan]",
  spec: ESSAY_SPEC,
  run: essayCommand,
};
