/**
 * Runs an essay plan: every runnable experiment as a grid (or the filters
 * command) through the command line, then reads the results, judges every
 * claim and writes `claims.json` and `index.html`.
 *
 * @module
 */
import { depthLines, writeDepthPlot } from "./depth.ts";
import { join } from "node:path";
import {
  claimFolder,
  readMarker,
  recordFiles,
  writeAtomic,
  writeJson,
} from "../io/mod.ts";
import type { Budget } from "./budgets.ts";
import { type ClaimRecord, ESSAY, judgeClaims } from "./claims.ts";
import {
  type Environment,
  gridArgs,
  modelArg,
  plan,
  type Planned,
} from "./experiments.ts";
import { filterFractions } from "./filters.ts";
import {
  type ExperimentResult,
  judgeCommands,
  readExperiment,
} from "./results.ts";
import { reportHtml, summaryMarkdown } from "./report.ts";

/**
 * Runs one command of the command line (`["grid", …]` or `["filters", …]`)
 * and resolves to its exit code.
 */
export type CommandRunner = (args: string[]) => Promise<number>;

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
  /** True when a run was interrupted (exit 130): run again to continue. */
  interrupted: boolean;
}

const EXIT_INTERRUPTED = 130;

/** Runs one planned experiment; null when interrupted. */
async function runOne(
  p: Planned,
  o: EssayOptions,
): Promise<ExperimentResult | null> {
  const dir = join(o.out, "cells", p.id);
  if (p.grid === null) {
    const t = p.trained!;
    const code = await o.run([
      "filters",
      "--model",
      modelArg(o.env, t.model),
      "--weights",
      t.weights,
      "--compare",
      "untrained",
      "--out",
      dir,
    ]);
    if (code === EXIT_INTERRUPTED) return null;
    return await filtersResult(p, o, code === 0);
  }
  await removeGridMetrics(dir);
  const code = await o.run([
    "grid",
    ...gridArgs(p.grid, o.env, dir),
  ]);
  if (code === EXIT_INTERRUPTED) return null;
  // generated images are scored by another trained model (the judge)
  if (p.judge && code === 0) {
    const classes = o.env.models.get(p.judge.model)?.numClasses ?? 1000;
    const judge = {
      ...p.judge,
      model: modelArg(o.env, p.judge.model),
      classes,
    };
    for (const args of await judgeCommands(o.out, p.id, judge)) {
      if (await o.run(args) === EXIT_INTERRUPTED) return null;
    }
  }
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
 * What an experiment has finished, computing nothing: its grid collected from
 * the cells there ("stopped" when some are missing), the filters' numbers
 * read from the weights; null when it never started.
 */
async function collectOne(
  p: Planned,
  o: EssayOptions,
): Promise<ExperimentResult | null> {
  const dir = join(o.out, "cells", p.id);
  if (p.grid === null) {
    if (!await exists(join(dir, "filters.png"))) return null;
    return await filtersResult(p, o, true);
  }
  if (!await exists(join(dir, "plan.json"))) return null;
  await removeGridMetrics(dir);
  await o.run(["grid", "--out", dir, "--collect", "--quiet"]);
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
      ...(p.grid ? { grid: p.grid } : {}),
    })),
    claims,
    depth,
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
  return { planned, results, claims, interrupted };
}
