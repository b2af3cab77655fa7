/**
 * A seeded pseudo-random number generator and parameter-initialization
 * samplers, deterministic across platforms.
 *
 * The generator is xoshiro128** (Blackman & Vigna), whose 128-bit state is
 * filled from the first two outputs of splitmix64 started at the seed (taken
 * modulo 2^64), each split into its low then high 32-bit word.
 *
 * @example Sample an initializer
 * ```ts
 * import { Rng, sampleInit } from "./rng.ts";
 *
 * const w = sampleInit({ kind: "trunc_normal", std: 0.02, a: -0.04, b: 0.04 }, 16, new Rng(0));
 * ```
 *
 * @module
 */

const MASK64 = (1n << 64n) - 1n;

function splitmix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A seeded xoshiro128** generator (state seeded by splitmix64).
 *
 * The same seed gives the same sequence on every platform.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 *
 * const rng = new Rng(42);
 * const u = rng.uniform(); // in [0, 1)
 * const z = rng.normal(); // standard normal
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | undefined;

  /** Creates a generator from an integer seed.
   *
   * @param seed A safe integer or a bigint; it is taken modulo 2^64.
   * @throws {RangeError} If `seed` is a number that is not a safe integer.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const rng = new Rng(1234);
   * ```
   */
  constructor(seed: number | bigint) {
    if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
      throw new RangeError(
        `Invalid seed "${seed}": expected a safe integer or a bigint`,
      );
    }
    let state = BigInt.asUintN(64, BigInt(seed));
    for (let i = 0; i < 4; i += 2) {
      const [next, out] = splitmix64(state);
      state = next;
      this.#s[i] = Number(out & 0xffffffffn);
      this.#s[i + 1] = Number(out >> 32n);
    }
  }

  /** Returns the next 32-bit output as an unsigned integer.
   *
   * @returns An integer in [0, 2^32).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const x = new Rng(0).uint32();
   * ```
   */
  uint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Returns a uniform number in [0, 1) with 53 bits of randomness (two
   * 32-bit outputs).
   *
   * @returns A number in [0, 1).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const u = new Rng(0).uniform();
   * ```
   */
  uniform(): number {
    const hi = this.uint32() >>> 5;
    const lo = this.uint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Returns a standard normal sample (Box–Muller; the second value of each
   * pair is cached for the next call).
   *
   * @returns A sample from N(0, 1).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const z = new Rng(0).normal();
   * ```
   */
  normal(): number {
    if (this.#spare !== undefined) {
      const z = this.#spare;
      this.#spare = undefined;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.#spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with standard uniform or standard normal samples.
   *
   * @param kind `"uniform"` for [0, 1) or `"normal"` for N(0, 1).
   * @param out The array to fill in place.
   * @returns `out`.
   * @throws {TypeError} If `kind` is unknown.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const noise = new Rng(7).fill("normal", new Float32Array(8));
   * ```
   */
  fill(kind: "uniform" | "normal", out: Float32Array): Float32Array {
    if (kind === "uniform") {
      for (let i = 0; i < out.length; i++) out[i] = this.uniform();
    } else if (kind === "normal") {
      for (let i = 0; i < out.length; i++) out[i] = this.normal();
    } else {
      throw new TypeError(
        `Invalid fill kind "${kind}": expected one of uniform, normal`,
      );
    }
    return out;
  }
}

/** An initialization distribution. For `trunc_normal`, `a` and `b` are
 * absolute bounds, as in `torch.nn.init.trunc_normal_`; `mean` defaults to 0.
 *
 * @example
 * ```ts
 * import type { InitSpec } from "./rng.ts";
 *
 * const spec: InitSpec = { kind: "trunc_normal", std: 0.02, a: -2, b: 2 };
 * ```
 */
export type InitSpec =
  | { kind: "constant"; value: number }
  | { kind: "normal"; mean?: number; std: number }
  | { kind: "uniform"; low: number; high: number }
  | { kind: "trunc_normal"; mean?: number; std: number; a: number; b: number };

const KINDS = "constant, normal, uniform, trunc_normal";

/** Samples the standard normal truncated to [lo, hi] exactly, by rejection
 * (Robert 1995): normal or uniform proposals when 0 is inside, uniform or
 * exponential proposals in a tail. Each acceptance rate is at least ~1/3. */
function truncStandard(rng: Rng, lo: number, hi: number): number {
  if (hi <= 0) return -truncStandard(rng, -hi, -lo);
  if (lo < 0) {
    if (hi - lo >= 2) {
      for (;;) {
        const z = rng.normal();
        if (z >= lo && z <= hi) return z;
      }
    }
    for (;;) {
      const z = lo + (hi - lo) * rng.uniform();
      if (rng.uniform() <= Math.exp(-z * z / 2)) return z;
    }
  }
  if (hi * hi - lo * lo < 2) {
    for (;;) {
      const z = lo + (hi - lo) * rng.uniform();
      if (rng.uniform() <= Math.exp((lo * lo - z * z) / 2)) return z;
    }
  }
  const lam = (lo + Math.sqrt(lo * lo + 4)) / 2;
  for (;;) {
    const z = lo - Math.log(1 - rng.uniform()) / lam;
    if (z <= hi && rng.uniform() <= Math.exp(-((z - lam) ** 2) / 2)) return z;
  }
}

function finite(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(
      `Invalid ${name} "${value}": expected a finite number`,
    );
  }
  return value;
}

/** Draws `size` values from an initialization distribution.
 *
 * @param spec The distribution.
 * @param size The number of values.
 * @param rng The generator to draw from.
 * @returns The samples, as float32.
 * @throws {TypeError} If `spec.kind` is unknown.
 * @throws {RangeError} If `size` is not a non-negative integer, or the
 * parameters are invalid (non-finite, `std < 0`, `low > high`, `a >= b`).
 *
 * @example
 * ```ts
 * import { Rng, sampleInit } from "./rng.ts";
 *
 * const rng = new Rng(0);
 * const bias = sampleInit({ kind: "constant", value: 0 }, 4, rng);
 * const w = sampleInit({ kind: "normal", std: 0.02 }, 16, rng);
 * ```
 */
export function sampleInit(
  spec: InitSpec,
  size: number,
  rng: Rng,
): Float32Array {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(
      `Invalid size "${size}": expected a non-negative integer`,
    );
  }
  const out = new Float32Array(size);
  switch (spec?.kind) {
    case "constant":
      return out.fill(finite("value", spec.value));
    case "uniform": {
      const low = finite("low", spec.low);
      const high = finite("high", spec.high);
      if (low > high) {
        throw new RangeError(
          `Invalid uniform bounds "[${low}, ${high}]": expected low <= high`,
        );
      }
      for (let i = 0; i < size; i++) {
        out[i] = low + (high - low) * rng.uniform();
      }
      return out;
    }
    case "normal":
    case "trunc_normal": {
      const mean = finite("mean", spec.mean ?? 0);
      const std = finite("std", spec.std);
      if (std < 0) {
        throw new RangeError(`Invalid std "${std}": expected std >= 0`);
      }
      if (spec.kind === "normal") {
        for (let i = 0; i < size; i++) out[i] = mean + std * rng.normal();
        return out;
      }
      const { a, b } = spec;
      if (
        typeof a !== "number" || typeof b !== "number" || !(a < b)
      ) {
        throw new RangeError(
          `Invalid trunc_normal bounds "[${a}, ${b}]": expected numbers with a < b`,
        );
      }
      if (std === 0) {
        if (mean < a || mean > b) {
          throw new RangeError(
            `Invalid trunc_normal mean "${mean}" with std 0: expected it within [${a}, ${b}]`,
          );
        }
        return out.fill(mean);
      }
      const lo = (a - mean) / std, hi = (b - mean) / std;
      for (let i = 0; i < size; i++) {
        const x = mean + std * truncStandard(rng, lo, hi);
        out[i] = Math.min(Math.max(x, a), b);
      }
      return out;
    }
    default:
      throw new TypeError(
        `Unknown init kind "${
          (spec as { kind?: unknown })?.kind
        }": expected one of ${KINDS}`,
      );
  }
}
