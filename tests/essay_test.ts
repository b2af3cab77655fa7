// The essay command's pieces without running a model: the plan per budget
// (cells, counts, cost), the verdict rules on synthetic numbers, per-patch PSNR
// against a direct computation, explosion labels and the filter pattern score.
import assert from "node:assert/strict";
import {
  autocorrelation,
  BUDGETS,
  cellSeconds,
  CLAIMS,
  discoverModels,
  type Environment,
  EXPERIMENT_IDS,
  type ExperimentResult,
  explosion,
  GRID_START_SECONDS,
  judge,
  loadSeconds,
  type ModelInfo,
  patchPsnr,
  patternedFraction,
  plan,
  psnrHeatmap,
  spread,
  trainedVit,
} from "../src/essay/mod.ts";
import type { CellResult } from "../src/essay/mod.ts";
import { psnr } from "../src/optimize/mod.ts";

const WEIGHTS = new URL("../weights", import.meta.url).pathname;

async function repoEnv(): Promise<Environment> {
  return {
    models: await discoverModels(WEIGHTS),
    root: WEIGHTS,
    weights: [],
    image: "cat.png",
  };
}

/** A small trained ViT folder as the Fashion-MNIST helper makes it (not read: planning only). */
const FMNIST: ModelInfo = {
  name: "fmnist_vit",
  dir: "/nowhere/fmnist_vit",
  weightSets: ["fmnist"],
  imageSize: 32,
  patchSize: 4,
  layers: 4,
  numClasses: 10,
};

Deno.test("plan: cells per experiment and budget; without trained weights the trained claims are not run, with a command", async () => {
  const env = await repoEnv();
  const expected: Record<string, [number, number, number]> = {
    // smoke, standard, essay: rows × columns
    vit_depth: [8, 8, 8],
    resnet_depth: [5, 15, 15],
    vit_stem: [2, 2, 2],
    resnet_stem: [1, 3, 3],
    overcomplete_stem: [1, 1, 1],
    vit_recovery: [1, 1, 1],
    residual: [3, 3, 3],
    noninvertible: [2, 2, 2],
    mixer_p16: [6, 12, 12],
    mixer_p8: [4, 8, 8],
    ffvit: [4, 12, 12],
    stem_trained: [4, 4, 4],
    swaps: [3, 3, 3],
    filters: [0, 0, 0],
  };
  const trained = trainedVit(env);
  for (const [i, b] of (["smoke", "standard", "essay"] as const).entries()) {
    const p = plan(BUDGETS[b], env);
    assert.deepEqual(p.map((e) => e.id), [...EXPERIMENT_IDS]);
    for (const e of p) {
      const needs = e.grid?.model ?? e.trained?.model ??
        (["generation", "stem_trained", "swaps", "filters"].includes(e.id)
          ? trained?.model
          : e.id === "overcomplete_stem"
          ? BUDGETS[b].overcomplete
          : undefined);
      if (needs === undefined || !env.models.has(needs)) {
        assert.equal(e.status, "not run", e.id);
        continue;
      }
      assert.equal(e.status, "run", e.id);
      // a small trained ViT generates at two learning rates
      const gen = env.models.get(trained?.model ?? "")?.imageSize === 224
        ? 3
        : 6;
      const cells = e.id === "generation" ? gen : expected[e.id][i];
      assert.equal(e.cells, cells, `${b} ${e.id}`);
      assert.equal(e.origin, e.trained ? trained!.origin : "untrained");
    }
    // no trained weight set allowed: the trained experiments are not run, with the commands
    for (const e of plan(BUDGETS[b], { ...env, weights: ["NO_SUCH_SET"] })) {
      if (!["generation", "stem_trained", "swaps", "filters"].includes(e.id)) {
        continue;
      }
      assert.equal(e.status, "not run", e.id);
      assert.match(
        e.missing!.command,
        /tools\/convert\.py vit_b_32 --weights IMAGENET1K_V1/,
      );
      assert.match(e.missing!.command, /train_fmnist\.py/);
    }
  }
  const smoke = plan(BUDGETS.smoke, env);
  const depth = smoke.find((e) => e.id === "vit_depth")!;
  assert.deepEqual(depth.grid!.layers, [1, 4, 8, 12]);
  assert.equal(depth.grid!.steps, BUDGETS.smoke.vitSteps);
  // cost: start + load + Σ cells, each steps × (base + perLayer × L)
  const direct = GRID_START_SECONDS + loadSeconds("vit_b_32") +
    2 *
      [1, 4, 8, 12].reduce(
        (a, l) => a + cellSeconds("vit_b_32", l, BUDGETS.smoke.vitSteps),
        0,
      );
  assert.ok(Math.abs(depth.seconds - direct) < 1e-9);
  const total = (b: keyof typeof BUDGETS) =>
    plan(BUDGETS[b], env).reduce((a, e) => a + e.seconds, 0);
  assert.ok(total("smoke") < 600, `smoke ${total("smoke")} s`);
  assert.ok(total("standard") > 3600);
  assert.ok(total("essay") > total("standard"));
});

Deno.test("plan: a missing model folder is not run with the converter command; --only and trained weights", () => {
  const env: Environment = {
    models: new Map([["fmnist_vit", FMNIST]]),
    root: "w",
    weights: [],
    image: "cat.png",
  };
  const p = plan(BUDGETS.smoke, env);
  const depth = p.find((e) => e.id === "vit_depth")!;
  assert.equal(depth.status, "not run");
  assert.equal(
    depth.missing!.command,
    "python3 tools/convert.py vit_b_32 --out w/vit_b_32",
  );
  const gen = p.find((e) => e.id === "generation")!;
  assert.equal(gen.status, "run");
  assert.equal(gen.origin, "small");
  assert.deepEqual(gen.grid!.classes, [1, 7, 9]);
  assert.equal(gen.grid!.weights, "fmnist");
  const swaps = p.find((e) => e.id === "swaps")!;
  assert.deepEqual(swaps.grid!.rows.map((r) => r[1]), [
    "",
    "--swap pos_embedding=fmnist",
    "--swap encoder.layers.0.ln_1=fmnist",
  ]);
  assert.equal(p.find((e) => e.id === "filters")!.status, "run");
  // --weights restricts the trained sets
  const none = plan(BUDGETS.smoke, { ...env, weights: ["IMAGENET1K_V1"] });
  assert.equal(none.find((e) => e.id === "generation")!.status, "not run");
  const only = plan(BUDGETS.smoke, env, ["swaps"]);
  assert.deepEqual(only.filter((e) => e.status === "run").map((e) => e.id), [
    "swaps",
  ]);
  assert.throws(
    () => plan(BUDGETS.smoke, env, ["nope"]),
    /Invalid experiment "nope": expected one of generation/,
  );
});

/** A synthetic cell. */
function cell(
  row: string,
  column: number,
  over: Partial<CellResult> = {},
): CellResult {
  return {
    row,
    column,
    status: "computed",
    dir: "cells/x",
    psnr: null,
    ssim: null,
    embeddingDistance: null,
    noiseBaseline: null,
    inputDistance: null,
    criterionMet: null,
    criterionStep: null,
    steps: 10,
    exploded: null,
    patches: null,
    heatmap: null,
    logit: null,
    probability: null,
    trace: [],
    ...over,
  };
}

const result = (id: string, cells: CellResult[]): ExperimentResult => ({
  id,
  status: "done",
  dir: `cells/${id}`,
  cells,
});

const byId = (id: string) => CLAIMS.find((c) => c.id === id)!;

Deno.test("verdict rules: every claim has a rule in words, and each tier is reachable on synthetic numbers", () => {
  const cases: Record<string, [Record<string, number>, string][]> = {
    generation: [[{ p_min: 0.6, p_max: 0.9 }, "agrees"], [{
      p_min: 0.1,
      p_max: 0.6,
    }, "partly"], [{ p_min: 0.1, p_max: 0.2 }, "disagrees"]],
    vit_depth: [
      [{ psnr_1: 28, psnr_12: 25.5, criterion_12: 0 }, "agrees"],
      [{ psnr_1: 28, psnr_12: 19, criterion_12: 1 }, "partly"],
      [{ psnr_1: 28, psnr_12: 19, criterion_12: 0 }, "disagrees"],
      [{ psnr_1: 28, psnr_12: 17, criterion_12: 1 }, "disagrees"],
    ],
    resnet_vs_vit: [
      [{ resnet_drop: 13, vit_drop: 4, difference: 9 }, "agrees"],
      [{ resnet_drop: 5, vit_drop: 3.5, difference: 1.5 }, "partly"],
      [{ resnet_drop: 2, vit_drop: 4, difference: -2 }, "disagrees"],
    ],
    stem: [[{ stem_loss: 4, encoder_loss: 1 }, "agrees"], [{
      stem_loss: 4,
      encoder_loss: 5,
    }, "partly"], [{ stem_loss: 1, encoder_loss: 2 }, "disagrees"]],
    stem_trained: [[{ gain: 3 }, "agrees"], [{ gain: 1.5 }, "partly"], [{
      gain: 0.5,
    }, "disagrees"]],
    filters: [[{ patterned: 0.5, untrained_patterned: 0 }, "agrees"], [{
      patterned: 0.85,
      untrained_patterned: 0,
    }, "partly"], [{ patterned: 0.02, untrained_patterned: 0 }, "disagrees"]],
    overcomplete_stem: [[{ gain: 5, criterion: 1 }, "agrees"], [{
      gain: 5,
      criterion: 0,
    }, "partly"], [{ gain: 0.2, criterion: 1 }, "disagrees"]],
    swap_pos_embedding: [
      [{ delta: -0.5 }, "agrees"],
      [{ delta: 2 }, "partly"],
      [{ delta: -4 }, "disagrees"],
    ],
    swap_ln1: [[{ gain: 4 }, "agrees"], [{ gain: 1 }, "partly"], [
      { gain: -1 },
      "disagrees",
    ]],
    recovery: [[{ long_12: 29, psnr_1: 28, psnr_12: 18 }, "agrees"], [{
      long_12: 20,
      psnr_1: 28,
      psnr_12: 18,
    }, "partly"], [{ long_12: 18.5, psnr_1: 28, psnr_12: 18 }, "disagrees"]],
    patchwork: [
      [{ iqr_1: 3, iqr_1_no_ln: 2, iqr_4: 4, iqr_4_no_ln: 1 }, "agrees"],
      [{ iqr_1: 1, iqr_1_no_ln: 2, iqr_4: 4, iqr_4_no_ln: 1 }, "partly"],
      [{ iqr_1: 1, iqr_1_no_ln: 2, iqr_4: 1, iqr_4_no_ln: 1 }, "disagrees"],
    ],
    no_ln_better: [[{ gain_1: 1.8, gain_4: 4.4 }, "agrees"], [{
      gain_1: 0.5,
      gain_4: 4.4,
    }, "partly"], [{ gain_1: -1, gain_4: 0 }, "disagrees"]],
    no_ln_explodes: [
      [{ no_ln_8: 1, no_ln_12: 1, intact_8: 0, intact_12: 0 }, "agrees"],
      [{ no_ln_8: 0, no_ln_12: 1, intact_8: 0, intact_12: 0 }, "partly"],
      [{ no_ln_8: 1, no_ln_12: 1, intact_8: 1, intact_12: 1 }, "disagrees"],
      [{ no_ln_8: 0, no_ln_12: 0, intact_8: 0, intact_12: 0 }, "disagrees"],
    ],
    attention_residual: [[{ loss: 11, recovery: 10.6 }, "agrees"], [{
      loss: 11,
      recovery: 1,
    }, "partly"], [{ loss: 0, recovery: 0 }, "disagrees"]],
    noninvertible: [
      [{ embedding_over_baseline: 0.18, input_over_control: 4.5 }, "agrees"],
      [{ embedding_over_baseline: 0.18, input_over_control: 1.1 }, "partly"],
      [{ embedding_over_baseline: 3, input_over_control: 1 }, "disagrees"],
    ],
    mixer_depth: [[{ psnr_1: 25, psnr_8: 20 }, "agrees"], [{
      psnr_1: 31.6,
      psnr_8: 20.2,
    }, "partly"], [{ psnr_1: 35, psnr_8: 34 }, "disagrees"]],
    mixer_patch8: [[{ gain_1: 2, gain_4: 3 }, "agrees"], [{
      gain_1: 2,
      gain_4: -3,
    }, "partly"], [{ gain_1: -2, gain_4: -3 }, "disagrees"]],
    mixer_no_ln: [[{ gain_1: 3, gain_4: 5, gain_8: 9 }, "agrees"], [{
      gain_1: 1,
      gain_4: 0,
      gain_8: 0,
    }, "partly"], [{ gain_1: 0.5, gain_4: 0, gain_8: -1 }, "disagrees"]],
    ffvit_ln: [[{ mixer_gain: 6, ffvit_gain: 2 }, "agrees"], [{
      mixer_gain: 2.5,
      ffvit_gain: 2,
    }, "partly"], [{ mixer_gain: 1, ffvit_gain: 2 }, "disagrees"]],
  };
  assert.deepEqual(CLAIMS.map((c) => c.id).sort(), Object.keys(cases).sort());
  for (const c of CLAIMS) {
    assert.ok(c.rule.length > 40 && /agrees/.test(c.rule), c.id);
    assert.ok(c.quote.length > 20 && c.section.length > 5, c.id);
    for (const e of c.experiments) {
      assert.ok(EXPERIMENT_IDS.includes(e), `${c.id}: ${e}`);
    }
    for (const [n, v] of cases[c.id]) {
      assert.equal(c.judge(n), v, `${c.id} ${JSON.stringify(n)}`);
    }
  }
});

Deno.test("judge: numbers come from the right cells; a missing number is 'not run'; exploded rows are left out of 'best'", () => {
  const depth = result("vit_depth", [
    cell("intact", 1, { psnr: 28.3, criterionMet: true, criterionStep: 33 }),
    cell("intact", 12, { psnr: 19.2, criterionMet: true, criterionStep: 1341 }),
    cell("no layer norms", 1, { psnr: 30.1 }),
    cell("no layer norms", 4, { psnr: 26.7 }),
    cell("intact", 4, { psnr: 22.3 }),
    cell("no layer norms", 8, { psnr: 5.6, exploded: "exploded at step 812" }),
    cell("no layer norms", 12, { psnr: 5.7, exploded: "exploded at step 90" }),
    cell("intact", 8, { psnr: 19.7 }),
  ]);
  const results = new Map([["vit_depth", depth]]);
  const j = judge(byId("vit_depth"), results);
  assert.deepEqual(j.numbers, { psnr_1: 28.3, psnr_12: 19.2, criterion_12: 1 });
  assert.equal(j.verdict, "partly");
  assert.equal(judge(byId("no_ln_better"), results).verdict, "agrees");
  assert.equal(judge(byId("no_ln_explodes"), results).verdict, "agrees");
  const patch = judge(byId("patchwork"), results);
  assert.equal(patch.verdict, "not run");
  assert.deepEqual(patch.missing, [
    "iqr_1",
    "iqr_1_no_ln",
    "iqr_4",
    "iqr_4_no_ln",
  ]);
  // resnet: best learning-rate row, exploded cells left out
  results.set(
    "resnet_depth",
    result("resnet_depth", [
      cell("intact", 1, { psnr: 31 }),
      cell("lr /10", 1, { psnr: 29 }),
      cell("intact", 16, { psnr: 30, exploded: "exploded at step 3" }),
      cell("lr /10", 16, { psnr: 12 }),
    ]),
  );
  const rv = judge(byId("resnet_vs_vit"), results);
  assert.deepEqual(rv.numbers, {
    resnet_drop: 19,
    vit_drop: 28.3 - 19.2,
    difference: 19 - (28.3 - 19.2),
  });
  assert.equal(rv.verdict, "agrees");
  // an experiment that failed counts as not run
  results.set("vit_depth", { ...depth, status: "failed", error: "x" });
  assert.equal(judge(byId("vit_depth"), results).verdict, "not run");
});

Deno.test("patchPsnr: equals a direct per-patch computation; patches' mean MSE gives the global PSNR", () => {
  let s = 7;
  const rnd = () => (s = (s * 48271) % 2147483647) / 2147483647;
  for (const [size, patch] of [[64, 16], [30, 8], [224, 32]]) {
    const n = size * size;
    const ref = new Float32Array(3 * n).map(rnd);
    const x = ref.map((v) => v + (rnd() - 0.5) * 0.4); // some values leave [0,1]
    const p = patchPsnr(x, ref, size, patch);
    const side = Math.ceil(size / patch);
    assert.equal(p.side, side);
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        let sum = 0, cnt = 0;
        for (let c = 0; c < 3; c++) {
          for (let y = py * patch; y < Math.min(size, (py + 1) * patch); y++) {
            for (
              let xx = px * patch;
              xx < Math.min(size, (px + 1) * patch);
              xx++
            ) {
              const i = c * n + y * size + xx;
              sum += (Math.min(1, Math.max(0, x[i])) - ref[i]) ** 2;
              cnt++;
            }
          }
        }
        const direct = 10 * Math.log10(cnt / sum);
        assert.ok(
          Math.abs(p.psnr[py * side + px] - direct) < 1e-9,
          `${size}/${patch} (${px},${py})`,
        );
      }
    }
    if (size % patch === 0) {
      const mean = p.mse.reduce((a, b) => a + b, 0) / p.mse.length;
      assert.ok(Math.abs(10 * Math.log10(1 / mean) - psnr(x, ref)) < 1e-4);
    }
  }
  const sp = spread([1, 2, 3, 4, 100, Infinity]);
  assert.equal(sp.min, 1);
  assert.equal(sp.median, 3.5);
  assert.equal(sp.iqr, 76 - 2.25); // quartiles 2.25 and 4 + 0.75 × 96 (Infinity capped at 100)
  const same = new Float32Array(3 * 16).fill(0.3);
  assert.equal(patchPsnr(same, same, 4, 2).psnr[0], Infinity);
  assert.throws(
    () => patchPsnr(same, same, 4, 5),
    /Invalid patch "5": expected a patch side in pixels from 1 to 4/,
  );
  assert.throws(
    () => patchPsnr(same, same, 5, 1),
    /Invalid images of 48 and 48 values: expected 3x5x5 = 75 each/,
  );
  const map = psnrHeatmap(patchPsnr(same.map((v) => v + 0.5), same, 4, 2), 4);
  assert.equal(map.data.length, 48);
  assert.ok(map.data.every((v) => v >= 0 && v <= 1));
});

Deno.test("explosion: grid divergence, embedding far above baseline, or image far from the target", () => {
  assert.equal(
    explosion(
      "diverged",
      "Run diverged at step 41 (objective NaN): lower the learning rate",
      null,
      null,
      null,
      3,
    ),
    "exploded at step 41",
  );
  assert.equal(
    explosion("diverged", undefined, null, null, null, 3),
    "exploded",
  );
  assert.equal(
    explosion("computed", undefined, 1.77e9, 370.4, 2.8e7, 150528),
    "exploded (embedding distance 4778618× the noise baseline)",
  );
  assert.equal(
    explosion("computed", undefined, 10, 100, 5000, 150528),
    "exploded (input distance 5.00e+3)",
  );
  assert.equal(explosion("computed", undefined, 538, 128, 116, 150528), null);
});

Deno.test("filters: noise has no pattern, smooth filters have one", () => {
  let s = 3;
  const p = 16, n = 40, size = 3 * p * p;
  const w = new Float32Array(n * size);
  for (let f = 0; f < n; f++) {
    for (let i = 0; i < size; i++) {
      const x = i % p, y = Math.floor(i / p) % p;
      w[f * size + i] = f < n / 2
        ? ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5 // noise
        : Math.cos((x + f) / 2) * Math.exp(-((y - 8) ** 2) / 20); // a wavelet
    }
  }
  assert.equal(patternedFraction(w, n, p), 0.5);
  assert.ok(Math.abs(autocorrelation(w.subarray(0, size), p)) < 0.15);
  assert.throws(
    () => patternedFraction(w, n + 1, p),
    /Invalid filters of 30720 values: expected 41×3×16×16 = 31488/,
  );
});

Deno.test("essay command: bad --budget, --only, --image are usage errors (exit 2) and write nothing; --plan writes nothing", async () => {
  const { main } = await import("../src/cli/main.ts");
  const out = `${await Deno.makeTempDir()}/report`;
  const exists = () => Deno.stat(out).then(() => true, () => false);
  const errors: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  const log = console.log;
  const printed: string[] = [];
  console.log = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    assert.equal(await main(["essay", "--budget", "huge", "--out", out]), 2);
    assert.match(
      errors.at(-1)!,
      /Invalid --budget "huge": expected one of smoke, standard, essay/,
    );
    assert.equal(
      await main(["essay", "--only", "vit_depth,nope", "--out", out]),
      2,
    );
    assert.match(
      errors.at(-1)!,
      /Invalid --only "vit_depth,nope": unknown experiment "nope": expected ids from generation,/,
    );
    assert.equal(
      await main(["essay", "--image", "/no/such.png", "--out", out]),
      2,
    );
    assert.match(
      errors.at(-1)!,
      /Invalid --image "\/no\/such.png": no such file/,
    );
    assert.equal(
      await main(["essay", "--plan", "--budget", "standard", "--out", out]),
      0,
    );
    assert.match(
      printed.join("\n"),
      /^total +\| \d+, [\d.]+ (s|min|h) +\| \d+, [\d.]+ h/m,
    );
    assert.match(
      printed.join("\n"),
      /vit_depth: deno run -A mod.ts grid --model vit_b_32 --layers 1,4,8,12 .* --steps 1500 /,
    );
    assert.equal(await exists(), false);
  } finally {
    console.error = orig;
    console.log = log;
  }
});

// ---------------------------------------------------------------------------
// The essay as one array job (--plan --emit, --task, --report-only), on the
// tiny fixture ViT as the small trained ViT: the trained-model experiments.

const REPO = new URL("../", import.meta.url).pathname;

/** A models folder holding the tiny fixture as fmnist_vit (its weight set "fixture"). */
async function tinyModels(dir: string): Promise<string> {
  await Deno.mkdir(`${dir}/models`, { recursive: true });
  await Deno.symlink(
    `${REPO}tests/fixtures/tiny_vit`,
    `${dir}/models/fmnist_vit`,
  );
  return `${dir}/models`;
}

/** A `deno` at `path` that logs each use to `log`, then runs this Deno. */
async function denoWrapper(path: string, log: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\necho "$0" >> '${log}'\nexec '${Deno.execPath()}' "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
}

/** Runs the emitted job.sbatch with bash as a node would: task `i`, `deno` from PATH. */
async function sbatchTask(
  out: string,
  i: number,
  bin: string,
): Promise<{ code: number; err: string }> {
  const o = await new Deno.Command("bash", {
    args: [`${out}/job.sbatch`],
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: Deno.env.get("HOME") ?? out,
      SLURM_ARRAY_TASK_ID: String(i),
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, err: new TextDecoder().decode(o.stderr) };
}

type Claim = { id: string; verdict: string; numbers: Record<string, unknown> };

Deno.test("essay --plan --emit slurm: one array over every cell of every experiment; tasks run one by one (the job script as a node runs it), --report-only lists the missing ones, then equals the one-process run claim for claim", async (t) => {
  const { run, tmp } = await import("./_cli.ts");
  const dir = await tmp();
  const models = await tinyModels(dir);
  const base = ["--models", models, "--weights", "fixture"];
  const out = `${dir}/array`;
  const e = await run([
    "essay",
    ...base,
    ...["--plan", "--emit", "slurm", "--out", out, "--parallel", "3"],
  ]);
  assert.equal(e.code, 0, e.err);
  const env: Environment = {
    models: await discoverModels(models),
    root: models,
    weights: ["fixture"],
    image: "x",
  };
  const planned = plan(BUDGETS.smoke, env).filter((p) => p.status === "run");
  const tasks = JSON.parse(await Deno.readTextFile(`${out}/tasks.json`)).tasks;
  await t.step(
    "a task per cell of every runnable experiment, in order",
    async () => {
      assert.deepEqual(planned.map((p) => p.id), [
        "generation",
        "stem_trained",
        "filters",
        "swaps",
      ]);
      const expected = planned.flatMap((p): [string, number | null][] =>
        p.grid
          ? [...Array(p.cells).keys()].map((c): [string, number] => [p.id, c])
          : [[p.id, null]]
      );
      assert.deepEqual(
        tasks.map((
          x: { experiment: string; cell: number },
        ) => [x.experiment, x.cell]),
        expected,
      );
      assert.deepEqual(tasks.map((x: { index: number }) => x.index), [
        ...expected.keys(),
      ]);
      // each task's cell is the one of its grid's plan, with its estimate
      for (const p of planned.filter((p) => p.grid)) {
        const gp = JSON.parse(
          await Deno.readTextFile(`${out}/cells/${p.id}/plan.json`),
        );
        assert.equal(gp.cells.length, p.cells, p.id);
        for (
          const x of tasks.filter((x: { experiment: string }) =>
            x.experiment === p.id
          )
        ) {
          const c = gp.cells[x.cell];
          assert.equal(x.steps, c.settings.steps);
          assert.equal(
            x.what,
            `${gp.rows[c.row].label} × ${gp.columns[c.col].short}`,
          );
          assert.ok(x.seconds > GRID_START_SECONDS, `${x.seconds}`);
        }
      }
    },
  );
  await t.step(
    "job.sbatch: one array, deno from the node's PATH; submit.sh",
    async () => {
      const sb = await Deno.readTextFile(`${out}/job.sbatch`);
      assert.match(
        sb,
        new RegExp(`^#SBATCH --array=0-${tasks.length - 1}%3$`, "m"),
      );
      assert.match(sb, /^#SBATCH --time=0-00:06:00$/m);
      assert.match(sb, /^deno=\$\{VITREP_DENO:-deno\}$/m);
      assert.match(
        sb,
        new RegExp(
          `^exec "\\$deno" run -A \\S+/mod\\.ts essay --out ${out} --task "\\$SLURM_ARRAY_TASK_ID"$`,
          "m",
        ),
      );
      assert.ok(!sb.includes(Deno.execPath()) && !sb.includes("/_npx/"), sb);
      const submit = await Deno.readTextFile(`${out}/submit.sh`);
      assert.match(submit, /sbatch --parsable --hold "\$@" /);
      assert.match(submit, /^trap 'scontrol release "\$id"' EXIT$/m);
      // each task below the array's --mem gets its own (all fit in 6 minutes: no time updates)
      const mem = new Map<number, number>();
      for (
        const m of submit.matchAll(
          /^scontrol update JobId="\$\{id\}_\[([\d,-]+)\]" MinMemoryNode=(\d+) /gm,
        )
      ) {
        for (const part of m[1].split(",")) {
          const [a, b = a] = part.split("-").map(Number);
          for (let i = a; i <= b; i++) mem.set(i, Number(m[2]));
        }
      }
      const most = Math.max(
        ...tasks.map((x: { peakMiB: number }) => x.peakMiB),
      );
      assert.match(sb, new RegExp(`^#SBATCH --mem=${most}M$`, "m"));
      for (const x of tasks) {
        assert.equal(
          mem.get(x.index),
          x.peakMiB < most ? x.peakMiB : undefined,
        );
      }
      assert.doesNotMatch(submit, /TimeLimit/);
      assert.match(
        e.out,
        /report: +deno run -A \S+ essay --out \S+ --budget smoke --models \S+ --weights fixture --report-only/,
      );
    },
  );
  const bin = `${dir}/node/bin`;
  await denoWrapper(`${bin}/deno`, `${dir}/node.log`);
  const half = tasks.filter((_: unknown, i: number) => i % 2 === 0);
  await t.step(
    "half the tasks, then --report-only lists the others with their tasks and commands",
    async () => {
      for (const x of half) {
        const r = await sbatchTask(out, x.index, bin);
        assert.equal(r.code, 0, r.err);
        assert.match(
          r.err,
          new RegExp(`^essay task ${x.index}: ${x.experiment}`, "m"),
        );
      }
      assert.equal(
        (await Deno.readTextFile(`${dir}/node.log`)).split("\n").length - 1,
        half.length,
      );
      const r = await run(["essay", ...base, "--out", out, "--report-only"]);
      assert.equal(r.code, 0, r.err);
      const missing = JSON.parse(await Deno.readTextFile(`${out}/claims.json`))
        .missing;
      const others = tasks.filter((_: unknown, i: number) => i % 2 === 1);
      assert.deepEqual(
        missing.map((m: { task: number }) => m.task),
        others.map((x: { index: number }) => x.index),
      );
      for (const m of missing) {
        const x = tasks[m.task];
        assert.equal(m.experiment, x.experiment);
        assert.equal(m.cell, x.cell);
        assert.match(
          r.out,
          new RegExp(
            `^  ${x.experiment}.*, task ${x.index}: deno run -A mod.ts `,
            "m",
          ),
        );
      }
      assert.match(
        r.out,
        new RegExp(
          `sbatch --array=${
            others.map((x: { index: number }) => x.index).join(",")
          } ${out}/job.sbatch`,
        ),
      );
    },
  );
  await t.step(
    "the rest in this process (--task), then the report equals the one-process essay",
    async () => {
      for (const x of tasks.filter((_: unknown, i: number) => i % 2 === 1)) {
        const r = await run(["essay", "--out", out, "--task", String(x.index)]);
        assert.equal(r.code, 0, r.err);
      }
      const r = await run(["essay", ...base, "--out", out, "--report-only"]);
      assert.equal(r.code, 0, r.err);
      assert.doesNotMatch(r.out, /missing/);
      const one = await run(["essay", ...base, "--out", `${dir}/one`]);
      assert.equal(one.code, 0, one.err);
      const a = JSON.parse(await Deno.readTextFile(`${out}/claims.json`));
      const b = JSON.parse(await Deno.readTextFile(`${dir}/one/claims.json`));
      assert.deepEqual(a.missing, []);
      assert.deepEqual(
        a.claims.map((c: Claim) => [c.id, c.verdict, c.numbers]),
        b.claims.map((c: Claim) => [c.id, c.verdict, c.numbers]),
      );
      assert.ok(a.claims.some((c: Claim) => c.verdict !== "not run"));
    },
  );
});

Deno.test("essay --emit, --task and --report-only: bad combinations and a tampered tasks.json are refused, naming the value, writing nothing", async () => {
  const { run, tmp } = await import("./_cli.ts");
  const dir = await tmp();
  const models = await tinyModels(dir);
  const base = ["--models", models, "--weights", "fixture"];
  const out = `${dir}/e`;
  const gone = () => Deno.stat(out).then(() => false, () => true);
  const cases: [string[], RegExp][] = [
    [
      ["--emit", "slurm"],
      /Invalid --emit "slurm" without --plan: expected essay --plan --emit slurm --out DIR/,
    ],
    [
      ["--plan", "--emit", "pbs"],
      /Invalid --emit "pbs": expected slurm or k8s/,
    ],
    [["--parallel", "3"], /Invalid --parallel without --emit/],
    [
      ["--plan", "--emit", "slurm", "--parallel", "0"],
      /Invalid --parallel "0"/,
    ],
    [
      ["--plan", "--emit", "slurm", "--deno", "a\nb"],
      /Invalid --deno "a\\nb": expected the path of the Deno every node runs/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await run(["essay", ...base, "--out", out, ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, re);
    assert.ok(await gone(), args.join(" "));
  }
  const none = await run(["essay", "--out", out, "--task", "0"]);
  assert.equal(none.code, 2);
  assert.match(
    none.err,
    /Invalid --out ".*\/e" with --task: it holds no tasks.json/,
  );
  const e = await run([
    "essay",
    ...base,
    ...["--plan", "--emit", "k8s", "--out", out, "--container", "reg/v:1"],
  ]);
  assert.equal(e.code, 0, e.err);
  const yaml = await Deno.readTextFile(`${out}/job.yaml`);
  const n = JSON.parse(await Deno.readTextFile(`${out}/tasks.json`)).tasks
    .length;
  for (
    const line of [
      '  completionMode: "Indexed"',
      `  completions: ${n}`,
      '          image: "reg/v:1"',
      '            - "$(JOB_COMPLETION_INDEX)"',
      '              mountPath: "/essay"',
      '            claimName: "vitrep-essay"',
    ]
  ) assert.ok(yaml.split("\n").includes(line), `${line}\n${yaml}`);
  assert.ok(!yaml.includes(Deno.execPath()) && !yaml.includes("/_npx/"));
  for (
    const [args, re] of [
      [
        ["--task", String(n)],
        new RegExp(`Invalid --task "${n}": expected a task index 0..${n - 1}`),
      ],
      [["--task", "x"], /Invalid --task "x"/],
      [["--task", "0", "--budget", "standard"], /Invalid --budget with --task/],
      [
        ["--report-only", "--budget", "standard"],
        /Invalid --budget standard with --report-only: .*tasks.json was emitted for --budget smoke/,
      ],
    ] as [string[], RegExp][]
  ) {
    const r = await run(["essay", "--out", out, ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, re);
  }
  // a task list sending a task out of its folder is refused, naming it
  const path = `${out}/tasks.json`;
  const t = JSON.parse(await Deno.readTextFile(path));
  t.tasks[0].experiment = "../../elsewhere";
  await Deno.writeTextFile(path, JSON.stringify(t));
  const r = await run(["essay", "--out", out, "--task", "0"]);
  assert.equal(r.code, 1, r.err);
  assert.match(
    r.err,
    /Invalid .*tasks\.json: task 0: experiment "..\/..\/elsewhere": expected the file essay --plan --emit wrote/,
  );
  assert.ok(
    !(await Deno.stat(`${dir}/elsewhere`).then(() => true, () => false)),
  );
});
