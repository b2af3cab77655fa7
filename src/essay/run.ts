/**
 * Runs an essay plan: every runnable experiment as a grid (or the filters
 * command) through the command line, then reads the results, judges every
 * claim and writes `claims.json` and `index.html`.
 *
 * @module
 */
import { depthLines, writeDepthPlot } from "./depth.ts";
import { join } from "node:path";
import { EXIT_INTERRUPTED } from "../run/exit.ts";
import {
  PLAN_BYTES,
  readRegularText,
  writeAtomic,
  writeJson,
} from "../io/mod.ts";
import { claimFolder, readMarker, recordFiles } from "../io/paths.ts";
import {
  type Budget,
  type BudgetName,
  cellSeconds,
  GRID_START_SECONDS,
  loadSeconds,
  STEP_TIMES,
} from "./budgets.ts";
import { type ClaimRecord, ESSAY, judgeClaims } from "./claims.ts";
import {
  type Environment,
  EXPERIMENT_IDS,
  gridRecord,
  gridSpec,
  modelArg,
  plan,
  type Planned,
  type ValueCommand,
} from "./experiments.ts";
import {
  type ConditionCall,
  type FiltersCall,
  type Invocation,
  invocationArgs,
  REMOVE_NAME_LIST,
} from "../grid/mod.ts";
import { filterFractions } from "./filters.ts";
import {
  type ExperimentResult,
  judgeCommands,
  readExperiment,
} from "./results.ts";
import { reportHtml, summaryMarkdown } from "./report.ts";

/**
 * Runs one command of vitrep (a grid or one of its steps, `filters`,
 * `forward`, `condition`: see src/grid/invocation.ts) and resolves to its
 * exit code.
 */
export type CommandRunner = (call: Invocation) => Promise<number>;

/** Options of {@linkcode runEssay}. */
export interface EssayOptions {
  /** The report folder. */
  out: string;
  /** The budget. */
  budget: Budget;
  /** Models, weights, image. */
  env: Environment;
  /** Only these experiments (empty: all). */
  only?: readonly string[];
  /** Runs a command of the command line. */
  run: CommandRunner;
  /** Progress lines (the CLI prints them on stderr). */
  log?: (line: string) => void;
  /** Aborted: no further experiment starts (the runner stops the one running). */
  signal?: AbortSignal;
  /**
   * Compute nothing: report the cells already finished (each grid collected
   * as it stands). An interrupted run does this for the experiments after it.
   */
  reportOnly?: boolean;
}

/** What an essay run wrote. */
export interface EssayReport {
  /** Every experiment as planned. */
  planned: Planned[];
  /** Results of the experiments that ran. */
  results: Map<string, ExperimentResult>;
  /** Every claim, judged. */
  claims: ClaimRecord[];
  /** True when a run was interrupted (exit {@linkcode EXIT_INTERRUPTED}): run again to continue. */
  interrupted: boolean;
  /** The cells the report lacks, with the commands (and array tasks) that compute them. */
  missing: MissingCell[];
}

/** Runs one planned experiment; null when interrupted. */
async function runOne(
  p: Planned,
  o: EssayOptions,
): Promise<ExperimentResult | null> {
  const dir = join(o.out, "cells", p.id);
  if (p.valuesFile) return await fileValues(p);
  if (p.commands) {
    for (const c of p.commands) {
      if (await exists(join(dir, c.dir, c.file))) continue;
      const code = await o.run(valueCall(c, dir));
      if (code === EXIT_INTERRUPTED) return null;
    }
    return await commandValues(p, o.out);
  }
  if (p.grid === null) {
    const t = p.trained!;
    const code = await o.run(
      filtersCall(modelArg(o.env, t.model), t.weights, dir),
    );
    if (code === EXIT_INTERRUPTED) return null;
    return await filtersResult(p, o, code === 0);
  }
  await removeGridMetrics(dir);
  const code = await o.run({
    command: "grid",
    grid: gridSpec(p.grid, o.env, dir),
  });
  if (code === EXIT_INTERRUPTED) return null;
  if (code === 0 && !await scoreGenerated(p, o)) return null;
  // exit 1 with a fresh metrics.json: some cells exploded, a finding
  const r = await readExperiment(
    o.out,
    p.id,
    o.env.models.get(p.grid.model)?.patchSize || 32,
  );
  if (code !== 0 && r.cells.every((c) => c.status !== "diverged")) {
    return {
      ...r,
      status: "failed",
      error: `grid exited with ${code}${r.error ? `: ${r.error}` : ""}`,
    };
  }
  return r;
}

/**
 * Scores the images a generation experiment made with another trained model
 * (the judge: a `forward` of each cell's generated.png), those not scored
 * yet; false when interrupted. Nothing to do for other experiments.
 */
async function scoreGenerated(p: Planned, o: EssayOptions): Promise<boolean> {
  if (!p.judge) return true;
  const classes = o.env.models.get(p.judge.model)?.numClasses ?? 1000;
  const judge = {
    ...p.judge,
    model: modelArg(o.env, p.judge.model),
    classes,
  };
  for (const call of await judgeCommands(o.out, p.id, judge)) {
    if (await o.run(call) === EXIT_INTERRUPTED) return false;
  }
  return true;
}

/** The filters command of the filters experiment, writing into `dir`. */
function filtersCall(model: string, weights: string, dir: string): FiltersCall {
  return { command: "filters", model, weights, compare: "untrained", out: dir };
}

/** A value experiment's command, writing into its folder under `dir`. */
function valueCall(c: ValueCommand, dir: string): ConditionCall {
  return { ...c.call, out: join(dir, c.dir) };
}

/** The filters experiment's result: pattern fractions read from the weights, and its figure when made. */
async function filtersResult(
  p: Planned,
  o: EssayOptions,
  figure: boolean,
): Promise<ExperimentResult> {
  const t = p.trained!;
  const rel = join("cells", p.id);
  const values = await filterFractions(
    o.env.models.get(t.model)!.dir,
    t.weights,
  );
  return {
    id: p.id,
    status: "done",
    dir: rel,
    cells: [],
    values,
    ...(figure ? { figure: join(rel, "filters.png") } : {}),
  };
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Upper bound of a value file as read here. */
const VALUES_BYTES = 1 << 20;

/**
 * A value experiment's numbers from its commands' files, per weight draw
 * ("stopped" while some are missing, "failed" when a file is not a number);
 * null when none is there.
 */
async function commandValues(
  p: Planned,
  out: string,
): Promise<ExperimentResult | null> {
  const rel = join("cells", p.id);
  const bySeed: Record<number, Record<string, number>> = {};
  let missing = 0;
  for (const c of p.commands!) {
    const path = join(out, rel, c.dir, c.file);
    if (!await exists(path)) {
      missing++;
      continue;
    }
    const v = JSON.parse(await readRegularText(path, VALUES_BYTES, c.file))?.[
      c.field
    ];
    if (typeof v !== "number") {
      return {
        id: p.id,
        status: "failed",
        error: `${path}: ${c.field} is ${JSON.stringify(v)}, not a number`,
        dir: rel,
        cells: [],
      };
    }
    (bySeed[c.seed] ??= {})[c.key] = v;
  }
  if (missing === p.commands!.length) return null;
  return {
    id: p.id,
    status: missing > 0 ? "stopped" : "done",
    dir: rel,
    cells: [],
    values: bySeed[0] ?? {},
    valuesBySeed: bySeed,
  };
}

/** A value experiment's numbers from the file a run outside vitrep wrote (`essay --values ID=FILE`): its numeric fields. */
async function fileValues(p: Planned): Promise<ExperimentResult> {
  const rel = join("cells", p.id);
  try {
    const v = JSON.parse(
      await readRegularText(p.valuesFile!, VALUES_BYTES, "values file"),
    );
    const values: Record<string, number> = {};
    for (const [k, x] of Object.entries(v ?? {})) {
      if (typeof x === "number") values[k] = x;
    }
    return { id: p.id, status: "done", dir: rel, cells: [], values };
  } catch (err) {
    return {
      id: p.id,
      status: "failed",
      error: `${p.valuesFile}: ${err instanceof Error ? err.message : err}`,
      dir: rel,
      cells: [],
    };
  }
}

/**
 * Removes an experiment's grid metrics.json (the grid writes it afresh) only
 * from a grid folder of vitrep's: marked as one, or an older one (plan.json).
 */
async function removeGridMetrics(dir: string): Promise<void> {
  const m = await readMarker(dir).catch(() => undefined);
  const grid = m === null
    ? await exists(join(dir, "plan.json"))
    : m?.kind === "grid";
  if (grid) await Deno.remove(join(dir, "metrics.json")).catch(() => {});
}

/**
 * What an experiment has finished, computing no cell: its grid collected from
 * the cells there (and generated images scored by the judge model) ("stopped" when some are missing), the filters' numbers
 * read from the weights; null when it never started.
 */
async function collectOne(
  p: Planned,
  o: EssayOptions,
): Promise<ExperimentResult | null> {
  const dir = join(o.out, "cells", p.id);
  if (p.valuesFile) return await fileValues(p);
  if (p.commands) return await commandValues(p, o.out);
  if (p.grid === null) {
    if (!await exists(join(dir, "filters.png"))) return null;
    return await filtersResult(p, o, true);
  }
  if (!await exists(join(dir, "plan.json"))) return null;
  await removeGridMetrics(dir);
  await o.run({ command: "grid-collect", out: dir, quiet: true });
  // cells an array computed: their generated images still need the judge's score (forward passes only)
  await scoreGenerated(p, o);
  return await readExperiment(
    o.out,
    p.id,
    o.env.models.get(p.grid.model)?.patchSize || 32,
  );
}

/** Judges every claim against the results (see judgeClaims in claims.ts): setups, numbers per seed, verdicts. */
export function judgeAll(
  planned: readonly Planned[],
  results: ReadonlyMap<string, ExperimentResult>,
  env?: Pick<Environment, "models" | "image">,
  budget?: Budget,
): ClaimRecord[] {
  return judgeClaims({
    planned,
    results,
    models: env?.models ?? new Map(),
    budget,
    image: env?.image,
  });
}

/**
 * Runs every runnable experiment of the plan (finished grid cells are
 * reused), then writes `OUT/claims.json`, `OUT/summary.md` and
 * `OUT/index.html`. `OUT` must be new, empty or an essay report folder of
 * vitrep's (see src/io/paths.ts: claimFolder); its marker lists the files
 * written.
 *
 * @example
 * ```ts ignore
 * import { BUDGETS, discoverModels, runEssay } from "./mod.ts";
 * const env = { models: await discoverModels("weights"), root: "weights", weights: [], image: "assets/chelsea.png" };
 * const run = async (args: string[]) => (await new Deno.Command(Deno.execPath(), { args: ["run", "-A", "mod.ts", ...args] }).output()).code;
 * const r = await runEssay({ out: "out/essay", budget: BUDGETS.smoke, env, run });
 * console.log(r.claims.map((c) => `${c.id}: ${c.verdict}`));
 * ```
 */
export async function runEssay(o: EssayOptions): Promise<EssayReport> {
  const planned = plan(o.budget, o.env, o.only ?? []);
  const since = Date.now();
  await claimFolder(o.out, "essay", { command: "essay" });
  try {
    return await writeEssay(o, planned);
  } finally {
    await recordFiles(o.out, since).catch(() => {});
  }
}

/**
 * Runs `fn` (an essay run, its report and publishing) with a stop signal as a
 * command line needs it: Ctrl-C reaches a child process too (one process
 * group), which stops after its step and writes, while this process stays to
 * write the report; SIGTERM or an aborted `signal` abort the signal `fn`
 * gets, which stops the child with one SIGINT (two would make it quit at
 * once).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withEssayStop } from "./run.ts";
 * const stop = new AbortController();
 * const aborted = await withEssayStop(stop.signal, (s) => {
 *   stop.abort();
 *   return Promise.resolve(s.aborted);
 * });
 * assert.equal(aborted, true);
 * ```
 */
export async function withEssayStop<T>(
  signal: AbortSignal | undefined,
  fn: (stop: AbortSignal) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  signal?.addEventListener("abort", () => stop.abort());
  const onInt = () => {};
  const onTerm = () => stop.abort();
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  try {
    return await fn(stop.signal);
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
}

/** Runs the experiments of `planned` into the claimed `o.out` and writes the report. */
async function writeEssay(
  o: EssayOptions,
  planned: Planned[],
): Promise<EssayReport> {
  await Deno.mkdir(join(o.out, "cells"), { recursive: true });
  const results = new Map<string, ExperimentResult>();
  let interrupted = false;
  const todo = planned.filter((p) => p.status === "run");
  for (const [i, p] of todo.entries()) {
    const finishedOnly = o.reportOnly || interrupted || !!o.signal?.aborted;
    o.log?.(
      `essay [${i + 1}/${todo.length}] ${p.id}: ${p.title}${
        finishedOnly ? " (finished cells only)" : ""
      }`,
    );
    let r = finishedOnly ? null : await runOne(p, o);
    if (r === null) {
      interrupted ||= !o.reportOnly;
      r = await collectOne(p, o);
    }
    if (r) results.set(p.id, r);
  }
  const claims = judgeAll(planned, results, o.env, o.budget);
  const tasks = await readTasks(o.out).catch(() => null);
  const missing = missingCells(planned, results, tasks?.tasks ?? [], o);
  const depth = depthLines(planned, results, o.env.models);
  const depthFigure = await writeDepthPlot(o.out, depth);
  await writeJson(join(o.out, "claims.json"), {
    essay: ESSAY,
    budget: o.budget,
    image: o.env.image,
    interrupted,
    experiments: planned.map((p) => ({
      id: p.id,
      title: p.title,
      status: results.get(p.id)?.status ?? p.status,
      origin: p.origin,
      ...(p.missing ? { missing: p.missing } : {}),
      ...(p.grid ? { grid: gridRecord(p.grid) } : {}),
    })),
    claims,
    depth,
    missing,
  });
  await writeAtomic(
    join(o.out, "summary.md"),
    summaryMarkdown(claims, o.budget),
  );
  await writeAtomic(
    join(o.out, "index.html"),
    await reportHtml({
      out: o.out,
      budget: o.budget,
      image: o.env.image,
      planned,
      results,
      claims,
      interrupted,
      depth: { figure: depthFigure, lines: depth },
    }),
  );
  return { planned, results, claims, interrupted, missing };
}

// ---------------------------------------------------------------------------
// The essay as one array job: a task per grid cell of every experiment.

/** The format tag of `OUT/tasks.json`. */
export const TASKS_FORMAT = "vitrep-essay-tasks/1";

/** One task of an emitted essay array: a grid cell of an experiment, or the filters command. */
export interface EssayTask {
  /** Its index in the array (`SLURM_ARRAY_TASK_ID`, `JOB_COMPLETION_INDEX`). */
  index: number;
  /** The experiment; its grid folder is `OUT/cells/<experiment>`. */
  experiment: string;
  /** The cell's index in that grid's plan.json; null for the filters command. */
  cell: number | null;
  /** What it computes, e.g. `intact × layer 4`. */
  what: string;
  /** Steps of the cell (0 for the filters command). */
  steps: number;
  /** Estimated seconds on 2 cores: process start, model load and the cell's steps, by the budget's step times. */
  seconds: number;
  /** Estimated peak memory, MiB (the grid plan's estimate for its model). */
  peakMiB: number;
  /** The filters command's model (as commands name it) and weight set. */
  filters?: { model: string; weights: string };
  /** A value experiment's command (with its output folder). */
  call?: ConditionCall;
  /** The command line of `call` in task lists of earlier versions (read, never written; see {@linkcode taskCall}). */
  args?: string[];
}

/** `OUT/tasks.json`: the array's tasks, in index order. */
export interface EssayTasks {
  /** The file's format tag. */
  format: typeof TASKS_FORMAT;
  /** The budget planned. */
  budget: BudgetName;
  /** The experiments selected (empty: all). */
  only: string[];
  /** The tasks, in index order. */
  tasks: EssayTask[];
}

/** The parts of a grid's plan.json a task list needs. */
interface GridPlanJson {
  mode: string;
  model: { peakMiB: number };
  rows: { label: string }[];
  columns: { label: string; short?: string }[];
  cells: {
    index: number;
    row: number;
    col: number;
    settings: { steps: number; layer?: number | string };
  }[];
}

/** Peak MiB of the filters command (it reads one weight set). */
const FILTERS_MIB = 512;

/** Peak MiB of a value experiment's command (a model and its VJP graphs). */
const COMMAND_MIB = 3072;

/** The commands a task of a value experiment may run. */
const TASK_COMMANDS: readonly string[] = ["condition"];

/** A plain value of a task's command: a name or path that no parser takes for an option. */
const plainWord = (v: unknown) =>
  typeof v === "string" && v !== "" && !v.startsWith("-");

/** Whether `v` is an integer ≥ `min`. */
const intAtLeast = (v: unknown, min: number) =>
  typeof v === "number" && Number.isInteger(v) && v >= min;

/** Whether a task's `call` is a value experiment's command as {@linkcode planTasks} writes it. */
function plainCall(c: ConditionCall | undefined): boolean {
  const layers = (l: unknown) =>
    l === undefined || l === "all" ||
    (Array.isArray(l) && l.every((r) =>
      Array.isArray(r) && r.length === 2 && r.every((x) => intAtLeast(x, 1))
    ));
  const removal = (r: { parts?: unknown; layers?: unknown }) =>
    Array.isArray(r?.parts) &&
    r.parts.every((x) =>
      (REMOVE_NAME_LIST as readonly unknown[]).includes(x)
    ) && layers(r.layers);
  return c?.command === "condition" && TASK_COMMANDS.includes(c.command) &&
    plainWord(c.model) && plainWord(c.image) && plainWord(c.out) &&
    intAtLeast(c.layer, 0) && intAtLeast(c.seed, 0) &&
    intAtLeast(c.iterations, 1) &&
    (c.remove === undefined ||
      (Array.isArray(c.remove) && c.remove.every(removal)));
}

/** The tasks of one planned grid experiment, numbered from `first`, from its plan.json. */
function gridTasks(
  p: Planned,
  plan: GridPlanJson,
  first: number,
): EssayTask[] {
  const g = p.grid!;
  const start = GRID_START_SECONDS + loadSeconds(g.model);
  return plan.cells.map((c, i) => {
    const layer = plan.mode === "generate"
      ? "logits"
      : typeof c.settings.layer === "number"
      ? c.settings.layer
      : STEP_LAYERS(g.model);
    const col = plan.columns[c.col];
    return {
      index: first + i,
      experiment: p.id,
      cell: c.index,
      what: `${plan.rows[c.row].label} × ${col.short ?? col.label}`,
      steps: c.settings.steps,
      seconds: start + cellSeconds(g.model, layer, c.settings.steps),
      peakMiB: plan.model.peakMiB,
    };
  });
}

/** A layer given by name (a ResNet stage) is costed as the whole model. */
const STEP_LAYERS = (model: string) => STEP_TIMES[model]?.layers ?? 12;

/**
 * Plans the essay as one array: each runnable grid experiment's grid is
 * planned (`grid … --plan` into `OUT/cells/<id>`, through `o.run`), and every
 * cell becomes a task, the filters experiment one more; writes
 * `OUT/tasks.json` and returns it. Each task's estimate comes from the
 * budget's step times (see budgets.ts). Computes nothing.
 *
 * @example
 * ```ts ignore
 * import { BUDGETS, discoverModels, planTasks } from "./mod.ts";
 * const env = { models: await discoverModels("weights"), root: "weights", weights: [], image: "assets/chelsea.png" };
 * const run = async (args: string[]) => (await new Deno.Command(Deno.execPath(), { args: ["run", "-A", "mod.ts", ...args] }).output()).code;
 * const t = await planTasks({ out: "out/essay", budget: BUDGETS.smoke, env, run });
 * console.log(t.tasks.length);
 * ```
 */
export async function planTasks(o: EssayOptions): Promise<EssayTasks> {
  const planned = plan(o.budget, o.env, o.only ?? []);
  const since = Date.now();
  await claimFolder(o.out, "essay", { command: "essay" });
  try {
    await Deno.mkdir(join(o.out, "cells"), { recursive: true });
    const tasks: EssayTask[] = [];
    for (const p of planned.filter((p) => p.status === "run")) {
      if (o.signal?.aborted) throw new Error("Interrupted while planning");
      const dir = join(o.out, "cells", p.id);
      if (p.valuesFile) continue;
      if (p.commands) {
        for (const c of p.commands) {
          tasks.push({
            index: tasks.length,
            experiment: p.id,
            cell: null,
            what: `${c.key}, seed ${c.seed}`,
            steps: 0,
            seconds: c.seconds,
            peakMiB: COMMAND_MIB,
            call: valueCall(c, dir),
          });
        }
        continue;
      }
      if (p.grid === null) {
        const t = p.trained!;
        tasks.push({
          index: tasks.length,
          experiment: p.id,
          cell: null,
          what: `filters of ${t.model} (${t.weights})`,
          steps: 0,
          seconds: GRID_START_SECONDS + p.seconds,
          peakMiB: FILTERS_MIB,
          filters: { model: modelArg(o.env, t.model), weights: t.weights },
        });
        continue;
      }
      o.log?.(`essay: planning ${p.id}: ${p.title}`);
      const code = await o.run({
        command: "grid",
        grid: gridSpec(p.grid, o.env, dir),
        plan: true,
      });
      if (code !== 0) {
        throw new Error(
          `Planning experiment ${p.id} failed: grid --plan exited with ${code}: see its message above`,
        );
      }
      const gp: GridPlanJson = JSON.parse(
        await readRegularText(join(dir, "plan.json"), PLAN_BYTES, "grid plan"),
      );
      tasks.push(...gridTasks(p, gp, tasks.length));
    }
    const out: EssayTasks = {
      format: TASKS_FORMAT,
      budget: o.budget.name,
      only: [...(o.only ?? [])],
      tasks,
    };
    await writeJson(join(o.out, "tasks.json"), out);
    return out;
  } finally {
    await recordFiles(o.out, since).catch(() => {});
  }
}

/** Upper bound of tasks.json as read here (a grid's plan.json: PLAN_BYTES). */
const TASKS_BYTES = 64 * 2 ** 20;

/** A TypeError naming tasks.json, the field and its value. */
function badTasks(path: string, what: string, value: unknown): TypeError {
  return new TypeError(
    `Invalid ${path}: ${what} ${
      JSON.stringify(value)
    }: expected the file essay --plan --emit wrote (emit it again)`,
  );
}

/** Checks one task as read from `path`: its experiment is the essay's, its numbers in range, the filters' names plain. */
function checkTask(t: EssayTask, i: number, path: string): void {
  const at = `task ${i}`;
  if (t?.index !== i) throw badTasks(path, `${at}: index`, t?.index);
  if (!EXPERIMENT_IDS.includes(t.experiment)) {
    throw badTasks(path, `${at}: experiment`, t.experiment);
  }
  const count = (v: unknown) =>
    typeof v === "number" && Number.isInteger(v) && v >= 0;
  if (t.cell !== null && !count(t.cell)) {
    throw badTasks(path, `${at}: cell`, t.cell);
  }
  if (t.cell === null && t.call !== undefined) {
    if (!plainCall(t.call)) throw badTasks(path, `${at}: call`, t.call);
  } else if (t.cell === null && t.args !== undefined) {
    const plain = Array.isArray(t.args) && t.args.length > 0 &&
      t.args.every((a) => typeof a === "string");
    if (!plain || !TASK_COMMANDS.includes(t.args[0])) {
      throw badTasks(path, `${at}: args`, t.args);
    }
  } else if (t.cell === null) {
    const f = t.filters;
    if (!plainWord(f?.model) || !plainWord(f?.weights)) {
      throw badTasks(path, `${at}: filters`, f);
    }
  }
  if (!count(t.steps) || !(t.seconds >= 0) || !(t.peakMiB >= 0)) {
    throw badTasks(path, `${at}: steps, seconds or peakMiB`, [
      t.steps,
      t.seconds,
      t.peakMiB,
    ]);
  }
}

/**
 * Reads `OUT/tasks.json` (written by {@linkcode planTasks}); null when there
 * is none. A file that is not such a task list (wrong format, an unknown
 * experiment, a bad index) is a TypeError naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTasks } from "./run.ts";
 * assert.equal(await readTasks(await Deno.makeTempDir()), null);
 * ```
 */
export async function readTasks(out: string): Promise<EssayTasks | null> {
  const path = join(out, "tasks.json");
  let text: string;
  try {
    text = await readRegularText(path, TASKS_BYTES, "essay task list");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  let v: EssayTasks;
  try {
    v = JSON.parse(text);
  } catch {
    throw badTasks(path, "text", text.slice(0, 40));
  }
  if (v?.format !== TASKS_FORMAT || !Array.isArray(v.tasks)) {
    throw badTasks(path, "format", v?.format);
  }
  v.tasks.forEach((t, i) => checkTask(t, i, path));
  return v;
}

/**
 * The command (for a {@linkcode CommandRunner}) of task `t` of the array
 * emitted into `out`: cell J of the grid in `OUT/cells/<experiment>`
 * (snapshots every tenth of its steps), the filters command, or a value
 * experiment's command. A task of an earlier version's list that holds a
 * command line (`args`) has none: a TypeError (the command line runs those).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskCall } from "./run.ts";
 * const t = { index: 4, experiment: "vit_depth", cell: 3, what: "intact × layer 12", steps: 30, seconds: 9, peakMiB: 2000 };
 * assert.deepEqual(taskCall(t, "/e"), { command: "grid-cell", out: "/e/cells/vit_depth", cell: 3, quiet: true, saveEvery: 3 });
 * ```
 */
export function taskCall(t: EssayTask, out: string): Invocation {
  const dir = join(out, "cells", t.experiment);
  if (t.cell === null && t.call) return t.call;
  if (t.cell === null && t.args) {
    throw new TypeError(
      `Invalid task ${t.index}: it holds a command line (a task list of an earlier version): expected a typed command (emit the array again)`,
    );
  }
  if (t.cell === null) {
    return filtersCall(t.filters!.model, t.filters!.weights, dir);
  }
  return {
    command: "grid-cell",
    out: dir,
    cell: t.cell,
    quiet: true,
    saveEvery: Math.max(1, Math.ceil(t.steps / 10)),
  };
}

/** A cell the report lacks: which, and how to compute it. */
export interface MissingCell {
  /** The experiment. */
  experiment: string;
  /** The cell's index in the experiment's grid; null for a whole experiment never started (or the filters command). */
  cell: number | null;
  /** What it computes. */
  what: string;
  /** Its task in the emitted array (`OUT/tasks.json`), if one was emitted. */
  task: number | null;
  /** The command that computes it (in the repository, `deno run -A mod.ts …`). */
  command: string;
}

const CMD = "deno run -A mod.ts";

/** The missing cells of one runnable experiment: every cell not finished, or the experiment when it never started. */
function missingOf(
  p: Planned,
  r: ExperimentResult | undefined,
  tasks: readonly EssayTask[],
  o: Pick<EssayOptions, "out" | "env">,
): MissingCell[] {
  const mine = tasks.filter((t) => t.experiment === p.id);
  const taskOf = (cell: number | null) =>
    mine.find((t) => t.cell === cell) ?? null;
  const quoted = (call: Invocation) =>
    invocationArgs(call).map(shellWord).join(" ");
  if (p.valuesFile) return [];
  if (p.commands) {
    const got = r?.valuesBySeed ?? {};
    return p.commands.filter((c) => got[c.seed]?.[c.key] === undefined).map(
      (c) => {
        const call = valueCall(c, join(o.out, "cells", p.id));
        const same = (t: EssayTask) =>
          t.call ? JSON.stringify(t.call) === JSON.stringify(call) : t.args &&
            t.args.join("\0") === invocationArgs(call).join("\0");
        const t = mine.find(same);
        return {
          experiment: p.id,
          cell: null,
          what: `${c.key}, seed ${c.seed}`,
          task: t?.index ?? null,
          command: `${CMD} ${quoted(call)}`,
        };
      },
    );
  }
  if (p.grid === null) {
    if (r !== undefined && r.status === "done") return [];
    const t = taskOf(null);
    return [{
      experiment: p.id,
      cell: null,
      what: t?.what ?? "filters",
      task: t?.index ?? null,
      command: `${CMD} ${
        quoted(filtersCall(
          modelArg(o.env, p.trained!.model),
          p.trained!.weights,
          join(o.out, "cells", p.id),
        ))
      }`,
    }];
  }
  if (r === undefined || r.cells.length === 0) {
    return [{
      experiment: p.id,
      cell: null,
      what: `the whole grid (${p.cells} cells): never started`,
      task: null,
      command: `${CMD} ${
        quoted({
          command: "grid",
          grid: gridSpec(p.grid, o.env, join(o.out, "cells", p.id)),
        })
      }`,
    }];
  }
  return r.cells.flatMap((c, i) => {
    if (c.status !== "missing" && c.status !== "stopped") return [];
    const t = taskOf(i);
    const dir = join(o.out, "cells", p.id);
    return [{
      experiment: p.id,
      cell: i,
      what: t?.what ?? `${c.row} × ${c.column}`,
      task: t?.index ?? null,
      command: `${CMD} ${quoted({ command: "grid-cell", out: dir, cell: i })}`,
    }];
  });
}

/** A word for a POSIX shell: as it is when plain, else single-quoted. */
const shellWord = (s: string) =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;

/**
 * Every cell the report lacks: for each runnable experiment, its grid cells
 * not finished (missing, or stopped with a snapshot), or the experiment when
 * it never started, with the array task that computes each (when `tasks`
 * from an emitted array are given) and the command that does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUDGETS, missingCells, plan } from "./mod.ts";
 * const models = new Map([["vit_b_32", { name: "vit_b_32", dir: "w/vit_b_32", weightSets: [], imageSize: 224, patchSize: 32, layers: 12, numClasses: 1000 }]]);
 * const env = { models, root: "w", weights: [], image: "cat.png" };
 * const planned = plan(BUDGETS.smoke, env, ["vit_stem"]);
 * const m = missingCells(planned, new Map(), [], { out: "/e", env });
 * assert.equal(m.length, 1);
 * assert.match(m[0].command, /^deno run -A mod.ts grid --model w\/vit_b_32 /);
 * ```
 */
export function missingCells(
  planned: readonly Planned[],
  results: ReadonlyMap<string, ExperimentResult>,
  tasks: readonly EssayTask[],
  o: Pick<EssayOptions, "out" | "env">,
): MissingCell[] {
  return planned.filter((p) => p.status === "run").flatMap((p) =>
    missingOf(p, results.get(p.id), tasks, o)
  );
}
