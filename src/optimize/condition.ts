/**
 * How poorly conditioned one encoder block is: the spread of the singular
 * values of its Jacobian J = ∂block_L(x)/∂x at the tokens x entering block L
 * for an image (a square matrix: 50·768 = 38,400 rows for ViT-B/32).
 *
 * Method: m steps of Lanczos on JᵀJ with full reorthogonalization (classical
 * Gram–Schmidt, twice, in float64) from a seeded Gaussian start vector. Jᵀu
 * runs on the block's VJP graph ({@linkcode Model.linearizeBlock}); J·v is the
 * fourth-order central difference of the block's forward graph,
 * (8(f(x+hv) − f(x−hv)) − (f(x+2hv) − f(x−2hv))) / 12h for a unit v, with
 * h = δ·‖x‖ (δ = {@linkcode CONDITION_DEFAULTS}.relativeStep = 1e-4). The
 * Ritz values of the tridiagonal matrix T_m are the eigenvalues of JᵀJ
 * restricted to the Krylov space, so their square roots, the Ritz singular
 * values, satisfy σ_min ≤ σ_min_ritz ≤ … ≤ σ_max_ritz ≤ σ_max (in exact
 * arithmetic):
 *
 * - `sigmaMax`, the largest, converges fast (extreme and well separated):
 *   on block 1 of the Fashion-MNIST ViT, 40 steps give PyTorch's σ_max of
 *   the full Jacobian to 1e-6 (tests/condition_test.ts);
 * - `sigmaMinRitz`, the smallest, is only an UPPER bound on σ_min: the small
 *   end of JᵀJ's spectrum is crowded near zero and Lanczos reaches it slowly;
 * - so `kappaLower` = sigmaMax / sigmaMinRitz is a LOWER bound on the
 *   condition number κ = σ_max/σ_min, and may be a loose one: on block 1 of
 *   the Fashion-MNIST ViT, 40 steps give κ ≥ 57 where the full Jacobian has
 *   κ ≈ 9.8·10⁴ (80 steps: κ ≥ 141); with attention removed, κ ≥ 41 against
 *   κ ≈ 220. More steps only raise it.
 *
 * Float32 error of J·v. Rounding: each float32 output value errs by about
 * ε₃₂·|y| (ε₃₂ = 1.2e-7, times a small factor for the block's sums); the
 * quotient (weights 8/12h and 1/12h) turns that into about 1.3·ε₃₂·‖y‖/h =
 * 1.6e-3·‖y‖/‖x‖ in norm for δ = 1e-4, spread over all n components like
 * noise (its projection on any one direction is ~√n times smaller). Rounding
 * x ± h·v to float32 adds less. Truncation: O(h⁴) in the fifth derivative,
 * and what matters is the step against the smallest token, not ‖x‖: an
 * untrained ViT's class token is zero plus the position embedding (norm 0.55
 * in ViT-B/32, against ‖x‖ ≈ 126 for a photo), and layer norm's Jacobian
 * scales with 1/σ of each token, so the top singular direction lies there.
 * Measured (block 1; σ_max and σ_min_ritz at 40 steps against the
 * second-order quotient at δ = 3e-5 on ViT-B/32, against exact-arithmetic
 * Lanczos on the Fashion-MNIST ViT): δ = 1e-4 gives σ_max to 1e-6 (FMNIST)
 * and 1e-4 (ViT-B/32), σ_min_ritz to 6e-4 and 3e-3; δ = 1e-3 is off by 2%
 * on ViT-B/32 (and drives one σ_min_ritz to 0); the second-order quotient at
 * δ = 3e-4 was off by 0.5% on σ_max and 13% on σ_min_ritz there. So δ = 1e-4,
 * with errors far below the 1% a statement about σ_max needs and below the
 * few percent that separate the variants' bounds.
 *
 * The model's ablations apply (to block L, and to the blocks before it, whose
 * output x is). Deterministic for a seed, up to the backend's float32
 * arithmetic.
 *
 * @module
 */

import { type Model, Rng, type Tensor } from "../model/mod.ts";
import { inputTransform } from "./loop.ts";

/** Default settings of {@linkcode blockCondition}. */
export const CONDITION_DEFAULTS = {
  /** Lanczos steps m. */
  iterations: 40,
  /** Seed of the Gaussian start vector. */
  seed: 0,
  /** δ of the finite-difference step h = δ·‖x‖. */
  relativeStep: 1e-4,
  /** Normalize the image with the weights' mean/std before the model. */
  normalize: true,
};

/** The most Lanczos steps: the basis takes iterations × dims float64 values. */
export const MAX_ITERATIONS = 1000;

/** Progress of {@linkcode blockCondition} after each Lanczos step. */
export interface ConditionProgress {
  /** Steps done (1-based). */
  iteration: number;
  /** Steps asked for. */
  iterations: number;
  /** The largest Ritz singular value so far. */
  sigmaMax: number;
  /** The smallest Ritz singular value so far. */
  sigmaMinRitz: number;
  /** Seconds since the start. */
  seconds: number;
}

/** Options of {@linkcode blockCondition} and {@linkcode tokenCondition}. */
export interface ConditionOptions {
  /** The encoder block L, 1-based. */
  layer: number;
  /** Lanczos steps m (default 40; at most {@linkcode MAX_ITERATIONS} and the dimension). */
  iterations?: number;
  /** Seed of the start vector (default 0). */
  seed?: number;
  /** δ of the finite-difference step h = δ·‖x‖ (default 1e-3). */
  relativeStep?: number;
  /** {@linkcode blockCondition}: normalize the image first (default true). */
  normalize?: boolean;
  /** Called after each Lanczos step. */
  onIteration?: (progress: ConditionProgress) => void;
}

/** Result of {@linkcode blockCondition}. */
export interface ConditionResult {
  /** The block, 1-based. */
  layer: number;
  /** Dims of the tokens x (J is square, of their product). */
  dims: number[];
  /** Lanczos steps done (fewer than asked only when the Krylov space was exhausted). */
  iterations: number;
  /** The largest Ritz singular value: σ_max of J (a lower bound that converges fast). */
  sigmaMax: number;
  /** The smallest Ritz singular value: an UPPER bound on σ_min of J. */
  sigmaMinRitz: number;
  /** sigmaMax / sigmaMinRitz: a LOWER bound on the condition number σ_max/σ_min (Infinity if sigmaMinRitz is 0). */
  kappaLower: number;
  /** All Ritz singular values, largest first. */
  ritz: number[];
  /** The finite-difference step h. */
  step: number;
  /** ‖x‖₂ of the tokens. */
  tokensNorm: number;
  /** Wall seconds of the Lanczos steps. */
  seconds: number;
}

/** A model that runs one block on tokens. */
export type BlockModel = Pick<
  Model,
  "manifest" | "forward" | "blockForward" | "linearizeBlock"
>;

/**
 * The condition of encoder block `layer` at the tokens entering it for
 * `image` ([1,3,H,W] in [0,1], normalized with the weights' mean/std unless
 * `normalize: false`): Lanczos on JᵀJ (see the module's documentation).
 * `kappaLower` is a lower bound on the condition number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "../model/mod.ts";
 * import { blockCondition } from "./condition.ts";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const image = new Float32Array(3 * 32 * 32).map((_, i) => (i % 7) / 7);
 * const r = await blockCondition(model, image, { layer: 1, iterations: 10 });
 * assert.ok(r.sigmaMax >= r.sigmaMinRitz && r.kappaLower >= 1);
 * assert.equal(r.ritz.length, 10);
 * await model.release();
 * ```
 */
export async function blockCondition(
  model: BlockModel,
  image: Float32Array,
  options: ConditionOptions,
): Promise<ConditionResult> {
  const layer = checkLayer(model, options.layer);
  const normalize = options.normalize ?? CONDITION_DEFAULTS.normalize;
  if (typeof normalize !== "boolean") {
    throw new TypeError(
      `Invalid normalize "${normalize}": expected true or false`,
    );
  }
  const x = inputTransform(model, normalize).forward(image);
  const tokens = await model.forward(x, { layer: layer - 1 });
  return await tokenCondition(model, tokens, options);
}

/**
 * {@linkcode blockCondition} at given tokens x entering block `layer`
 * (e.g. `forward(image, { layer: layer - 1 })`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "../model/mod.ts";
 * import { tokenCondition } from "./condition.ts";
 * const model = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture" });
 * const tokens = await model.forward(new Float32Array(3 * 32 * 32).fill(0.3), { layer: 1 });
 * const r = await tokenCondition(model, tokens, { layer: 2, iterations: 8, seed: 1 });
 * assert.equal(r.kappaLower, r.sigmaMax / r.sigmaMinRitz);
 * await model.release();
 * ```
 */
export async function tokenCondition(
  model: BlockModel,
  tokens: Tensor,
  options: ConditionOptions,
): Promise<ConditionResult> {
  const layer = checkLayer(model, options.layer);
  const o = checkOptions(options, tokens.data.length);
  const x = tokens.data;
  const tokensNorm = norm(x);
  const h = o.relativeStep * tokensNorm;
  if (!(h > 0) || !Number.isFinite(h)) {
    throw new RangeError(
      `Invalid tokens of norm ${tokensNorm}: expected a finite, non-zero input to block ${layer} (the step h = δ·‖x‖ would be ${h})`,
    );
  }
  const lin = await model.linearizeBlock(layer, tokens);
  try {
    const at = (sign: number, v: Float64Array) => {
      const p = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) p[i] = x[i] + sign * h * v[i];
      return model.blockForward(layer, { data: p, dims: tokens.dims });
    };
    const t0 = performance.now();
    // J·v by the fourth-order central difference:
    // (8(f(x+hv) − f(x−hv)) − (f(x+2hv) − f(x−2hv))) / 12h
    const gram = async (v: Float64Array): Promise<Float64Array> => {
      const [p1, m1, p2, m2] = [
        await at(1, v),
        await at(-1, v),
        await at(2, v),
        await at(-2, v),
      ].map((t) => t.data);
      const jv = new Float32Array(p1.length);
      for (let i = 0; i < jv.length; i++) {
        jv[i] = (8 * (p1[i] - m1[i]) - (p2[i] - m2[i])) / (12 * h);
      }
      return Float64Array.from(await lin.vjp(jv));
    };
    const r = await lanczosGram(x.length, gram, {
      iterations: o.iterations,
      seed: o.seed,
      onIteration: options.onIteration &&
        ((p) =>
          options.onIteration!({
            ...p,
            seconds: (performance.now() - t0) / 1000,
          })),
    });
    const sigmaMax = r.ritz[0], sigmaMinRitz = r.ritz[r.ritz.length - 1];
    return {
      layer,
      dims: [...tokens.dims],
      iterations: r.iterations,
      sigmaMax,
      sigmaMinRitz,
      kappaLower: sigmaMax / sigmaMinRitz,
      ritz: r.ritz,
      step: h,
      tokensNorm,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    lin.release();
  }
}

/** Options of {@linkcode lanczosGram}. */
export interface LanczosOptions {
  /** Steps m (default 40; at most n). */
  iterations?: number;
  /** Seed of the Gaussian start vector (default 0). */
  seed?: number;
  /** Called after each step with the extreme Ritz singular values so far. */
  onIteration?: (
    progress: Omit<ConditionProgress, "seconds">,
  ) => void;
}

/**
 * Lanczos with full reorthogonalization on a Gram operator A = JᵀJ of
 * dimension n, given as `gram(v)` = Aᵥ: the Ritz singular values (square roots
 * of the Ritz values of A, negative ones as 0), largest first. They interlace
 * the singular values of J: the largest is ≤ σ_max, the smallest ≥ σ_min. The
 * start vector is Gaussian from `new Rng(seed)`, normalized; the run stops
 * early when the Krylov space is exhausted (an invariant subspace).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lanczosGram } from "./condition.ts";
 * // J = diag(1..6): all singular values after n steps
 * const s = [1, 2, 3, 4, 5, 6];
 * const r = await lanczosGram(6, (v) => Promise.resolve(v.map((x, i) => s[i] ** 2 * x)), { iterations: 6 });
 * assert.deepEqual(r.ritz.map((x) => Math.round(x * 1e9) / 1e9), [6, 5, 4, 3, 2, 1]);
 * ```
 */
export async function lanczosGram(
  n: number,
  gram: (v: Float64Array) => Promise<Float64Array>,
  options: LanczosOptions = {},
): Promise<{ ritz: number[]; iterations: number }> {
  const o = checkOptions(options, n);
  const rng = new Rng(o.seed);
  const q0 = new Float64Array(n);
  for (let i = 0; i < n; i++) q0[i] = rng.normal();
  scale(q0, 1 / norm(q0));
  const basis: Float64Array[] = [q0];
  const alpha: number[] = [], beta: number[] = [];
  let ritz: number[] = [];
  for (let j = 0; j < o.iterations; j++) {
    const q = basis[j];
    const w = await gram(q);
    if (w.length !== n) {
      throw new RangeError(
        `Invalid gram(v) of ${w.length} values: expected ${n}`,
      );
    }
    alpha.push(dot(q, w));
    for (let pass = 0; pass < 2; pass++) {
      for (const b of basis) axpy(-dot(b, w), b, w);
    }
    ritz = ritzSingularValues(alpha, beta);
    options.onIteration?.({
      iteration: j + 1,
      iterations: o.iterations,
      sigmaMax: ritz[0],
      sigmaMinRitz: ritz[ritz.length - 1],
    });
    const b = norm(w);
    const top = Math.max(...alpha.map(Math.abs));
    if (j === o.iterations - 1 || !(b > 1e-12 * top)) break;
    beta.push(b);
    scale(w, 1 / b);
    basis.push(w);
  }
  return { ritz, iterations: alpha.length };
}

/** Square roots of the eigenvalues of the tridiagonal (alpha, beta), largest first. */
function ritzSingularValues(alpha: number[], beta: number[]): number[] {
  return [...tridiagonalEigenvalues(alpha, beta)].reverse().map((l) =>
    Math.sqrt(Math.max(l, 0))
  );
}

/**
 * Eigenvalues of the symmetric tridiagonal matrix with diagonal `alpha` and
 * off-diagonal `beta` (one shorter), in ascending order: the implicit QL
 * method with Wilkinson shifts (float64).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tridiagonalEigenvalues } from "./condition.ts";
 * const l = tridiagonalEigenvalues([2, 2], [1]);
 * assert.deepEqual([...l].map((x) => Math.round(x * 1e12) / 1e12), [1, 3]);
 * ```
 */
export function tridiagonalEigenvalues(
  alpha: readonly number[],
  beta: readonly number[],
): Float64Array {
  const n = alpha.length;
  if (beta.length !== Math.max(n - 1, 0)) {
    throw new RangeError(
      `Invalid off-diagonal of ${beta.length} values: expected ${
        Math.max(n - 1, 0)
      }, one fewer than the ${n} of the diagonal`,
    );
  }
  const d = Float64Array.from(alpha);
  const e = new Float64Array(n);
  e.set(beta);
  for (let l = 0; l < n; l++) {
    for (let iter = 0;; iter++) {
      let m = l;
      while (
        m < n - 1 &&
        Math.abs(e[m]) > Number.EPSILON * (Math.abs(d[m]) + Math.abs(d[m + 1]))
      ) m++;
      if (m === l) break;
      if (iter === 100) {
        throw new RangeError(
          `Tridiagonal eigenvalues did not converge at row ${l}: expected a finite matrix`,
        );
      }
      qlSweep(d, e, l, m);
    }
  }
  return d.sort();
}

/** One implicit QL sweep with a Wilkinson shift on rows l..m of (d, e). */
function qlSweep(d: Float64Array, e: Float64Array, l: number, m: number) {
  let g = (d[l + 1] - d[l]) / (2 * e[l]);
  let r = Math.hypot(g, 1);
  g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
  let s = 1, c = 1, p = 0;
  for (let i = m - 1; i >= l; i--) {
    const f = s * e[i], b = c * e[i];
    r = Math.hypot(f, g);
    e[i + 1] = r;
    if (r === 0) {
      d[i + 1] -= p;
      e[m] = 0;
      return;
    }
    s = f / r;
    c = g / r;
    g = d[i + 1] - p;
    r = (d[i] - g) * s + 2 * c * b;
    p = s * r;
    d[i + 1] = g + p;
    g = c * r - b;
  }
  d[l] -= p;
  e[l] = g;
  e[m] = 0;
}

function checkLayer(model: BlockModel, layer: unknown): number {
  const n = model.manifest.num_layers;
  if (
    !Number.isInteger(layer) || (layer as number) < 1 || (layer as number) > n
  ) {
    throw new RangeError(
      `Invalid layer "${layer}": expected an encoder block 1..${n} of ${model.manifest.name}`,
    );
  }
  return layer as number;
}

/** The options with defaults, checked against the dimension n. */
function checkOptions(
  options: { iterations?: number; seed?: number; relativeStep?: number },
  n: number,
) {
  const iterations = options.iterations ?? CONDITION_DEFAULTS.iterations;
  const seed = options.seed ?? CONDITION_DEFAULTS.seed;
  const relativeStep = options.relativeStep ?? CONDITION_DEFAULTS.relativeStep;
  const most = Math.min(n, MAX_ITERATIONS);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > most) {
    throw new RangeError(
      `Invalid iterations "${iterations}": expected an integer in 1..${most} (at most ${MAX_ITERATIONS} and the dimension ${n})`,
    );
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(
      `Invalid seed "${seed}": expected a non-negative integer`,
    );
  }
  if (!(relativeStep > 0 && relativeStep < 1)) {
    throw new RangeError(
      `Invalid relativeStep "${relativeStep}": expected a number in (0, 1), e.g. 1e-3`,
    );
  }
  return { iterations, seed, relativeStep };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** y += a·x */
function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += a * x[i];
}

function scale(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i] *= a;
}
