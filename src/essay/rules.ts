/**
 * Verdict rules as data: a rule names the quantities it compares and its
 * cut-offs, and one interpreter, {@linkcode applyRule}, gives both the rule
 * in words (for the report) and its verdict on numbers, so no rule is
 * written twice. {@linkcode judgeSeeds} applies a rule to every weight draw
 * and gives "borderline" when the draws fall on both sides of a cut-off.
 *
 * @module
 */

/** How a quantity is measured, for its prose and its printing. */
export type Unit =
  | "dB"
  | "ratio"
  | "share"
  | "fraction"
  | "probability"
  | "distance"
  | "bool";

/** A comparison. */
export type Compare = ">=" | ">" | "<" | "<=";

/**
 * One test on the numbers: a quantity against a number, against another
 * quantity (`times` × it `plus` a number), or a yes/no quantity.
 */
export type Test =
  | { q: string; op: Compare; than: number }
  | { q: string; op: Compare; of: string; times?: number; plus?: number }
  | { q: string; is: boolean };

/** Tests that must all hold, or of which one must. */
export type Cond = { all: readonly Test[] } | { any: readonly Test[] };

/**
 * A verdict rule.
 * - `threshold`: agrees when `q` ≥ `agree`, partly when ≥ `partly` (with
 *   `below`: when `q` < `agree`, partly when < `partly`), else disagrees.
 * - `all-some`: agrees when every test holds, partly when some do,
 *   disagrees when none.
 * - `tiers`: agrees when `agree` holds, else partly when `partly` holds,
 *   else disagrees.
 */
export type Rule =
  | {
    kind: "threshold";
    q: string;
    agree: number;
    partly: number;
    below?: boolean;
  }
  | { kind: "all-some"; tests: readonly Test[] }
  | { kind: "tiers"; agree: Cond; partly: Cond };

/** A rule's verdict on one set of numbers. */
export type Tier = "agrees" | "partly" | "disagrees";

/** Numbers by quantity (booleans as 1 and 0). */
export type Numbers = Readonly<Record<string, number>>;

/** One test as applied: its words and whether it held (null: no numbers). */
export interface Check {
  /** The test in words. */
  text: string;
  /** Whether it held. */
  holds: boolean | null;
}

/** A rule applied: its words, verdict (null without numbers) and its tests. */
export interface Applied {
  /** The rule in words. */
  prose: string;
  /** The verdict, or null when no numbers were given. */
  verdict: Tier | null;
  /** Every test with whether it held. */
  checks: Check[];
}

const SYMBOL: Record<Compare, string> = {
  ">=": "≥",
  ">": ">",
  "<": "<",
  "<=": "≤",
};

/** A cut-off in words, with its unit. */
function amount(v: number, unit: Unit | undefined): string {
  const t = String(Number(v.toPrecision(6)));
  return unit === "dB" ? `${t} dB` : t;
}

const compare = (a: number, op: Compare, b: number) =>
  op === ">=" ? a >= b : op === ">" ? a > b : op === "<" ? a < b : a <= b;

/** A test's words and outcome. */
function test(
  t: Test,
  units: Readonly<Record<string, Unit>>,
  n?: Numbers,
): Check {
  const has = (q: string) => n !== undefined && Number.isFinite(n[q]);
  if ("is" in t) {
    return {
      text: `${t.q} is ${t.is ? "yes" : "no"}`,
      holds: has(t.q) ? (n![t.q] === 1) === t.is : null,
    };
  }
  if ("than" in t) {
    return {
      text: `${t.q} ${SYMBOL[t.op]} ${amount(t.than, units[t.q])}`,
      holds: has(t.q) ? compare(n![t.q], t.op, t.than) : null,
    };
  }
  const times = t.times ?? 1, plus = t.plus ?? 0;
  const rhs = `${times === 1 ? "" : `${amount(times, undefined)} × `}${t.of}${
    plus === 0
      ? ""
      : ` ${plus > 0 ? "+" : "−"} ${amount(Math.abs(plus), units[t.q])}`
  }`;
  return {
    text: `${t.q} ${SYMBOL[t.op]} ${rhs}`,
    holds: has(t.q) && has(t.of)
      ? compare(n![t.q], t.op, times * n![t.of] + plus)
      : null,
  };
}

/** A condition's words and outcome. */
function cond(
  c: Cond,
  units: Readonly<Record<string, Unit>>,
  n?: Numbers,
): { text: string; holds: boolean | null; checks: Check[] } {
  const all = "all" in c;
  const checks = (all ? c.all : c.any).map((t) => test(t, units, n));
  const text = checks.map((k) => k.text).join(all ? " and " : " or ");
  const known = checks.every((k) => k.holds !== null);
  return {
    text,
    holds: !known
      ? null
      : all
      ? checks.every((k) => k.holds)
      : checks.some((k) => k.holds),
    checks,
  };
}

/**
 * Applies rule `r` to numbers `n` (omitted: the words only). The same walk
 * over the rule gives its words and its verdict, so the two cannot differ.
 * `units` says how each quantity is measured (dB cut-offs print with "dB").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyRule } from "./rules.ts";
 * const r = { kind: "threshold", q: "gain", agree: 3, partly: 1 } as const;
 * const a = applyRule(r, { gain: "dB" }, { gain: 1.5 });
 * assert.equal(a.prose, "agrees if gain ≥ 3 dB, partly if gain ≥ 1 dB, disagrees otherwise");
 * assert.equal(a.verdict, "partly");
 * assert.equal(applyRule(r, { gain: "dB" }).verdict, null);
 * ```
 */
export function applyRule(
  r: Rule,
  units: Readonly<Record<string, Unit>>,
  n?: Numbers,
): Applied {
  if (r.kind === "threshold") {
    const op: Compare = r.below ? "<" : ">=";
    const a = test({ q: r.q, op, than: r.agree }, units, n);
    const p = test({ q: r.q, op, than: r.partly }, units, n);
    return {
      prose: `agrees if ${a.text}, partly if ${p.text}, disagrees otherwise`,
      verdict: a.holds === null
        ? null
        : a.holds
        ? "agrees"
        : p.holds
        ? "partly"
        : "disagrees",
      checks: [a, p],
    };
  }
  if (r.kind === "all-some") {
    const checks = r.tests.map((t) => test(t, units, n));
    const known = checks.every((k) => k.holds !== null);
    const held = checks.filter((k) => k.holds).length;
    return {
      prose: `agrees if ${checks.length > 1 ? "all of " : ""}${
        checks.map((k) => k.text).join("; ")
      } hold, partly if some do, disagrees if none does`,
      verdict: !known
        ? null
        : held === checks.length
        ? "agrees"
        : held > 0
        ? "partly"
        : "disagrees",
      checks,
    };
  }
  const a = cond(r.agree, units, n), p = cond(r.partly, units, n);
  return {
    prose: `agrees if ${a.text}; partly if ${p.text}; disagrees otherwise`,
    verdict: a.holds === null
      ? null
      : a.holds
      ? "agrees"
      : p.holds
      ? "partly"
      : "disagrees",
    checks: [...a.checks, ...p.checks],
  };
}

/** A rule applied to every weight draw. */
export interface SeedJudgment {
  /** The verdict: the draws' common one, or "borderline" when they differ. */
  verdict: Tier | "borderline";
  /** Each draw's verdict. */
  perSeed: Tier[];
  /** For "borderline": the tests whose outcome differs between the draws, in words. */
  reason?: string;
}

/**
 * Applies rule `r` to the numbers of each weight draw (`seeds[i]`'s are
 * `perSeed[i]`, all measured): their common verdict, or "borderline" when the
 * draws fall on both sides of a cut-off — never a tier picked by one draw.
 * The reason names each test that holds for some draws and not others.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeSeeds } from "./rules.ts";
 * const r = { kind: "threshold", q: "gain", agree: 3, partly: 1 } as const;
 * const j = judgeSeeds(r, { gain: "dB" }, [0, 1, 2], [{ gain: 1.02 }, { gain: 0.91 }, { gain: 0.08 }]);
 * assert.equal(j.verdict, "borderline");
 * assert.equal(j.reason, "gain ≥ 1 dB holds for seed 0 but not for seeds 1, 2");
 * assert.equal(judgeSeeds(r, { gain: "dB" }, [0, 1], [{ gain: 4 }, { gain: 5 }]).verdict, "agrees");
 * ```
 */
export function judgeSeeds(
  r: Rule,
  units: Readonly<Record<string, Unit>>,
  seeds: readonly number[],
  perSeed: readonly Numbers[],
): SeedJudgment {
  if (perSeed.length === 0 || perSeed.length !== seeds.length) {
    throw new RangeError(
      `Invalid numbers for ${seeds.length} seeds: ${perSeed.length} sets: expected one set of numbers per seed, at least one`,
    );
  }
  const applied = perSeed.map((n) => applyRule(r, units, n));
  const verdicts = applied.map((a) => a.verdict);
  if (verdicts.some((v) => v === null)) {
    throw new RangeError(
      `Invalid numbers: a quantity of the rule is missing for seed ${
        seeds[verdicts.indexOf(null)]
      }: expected every quantity measured`,
    );
  }
  const perTier = verdicts as Tier[];
  if (perTier.every((v) => v === perTier[0])) {
    return { verdict: perTier[0], perSeed: perTier };
  }
  const list = (xs: number[]) =>
    `seed${xs.length > 1 ? "s" : ""} ${xs.join(", ")}`;
  const split = applied[0].checks.map((c, i) => {
    const yes = seeds.filter((_, s) => applied[s].checks[i].holds);
    const no = seeds.filter((_, s) => !applied[s].checks[i].holds);
    return yes.length && no.length
      ? `${c.text} holds for ${list(yes)} but not for ${list(no)}`
      : null;
  }).filter((x): x is string => x !== null);
  return {
    verdict: "borderline",
    perSeed: perTier,
    reason: [...new Set(split)].join("; "),
  };
}
