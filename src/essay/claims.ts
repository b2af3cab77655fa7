/**
 * The essay's claims: each quoted with its section, the experiments that test
 * it, the numbers taken from their results and a verdict rule over those
 * numbers, stated in words next to the code that applies it. No verdict is
 * typed by hand.
 *
 * @module
 */
import type { CellResult, ExperimentResult } from "./results.ts";

/** A claim's verdict. */
export type Verdict = "agrees" | "partly" | "disagrees" | "not run";

/** The numbers a rule is applied to (null: not measured). */
export type Numbers = Record<string, number | null>;

/** Experiment results by identifier. */
export type Results = ReadonlyMap<string, ExperimentResult>;

/** One claim of the essay. */
export interface Claim {
  /** Identifier. */
  id: string;
  /** The essay's section heading. */
  section: string;
  /** The sentence quoted. */
  quote: string;
  /** The experiments whose numbers it is judged on. */
  experiments: readonly string[];
  /** The rule, in words. */
  rule: string;
  /** The numbers from the results. */
  numbers: (r: Results) => Numbers;
  /** The rule over numbers that are all measured. */
  judge: (n: Record<string, number>) => Exclude<Verdict, "not run">;
}

/** The essay's title and public address, for the report. */
export const ESSAY = {
  title: "Representation in Vision Transformers and Attentionless Models",
  url: "https://blbadger.github.io/vision-transformers.html",
} as const;

const cellsOf = (r: Results, exp: string): CellResult[] =>
  r.get(exp)?.status === "done" ? r.get(exp)!.cells : [];

/** The cell of row `row` (a label) and column `col`, or undefined. */
function cell(
  r: Results,
  exp: string,
  row: string,
  col: number,
): CellResult | undefined {
  return cellsOf(r, exp).find((c) => c.row === row && c.column === col);
}

/** PSNR of a cell. */
function psnr(
  r: Results,
  exp: string,
  row: string,
  col: number,
): number | null {
  return cell(r, exp, row, col)?.psnr ?? null;
}

/** PSNR of row `row` minus PSNR of row `base` at column `col` of one experiment. */
function gain(
  r: Results,
  exp: string,
  row: string,
  base: string,
  col: number,
): number | null {
  return sub(psnr(r, exp, row, col), psnr(r, exp, base, col));
}

/** The best PSNR over rows (e.g. a model at two learning rates), exploded runs left out. */
function best(
  r: Results,
  exp: string,
  rows: readonly string[],
  col: number,
): number | null {
  const v = cellsOf(r, exp).filter((c) =>
    rows.includes(c.row) && c.column === col && c.psnr !== null &&
    c.exploded === null
  ).map((c) => c.psnr!);
  return v.length ? Math.max(...v) : null;
}

const INTACT = ["intact", "lr /4"];
const NO_LN = ["no layer norms", "no layer norms, lr /4"];

/** Mean PSNR gain of the no-layer-norm rows over the intact ones, over the columns both have (best rows). */
function meanGain(r: Results, exp: string): number | null {
  const cols = [...new Set(cellsOf(r, exp).map((c) => c.column))];
  const g = cols.map((c) =>
    sub(best(r, exp, NO_LN, c), best(r, exp, INTACT, c))
  )
    .filter((v): v is number => v !== null);
  return g.length ? g.reduce((a, b) => a + b, 0) / g.length : null;
}
const RESNET = ["intact", "lr /10", "lr /100"];
const sub = (a: number | null, b: number | null) =>
  a === null || b === null ? null : a - b;
const bool = (v: boolean | null | undefined) =>
  v === null || v === undefined ? null : v ? 1 : 0;
/** Exploded (1) or not (0); null when the cell is missing. */
const exploded = (c: CellResult | undefined) =>
  c ? (c.exploded === null ? 0 : 1) : null;
const count = (...xs: boolean[]) => xs.filter(Boolean).length;
/** agrees when all hold, partly when some, disagrees when none. */
const allSome = (...xs: boolean[]) =>
  count(...xs) === xs.length
    ? "agrees"
    : count(...xs) > 0
    ? "partly"
    : "disagrees";
/** agrees at or above `agree`, partly at or above `partly`, else disagrees. */
const tiers = (v: number, agree: number, partly: number) =>
  v >= agree ? "agrees" : v >= partly ? "partly" : "disagrees";

const S = {
  gen: "Input Generation with Vision Transformers",
  overview: "Vision Transformer hidden layer representation overview",
  stem: "ViT input processing convolutions are nonoptimal",
  untrainedLn: "Poor Input representation from untrained layer normalization",
  ln: "Layer Normalization considered",
  depth:
    "Decreased Representational Accuracy with Increased Vision Transformer Depth",
  attention: "Attention cannot transmit most input information",
  mixer: "Attentionless Patch Model Representations",
} as const;

/**
 * Every claim, in the essay's order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLAIMS } from "./claims.ts";
 * const depth = CLAIMS.find((c) => c.id === "vit_depth")!;
 * assert.equal(depth.judge({ psnr_1: 28, psnr_12: 26, criterion_12: 1 }), "agrees");
 * assert.equal(depth.judge({ psnr_1: 28, psnr_12: 18, criterion_12: 1 }), "partly");
 * ```
 */
export const CLAIMS: readonly Claim[] = [
  {
    id: "generation",
    section: S.gen,
    quote:
      "it is clear that recognizable images may be formed using only the information present in the vision transformer architecture just as was accomplished for convolutional models.",
    experiments: ["generation"],
    rule:
      "The trained model's own probability for the class stands in for 'recognizable' (per class the best row: a small model also runs at 250× the learning rate): agrees if every class's generated image gets probability ≥ 0.5, partly if at least one does, disagrees otherwise.",
    numbers: (r) => {
      // per class, the best row (a small model also runs at a larger learning rate)
      const best = new Map<number, number>();
      for (const c of cellsOf(r, "generation")) {
        if (c.probability === null) continue;
        best.set(c.column, Math.max(best.get(c.column) ?? 0, c.probability));
      }
      const p = [...best.values()];
      return {
        p_min: p.length ? Math.min(...p) : null,
        p_max: p.length ? Math.max(...p) : null,
      };
    },
    judge: (n) =>
      n.p_min >= 0.5 ? "agrees" : n.p_max >= 0.5 ? "partly" : "disagrees",
  },
  {
    id: "vit_depth",
    section: S.overview,
    quote:
      "even at the twelth and final encoder, the representation quality is approximately the same as that in the first layer.",
    experiments: ["vit_depth"],
    rule:
      "ViT-B/32, intact: agrees if PSNR at encoder 12 is within 3 dB of encoder 1 (or above it); partly if within 10 dB and encoder 12 meets the criterion ‖O(a)−O(a_g)‖ < ‖O(a)−O(a′)‖; disagrees otherwise.",
    numbers: (r) => ({
      psnr_1: psnr(r, "vit_depth", "intact", 1),
      psnr_12: psnr(r, "vit_depth", "intact", 12),
      criterion_12: bool(cell(r, "vit_depth", "intact", 12)?.criterionMet),
    }),
    judge: (n) =>
      n.psnr_12 >= n.psnr_1 - 3
        ? "agrees"
        : n.psnr_12 >= n.psnr_1 - 10 && n.criterion_12 === 1
        ? "partly"
        : "disagrees",
  },
  {
    id: "resnet_vs_vit",
    section: S.overview,
    quote:
      "Compare the decreasing representation clarity with increased depth to the nearly constant degree of clarity in the ViT",
    experiments: ["resnet_depth", "vit_depth"],
    rule:
      "Drop = PSNR at the first block − PSNR at the last (ResNet50: layer1.0 to layer4, best learning-rate row; ViT-B/32: encoder 1 to 12, intact). Agrees if ResNet50's drop exceeds ViT's by ≥ 3 dB, partly by ≥ 1 dB, disagrees otherwise.",
    numbers: (r) => {
      const resnet = sub(
        best(r, "resnet_depth", RESNET, 1),
        best(r, "resnet_depth", RESNET, 16),
      );
      const vit = sub(
        psnr(r, "vit_depth", "intact", 1),
        psnr(r, "vit_depth", "intact", 12),
      );
      return {
        resnet_drop: resnet,
        vit_drop: vit,
        difference: sub(resnet, vit),
      };
    },
    judge: (n) => tiers(n.resnet_drop - n.vit_drop, 3, 1),
  },
  {
    id: "stem",
    section: S.stem,
    quote:
      "it is clear that the input processing itself is responsible for the decreased representation clarity",
    experiments: ["vit_stem", "resnet_stem"],
    rule:
      "Untrained. Stem loss = PSNR of ResNet50's stem − PSNR of ViT-B/32's input processing (layer 0); encoder loss = PSNR at layer 0 − PSNR at encoder 1. Agrees if the stem loss is ≥ 3 dB and at least the encoder loss; partly if one of the two; disagrees otherwise.",
    numbers: (r) => {
      const v0 = psnr(r, "vit_stem", "intact", 0);
      return {
        stem_loss: sub(best(r, "resnet_stem", RESNET, 0), v0),
        encoder_loss: sub(v0, psnr(r, "vit_stem", "intact", 1)),
      };
    },
    judge: (n) => allSome(n.stem_loss >= 3, n.stem_loss >= n.encoder_loss),
  },
  {
    id: "stem_trained",
    section: S.stem,
    quote:
      "training greatly enhances the processing convolutional layer’s representation resolution",
    experiments: ["stem_trained"],
    rule:
      "Gain = PSNR of the trained model's input processing (layer 0) − the untrained one's. Agrees if ≥ 3 dB, partly if ≥ 1 dB, disagrees otherwise.",
    numbers: (r) => ({
      gain: gain(r, "stem_trained", "trained", "untrained", 0),
    }),
    judge: (n) => tiers(n.gain, 3, 1),
  },
  {
    id: "filters",
    section: S.stem,
    quote:
      "no discernable pattern at all is visible in the weights of around half of the input convolutional filters.",
    experiments: ["filters"],
    rule:
      "A filter shows a pattern if its lag-1 spatial autocorrelation (mean over colours and both axes) is ≥ 0.3; white noise, as in untrained filters, gives about 0. Agrees if 30–70% of the trained filters show a pattern, partly if 10–90%, disagrees otherwise.",
    numbers: (r) => ({
      patterned: r.get("filters")?.values?.patterned ?? null,
      untrained_patterned: r.get("filters")?.values?.untrained_patterned ??
        null,
    }),
    judge: (n) =>
      n.patterned >= 0.3 && n.patterned <= 0.7
        ? "agrees"
        : n.patterned >= 0.1 && n.patterned <= 0.9
        ? "partly"
        : "disagrees",
  },
  {
    id: "overcomplete_stem",
    section: S.stem,
    quote:
      "training is not necessary for accurate input representation for the procesing convolution of ViT L 16, and indeed this is found to be the case.",
    experiments: ["overcomplete_stem", "vit_stem"],
    rule:
      "Untrained input processing (layer 0) of the overcomplete ViT (ViT-L/16; ViT-B/16, exactly complete, in the smoke budget) against ViT-B/32's: agrees if ≥ 3 dB better and it meets the criterion, partly if ≥ 1 dB better, disagrees otherwise.",
    numbers: (r) => {
      const c = cellsOf(r, "overcomplete_stem").find((x) => x.column === 0);
      return {
        gain: sub(c?.psnr ?? null, psnr(r, "vit_stem", "intact", 0)),
        criterion: bool(c?.criterionMet),
      };
    },
    judge: (n) =>
      n.gain >= 3 && n.criterion === 1
        ? "agrees"
        : n.gain >= 1
        ? "partly"
        : "disagrees",
  },
  {
    id: "swap_pos_embedding",
    section: S.untrainedLn,
    quote:
      "When this is done, however, there is no noticeable difference in the representation quality.",
    experiments: ["swaps"],
    rule:
      "Δ = PSNR at encoder 1 with the trained position embedding in the untrained model − without. Agrees if |Δ| < 1 dB, partly if < 3 dB, disagrees otherwise.",
    numbers: (r) => ({
      delta: gain(r, "swaps", "pos. embedding trained", "untrained", 1),
    }),
    judge: (n) =>
      Math.abs(n.delta) < 1
        ? "agrees"
        : Math.abs(n.delta) < 3
        ? "partly"
        : "disagrees",
  },
  {
    id: "swap_ln1",
    section: S.untrainedLn,
    quote:
      "substituting the first layer norm (the one that is applied before the self-attention module) of the first encoder for a trained version is capable of increasing the representational quality substantially.",
    experiments: ["swaps"],
    rule:
      "Gain = PSNR at encoder 1 with the trained ln_1 of encoder 1 in the untrained model − without. Agrees if ≥ 3 dB, partly if ≥ 1 dB, disagrees otherwise.",
    numbers: (r) => ({
      gain: gain(r, "swaps", "ln_1 of encoder 1 trained", "untrained", 1),
    }),
    judge: (n) => tiers(n.gain, 3, 1),
  },
  {
    id: "recovery",
    section: S.untrainedLn,
    quote:
      "increasing the number of iterations of the generation process to n=105,000 yields a representation from the last encoder layer that is more accurate than that obtained with fewer iterations from the first.",
    experiments: ["vit_recovery", "vit_depth"],
    rule:
      "ViT-B/32, intact: agrees if PSNR at encoder 12 after the long run exceeds encoder 1's after the ordinary budget; partly if it is ≥ 1 dB above encoder 12's after the ordinary budget; disagrees otherwise.",
    numbers: (r) => ({
      long_12: cellsOf(r, "vit_recovery").find((c) => c.column === 12)?.psnr ??
        null,
      psnr_1: psnr(r, "vit_depth", "intact", 1),
      psnr_12: psnr(r, "vit_depth", "intact", 12),
    }),
    judge: (n) =>
      n.long_12 > n.psnr_1
        ? "agrees"
        : n.long_12 >= n.psnr_12 + 1
        ? "partly"
        : "disagrees",
  },
  {
    id: "patchwork",
    section: S.ln,
    quote:
      "the vision transformer’s representations of the input often form noticeably patchwork-like images when layer normalization is applied (to each patch separately).",
    experiments: ["vit_depth"],
    rule:
      "Spread = interquartile range of per-patch PSNR (32×32 patches). Agrees if the spread with layer norms exceeds the spread without them at encoders 1 and 4; partly at one of them; disagrees at neither.",
    numbers: (r) => ({
      iqr_1: cell(r, "vit_depth", "intact", 1)?.patches?.iqr ?? null,
      iqr_1_no_ln: cell(r, "vit_depth", "no layer norms", 1)?.patches?.iqr ??
        null,
      iqr_4: cell(r, "vit_depth", "intact", 4)?.patches?.iqr ?? null,
      iqr_4_no_ln: cell(r, "vit_depth", "no layer norms", 4)?.patches?.iqr ??
        null,
    }),
    judge: (n) => allSome(n.iqr_1 > n.iqr_1_no_ln, n.iqr_4 > n.iqr_4_no_ln),
  },
  {
    id: "no_ln_better",
    section: S.depth,
    quote:
      "removing layer normalization yields more accurate input representations from encoders before training in small vision transformers",
    experiments: ["vit_depth"],
    rule:
      "ViT-B/32: agrees if PSNR without layer norms is ≥ 1 dB above the intact model's at encoders 1 and 4; partly at one of them; disagrees at neither.",
    numbers: (r) => ({
      gain_1: gain(r, "vit_depth", "no layer norms", "intact", 1),
      gain_4: gain(r, "vit_depth", "no layer norms", "intact", 4),
    }),
    judge: (n) => allSome(n.gain_1 >= 1, n.gain_4 >= 1),
  },
  {
    id: "no_ln_explodes",
    section: S.depth,
    quote:
      "without normalization, at that depth the gradient begins to explode for certain patches",
    experiments: ["vit_depth"],
    rule:
      "ViT-B/32 (the essay saw it at ViT-L/16's encoder 24): a run explodes if the grid stops it as diverged, its embedding distance ends above 1000× the noise baseline or its image moves more than 10 RMS from the target. Agrees if the runs without layer norms explode at encoders 8 and 12 and the intact ones at neither; partly if only the encoder-12 run without layer norms explodes (intact not); disagrees otherwise.",
    numbers: (r) => ({
      no_ln_8: exploded(cell(r, "vit_depth", "no layer norms", 8)),
      no_ln_12: exploded(cell(r, "vit_depth", "no layer norms", 12)),
      intact_8: exploded(cell(r, "vit_depth", "intact", 8)),
      intact_12: exploded(cell(r, "vit_depth", "intact", 12)),
    }),
    judge: (n) =>
      n.intact_12 === 1
        ? "disagrees"
        : n.no_ln_8 === 1 && n.no_ln_12 === 1 && n.intact_8 === 0
        ? "agrees"
        : n.no_ln_12 === 1
        ? "partly"
        : "disagrees",
  },
  {
    id: "attention_residual",
    section: S.attention,
    quote:
      "self-attention transformations are quite incapable of transmitting most input information, which is why removing all attention modules from encoders 1 through 4 results in a recovery of the ability of the output of encoder 4 to accurately represent the input.",
    experiments: ["residual"],
    rule:
      "ViT-B/32 encoder 4: agrees if removing the residuals of encoders 1-4 costs ≥ 3 dB PSNR and removing attention as well wins back ≥ 3 dB; partly if one of the two; disagrees otherwise.",
    numbers: (r) => ({
      loss: gain(r, "residual", "intact", "no residuals", 4),
      recovery: gain(
        r,
        "residual",
        "no residuals, no attention",
        "no residuals",
        4,
      ),
    }),
    judge: (n) => allSome(n.loss >= 3, n.recovery >= 3),
  },
  {
    id: "noninvertible",
    section: S.attention,
    quote:
      "if we find that the embedding distance heads towards the origin […] but at the input distance does not head towards the origin […] And indeed, this is found to be the case […] for one encoder module with layer normalization followed by multi-head attention alone.",
    experiments: ["noninvertible"],
    rule:
      "One encoder of LN + attention without residual, against the same with its residual: agrees if its embedding distance ends below its noise baseline while its input distance ends ≥ 2× the control's; partly if one of the two; disagrees otherwise.",
    numbers: (r) => {
      const a = cell(r, "noninvertible", "LN + attention, no residual", 1);
      const c = cell(r, "noninvertible", "LN + attention + residual", 1);
      return {
        embedding_over_baseline: a?.embeddingDistance != null && a.noiseBaseline
          ? a.embeddingDistance / a.noiseBaseline
          : null,
        input_over_control: a?.inputDistance != null && c?.inputDistance
          ? a.inputDistance / c.inputDistance
          : null,
      };
    },
    judge: (n) =>
      allSome(n.embedding_over_baseline < 1, n.input_over_control >= 2),
  },
  {
    id: "mixer_depth",
    section: S.mixer,
    quote:
      "the first encoder layer for the above model is not particularly accurate at autoencoding its input, and the autencoding’s accuracy declines the deeper the layer in question.",
    experiments: ["mixer_p16"],
    rule:
      "Mixer, patch 16, intact (best learning-rate row): agrees if block 1 is below 30 dB PSNR and PSNR falls ≥ 3 dB from block 1 to block 8; partly if one of the two; disagrees otherwise.",
    numbers: (r) => ({
      psnr_1: best(r, "mixer_p16", INTACT, 1),
      psnr_8: best(r, "mixer_p16", INTACT, 8),
    }),
    judge: (n) => allSome(n.psnr_1 < 30, n.psnr_1 - n.psnr_8 >= 3),
  },
  {
    id: "mixer_patch8",
    section: S.mixer,
    quote:
      "Specifying a smaller patch size of 8 does reduce the representation error.",
    experiments: ["mixer_p8", "mixer_p16"],
    rule:
      "Intact mixers (best learning-rate row): agrees if patch 8 beats patch 16 by ≥ 1 dB PSNR at blocks 1 and 4; partly at one; disagrees at neither.",
    numbers: (r) => ({
      gain_1: sub(
        best(r, "mixer_p8", INTACT, 1),
        best(r, "mixer_p16", INTACT, 1),
      ),
      gain_4: sub(
        best(r, "mixer_p8", INTACT, 4),
        best(r, "mixer_p16", INTACT, 4),
      ),
    }),
    judge: (n) => allSome(n.gain_1 >= 1, n.gain_4 >= 1),
  },
  {
    id: "mixer_no_ln",
    section: S.mixer,
    quote:
      "removing this transformation (from every MLP) removes the empirical difficulty of minimizing m via gradient descent on the input, and visually provides a large increase in representation clarity.",
    experiments: ["mixer_p16"],
    rule:
      "Mixer, patch 16 (best learning-rate row of each): agrees if removing layer norms gains ≥ 3 dB PSNR at blocks 1, 4 and 8; partly if ≥ 1 dB at one of them; disagrees otherwise.",
    numbers: (r) => ({
      gain_1: sub(
        best(r, "mixer_p16", NO_LN, 1),
        best(r, "mixer_p16", INTACT, 1),
      ),
      gain_4: sub(
        best(r, "mixer_p16", NO_LN, 4),
        best(r, "mixer_p16", INTACT, 4),
      ),
      gain_8: sub(
        best(r, "mixer_p16", NO_LN, 8),
        best(r, "mixer_p16", INTACT, 8),
      ),
    }),
    judge: (n) =>
      [n.gain_1, n.gain_4, n.gain_8].every((g) => g >= 3)
        ? "agrees"
        : [n.gain_1, n.gain_4, n.gain_8].some((g) => g >= 1)
        ? "partly"
        : "disagrees",
  },
  {
    id: "ffvit_ln",
    section: S.mixer,
    quote:
      "For the Tolstikhin implementation, the effect of removing layer normalization is somewhat more dramatic than for the Melas-Kryiazi implementation",
    experiments: ["mixer_p16", "ffvit"],
    rule:
      "Mean PSNR gain from removing layer norms (best learning-rate rows) over the blocks each grid has (mixer, patch 16: 1, 4, 8; FF-only ViT: 1, 4, 8, 12, in the smoke budget 1 and 12): agrees if the mixer's exceeds the FF-only ViT's by ≥ 1 dB, partly if by more than 0, disagrees otherwise.",
    numbers: (r) => ({
      mixer_gain: meanGain(r, "mixer_p16"),
      ffvit_gain: meanGain(r, "ffvit"),
    }),
    judge: (n) =>
      n.mixer_gain - n.ffvit_gain >= 1
        ? "agrees"
        : n.mixer_gain > n.ffvit_gain
        ? "partly"
        : "disagrees",
  },
];

/** A claim judged. */
export interface Judged {
  /** The verdict. */
  verdict: Verdict;
  /** The numbers it rests on. */
  numbers: Numbers;
  /** For "not run": the numbers that are missing. */
  missing: string[];
}

/**
 * Applies a claim's rule to the results: "not run" when any number it needs
 * is missing (an experiment not run, a cell not finished), else the rule's
 * verdict.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLAIMS, judge } from "./claims.ts";
 * assert.equal(judge(CLAIMS[1], new Map()).verdict, "not run");
 * ```
 */
export function judge(claim: Claim, results: Results): Judged {
  const numbers = claim.numbers(results);
  const missing = Object.entries(numbers).filter(([, v]) =>
    v === null || Number.isNaN(v)
  ).map(([k]) => k);
  if (missing.length > 0) return { verdict: "not run", numbers, missing };
  return {
    verdict: claim.judge(numbers as Record<string, number>),
    numbers,
    missing,
  };
}

/** One claim in claims.json. */
export interface ClaimRecord extends Judged {
  /** The claim's identifier. */
  id: string;
  /** The essay's section. */
  section: string;
  /** The sentence quoted. */
  quote: string;
  /** The rule, in words. */
  rule: string;
  /** The experiments it rests on. */
  experiments: string[];
  /** Which models the numbers come from: untrained, small (Fashion-MNIST), ImageNet. */
  origin: string[];
  /** For "not run": why, and the commands that would make it runnable. */
  notRun?: { reason: string; command: string }[];
}
