/**
 * Weights without files: untrained tensors drawn from the manifest's init
 * distributions, and the cache of files verified in this process.
 *
 * @module
 */

import { type InitSpec, Rng, sampleInit } from "./rng.ts";

/**
 * Files already verified in this process, keyed by path, size, modification
 * time and what was checked, so loading the same large model again skips the
 * hashing. Create one and pass it to every `loadModel` call that may share it.
 *
 * @example
 * ```ts
 * import { loadModel } from "./model.ts";
 * import { VerifyCache } from "./weights.ts";
 * import assert from "node:assert/strict";
 * const cache = new VerifyCache();
 * const a = await loadModel("tests/fixtures/tiny_vit", { weights: "fixture", verifyCache: cache });
 * assert.equal(cache.size, 1); // the weight set; graphs join on first use
 * assert.equal(a.verified, true);
 * ```
 */
export class VerifyCache {
  #keys = new Set<string>();

  /** Whether `key` was verified. */
  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** Records `key` as verified. */
  add(key: string): void {
    this.#keys.add(key);
  }

  /** How many files (and checks) are recorded. */
  get size(): number {
    return this.#keys.size;
  }
}

/** FNV-1a of a string, for per-tensor seeds. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Untrained weights from the manifest's init distributions. Each tensor has its
 * own generator seeded by (seed, tensor name), so a tensor is the same whichever
 * layers are built, and in whatever order. A draw that does not fit float32
 * (an init such as `std: 1e300`) is refused with a RangeError naming the
 * tensor.
 *
 * @example
 * ```ts
 * import { untrainedTensor } from "./weights.ts";
 * import assert from "node:assert/strict";
 * const w = untrainedTensor({ kind: "normal", std: 0.02 }, [4, 4], "w", 0);
 * assert.equal(w.length, 16);
 * assert.throws(
 *   () => untrainedTensor({ kind: "normal", std: 1e300 }, [4], "w", 0),
 *   /Untrained tensor "w" .* holds -?Infinity/,
 * );
 * ```
 */
export function untrainedTensor(
  init: InitSpec,
  shape: readonly number[],
  name: string,
  seed: number,
): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng((BigInt(seed) << 32n) | BigInt(hash32(name)));
  const out = sampleInit(init, size, rng);
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    if (v - v !== 0) { // NaN and ±Infinity give NaN
      throw new RangeError(
        `Untrained tensor "${name}" drawn from init ${
          JSON.stringify(init)
        } holds ${v} at index ${i}: expected values finite in float32 (|x| < 3.4e38): the manifest's init for it is wrong`,
      );
    }
  }
  return out;
}
