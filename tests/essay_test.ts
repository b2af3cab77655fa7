// The essay command's pieces without running a model: the plan per budget
// (cells with their weight draws, matched comparisons, cost), the verdict
// engine (rules as data and their words, every verdict path: agrees, partly,
// disagrees, borderline from seeds straddling a cut-off, not testable from a
// manifest precondition, not run), setups and deviations, the per-patch
// error decomposition, per-patch PSNR, explosion labels, the filter pattern
// score and the report's page and summary.
import assert from "node:assert/strict";
import {
  applyRule,
  autocorrelation,
  budgetDeviations,
  BUDGETS,
  type CellResult,
  cellSeconds,
  type ClaimRecord,
  CLAIMS,
  discoverModels,
  type Environment,
  evaluate,
  EXP,
  EXPERIMENT_IDS,
  type ExperimentResult,
  explosion,
  GRID_START_SECONDS,
  gridSpec,
  headline,
  judgeClaim,
  judgeClaims,
  judgeCommands,
  loadSeconds,
  type ModelInfo,
  patchError,
  patchPsnr,
  patternedFraction,
  plan,
  type Planned,
  psnrHeatmap,
  readExperiment,
  reportHtml,
  type RowId,
  rowLabel,
  ruleText,
  seedView,
  spread,
  summaryMarkdown,
  trainedVit,
} from "../src/essay/mod.ts";
import { psnr } from "../src/optimize/mod.ts";
import { gridArgs, invocationArgs, rowText } from "../src/grid/mod.ts";
import { parseVariant } from "../src/cli/grid_args.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const WEIGHTS = `${ROOT}weights`;

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
  architecture: "vit",
  hidden: 64,
  channels: 3,
  trainedOn: {
    fmnist: { data: "Fashion-MNIST", colour: false, source: "test" },
  },
};

/** ImageNet ViT-B/32 as a converted folder would describe it (undercomplete stem, colour). */
const B32: ModelInfo = {
  name: "vit_b_32",
  dir: "/nowhere/vit_b_32",
  weightSets: ["IMAGENET1K_V1"],
  imageSize: 224,
  patchSize: 32,
  layers: 12,
  numClasses: 1000,
  architecture: "vit",
  hidden: 768,
  channels: 3,
  trainedOn: {
    IMAGENET1K_V1: { data: "ImageNet-1k", colour: true, source: "test" },
  },
};

const envOf = (...models: ModelInfo[]): Environment => ({
  models: new Map(models.map((m) => [m.name, m])),
  root: "w",
  weights: [],
  image: "cat.png",
});

/** A synthetic cell of row `rowId` drawn with `seed`. */
function cell(
  rowId: RowId,
  column: number,
  over: Partial<CellResult> = {},
  seed = 0,
): CellResult {
  return {
    row: rowLabel(rowId, seed),
    rowId,
    seed,
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
    criterionAtEnd: null,
    bestEmbedding: null,
    steps: 10,
    exploded: null,
    patches: null,
    patchError: null,
    heatmap: null,
    logit: null,
    probability: null,
    judgeProbability: null,
    roughness: null,
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
const seeds3 = [0, 1, 2];

Deno.test("plan: cells per experiment and budget, every row of an untrained-weight experiment drawn with each of the budget's seeds; cost counts every cell", async () => {
  const env = await repoEnv();
  const expected: Record<string, [number, number, number]> = {
    // smoke (2 seeds, no learning-rate rows), standard (3 seeds, no learning-rate rows,
    // fewer columns) and essay (3 seeds): rows × seeds × columns
    vit_depth: [16, 18, 36],
    resnet_depth: [6, 6, 18],
    vit_stem: [4, 6, 12],
    resnet_stem: [2, 3, 6],
    overcomplete_stem: [2, 3, 6],
    vit_recovery: [8, 0, 12],
    residual: [6, 9, 9],
    noninvertible: [4, 6, 6],
    mixer_p16: [12, 18, 36],
    mixer_p16_match: [4, 3, 12],
    mixer_p8: [4, 3, 12],
    ffvit: [8, 12, 48],
    stem_trained: [8, 12, 12],
    swaps: [6, 9, 9],
    filters: [0, 0, 0],
    generation: [6, 6, 6],
    generation_conv: [6, 6, 6],
    stem_depth: [4, 6, 6],
    trained_attention: [4, 6, 6],
    trained_ablation: [2, 2, 2],
    conditioning: [0, 0, 0],
  };
  // not run here: ImageNet ViT-L/16 or mixer weights, a training run, or (standard) the 105,000-step run
  const notRun = (b: string, id: string) =>
    [
      "l16_filters",
      "l16_swaps",
      "l16_survey",
      "residual_training",
      "trained_mixer",
    ]
      .includes(id) || (b === "standard" && id === "vit_recovery");
  assert.equal(BUDGETS.smoke.seeds, 2);
  assert.ok(BUDGETS.standard.seeds >= 3 && BUDGETS.essay.seeds >= 3);
  const trained = trainedVit(env);
  assert.equal(trained?.model, "fmnist_vit");
  for (const [i, b] of (["smoke", "standard", "essay"] as const).entries()) {
    const p = plan(BUDGETS[b], env);
    assert.deepEqual(p.map((e) => e.id), [...EXPERIMENT_IDS]);
    for (const e of p) {
      if (notRun(b, e.id)) {
        assert.equal(e.status, "not run", `${b} ${e.id}`);
        continue;
      }
      assert.equal(e.status, "run", `${b} ${e.id}`);
      assert.equal(e.cells, expected[e.id][i], `${b} ${e.id}`);
      const draws = e.origin === "untrained" ||
        ["stem_trained", "swaps", "stem_depth", "trained_attention"].includes(
          e.id,
        );
      assert.deepEqual(
        e.seeds,
        draws ? [...Array(BUDGETS[b].seeds).keys()] : [0],
        `${b} ${e.id}`,
      );
      for (const r of e.grid?.rows ?? []) {
        assert.equal(r.label, rowLabel(r.id, r.seed));
        assert.equal(r.changes.seed ?? 0, r.seed);
        // the command line reads each row's text back into the same changes
        const back = parseVariant(
          `${r.label}=${rowText(r.changes)}`,
          e.grid!.layers ? "invert" : "generate",
        );
        assert.deepEqual(back.row, { label: r.label, changes: r.changes });
      }
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
    }
  }
  const depth = plan(BUDGETS.smoke, env).find((e) => e.id === "vit_depth")!;
  assert.deepEqual(depth.grid!.layers, [1, 4, 8, 12]);
  // cost: start + a load per weight draw + Σ cells, each steps × (base + perLayer × L)
  const direct = GRID_START_SECONDS + 2 * loadSeconds("vit_b_32") +
    4 *
      [1, 4, 8, 12].reduce(
        (a, l) => a + cellSeconds("vit_b_32", l, BUDGETS.smoke.vitSteps),
        0,
      );
  assert.ok(Math.abs(depth.seconds - direct) < 1e-9);
  // a row with its own steps is costed at them (the long recovery run)
  const rec = plan(BUDGETS.essay, env).find((e) => e.id === "vit_recovery")!;
  assert.ok(
    rec.seconds > 3 * cellSeconds("vit_b_32", 12, BUDGETS.essay.recoverySteps!),
  );
  // the standard budget leaves the 105,000-step run out: not run, with the command that runs it
  const std = plan(BUDGETS.standard, env).find((e) => e.id === "vit_recovery")!;
  assert.equal(std.status, "not run");
  assert.match(
    std.missing!.command,
    /essay --budget essay --only vit_recovery/,
  );
  const total = (b: keyof typeof BUDGETS) =>
    plan(BUDGETS[b], env).reduce((a, e) => a + e.seconds, 0);
  assert.ok(total("smoke") < 600, `smoke ${total("smoke")} s`);
  assert.ok(total("standard") > 3600);
  assert.ok(total("essay") > total("standard"));
});

Deno.test("plan: matched comparisons run both sides at the same steps and learning-rate rows; the essay budget feeds pixels/255 at lr 0.006", async () => {
  const env = await repoEnv();
  for (const b of ["standard", "essay"] as const) {
    const p = plan(BUDGETS[b], env);
    const g = (id: string) => p.find((e) => e.id === id)!.grid!;
    const ids = (id: string) => [
      ...new Set(g(id).rows.filter((r) => r.seed === 0).map((r) => r.id)),
    ];
    const matched = (a: string, c: string, rows: RowId[]) => {
      assert.equal(g(a).steps, g(c).steps, `${b}: ${a} / ${c} steps`);
      for (const r of rows) {
        assert.ok(ids(a).includes(r) && ids(c).includes(r), `${a}/${c} ${r}`);
      }
    };
    const vitLr: RowId[] = BUDGETS[b].vitLrRows ? ["lr10"] : [];
    const lr4: RowId[] = BUDGETS[b].lrRows ? ["lr4"] : [];
    const noLnLr4: RowId[] = BUDGETS[b].lrRows ? ["noLnLr4"] : [];
    matched("resnet_depth", "vit_depth", ["intact", ...vitLr]);
    matched("resnet_stem", "vit_stem", ["intact", ...vitLr]);
    matched("overcomplete_stem", "vit_stem", ["intact", ...vitLr]);
    matched("mixer_p8", "mixer_p16_match", ["intact", ...lr4]);
    matched("ffvit", "mixer_p16", ["intact", "noLn", ...lr4, ...noLnLr4]);
    // without the lr rows on one side, none on the other either
    assert.equal(ids("resnet_depth").includes("lr10"), BUDGETS[b].vitLrRows);
    assert.equal(ids("ffvit").includes("lr4"), BUDGETS[b].lrRows);
    // patch 8 (4× the tokens) gets more steps than the mixer depth grid
    assert.ok(g("mixer_p8").steps >= g("mixer_p16").steps);
    if (b === "standard") assert.ok(g("mixer_p8").steps > g("mixer_p16").steps);
    // the long run is a row of the recovery grid with its own steps, beside the ordinary budget
    if (b === "essay") {
      const rec = g("vit_recovery").rows.filter((r) => r.seed === 0);
      assert.deepEqual(rec.map((r) => [r.id, r.changes.steps]), [
        ["ordinary", undefined],
        ["long", BUDGETS[b].recoverySteps],
      ]);
    }
  }
  const essay = plan(BUDGETS.essay, env);
  const args = gridArgs(
    gridSpec(essay.find((e) => e.id === "vit_depth")!.grid!, env, "out/x"),
  );
  assert.ok(args.includes("--no-normalize"));
  assert.equal(args[args.indexOf("--lr") + 1], "0.006");
  assert.ok(args.includes("lr /10=--lr 0.0006"));
  assert.equal(
    essay.find((e) => e.id === "overcomplete_stem")!.grid!.model,
    "vit_l_16_512",
  );
  const std = gridArgs(
    gridSpec(
      plan(BUDGETS.standard, env).find((e) => e.id === "vit_depth")!.grid!,
      env,
      "out/x",
    ),
  );
  assert.ok(!std.includes("--no-normalize") && !std.includes("--lr"));
  assert.deepEqual(budgetDeviations(BUDGETS.essay), []);
  const devs = budgetDeviations(BUDGETS.standard).join("\n");
  assert.match(
    devs,
    /input normalization: the model's mean\/std \(essay: none \(pixels\/255\)\)/,
  );
  assert.match(
    devs,
    /inversion learning rate: the default schedule 0.01→0.001 \(essay: 0.006\)/,
  );
  assert.match(
    devs,
    /steps of the long encoder-12 run: not run \(essay: 105000\)/,
  );
});

Deno.test("plan: a missing model folder is not run with the converter command; --only; trained stem rows; a second trained model judges generation", () => {
  const env = envOf(FMNIST);
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
  assert.equal(gen.judge, undefined);
  const swaps = p.find((e) => e.id === "swaps")!;
  assert.deepEqual(
    swaps.grid!.rows.filter((r) => r.seed === 0).map((r) => rowText(r.changes)),
    [
      "--swap conv_proj=fmnist",
      "--swap conv_proj=fmnist --swap pos_embedding=fmnist",
      "--swap conv_proj=fmnist --swap encoder.layers.0.ln_1=fmnist",
    ],
  );
  assert.equal(p.find((e) => e.id === "filters")!.status, "run");
  // another trained model with the same classes scores the generated images
  const resnet: ModelInfo = {
    ...FMNIST,
    name: "fmnist_resnet",
    patchSize: 0,
    architecture: "resnet",
    weightSets: ["trained"],
  };
  const judged = plan(BUDGETS.smoke, envOf(FMNIST, resnet));
  assert.deepEqual(judged.find((e) => e.id === "generation")!.judge, {
    model: "fmnist_resnet",
    weights: "trained",
  });
  // one with other classes does not
  const other = plan(
    BUDGETS.smoke,
    envOf(FMNIST, { ...resnet, numClasses: 1000 }),
  );
  assert.equal(other.find((e) => e.id === "generation")!.judge, undefined);
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

Deno.test("discoverModels: hidden width, channels and what the weights were trained on, from the manifest and the training log", async () => {
  const models = await discoverModels(WEIGHTS);
  const fm = models.get("fmnist_vit")!;
  assert.equal(fm.hidden, 64);
  assert.equal(fm.channels, 3);
  assert.equal(fm.patchSize, 4);
  assert.equal(fm.architecture, "vit");
  assert.deepEqual(fm.trainedOn?.trained, {
    data: "Fashion-MNIST",
    colour: false,
    source: "training_log.md",
  });
  assert.equal(models.get("vit_b_32")!.hidden, 768);
  assert.deepEqual(models.get("vit_b_32")!.weightSets, []);
  // a converter that records trained_on in the manifest wins over the log
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/m`);
    const m = JSON.parse(
      await Deno.readTextFile(`${WEIGHTS}/fmnist_vit/manifest.json`),
    );
    m.weight_sets.trained.trained_on = { data: "CIFAR-10", colour: true };
    await Deno.writeTextFile(`${dir}/m/manifest.json`, JSON.stringify(m));
    await Deno.copyFile(
      `${WEIGHTS}/fmnist_vit/training_log.md`,
      `${dir}/m/training_log.md`,
    );
    await Deno.writeFile(`${dir}/m/trained.safetensors`, new Uint8Array(8));
    const got = (await discoverModels(dir)).get("m")!;
    assert.deepEqual(got.trainedOn?.trained, {
      data: "CIFAR-10",
      colour: true,
      source: "manifest trained_on",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rules: a claim's words come from its rule data; each claim reaches agrees, partly and disagrees on synthetic numbers", () => {
  assert.equal(
    ruleText(byId("stem_trained")),
    "Agrees if gain ≥ 3 dB, partly if gain ≥ 1 dB, disagrees otherwise.",
  );
  assert.equal(
    ruleText(byId("vit_depth")),
    "Agrees if psnr_12 ≥ psnr_1 − 3 dB; partly if psnr_12 ≥ psnr_1 − 10 dB and criterion_12 is yes; disagrees otherwise.",
  );
  assert.match(
    ruleText(byId("patchwork")),
    /Agrees if all of ln_1 ≥ 2 × no_ln_1; ln_4 ≥ 2 × no_ln_4 hold, partly if some do, disagrees if none does\.$/,
  );
  assert.match(
    ruleText(byId("swap_pos_embedding")),
    /Agrees if abs_delta < 1 dB, partly if abs_delta < 3 dB, disagrees otherwise\.$/,
  );
  assert.match(ruleText(byId("resnet_vs_vit")), /best learning-rate row/);
  // one source: change the data, and words and verdict change together
  const r = { kind: "threshold", q: "gain", agree: 2, partly: 0.5 } as const;
  const a = applyRule(r, { gain: "dB" }, { gain: 1 });
  assert.equal(
    a.prose,
    "agrees if gain ≥ 2 dB, partly if gain ≥ 0.5 dB, disagrees otherwise",
  );
  assert.equal(a.verdict, "partly");
  assert.equal(
    applyRule({ ...r, agree: 1 }, { gain: "dB" }, { gain: 1 }).verdict,
    "agrees",
  );

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
    filters: [
      [{ patterned: 0.5, untrained_patterned: 0 }, "agrees"],
      [{ patterned: 0.85, untrained_patterned: 0 }, "partly"],
      [{ patterned: 0.02, untrained_patterned: 0 }, "disagrees"],
    ],
    overcomplete_stem: [[{ gain: 5, criterion: 1 }, "agrees"], [{
      gain: 5,
      criterion: 0,
    }, "partly"], [{ gain: 0.2, criterion: 1 }, "disagrees"]],
    swap_pos_embedding: [[{ delta: -0.5, abs_delta: 0.5 }, "agrees"], [{
      delta: 2,
      abs_delta: 2,
    }, "partly"], [{ delta: -4, abs_delta: 4 }, "disagrees"]],
    swap_ln1: [[{ gain: 4 }, "agrees"], [{ gain: 1 }, "partly"], [
      { gain: -1 },
      "disagrees",
    ]],
    recovery: [
      [{
        long_12: 29,
        short_1: 28,
        short_12: 18,
        long_end: 0.5,
        long_best: 0.4,
        short_end: 0.7,
      }, "agrees"],
      // better than encoder 1 but the criterion lost by the end: partly
      [{
        long_12: 29,
        short_1: 28,
        short_12: 18,
        long_end: 1.2,
        long_best: 0.4,
        short_end: 0.7,
      }, "partly"],
      [{
        long_12: 18.5,
        short_1: 28,
        short_12: 18,
        long_end: 1.2,
        long_best: 0.9,
        short_end: 0.7,
      }, "disagrees"],
    ],
    patchwork: [
      [{ ln_1: 0.053, no_ln_1: 0.008, ln_4: 0.143, no_ln_4: 0.025 }, "agrees"],
      [{ ln_1: 0.01, no_ln_1: 0.008, ln_4: 0.143, no_ln_4: 0.025 }, "partly"],
      [{ ln_1: 0.01, no_ln_1: 0.02, ln_4: 0.03, no_ln_4: 0.025 }, "disagrees"],
    ],
    no_ln_better: [[{ gain_1: 1.8, gain_4: 4.4 }, "agrees"], [{
      gain_1: 0.5,
      gain_4: 4.4,
    }, "partly"], [{ gain_1: -1, gain_4: 0 }, "disagrees"]],
    no_ln_explodes: [
      [{ no_ln_4: 0, no_ln_12: 1, intact_4: 0, intact_12: 0 }, "agrees"],
      [{ no_ln_4: 1, no_ln_12: 0, intact_4: 0, intact_12: 0 }, "partly"],
      [{ no_ln_4: 1, no_ln_12: 1, intact_4: 1, intact_12: 1 }, "disagrees"],
      [{ no_ln_4: 0, no_ln_12: 0, intact_4: 0, intact_12: 0 }, "disagrees"],
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
    mixer_depth: [[{ psnr_1: 25, psnr_8: 20, drop: 5 }, "agrees"], [{
      psnr_1: 31.6,
      psnr_8: 20.2,
      drop: 11.4,
    }, "partly"], [{ psnr_1: 35, psnr_8: 34, drop: 1 }, "disagrees"]],
    mixer_patch8: [[{ gain_1: 2 }, "agrees"], [{ gain_1: 0.5 }, "partly"], [
      { gain_1: -2 },
      "disagrees",
    ]],
    generation_resolution: [
      [{ vit_roughness: 0.1, convnet_roughness: 0.2, ratio: 2 }, "agrees"],
      [{ vit_roughness: 0.1, convnet_roughness: 0.12, ratio: 1.2 }, "partly"],
      [
        { vit_roughness: 0.1, convnet_roughness: 0.09, ratio: 0.9 },
        "disagrees",
      ],
    ],
    vit_lr_difficulty: [
      [{ vit_1: 1, vit_12: 0, resnet_1: 1, resnet_16: 1 }, "agrees"],
      [{ vit_1: 0, vit_12: 1, resnet_1: 1, resnet_16: 1 }, "partly"],
      [{ vit_1: 1, vit_12: 1, resnet_1: 1, resnet_16: 0 }, "disagrees"],
    ],
    l16_filters: [[{ patterned: 0.3 }, "agrees"], [
      { patterned: 0.6 },
      "partly",
    ], [
      { patterned: 0.9 },
      "disagrees",
    ]],
    stem_depth: [
      [{ psnr_1: 30, psnr_4: 25, drop: 5 }, "agrees"],
      [{ psnr_1: 30, psnr_4: 28, drop: 2 }, "partly"],
      [{ psnr_1: 30, psnr_4: 30, drop: 0 }, "disagrees"],
    ],
    patch_imperfections: [
      [{ stem_over_1: 2, gap_0: 3, gap_1: 7, gap_12: 8 }, "agrees"],
      [{ stem_over_1: 2, gap_0: 3, gap_1: 4, gap_12: 4 }, "partly"],
      [{ stem_over_1: 0, gap_0: 5, gap_1: 4, gap_12: 4 }, "disagrees"],
    ],
    l16_stem_ln: [
      [{ gain: 4, patchwork_stem: 10, patchwork_ln: 5 }, "agrees"],
      [{ gain: 2, patchwork_stem: 5, patchwork_ln: 10 }, "partly"],
      [{ gain: 0, patchwork_stem: 5, patchwork_ln: 5 }, "disagrees"],
    ],
    l16_survey: [
      [
        { no_attention_12: 5, no_ln_12: 5, no_mlp_12: 0, no_attention_24: 5 },
        "agrees",
      ],
      [
        { no_attention_12: 5, no_ln_12: 0, no_mlp_12: 3, no_attention_24: 0 },
        "partly",
      ],
      [
        { no_attention_12: 0, no_ln_12: 0, no_mlp_12: 3, no_attention_24: 0 },
        "disagrees",
      ],
    ],
    attention_conditioning: [
      [{ kappa_intact: 1000, kappa_no_attention: 5, ratio: 200 }, "agrees"],
      [{ kappa_intact: 100, kappa_no_attention: 5, ratio: 20 }, "partly"],
      [{ kappa_intact: 10, kappa_no_attention: 5, ratio: 2 }, "disagrees"],
    ],
    trained_attention: [
      [{ gain: 4, trained_met: 1, untrained_met: 0 }, "agrees"],
      [{ gain: 2, trained_met: 1, untrained_met: 1 }, "partly"],
      [{ gain: 0, trained_met: 0, untrained_met: 0 }, "disagrees"],
    ],
    trained_ablation: [[{ advantage: 2 }, "agrees"], [
      { advantage: 0.5 },
      "partly",
    ], [
      { advantage: 0 },
      "disagrees",
    ]],
    residual_training: [
      [{ vit_accuracy: 0.1, mixer_accuracy: 0.8 }, "agrees"],
      [{ vit_accuracy: 0.1, mixer_accuracy: 0.2 }, "partly"],
      [{ vit_accuracy: 0.8, mixer_accuracy: 0.2 }, "disagrees"],
    ],
    trained_mixer: [
      [{ psnr_1: 25, psnr_12: 20, drop: 5 }, "agrees"],
      [{ psnr_1: 30, psnr_12: 18, drop: 12 }, "partly"],
      [{ psnr_1: 30, psnr_12: 10, drop: 20 }, "disagrees"],
    ],
    mixer_no_ln: [[{ gain_1: 3, gain_4: 5, gain_8: 9 }, "agrees"], [{
      gain_1: 1,
      gain_4: 0,
      gain_8: 0,
    }, "partly"], [{ gain_1: 0.5, gain_4: 0, gain_8: -1 }, "disagrees"]],
    ffvit_ln: [
      [{ mixer_gain: 6, ffvit_gain: 2, difference: 4 }, "agrees"],
      [{ mixer_gain: 2.5, ffvit_gain: 2, difference: 0.5 }, "partly"],
      [{ mixer_gain: 1, ffvit_gain: 2, difference: -1 }, "disagrees"],
    ],
  };
  assert.deepEqual(CLAIMS.map((c) => c.id).sort(), Object.keys(cases).sort());
  for (const c of CLAIMS) {
    const units = Object.fromEntries(
      Object.keys(c.quantities).map((k) => [k, "dB" as const]),
    );
    assert.ok(c.quote.length > 20 && c.section.length > 5, c.id);
    for (const e of c.experiments) {
      assert.ok(EXPERIMENT_IDS.includes(e), `${c.id}: ${e}`);
    }
    for (const [n, v] of cases[c.id]) {
      assert.deepEqual(
        Object.keys(n).sort(),
        Object.keys(c.quantities).sort(),
        c.id,
      );
      assert.equal(
        applyRule(c.rule, units, n).verdict,
        v,
        `${c.id} ${JSON.stringify(n)}`,
      );
    }
  }
});

/** The standard plan on ImageNet ViT-B/32 and the repository's untrained folders. */
async function standardWith(
  ...extra: ModelInfo[]
): Promise<{ planned: Planned[]; models: Map<string, ModelInfo> }> {
  const models = await discoverModels(WEIGHTS);
  for (const m of extra) models.set(m.name, m);
  models.delete("fmnist_vit");
  const planned = plan(BUDGETS.standard, {
    models,
    root: WEIGHTS,
    weights: [],
    image: "cat.png",
  });
  return { planned, models };
}

/** vit_depth cells: per seed, PSNR of «intact» at 1 and 12 and the criterion at the end of 12. */
function depthCells(per: [number, number, boolean][]): CellResult[] {
  return per.flatMap(([p1, p12, end], s) => [
    cell("intact", 1, { psnr: p1 }, s),
    cell("intact", 12, {
      psnr: p12,
      criterionAtEnd: end,
      criterionMet: true,
      criterionStep: 800,
    }, s),
  ]);
}

Deno.test("judgeClaim: agrees, partly and disagrees from cells of every seed; per-seed values, mean and range", async () => {
  const { planned, models } = await standardWith();
  const judge = (per: [number, number, boolean][]) =>
    judgeClaim(byId("vit_depth"), {
      planned,
      models,
      budget: BUDGETS.standard,
      image: "cat.png",
      results: new Map([["vit_depth", result("vit_depth", depthCells(per))]]),
    });
  const agrees = judge([[28, 26, true], [27.5, 26, false], [28.2, 25.6, true]]);
  assert.equal(agrees.verdict, "agrees");
  assert.deepEqual(agrees.seeds, seeds3);
  assert.deepEqual(agrees.values.psnr_12, [26, 26, 25.6]);
  assert.deepEqual(agrees.values.criterion_12, [1, 0, 1]);
  assert.ok(Math.abs(agrees.numbers.psnr_1! - 27.9) < 1e-9);
  assert.deepEqual(agrees.range.psnr_1, [27.5, 28.2]);
  assert.deepEqual(agrees.per_seed, ["agrees", "agrees", "agrees"]);
  assert.equal(agrees.reason, undefined);
  assert.equal(
    judge([[28, 19, true], [28, 19.5, true], [27, 18, true]]).verdict,
    "partly",
  );
  assert.equal(
    judge([[28, 16, true], [28, 17, true], [28, 17.5, true]]).verdict,
    "disagrees",
  );
  // the criterion lost by the end does not count: partly needs it at the end
  assert.equal(
    judge([[28, 19, false], [28, 19, false], [28, 19, false]]).verdict,
    "disagrees",
  );
});

Deno.test("judgeClaim: borderline when the weight draws fall on both sides of a cut-off, never a tier picked by one draw", async () => {
  const { planned, models } = await standardWith(B32);
  const gains = [1.02, 0.91, 0.08];
  const cells = gains.flatMap((g, s) => [
    cell("untrained", 0, { psnr: 30 }, s),
    cell("trained", 0, { psnr: 30 + g }, s),
  ]);
  const r = judgeClaim(byId("stem_trained"), {
    planned,
    models,
    budget: BUDGETS.standard,
    results: new Map([["stem_trained", result("stem_trained", cells)]]),
  });
  assert.equal(r.verdict, "borderline");
  assert.equal(r.reason, "gain ≥ 1 dB holds for seed 0 but not for seeds 1, 2");
  assert.deepEqual(r.per_seed, ["partly", "disagrees", "disagrees"]);
  assert.ok(r.values.gain.every((v, i) => Math.abs(v! - gains[i]) < 1e-9));
  assert.ok(
    Math.abs(r.range.gain![0] - 0.08) < 1e-9 &&
      Math.abs(r.range.gain![1] - 1.02) < 1e-9,
  );
  // every draw on one side: that tier
  const high = gains.flatMap((_, s) => [
    cell("untrained", 0, { psnr: 30 }, s),
    cell("trained", 0, { psnr: 34 + s }, s),
  ]);
  const agrees = judgeClaim(byId("stem_trained"), {
    planned,
    models,
    results: new Map([["stem_trained", result("stem_trained", high)]]),
  });
  assert.equal(agrees.verdict, "agrees");
  assert.equal(agrees.stand_in, null);
});

Deno.test("judgeClaim: not testable from manifest preconditions — an overcomplete stem, grey training, one trained model — with the reason and the command that would test it", async () => {
  const repo = await repoEnv();
  // the Fashion-MNIST ViT as the only small stand-in (without weights/colour_vit)
  const env = {
    ...repo,
    models: new Map([...repo.models].filter(([k]) => k !== "colour_vit")),
  };
  const planned = plan(BUDGETS.smoke, env);
  const cells = [0, 1].flatMap((s) => [
    cell("untrained", 0, { psnr: 40 }, s),
    cell("trained", 0, { psnr: 41 }, s),
  ]);
  const ctx = {
    planned,
    models: env.models,
    budget: BUDGETS.smoke,
    results: new Map<string, ExperimentResult>([
      ["stem_trained", result("stem_trained", cells)],
      ["filters", {
        ...result("filters", []),
        values: { patterned: 0.5, untrained_patterned: 0 },
      }],
    ]),
  };
  const stem = judgeClaim(byId("stem_trained"), ctx);
  assert.equal(stem.verdict, "not testable");
  assert.match(
    stem.reason!,
    /Fashion-MNIST ViT \(fmnist_vit\)'s stem maps 3·4² = 48 inputs to 64 per patch \(overcomplete\)/,
  );
  assert.match(
    stem.command!,
    /tools\/convert\.py vit_b_32 --weights IMAGENET1K_V1 .* --only stem_trained/,
  );
  // the numbers are still there, for reference
  assert.deepEqual(stem.values.gain, [1, 1]);
  assert.match(
    stem.stand_in!,
    /stands in for ViT-B\/32: 32 px images, 4×4 patches, stem 3·4² = 48 → 64 \(overcomplete\), trained on Fashion-MNIST \(grey images\)/,
  );
  const filters = judgeClaim(byId("filters"), ctx);
  assert.equal(filters.verdict, "not testable");
  assert.match(
    filters.reason!,
    /trained on Fashion-MNIST \(grey images repeated to 3 channels\)/,
  );
  // the same claim on ImageNet ViT-B/32 (undercomplete, colour) is judged
  const { planned: p2, models: m2 } = await standardWith(B32);
  const ok = judgeClaim(byId("filters"), {
    planned: p2,
    models: m2,
    results: new Map([["filters", {
      ...result("filters", []),
      values: { patterned: 0.5, untrained_patterned: 0 },
    }]]),
  });
  assert.equal(ok.verdict, "agrees");
  // generation with only one trained model: not testable; with a second one it is judged
  const gen = judgeClaim(byId("generation"), {
    planned: plan(BUDGETS.smoke, envOf(FMNIST)),
    models: new Map([["fmnist_vit", FMNIST]]),
    results: new Map(),
  });
  assert.equal(gen.verdict, "not testable");
  assert.match(gen.reason!, /no other trained model with .* classes/);
  const resnet = {
    ...FMNIST,
    name: "fmnist_resnet",
    patchSize: 0,
    weightSets: ["trained"],
  };
  const two = envOf(FMNIST, resnet);
  const probs = [[0.9, 0.2], [0.8, 0.7], [0.6, 0.1]];
  const genCells = probs.flatMap(([a, b], k) => [
    cell("trained", [1, 7, 9][k], { judgeProbability: a }),
    cell("trainedLr250", [1, 7, 9][k], { judgeProbability: b }),
  ]);
  const judged = judgeClaim(byId("generation"), {
    planned: plan(BUDGETS.smoke, two),
    models: two.models,
    results: new Map([["generation", result("generation", genCells)]]),
  });
  assert.equal(judged.verdict, "agrees");
  assert.deepEqual(judged.values, { p_min: [0.6], p_max: [0.9] });
});

Deno.test("judgeClaim: not run when a model folder is missing (the converter command) or an experiment did not finish; not testable wins only once it ran", async () => {
  const none = judgeClaim(byId("vit_depth"), {
    planned: plan(BUDGETS.smoke, envOf()),
    models: new Map(),
    results: new Map(),
  });
  assert.equal(none.verdict, "not run");
  assert.match(
    none.notRun![0].command,
    /python3 tools\/convert\.py vit_b_32 --out w\/vit_b_32/,
  );
  const env = await repoEnv();
  const planned = plan(BUDGETS.smoke, env);
  const failed = judgeClaim(byId("vit_depth"), {
    planned,
    models: env.models,
    results: new Map([["vit_depth", {
      ...result("vit_depth", []),
      status: "failed",
      error: "grid exited with 3",
    }]]),
  });
  assert.equal(failed.verdict, "not run");
  assert.deepEqual(failed.missing, ["psnr_1", "psnr_12", "criterion_12"]);
  assert.match(failed.notRun![0].reason, /vit_depth: grid exited with 3/);
  // a stopped grid: judged on the seeds that finished
  const partial = judgeClaim(byId("vit_depth"), {
    planned,
    models: env.models,
    results: new Map([["vit_depth", {
      ...result("vit_depth", depthCells([[28, 26, true]])),
      status: "stopped",
    }]]),
  });
  assert.equal(partial.verdict, "agrees");
  assert.match(partial.reason!, /judged on seeds 0; seeds 1 did not finish/);
  // every claim gets a record with the fields claims.json promises
  const all = judgeClaims({
    planned,
    models: env.models,
    results: new Map(),
    budget: BUDGETS.smoke,
    image: "cat.png",
  });
  for (const c of all) {
    for (
      const k of [
        "quote",
        "essay_setup",
        "run_setup",
        "deviations",
        "seeds",
        "values",
        "verdict",
      ]
    ) {
      assert.ok(k in c, `${c.id}: ${k}`);
    }
    if (c.verdict === "not testable") assert.ok(c.reason && c.command, c.id);
  }
  // the repository's colour ViT (undercomplete stem, colour training) makes the stem and filter claims testable
  assert.deepEqual(
    all.filter((c) => c.verdict === "not testable").map((c) => c.id),
    [],
  );
  // without it, on the Fashion-MNIST ViT, they are not
  const fm = {
    ...env,
    models: new Map([...env.models].filter(([k]) => k !== "colour_vit")),
  };
  const withoutColour = judgeClaims({
    planned: plan(BUDGETS.smoke, fm),
    models: fm.models,
    results: new Map(),
    budget: BUDGETS.smoke,
    image: "cat.png",
  });
  assert.deepEqual(
    withoutColour.filter((c) => c.verdict === "not testable").map((c) => c.id),
    ["stem_trained", "filters", "stem_depth"],
  );
});

Deno.test("setups: this run's setup comes from the plan; deviations from the essay's in words; the essay budget matches the essay on ViT-B/32 but for the image", async () => {
  const env = await repoEnv();
  const judgeAt = (b: keyof typeof BUDGETS, id: string) =>
    judgeClaim(byId(id), {
      planned: plan(BUDGETS[b], env),
      models: env.models,
      results: new Map(),
      budget: BUDGETS[b],
      image: "/x/chelsea.png",
    });
  const std = judgeAt("standard", "vit_depth");
  assert.equal(std.run_setup.model, "ViT-B/32");
  assert.equal(std.run_setup.steps, "1000");
  assert.equal(std.run_setup.seeds, "3 (seeds 0, 1, 2)");
  assert.deepEqual(std.deviations, [
    "target image: essay a dalmatian, here chelsea.png",
    "steps: essay 1500, here 1000",
    "learning rate: essay 0.006, here 0.01→0.001",
    "input normalization: essay none (pixels/255), here the model's mean/std",
  ]);
  assert.deepEqual(judgeAt("essay", "vit_depth").deviations, [
    "target image: essay a dalmatian, here chelsea.png",
  ]);
  const rec = judgeAt("smoke", "recovery");
  assert.ok(
    rec.deviations.includes(
      "steps: essay 1500 and 105000, here 3 and 8",
    ),
    rec.deviations.join("; "),
  );
  assert.ok(
    rec.deviations.includes(
      "input processing (stem): essay trained, here untrained",
    ),
  );
  const over = judgeAt("standard", "overcomplete_stem");
  assert.equal(over.run_setup.model, "ViT-L/16; ViT-B/32");
  assert.ok(
    over.deviations.includes(
      "image size: essay ViT-L/16: 512²; ViT-B/32: 224², here 224²",
    ),
  );
  assert.equal(
    judgeAt("essay", "overcomplete_stem").run_setup.image_size,
    "ViT-L/16: 512²; ViT-B/32: 224²",
  );
  const swaps = judgeAt("standard", "swap_ln1");
  assert.equal(
    swaps.run_setup.weights,
    "untrained, with trained conv_proj from trained (Fashion-MNIST, grey images) and untrained, with trained conv_proj, encoder.layers.0.ln_1 from trained (Fashion-MNIST, grey images)",
  );
  assert.match(
    swaps.stand_in!,
    /Fashion-MNIST ViT \(fmnist_vit\) stands in for ViT-B\/32/,
  );
});

Deno.test("metrics: the best row leaves exploded runs out; judge probabilities per class; mean gain over columns; a seed's view", () => {
  const cells = [
    cell("intact", 1, { psnr: 20 }),
    cell("lr4", 1, { psnr: 25 }),
    cell("lr4", 1, { psnr: 40 }, 1),
    cell("noLn", 1, { psnr: 30, exploded: "exploded at step 3" }),
    cell("noLnLr4", 1, { psnr: 27 }),
    cell("intact", 4, { psnr: 15 }),
    cell("noLn", 4, { psnr: 21 }),
  ];
  const view = seedView(
    new Map([["mixer_p16", result("mixer_p16", cells)]]),
    () => 0,
  );
  assert.equal(
    evaluate({
      kind: "best",
      exp: EXP.mixerP16,
      rows: ["intact", "lr4"],
      col: 1,
    }, view),
    25,
  );
  assert.equal(
    evaluate({ kind: "best", exp: EXP.mixerP16, rows: ["noLn"], col: 1 }, view),
    null,
  );
  // mean over columns 1 and 4 of best(no LN) − best(LN): (27 − 25 + 21 − 15) / 2
  assert.equal(
    evaluate({
      kind: "mean-gain",
      exp: EXP.mixerP16,
      rows: ["noLn", "noLnLr4"],
      base: ["intact", "lr4"],
    }, view),
    4,
  );
  const seed1 = seedView(
    new Map([["mixer_p16", result("mixer_p16", cells)]]),
    () => 1,
  );
  assert.equal(
    evaluate({ kind: "best", exp: EXP.mixerP16, rows: ["lr4"], col: 1 }, seed1),
    40,
  );
  const flags = seedView(
    new Map([[
      "vit_depth",
      result("vit_depth", [
        cell("noLn", 8, { exploded: "exploded" }),
        cell("intact", 8, {
          criterionAtEnd: false,
          embeddingDistance: 6,
          noiseBaseline: 4,
          bestEmbedding: { distance: 2, step: 9 },
        }),
      ]),
    ]]),
    () => 0,
  );
  assert.equal(
    evaluate({
      kind: "cell",
      exp: EXP.vitDepth,
      row: "noLn",
      col: 8,
      field: "exploded",
    }, flags),
    1,
  );
  assert.equal(
    evaluate({
      kind: "cell",
      exp: EXP.vitDepth,
      row: "intact",
      col: 8,
      field: "exploded",
    }, flags),
    0,
  );
  assert.equal(
    evaluate({
      kind: "cell",
      exp: EXP.vitDepth,
      row: "intact",
      col: 8,
      field: "criterion-end",
    }, flags),
    0,
  );
  assert.equal(
    evaluate({
      kind: "cell",
      exp: EXP.vitDepth,
      row: "intact",
      col: 8,
      field: "end-over-baseline",
    }, flags),
    1.5,
  );
  assert.equal(
    evaluate({
      kind: "cell",
      exp: EXP.vitDepth,
      row: "intact",
      col: 8,
      field: "best-over-baseline",
    }, flags),
    0.5,
  );
  assert.equal(
    evaluate({
      kind: "cell",
      exp: EXP.vitDepth,
      row: "intact",
      col: 12,
      field: "psnr",
    }, flags),
    null,
  );
});

Deno.test("patchError: a synthetic image with known per-patch offsets and gains decomposes exactly into offset, gain and residual shares", () => {
  let s = 11;
  const rnd = () => (s = (s * 48271) % 2147483647) / 2147483647;
  const size = 32, patch = 8, side = size / patch, n = size * size;
  const ref = new Float32Array(3 * n).map(() => 0.3 + 0.4 * rnd());
  const offsets = Array.from(
    { length: side * side },
    () => (rnd() - 0.5) * 0.1,
  );
  const gains = Array.from({ length: side * side }, () => 0.7 + 0.5 * rnd());
  const k = (i: number) => {
    const p = i % n;
    return Math.floor(Math.floor(p / size) / patch) * side +
      Math.floor((p % size) / patch);
  };
  const mean = new Float64Array(side * side),
    cnt = new Float64Array(side * side);
  ref.forEach((v, i) => {
    mean[k(i)] += v;
    cnt[k(i)]++;
  });
  mean.forEach((_, j) => (mean[j] /= cnt[j]));
  // x = t̄ + o + g (t − t̄): an offset and a gain per patch, nothing else
  const x = ref.map((v, i) =>
    mean[k(i)] + offsets[k(i)] + gains[k(i)] * (v - mean[k(i)])
  );
  let total = 0, gainE = 0;
  const e = x.map((v, i) => v - ref[i]);
  e.forEach((v) => (total += v * v));
  ref.forEach((v, i) => (gainE += ((gains[k(i)] - 1) * (v - mean[k(i)])) ** 2));
  const o = offsets.reduce((a, b) => a + b, 0) / offsets.length;
  const offE = offsets.reduce((a, b) => a + (b - o) ** 2, 0) * 3 * patch *
    patch;
  const r = patchError(x, ref, size, patch);
  assert.ok(
    Math.abs(r.offset - offE / total) < 1e-4,
    `offset ${r.offset} against ${offE / total}`,
  );
  assert.ok(Math.abs(r.globalOffset - (3 * n * o * o) / total) < 1e-4);
  assert.ok(
    Math.abs(r.gain - gainE / total) < 1e-4,
    `gain ${r.gain} against ${gainE / total}`,
  );
  assert.ok(r.residual < 1e-4);
  assert.ok(
    Math.abs(r.offset + r.globalOffset + r.gain + r.residual - 1) < 1e-6,
  );
  assert.ok(Math.abs(r.mse - total / x.length) < 1e-9);
  // noise only: almost all residual
  const noisy = ref.map((v) => v + (rnd() - 0.5) * 0.1);
  assert.ok(patchError(noisy, ref, size, patch).residual > 0.9);
  assert.deepEqual(patchError(ref, ref, size, patch), {
    globalOffset: 0,
    offset: 0,
    gain: 0,
    residual: 0,
    mse: 0,
  });
  assert.throws(() => patchError(ref, ref, size, 0), /Invalid patch "0"/);
});

Deno.test("readExperiment: typed rows and seeds from the grid's labels, the criterion at the end, the lowest embedding distance, the judge's probability", async () => {
  const out = await Deno.makeTempDir();
  try {
    const dir = `${out}/cells/generation`;
    await Deno.mkdir(`${dir}/cells/a/judge`, { recursive: true });
    await Deno.mkdir(`${dir}/cells/b`, { recursive: true });
    await Deno.writeTextFile(`${dir}/cells/a/generated.png`, "x");
    await Deno.writeTextFile(
      `${dir}/cells/a/judge/metrics.json`,
      JSON.stringify({
        top: [{ index: 3, probability: 0.2 }, { index: 7, probability: 0.7 }],
      }),
    );
    await Deno.writeTextFile(
      `${dir}/cells/a/traces.csv`,
      "step,embedding_distance,input_distance\n1,9,1\n5,2,1\n9,4,1\n",
    );
    await Deno.writeTextFile(
      `${dir}/metrics.json`,
      JSON.stringify({
        mode: "generate",
        model: { imageSize: 32 },
        cells: [
          {
            row: "trained, lr ×250, seed 2",
            column: { index: 7 },
            key: "a",
            dir: "cells/a",
            status: "computed",
            final: {
              probability: 0.99,
              embedding_distance: 4,
              noise_baseline: 3,
              criterion_met: 1,
              criterion_step: 5,
            },
          },
          {
            row: "trained",
            column: { index: 1 },
            key: "b",
            dir: "cells/b",
            status: "computed",
            final: {},
          },
        ],
      }),
    );
    const r = await readExperiment(out, "generation", 4);
    const [a, b] = r.cells;
    assert.deepEqual([a.rowId, a.seed, a.column], ["trainedLr250", 2, 7]);
    assert.equal(a.judgeProbability, 0.7);
    assert.equal(a.criterionAtEnd, false);
    assert.equal(a.criterionMet, true);
    assert.deepEqual(a.bestEmbedding, { distance: 2, step: 5 });
    assert.deepEqual([b.rowId, b.seed, b.judgeProbability], [
      "trained",
      0,
      null,
    ]);
    // only the image not scored yet gets a judge command
    await Deno.writeTextFile(`${dir}/cells/b/generated.png`, "y");
    const cmds = await judgeCommands(out, "generation", {
      model: "fmnist_resnet",
      weights: "trained",
      classes: 10,
    });
    assert.deepEqual(cmds.map((c) => c.out), [
      `${dir}/cells/b/judge`,
    ]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("summaryMarkdown and the page: the committed report's old claims.json prints as it did; the new format prints means, ranges and yes/no; smoke pages are marked as pipeline checks", async () => {
  const committed = JSON.parse(
    await Deno.readTextFile(`${ROOT}docs/essay/claims.json`),
  );
  assert.equal(
    summaryMarkdown(committed.claims, committed.budget),
    await Deno.readTextFile(`${ROOT}docs/essay/summary.md`),
  );
  const repo = await repoEnv();
  // without weights/colour_vit: the stem and filter claims are "not testable" on the Fashion-MNIST ViT
  const env = {
    ...repo,
    models: new Map([...repo.models].filter(([k]) => k !== "colour_vit")),
  };
  const planned = plan(BUDGETS.smoke, env);
  const claims: ClaimRecord[] = judgeClaims({
    planned,
    models: env.models,
    budget: BUDGETS.smoke,
    image: "cat.png",
    results: new Map([[
      "vit_depth",
      result("vit_depth", [
        ...depthCells([[28, 26, true], [27, 24, true]]),
        cell("noLn", 4, { exploded: "exploded at step 2" }),
        cell("noLn", 12, { exploded: "exploded at step 1" }),
        cell("intact", 4, {}),
        cell("noLn", 4, { exploded: "exploded at step 2" }, 1),
        cell("noLn", 12, { exploded: "exploded at step 1" }, 1),
        cell("intact", 4, {}, 1),
      ]),
    ]]),
  });
  const md = summaryMarkdown(claims, BUDGETS.smoke);
  assert.match(
    md,
    /\| vit_depth \| .* \| agrees \| psnr_1 = 27\.50 dB \(27\.00 dB to 28\.00 dB\), psnr_12 = 25\.00 dB \(24\.00 dB to 26\.00 dB\), criterion_12 = yes \|/,
  );
  assert.match(
    md,
    /\| no_ln_explodes \| .* \| agrees \| no_ln_4 = yes, no_ln_12 = yes, intact_4 = no, intact_12 = no \|/,
  );
  assert.match(md, /up to 2 weight draws/);
  assert.equal(
    headline(claims),
    `Verdicts on 2 claims: 2 agree, 0 partly, 0 disagree, 0 borderline. Not judged: 3 not testable, 26 not run.`,
  );
  const page = (budget: typeof BUDGETS.smoke) =>
    reportHtml({
      out: "/nonexistent",
      budget,
      image: "cat.png",
      planned,
      results: new Map(),
      claims,
      interrupted: false,
    });
  const smoke = await page(BUDGETS.smoke);
  assert.match(smoke, /<body class="smoke">/);
  assert.match(smoke, /Pipeline check, not a result/);
  assert.equal(
    (smoke.match(/class="pipeline-tag"/g) ?? []).length,
    2 * claims.length,
  );
  assert.match(smoke, /<tr class="dev"><th>learning rate<\/th>/);
  assert.match(smoke, /Not testable here:<\/b> Fashion-MNIST ViT/);
  assert.match(smoke, /<td>yes<\/td><td>yes<\/td><td><b>yes<\/b><\/td>/);
  assert.doesNotMatch(smoke, /1\.000/);
  const std = await page(BUDGETS.standard);
  assert.doesNotMatch(std, /class="pipeline-tag"|<body class="smoke">/);
  assert.match(std, /How this budget departs from the essay's settings/);
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
      /vit_depth: deno run -A mod.ts grid --model vit_b_32 --layers 1,4,12 .* --steps 1000 /,
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
        "stem_depth",
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

Deno.test("metrics: the worst patch's gap, a generated image's roughness averaged over a row's classes, numbers per weight draw of a value experiment", () => {
  const spread = (median: number, min: number) => ({
    median,
    min,
    iqr: 1,
    std: 1,
  });
  const view = seedView(
    new Map([
      [
        "vit_depth",
        result("vit_depth", [
          cell("intact", 1, { patches: spread(30, 18) }, 1),
          cell("intact", 12, { patches: null }, 1),
        ]),
      ],
      [
        "generation",
        result("generation", [
          cell("trained", 1, { roughness: 0.1 }, 1),
          cell("trained", 7, { roughness: 0.3 }, 1),
          cell("trainedLr250", 7, { roughness: 0.9 }, 1),
        ]),
      ],
      ["conditioning", {
        id: "conditioning",
        status: "done",
        dir: "cells/conditioning",
        cells: [],
        values: { "kappa:intact": 10 },
        valuesBySeed: {
          0: { "kappa:intact": 10 },
          1: { "kappa:intact": 30 },
        },
      }],
    ]),
    () => 1,
  );
  const gap = {
    kind: "cell",
    exp: EXP.vitDepth,
    row: "intact",
    field: "worst-patch-gap",
  } as const;
  assert.equal(evaluate({ ...gap, col: 1 }, view), 12);
  assert.equal(evaluate({ ...gap, col: 12 }, view), null);
  // the mean over the classes of one row: (0.1 + 0.3) / 2, the other row left out
  const rough = evaluate({
    kind: "row-mean",
    exp: EXP.generation,
    row: "trained",
    field: "roughness",
  }, view)!;
  assert.ok(Math.abs(rough - 0.2) < 1e-12);
  // a value experiment's numbers follow the weight draw
  const kappa = {
    kind: "value",
    exp: EXP.conditioning,
    key: "kappa:intact",
    unit: "ratio",
    about: "",
  } as const;
  assert.equal(evaluate(kappa, view), 30);
  const seed0 = seedView(
    new Map([["conditioning", {
      id: "conditioning",
      status: "done" as const,
      dir: "",
      cells: [],
      valuesBySeed: { 0: { "kappa:intact": 10 } },
    }]]),
    () => 0,
  );
  assert.equal(evaluate(kappa, seed0), 10);
});

Deno.test("plan: every claim of the essay has an experiment; those needing ImageNet ViT-L/16 or mixers are not run with the converter and essay commands; conditioning is one command per row and weight draw", async () => {
  const env = await repoEnv();
  const p = plan(BUDGETS.standard, env);
  const byId = new Map(p.map((e) => [e.id, e]));
  for (const c of CLAIMS) {
    for (const e of c.experiments) assert.ok(byId.has(e), `${c.id}: ${e}`);
  }
  assert.ok(CLAIMS.length >= 31, `${CLAIMS.length} claims`);
  for (
    const id of ["l16_swaps", "l16_survey", "l16_filters", "trained_mixer"]
  ) {
    const e = byId.get(id)!;
    assert.equal(e.status, "not run", id);
    assert.match(e.missing!.command, /tools\/convert\.py .*--weights /);
    assert.match(e.missing!.command, new RegExp(`essay .*--only ${id}`));
  }
  const r = byId.get("residual_training")!;
  assert.equal(r.status, "not run");
  assert.match(r.missing!.command, /tools\/train_residual\.py/);
  // with --values it reads the training run's numbers instead
  const withValues = plan(BUDGETS.standard, {
    ...env,
    values: new Map([["residual_training", "/x/values.json"]]),
  }).find((e) => e.id === "residual_training")!;
  assert.equal(withValues.status, "run");
  assert.equal(withValues.valuesFile, "/x/values.json");
  const cond = byId.get("conditioning")!;
  assert.equal(cond.status, "run");
  assert.equal(cond.commands!.length, 4 * BUDGETS.standard.seeds);
  assert.deepEqual(cond.seeds, [0, 1, 2]);
  const keys = new Set(cond.commands!.map((c) => c.key));
  for (const k of ["kappa:intact", "kappa:noAttention", "kappa:lnAttention"]) {
    assert.ok(keys.has(k), k);
  }
  for (const c of cond.commands!) {
    assert.equal(c.call.command, "condition");
    assert.equal(c.call.out, undefined);
    assert.equal(c.call.seed, c.seed);
    const args = invocationArgs(c.call);
    assert.ok(!args.includes("--out"));
    assert.equal(args[args.indexOf("--seed") + 1], String(c.seed));
  }
  // the trained-model stand-ins: the colour ViT when no ImageNet weights are converted
  assert.equal(byId.get("trained_attention")!.grid!.model, "colour_vit");
  assert.equal(byId.get("stem_depth")!.grid!.model, "colour_vit");
  assert.equal(byId.get("generation_conv")!.grid!.model, "fmnist_resnet");
});

Deno.test("essay --values: an unknown experiment or a missing file is a usage error naming the value", async () => {
  const out = await Deno.makeTempDir();
  for (
    const [arg, hint] of [
      ["vit_depth=x.json", /expected ID=FILE with ID one of residual_training/],
      [`residual_training=${out}/none.json`, /is not a file/],
    ] as const
  ) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}mod.ts`,
        "essay",
        "--plan",
        "--values",
        arg,
        "--out",
        `${out}/e`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 2, arg);
    const err = new TextDecoder().decode(r.stderr);
    assert.match(err, /Invalid --values/);
    assert.match(err, hint);
  }
  await assert.rejects(Deno.stat(`${out}/e`));
});
