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
import { existsSync } from "../io/files.ts";
import { resolve, sep } from "node:path";
import { resolveReal } from "../io/paths.ts";
import { checkOutPath, inspectOut } from "../run/outdir.ts";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import { denoRunner } from "../run/process.ts";
import {
  BUDGET_NAMES,
  type BudgetName,
  BUDGETS,
  type CommandRunner,
  discoverModels,
  emitEssay,
  emittedSelection,
  type Environment,
  ESSAY_JOB,
  type EssayReport,
  essayTask,
  EXPERIMENT_IDS,
  gridSpec,
  type MissingCell,
  plan,
  publishHint,
  publishReport,
  repositoryModels,
  runEssay,
  valueFiles,
  withEssayStop,
} from "../essay/mod.ts";
import { invocationArgs } from "../grid/invocation.ts";
import {
  type Command,
  type Context,
  DEFAULT_IMAGE_TEXT,
  defaultImage,
  HELP_OPT,
  parse,
  type Raw,
  type Spec,
} from "./options.ts";
import { ROOT, usage } from "../run/settings.ts";
import { list, str } from "../run/read.ts";
import {
  type EmitKind,
  type JobTarget,
  modPath,
  shellQuote,
  TASK_LIMITS,
} from "../grid/emit.ts";
import { durationText, type WrittenTaskArray } from "../grid/array.ts";
import { CLUSTER_OPTS, jobTarget, resourceOpts } from "./cluster.ts";
import { GRID_COMMAND } from "./grid.ts";
import { FILTERS_COMMAND } from "./inspect.ts";
import { CONDITION_COMMAND } from "./condition.ts";

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
  values: {
    type: "string",
    multiple: true,
    arg: "ID=FILE",
    help:
      "numbers a run outside vitrep measured for an experiment, as a JSON object of numbers: residual_training=FILE (tools/train_residual.py's values.json). Repeatable",
  },
  "report-only": {
    type: "boolean",
    default: false,
    help:
      "compute no cell: write the report (and --publish) from the cells already finished, each grid collected as it stands (generated images still get the judge model's score: a forward pass each); experiments never started are not run",
  },
  emit: {
    type: "string",
    arg: "slurm|k8s",
    defaultText: "none",
    help:
      "with --plan: the whole essay as ONE array job, a task per grid cell of every experiment (the filters experiment one more): plans each grid into OUT/cells/<experiment>/plan.json, writes OUT/tasks.json (task → experiment, cell, estimated cost) and OUT/job.sbatch with OUT/submit.sh (each task its own time limit) or OUT/job.yaml (a Kubernetes Indexed Job); after it, --report-only writes the report and lists missing cells",
  },
  task: {
    type: "string",
    arg: "I",
    defaultText: "none",
    help:
      "run task I of the array emitted into --out (OUT/tasks.json: one grid cell, or the filters command); the job files pass $SLURM_ARRAY_TASK_ID or $(JOB_COMPLETION_INDEX). Only --out goes with it",
  },
  parallel: { ...CLUSTER_OPTS.parallel },
  cpus: { ...CLUSTER_OPTS.cpus },
  mem: {
    ...CLUSTER_OPTS.mem,
    defaultText: "the largest model's estimate",
  },
  time: {
    ...CLUSTER_OPTS.time,
    defaultText: "each task's own, from its estimated cost",
    help:
      `--emit: one time limit in minutes for every task (1..${TASK_LIMITS.minutes}); without it each task's limit is twice its estimate on --cpus cores, plus 5 minutes`,
  },
  deno: { ...CLUSTER_OPTS.deno },
  container: { ...CLUSTER_OPTS.container },
  volume: {
    ...CLUSTER_OPTS.volume,
    default: "vitrep-essay",
    help:
      "--emit k8s: the PersistentVolumeClaim holding OUT (ReadWriteMany), mounted at /essay",
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
  if (given.models !== undefined) return resolve(str(given, "models"));
  const root = repositoryModels(ROOT);
  if (root === null) {
    throw usage(
      new TypeError(
        `Invalid --models: mod.ts runs from ${ROOT.href}: expected --models DIR, a local folder of model folders`,
      ),
    );
  }
  return root;
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
            ? `${q.cells}, ${durationText(q.seconds)}`
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
          durationText(run.reduce((a, q) => a + q.seconds, 0))
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
        `  ${p.id}: deno run -A mod.ts ${
          invocationArgs({
            command: "grid",
            grid: gridSpec(p.grid, env, `${out}/cells/${p.id}`),
          }).map(quote).join(" ")
        }`,
      );
    } else if (p.commands) {
      lines.push(
        `  ${p.id}: ${p.commands.length} commands, e.g. deno run -A mod.ts ${
          invocationArgs({
            ...p.commands[0].call,
            out: `${out}/cells/${p.id}/${p.commands[0].dir}`,
          }).map(quote).join(" ")
        }`,
      );
    } else if (p.valuesFile) {
      lines.push(`  ${p.id}: numbers read from ${p.valuesFile}`);
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
  const run = denoRunner(new URL("mod.ts", ROOT), {
    signal,
    stdout: new WritableStream({
      write: (chunk) => Deno.stderr.write(chunk).then(() => {}),
    }),
  });
  return (call) => run(invocationArgs(call));
}

// ---------------------------------------------------------------------------
// The essay as one array job: --plan --emit, --task, and the report after it.

/** Options that only go with --emit. */
const EMIT_ONLY = [
  "parallel",
  "cpus",
  "mem",
  "time",
  "deno",
  "container",
  "volume",
];

/** --emit's kind, with --plan; resource options only with --emit. Checked before anything is written. */
function emitOpt(given: Raw): EmitKind | null {
  if (given.emit === undefined) {
    const stray = EMIT_ONLY.filter((k) => given[k] !== undefined);
    if (stray.length > 0) {
      throw usage(
        new TypeError(
          `Invalid ${stray.map((k) => `--${k}`).join(", ")} without --emit: ${
            stray.length > 1 ? "they size" : "it sizes"
          } the emitted job's tasks: expected essay --plan --emit slurm|k8s ${
            stray.map((k) => `--${k} …`).join(" ")
          }`,
        ),
      );
    }
    return null;
  }
  const k = str(given, "emit");
  if (k !== "slurm" && k !== "k8s") {
    throw usage(new TypeError(`Invalid --emit "${k}": expected slurm or k8s`));
  }
  if (given.plan !== true) {
    throw usage(
      new TypeError(
        `Invalid --emit "${k}" without --plan: expected essay --plan --emit ${k} --out DIR`,
      ),
    );
  }
  resourceOpts(given);
  return k;
}

/** Runs a command line of this CLI in this process (a task runs one grid cell, the filters command or a value experiment's command). */
function inProcess(ctx: Context): (args: readonly string[]) => Promise<number> {
  const commands: Record<string, Command> = {
    grid: GRID_COMMAND,
    filters: FILTERS_COMMAND,
    condition: CONDITION_COMMAND,
  };
  return async (args) => {
    const [name, ...rest] = args;
    const cmd = commands[name];
    return await cmd.run(parse(name, cmd.spec, rest), ctx);
  };
}

/** `--task I`: task I of OUT/tasks.json, in this process; its exit code. */
async function taskStep(given: Raw, ctx: Context): Promise<number> {
  const extra = Object.keys(given).filter((k) =>
    given[k] !== undefined && given[k] !== false && k !== "out" &&
    k !== "task"
  );
  if (extra.length > 0) {
    throw usage(
      new TypeError(
        `Invalid ${
          extra.map((k) => `--${k}`).join(", ")
        } with --task: the task is fixed by --out's tasks.json: expected essay --out DIR --task I`,
      ),
    );
  }
  const out = resolve(str({ out: "out/essay", ...given }, "out"));
  const picked = await essayTask(out, str(given, "task"), "--task");
  if (picked === null) {
    throw usage(
      new TypeError(
        `Invalid --out "${out}" with --task: it holds no tasks.json: expected a folder written by essay --plan --emit slurm|k8s --out DIR`,
      ),
    );
  }
  const { index: i, task: t, args } = picked;
  console.error(
    `essay task ${i}: ${t.experiment}${
      t.cell === null ? "" : ` cell ${t.cell}`
    } (${t.what})`,
  );
  return await inProcess(ctx)(args);
}

/** The command line that writes the report of the array in `out`, with the essay options given. */
function reportCommand(given: Raw, out: string, budget: BudgetName): string {
  const args = ["essay", "--out", out, "--budget", budget];
  for (const k of ["only", "models", "image"]) {
    if (given[k] !== undefined) {
      args.push(
        `--${k}`,
        k === "only" ? str(given, k) : resolve(str(given, k)),
      );
    }
  }
  for (const w of list(given, "weights")) args.push("--weights", w);
  return `deno run -A ${shellQuote(modPath())} ${
    [...args, "--report-only"].map(shellQuote).join(" ")
  }`;
}

/** The lines to print for the job files `w` of `kind` written into `out`. */
function jobLines(
  kind: EmitKind,
  out: string,
  w: WrittenTaskArray,
  target: JobTarget,
  report: string,
): string[] {
  const r = w.resources;
  if (kind === "slurm") {
    return [
      `wrote ${w.path} (${w.summary})`,
      ...w.table,
      `submit:  bash ${out}/submit.sh   (each task its own time limit and memory; prints the job id. Or sbatch ${w.path}: every task at ${r.minutes} min, ${r.memMiB} MiB)`,
      `report:  ${report}   (after the array: builds the report from the finished cells and lists missing ones; or sbatch --dependency=afterany:JOBID --wrap '${report}')`,
    ];
  }
  return [
    `wrote ${w.path} (${w.summary}; Kubernetes has no per-index time limit)`,
    ...w.table,
    `build:   docker build -t ${target.image} .   (the repository's Dockerfile; push it where the cluster pulls from)`,
    `copy ${out}/ into the volume "${target.claim}", then submit: kubectl apply -f ${w.path}`,
    `report:  essay --out DIR --report-only with DIR the volume's copy (${report})`,
  ];
}

/** `--plan --emit`: every grid planned, tasks.json and the job files; runs no cell. */
async function emitStep(
  kind: EmitKind,
  given: Raw,
  ctx: Context,
  s: { budget: BudgetName; only: string[]; env: Environment; out: string },
): Promise<number> {
  const report = reportCommand(given, s.out, s.budget);
  const target = jobTarget(given, ESSAY_JOB);
  const e = await emitEssay({
    out: s.out,
    budget: BUDGETS[s.budget],
    env: s.env,
    only: s.only,
    run: processRunner(ctx.signal),
    log: (line) => console.error(line),
  }, {
    kind,
    resources: resourceOpts(given),
    target,
    report,
    args: (dir) => ["essay", "--out", dir, "--task"],
  });
  if (e === null) {
    console.error(
      `error: no experiment of budget ${s.budget} can run with the models in ${s.env.root}: nothing to emit (see essay --plan)`,
    );
    return 1;
  }
  console.log(`wrote ${s.out}/tasks.json: ${e.tasks.tasks.length} tasks`);
  for (const line of jobLines(kind, s.out, e.written, target, report)) {
    console.log(line);
  }
  return 0;
}

/** Prints the cells a report lacks, with their tasks and commands. */
function printMissing(missing: readonly MissingCell[], out: string): void {
  if (missing.length === 0) return;
  console.log(`missing ${missing.length} cell(s):`);
  for (const m of missing) {
    console.log(
      `  ${m.experiment}${
        m.cell === null ? "" : ` cell ${m.cell}`
      } (${m.what})${m.task === null ? "" : `, task ${m.task}`}: ${m.command}`,
    );
  }
  const tasks = missing.flatMap((m) => m.task === null ? [] : [m.task]);
  if (tasks.length > 0 && existsSync(`${out}/job.sbatch`)) {
    console.log(
      `run the missing tasks: sbatch --array=${
        tasks.join(",")
      } ${out}/job.sbatch, then this command again`,
    );
  }
}

/** --budget and --only of a --report-only: as given, else as the emitted array in --out planned them. */
async function fromTasks(
  given: Raw,
  out: string,
): Promise<{ budget: BudgetName; only: string[] }> {
  const t = given["report-only"] === true ? await emittedSelection(out) : null;
  const budget = given.budget === undefined && t ? t.budget : budgetOpt(given);
  const only = given.only === undefined && t ? t.only : onlyOpt(given);
  if (t && (budget !== t.budget || only.join() !== t.only.join())) {
    throw usage(
      new TypeError(
        `Invalid --budget ${budget}${
          only.length ? ` --only ${only.join(",")}` : ""
        } with --report-only: ${out}/tasks.json was emitted for --budget ${t.budget}${
          t.only.length ? ` --only ${t.only.join(",")}` : ""
        }: expected the same (or leave them out)`,
      ),
    );
  }
  return { budget, only };
}

/** Prints the verdicts, what was written, the missing cells and the failed experiments; how many failed. */
function printReport(r: EssayReport, out: string, started: number): number {
  const width = Math.max(...r.claims.map((c) => c.id.length));
  for (const c of r.claims) {
    console.log(`${c.id.padEnd(width)}  ${c.verdict}`);
  }
  console.log(
    `${r.interrupted ? "stopped" : "done"} in ${
      durationText((performance.now() - started) / 1000)
    }; wrote ${out}/ (index.html, claims.json, summary.md, cells/, maps/)${
      r.interrupted ? ": run the same command again to continue" : ""
    }`,
  );
  printMissing(r.missing, out);
  const failed = [...r.results.values()].filter((e) => e.status === "failed");
  for (const e of failed) {
    console.error(`error: experiment ${e.id}: ${e.error}`);
  }
  return failed.length;
}

/** The essay's settings, read from its options once. */
interface EssaySettings {
  /** --emit's kind (with --plan), else null. */
  emit: EmitKind | null;
  /** --plan. */
  plan: boolean;
  /** --report-only. */
  reportOnly: boolean;
  /** The report folder, resolved. */
  out: string;
  /** --publish's folder, resolved, else null. */
  publish: string | null;
  budget: BudgetName;
  only: string[];
  env: Environment;
}

/** Reads and checks the options of a run, --plan or --emit (folders, models, image, values), before anything runs. */
async function essaySettings(given: Raw): Promise<EssaySettings> {
  const emit = emitOpt(given);
  const root = modelsRoot(given);
  const image = defaultImage({ image: given.image ?? DEFAULT_IMAGE_TEXT });
  const outText = given.out === undefined ? "out/essay" : str(given, "out");
  const out = resolve(checkOutPath(outText, "--out"));
  const { budget, only } = await fromTasks(given, out);
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
  if (!given.plan || emit !== null) {
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
    values: await valueFiles(list(given, "values"), "--values"),
  };
  if (!given.plan || emit !== null) {
    await Deno.stat(image).catch(() => {
      throw usage(
        new TypeError(
          `Invalid --image "${given.image}": no such file: expected a PNG or JPEG`,
        ),
      );
    });
  }
  const plan = given.plan === true, reportOnly = given["report-only"] === true;
  return { emit, plan, reportOnly, out, publish, budget, only, env };
}

/** Runs (or, with --report-only, reports) every experiment, prints the verdicts and publishes; the exit code. */
async function runStep(s: EssaySettings, ctx: Context): Promise<number> {
  const { out, publish } = s;
  const started = performance.now();
  return await withEssayStop(ctx.signal, async (stop) => {
    const r = await runEssay({
      out,
      budget: BUDGETS[s.budget],
      env: s.env,
      only: s.only,
      run: processRunner(stop),
      reportOnly: s.reportOnly,
      signal: stop,
      log: (line) => console.error(line),
    });
    const failed = printReport(r, out, started);
    if (publish !== null) {
      const p = await publishReport(out, publish, { option: "--publish" });
      console.log(
        `published ${publish}/: ${p.files} files, ${
          (p.bytes / 2 ** 20).toFixed(1)
        } MiB`,
      );
    }
    return r.interrupted ? EXIT_INTERRUPTED : failed > 0 ? 1 : 0;
  });
}

async function essayCommand(given: Raw, ctx: Context): Promise<number> {
  if (given.task !== undefined) return await taskStep(given, ctx);
  const s = await essaySettings(given);
  if (s.emit !== null) return await emitStep(s.emit, given, ctx, s);
  if (s.plan) {
    console.log(planText(s.env, s.budget, s.only, s.out));
    return 0;
  }
  return await runStep(s, ctx);
}

/** `essay`: every experiment of the essay as grids, a computed verdict per claim, an HTML report. */
export const ESSAY_COMMAND: Command = {
  about:
    "the essay re-run: every experiment the weights allow, a computed verdict per claim, OUT/index.html and claims.json",
  synopsis:
    "[--budget smoke|standard|essay] [--out DIR] [--weights NAME …] [--image PATH] [--plan [--emit slurm|k8s]] [--report-only]; --out DIR --task I",
  spec: ESSAY_SPEC,
  run: essayCommand,
};
