/**
 * Internal to the command line (src/cli/main.ts): the `grid` command. It runs
 * invert over model variants × layers, or generate over variants × classes,
 * and writes a labelled montage like the essay's figures plus one table of the
 * figures per cell, in three steps: a plan (src/grid/plan.ts: every cell with its
 * resolved options and key), the cells (src/grid/cell.ts: each an ordinary invert
 * or generate run in `OUT/cells/KEY/`, cached and resumable) and a collect
 * step (src/grid/collect.ts: montage and tables from finished cells). The steps
 * run in one process, or apart: `--plan` writes `OUT/plan.json`, `--cell I`
 * runs one cell of it (a Slurm array task, a Kubernetes Indexed Job pod),
 * `--collect` builds the figure, and `--emit slurm|k8s` writes the job file.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { GENERATE_DEFAULTS, INVERT_DEFAULTS } from "../optimize/mod.ts";
import {
  type Command,
  type Context,
  defaults,
  HELP_OPT,
  MODEL_OPTS,
  type Raw,
  sched,
  type Spec,
  VARIANT_OPTS,
} from "./options.ts";
import { stepsOpt, str } from "../run/read.ts";
import { usage } from "../run/settings.ts";
import { INVERT_SPEC } from "./invert.ts";
import { GENERATE_SPEC } from "./generate.ts";
import { EXIT_HELD } from "../run/exit.ts";
import type { LockInfo } from "../io/mod.ts";
import { gridRequest } from "./grid_args.ts";
import { resolveGrid } from "../grid/resolve.ts";
import { type GridPlan, readPlan, writePlan } from "../grid/plan.ts";
import { ModelPool } from "../grid/cell.ts";
import { runGrid, runPlannedCell } from "../grid/run.ts";
import {
  cellExit,
  cellIndex,
  cellLabel,
  checkReplan,
  collectStep,
  gridExit,
  heldCells,
  isCellTask,
  planStep,
} from "../grid/steps.ts";
import { emitJob, type EmitKind } from "../grid/emit.ts";
import { CLUSTER_OPTS, jobTarget, resourceOpts } from "./cluster.ts";
import { claimGridOut, inspectOut } from "../run/outdir.ts";

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
    multiple: undefined,
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
      "output folder: grid.png, grid.svg, grid.csv, grid.md, metrics.json, plan.json, and cells/KEY/ with each cell's invert or generate outputs. Run the same grid again to reuse finished cells, continue stopped ones and compute only new ones. Cells another process computes are listed with its pid and the grid exits 3 (incomplete): run it again once they are done",
  },
  overwrite: {
    type: "boolean",
    default: false,
    help:
      "replace another command's output in --out, e.g. an invert run's (only the files it wrote; without it such a folder is refused)",
  },
  quiet: { ...INVERT_SPEC.quiet, help: "no progress bars on stderr" },
  ...CLUSTER_OPTS,
  ...HELP_OPT,
};

// ---------------------------------------------------------------------------
// The command: plan, cells, collect — in this process or apart.

/** Options that define a grid; with --cell or --collect the plan fixes them. */
const DEFINING = ["layers", "classes", "variant"];

/** The options --cell and --collect take: the plan fixes every other. */
const STEP_OPTS: Readonly<Record<"cell" | "collect", readonly string[]>> = {
  cell: ["out", "cell", "quiet", "save-every"],
  collect: ["out", "collect", "quiet"],
};

type Action = "run" | "plan" | "cell" | "collect";

function action(given: Raw): Action {
  const picked = (["plan", "cell", "collect"] as const).filter((k) =>
    given[k] !== undefined && given[k] !== false
  );
  if (picked.length > 1) {
    throw usage(
      new TypeError(
        `Invalid grid with ${
          picked.map((k) => `--${k}`).join(" and ")
        }: expected one step: --plan (write plan.json), --cell I (run a cell of it) or --collect (build the figure)`,
      ),
    );
  }
  const a = picked[0] ?? (asTask(given) ? "cell" : "run");
  if (given.emit !== undefined && a !== "plan") {
    throw usage(
      new TypeError(
        `Invalid --emit "${given.emit}" without --plan: expected grid … --out DIR --plan --emit ${given.emit}`,
      ),
    );
  }
  if (given.replan !== undefined && a !== "plan") {
    throw usage(
      new TypeError(
        `Invalid --replan without --plan: expected grid … --out DIR --plan --replan`,
      ),
    );
  }
  if (a === "cell" || a === "collect") fixedByPlan(given, a);
  return a;
}

/** --cell and --collect take the grid from plan.json: any option it fixes (--steps, --model, …) is refused, named. */
function fixedByPlan(given: Raw, a: "cell" | "collect"): void {
  const allowed = STEP_OPTS[a];
  const extra = Object.keys(given).filter((k) =>
    given[k] !== undefined && !allowed.includes(k) && k !== "help" &&
    !(given[k] === false && (k === "plan" || k === "collect"))
  ).map((k) => given[k] === false ? `--no-${k}` : `--${k}`);
  if (extra.length === 0) return;
  throw usage(
    new TypeError(
      `Invalid ${
        extra.join(", ")
      } with --${a}: the grid is the one in --out's plan.json, which fixes ${
        extra.length > 1 ? "them" : "it"
      }: expected only ${
        allowed.map((k) => `--${k}`).join(", ")
      } (to change the grid, plan it again with --plan --replan)`,
    ),
  );
}

/**
 * Whether `grid` without a step is a cell task: no grid given (no --layers,
 * --classes, --variant), and a cell index in the environment or a plan.json
 * in --out (then the missing index is the error).
 */
function asTask(given: Raw): boolean {
  if (DEFINING.some((d) => given[d] !== undefined)) return false;
  return isCellTask(typeof given.out === "string" ? given.out : null);
}

/** `--save-every` for cells run here (0: snapshots only when stopped), at most LIMITS.steps. */
function saveEvery(given: Raw): number {
  return given["save-every"] === undefined
    ? 0
    : stepsOpt(given, "save-every", 0);
}

/** Runs every cell here, then collects; prints the table and what was reused. */
async function runAll(
  plan: GridPlan,
  pool: ModelPool,
  given: Raw,
  ctx: Context,
): Promise<number> {
  const say = (i: number, k: string, s: string) =>
    console.error(`grid ${k} ${cellLabel(plan, i)}: ${s}`);
  const run = await runGrid(plan, {
    pool,
    signal: ctx.signal,
    quiet: given.quiet === true,
    saveEvery: saveEvery(given),
    onStart: (i, k, from) =>
      say(
        i,
        k,
        `computing in ${plan.cells[i].dir}${
          from === null ? "" : ` (continuing from step ${from})`
        }`,
      ),
    onEnd(i, k, r) {
      const rel = plan.cells[i].dir;
      if (r.status === "reused") say(i, k, `reused ${rel}`);
      if (r.failure) say(i, k, r.failure.error);
      if (r.holder) {
        say(
          i,
          k,
          `${rel} is being computed by pid ${r.holder.pid} on ${r.holder.host}`,
        );
      }
    },
  });
  report(plan, run.statuses, run.md, run.interrupted);
  const code = gridExit(run);
  if (code === EXIT_HELD) held(plan, run.holders);
  return code;
}

/** Cells another process computes, listed on stderr (the grid exits {@linkcode EXIT_HELD}). */
function held(plan: GridPlan, holders: ReadonlyMap<number, LockInfo>): void {
  const list = heldCells(plan, holders);
  console.error(
    `grid: incomplete: ${holders.size} of ${plan.cells.length} cells ${
      holders.size > 1 ? "are" : "is"
    } being computed by another process: ${
      list.join("; ")
    }: run the same command again once ${
      holders.size > 1 ? "they end" : "it ends"
    } (exit ${EXIT_HELD})`,
  );
}

function report(
  plan: GridPlan,
  statuses: readonly string[],
  md: string,
  stopped: boolean,
) {
  const count = (s: string) => statuses.filter((x) => x === s).length;
  const reused = plan.cells.flatMap((_, i) =>
    statuses[i] === "reused" ? [cellLabel(plan, i)] : []
  );
  console.log(md);
  console.log(
    `\nreused ${reused.length} of ${plan.cells.length} cells${
      reused.length ? ` (${reused.join("; ")})` : ""
    }; computed ${count("computed")}${
      count("diverged") ? `; ${count("diverged")} diverged` : ""
    }`,
  );
  const files =
    "(grid.png, grid.svg, grid.csv, grid.md, metrics.json, plan.json, cells/)";
  console.log(
    stopped
      ? `stopped; wrote ${plan.out}/ ${files}: run the same command again to continue`
      : `wrote ${plan.out}/ ${files}`,
  );
}

/** `--cell I`: one cell of the plan in --out; a finished or claimed cell exits 0 at once. */
async function cellStep(
  plan: GridPlan,
  given: Raw,
  ctx: Context,
): Promise<number> {
  const i = cellIndex(
    plan,
    typeof given.cell === "string" ? given.cell : undefined,
  );
  const say = (s: string) =>
    console.error(`grid cell ${i} (${plan.cells[i].dir}): ${s}`);
  const r = await runPlannedCell(plan, i, {
    signal: ctx.signal,
    quiet: given.quiet === true,
    saveEvery: saveEvery(given),
    onStart: (_, __, from) =>
      say(from === null ? "computing" : `continuing from step ${from}`),
  });
  if (r.status === "reused") say("finished already");
  if (r.holder) {
    say(
      `claimed by pid ${r.holder.pid} on ${r.holder.host} since ${r.holder.started}: nothing to do`,
    );
  }
  if (r.failure) say(r.failure.error);
  if (r.status === "computed") say("done");
  if (r.status === "stopped") {
    say("stopped; a snapshot is saved: the next task continues it");
  }
  return cellExit(r);
}

/** `--collect`: the figure and tables from finished cells; exit 1 listing the others. */
async function collect(plan: GridPlan): Promise<number> {
  const { md, missing } = await collectStep(plan);
  console.log(md);
  for (const { cell: c, outcome } of missing) {
    console.error(
      `grid: cell ${c.index} (${c.key}, ${
        cellLabel(plan, c.index)
      }): ${outcome}`,
    );
  }
  console.log(
    `collected ${
      plan.cells.length - missing.length
    } of ${plan.cells.length} cells into ${plan.out}/ (grid.png, grid.svg, grid.csv, grid.md, metrics.json)`,
  );
  return missing.length > 0 ? 1 : 0;
}

/** `--plan`: plan.json (and with --emit the job file); runs nothing. */
async function planned(plan: GridPlan, given: Raw): Promise<number> {
  const hours = await planStep(plan);
  console.log(
    `wrote ${plan.out}/plan.json: ${plan.cells.length} cells, about ${
      hours.toFixed(hours < 1 ? 3 : 1)
    } CPU-hours in all`,
  );
  if (given.emit !== undefined) {
    const lines = await emitJob(
      plan,
      emitKind(given),
      resourceOpts(given),
      jobTarget(given, "vitrep-grid"),
    );
    for (const line of lines) console.log(line);
  } else {
    console.log(
      `run a cell: deno run -A mod.ts grid --out ${plan.out} --cell I (I in 0..${
        plan.cells.length - 1
      })`,
    );
  }
  return 0;
}

async function gridCommand(given: Raw, ctx: Context): Promise<number> {
  const step = action(given);
  // --out by the rule of src/io/paths.ts: a grid folder of vitrep's, new or empty
  const overwrite = given.overwrite === true;
  await inspectOut(str({ ...defaults(GRID_SPEC), ...given }, "out"), "grid", {
    overwrite: overwrite && step !== "cell" && step !== "collect",
  });
  if (step === "cell" || step === "collect") {
    const plan = await readPlan(
      resolvePath(str({ ...defaults(GRID_SPEC), ...given }, "out")),
    );
    return step === "cell" ? cellStep(plan, given, ctx) : collect(plan);
  }
  if (given.emit !== undefined) emitKind(given);
  // every option is checked before anything is written
  resourceOpts(given);
  const { plan, models } = await resolveGrid(
    gridRequest(given, defaults(GRID_SPEC)),
  );
  const pool = new ModelPool(models);
  const record = await claimGridOut(plan.out, overwrite).catch(async (err) => {
    await pool.release();
    throw err;
  });
  try {
    if (step === "plan") {
      await pool.release();
      await checkReplan(plan, given.replan === true);
      return await planned(plan, given);
    }
    await Deno.mkdir(`${plan.out}/cells`, { recursive: true });
    await writePlan(plan);
    return await runAll(plan, pool, given, ctx);
  } finally {
    await record();
  }
}

function emitKind(given: Raw): EmitKind {
  const k = str(given, "emit");
  if (k !== "slurm" && k !== "k8s") {
    throw usage(new TypeError(`Invalid --emit "${k}": expected slurm or k8s`));
  }
  return k;
}

/** `grid`: invert or generate over model variants × layers or classes, as one figure and table. */
export const GRID_COMMAND: Command = {
  about:
    "a figure: invert over variants × layers, or generate over variants × classes, with a table; cells cached; --plan/--cell/--collect for clusters",
  synopsis:
    '(--layers L,L… | --classes C,C…) [--variant "LABEL=OPTIONS" …] [options]; --out DIR --plan [--emit slurm|k8s]; --out DIR --cell I; --out DIR --collect',
  spec: GRID_SPEC,
  run: gridCommand,
};
