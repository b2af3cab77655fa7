import assert from "node:assert/strict";
import { type InitSpec, Rng, sampleInit } from "../src/model/mod.ts";

const N = 200_000;

function moments(x: Float32Array): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  for (const v of x) s2 += (v - mean) ** 2;
  return { mean, std: Math.sqrt(s2 / (x.length - 1)) };
}

/** Checks sample mean and std against theory, within 5 standard errors. */
function assertMoments(x: Float32Array, mean: number, std: number) {
  const m = moments(x);
  const tol = 5 * std / Math.sqrt(x.length);
  assert.ok(Math.abs(m.mean - mean) < tol, `mean ${m.mean} vs ${mean}`);
  // The std's standard error is at most ~std * sqrt(kurtosis - 1) / (2 sqrt(n)).
  assert.ok(Math.abs(m.std - std) < tol, `std ${m.std} vs ${std}`);
}

/** Upper normal tail P(Z > x) via Numerical Recipes' erfc (relative error
 * < 1.2e-7), accurate far into the tails. */
function tail(x: number): number {
  const z = Math.abs(x) / Math.SQRT2, t = 1 / (1 + 0.5 * z);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 +
            t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
                        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 +
                                    t * 0.17087277))))))));
  const erfc = t * Math.exp(-z * z + poly);
  return x >= 0 ? erfc / 2 : 1 - erfc / 2;
}
const pdf = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);

Deno.test("Rng is deterministic for a seed", () => {
  const a = new Rng(123), b = new Rng(123n);
  for (let i = 0; i < 100; i++) assert.equal(a.uniform(), b.uniform());
  assert.deepEqual(
    new Rng(5).fill("normal", new Float32Array(10)),
    new Rng(5).fill("normal", new Float32Array(10)),
  );
  // Pinned against a C build of the reference splitmix64 + xoshiro128**.
  const r0 = new Rng(0), r1 = new Rng(-1);
  assert.deepEqual(
    [r0.uint32(), r0.uint32(), r0.uint32(), r0.uint32()],
    [3737715805, 2584255861, 2876756834, 3286328325],
  );
  assert.deepEqual(
    [r1.uint32(), r1.uint32(), r1.uint32(), r1.uint32()],
    [477689756, 2493998634, 555695776, 607808419],
  );
});

Deno.test("Rng gives different streams for different seeds", () => {
  const a = new Rng(1).fill("uniform", new Float32Array(16));
  const b = new Rng(2).fill("uniform", new Float32Array(16));
  const c = new Rng(-1).fill("uniform", new Float32Array(16));
  assert.notDeepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.throws(() => new Rng(0.5), RangeError);
});

Deno.test("Rng.uniform() and Rng.normal() have the right moments", () => {
  const rng = new Rng(9);
  const u = rng.fill("uniform", new Float32Array(N));
  assert.ok(u.every((v) => v >= 0 && v < 1));
  assertMoments(u, 0.5, Math.sqrt(1 / 12));
  assertMoments(rng.fill("normal", new Float32Array(N)), 0, 1);
});

Deno.test("sampleInit() matches each distribution", () => {
  const rng = new Rng(2024);
  assert.deepEqual(
    sampleInit({ kind: "constant", value: 0.25 }, 4, rng),
    new Float32Array([0.25, 0.25, 0.25, 0.25]),
  );
  assertMoments(sampleInit({ kind: "normal", std: 2 }, N, rng), 0, 2);
  assertMoments(
    sampleInit({ kind: "normal", mean: -3, std: 0.02 }, N, rng),
    -3,
    0.02,
  );
  const u = sampleInit({ kind: "uniform", low: -1, high: 3 }, N, rng);
  assert.ok(u.every((v) => v >= -1 && v <= 3));
  assertMoments(u, 1, 4 / Math.sqrt(12));
  assert.deepEqual(
    sampleInit({ kind: "normal", mean: 1, std: 0 }, 2, rng),
    new Float32Array([1, 1]),
  );
});

Deno.test("sampleInit() trunc_normal matches the truncated normal", () => {
  const rng = new Rng(77);
  // Centered, one-sided, far tail, narrow and wide windows (absolute bounds).
  const specs: [number, number, number, number][] = [
    [0, 1, -2, 2],
    [0, 0.02, -0.04, 0.04],
    [1, 2, 1, 9],
    [0, 1, 3, 4],
    [0, 1, -6, -5],
    [0, 1, 0.5, 0.7],
    [0, 1, -0.3, 0.9],
    [0, 1, -1, 100],
    [0.5, 3, -10, 20],
  ];
  for (const [mean, std, a, b] of specs) {
    const x = sampleInit({ kind: "trunc_normal", mean, std, a, b }, N, rng);
    assert.ok(x.every((v) => v >= a && v <= b), `bounds ${a}, ${b}`);
    const al = (a - mean) / std, be = (b - mean) / std;
    // The mass of [al, be], computed from the tails to keep its precision.
    const z = be < 0 ? tail(-be) - tail(-al) : tail(al) - tail(be);
    const ratio = (pdf(al) - pdf(be)) / z;
    const m = mean + std * ratio;
    const v = std ** 2 * (1 + (al * pdf(al) - be * pdf(be)) / z - ratio ** 2);
    assertMoments(x, m, Math.sqrt(v));
  }
  assert.deepEqual(
    sampleInit({ kind: "trunc_normal", mean: 0.5, std: 0, a: 0, b: 1 }, 2, rng),
    new Float32Array([0.5, 0.5]),
  );
});

Deno.test("sampleInit() rejects bad specs", () => {
  const rng = new Rng(0);
  const bad: InitSpec[] = [
    { kind: "normal", std: -1 },
    { kind: "normal", std: NaN },
    { kind: "uniform", low: 2, high: 1 },
    { kind: "trunc_normal", std: 1, a: 1, b: 1 },
    { kind: "trunc_normal", std: 1, a: 2, b: -2 },
    { kind: "trunc_normal", std: 0, a: 1, b: 2 },
    { kind: "constant", value: Infinity },
  ];
  for (const spec of bad) {
    assert.throws(() => sampleInit(spec, 3, rng), RangeError);
  }
  assert.throws(
    () => sampleInit({ kind: "xavier" } as unknown as InitSpec, 3, rng),
    { name: "TypeError", message: /"xavier".*trunc_normal/ },
  );
  assert.throws(
    () => sampleInit({ kind: "constant", value: 0 }, -1, rng),
    RangeError,
  );
  assert.throws(
    () => rng.fill("gamma" as "normal", new Float32Array(1)),
    TypeError,
  );
});
