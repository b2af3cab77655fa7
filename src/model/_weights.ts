/**
 * Weights for a model's graphs: generated untrained from the manifest's init
 * distributions, or read from a safetensors weight set and verified (SHA-256
 * per tensor against the manifest, finite values, sane offsets); graph files
 * checked against their SHA-256.
 *
 * @module
 */

import type { Manifest } from "./manifest.ts";
import { untrainedTensor, type VerifyCache } from "./weights.ts";
import {
  describe,
  fileStamp,
  inModel,
  type Location,
  type NetOptions,
  readLocation,
  userLocation,
} from "./_source.ts";
import {
  parseSafetensors,
  type SafetensorsFile,
  sha256Hex,
  tensorToFloat32,
} from "../io/mod.ts";

/** A weight tensor by state-dict key. */
export type Weights = (name: string) => Float32Array;

/** How to read and verify files. */
export interface ReadContext {
  /** The model folder or URL. */
  base: Location;
  /** Timeout and retries for URLs. */
  net: NetOptions;
  /** Verify hashes and values (`LoadOptions.verify`). */
  verify: boolean;
  /** Verified files, if the caller keeps them. */
  cache?: VerifyCache;
}

/**
 * Reads a file, then runs `check` on its bytes unless the cache holds `what`
 * for the file unchanged (same path, size and modification time, taken before
 * the read, so a file changed meanwhile is checked again next time).
 */
async function readVerified(
  ctx: ReadContext,
  loc: Location,
  field: string,
  what: string,
  check: (bytes: Uint8Array) => Promise<void>,
): Promise<Uint8Array> {
  const stamp = ctx.verify && ctx.cache ? await fileStamp(loc) : null;
  const bytes = await readLocation(loc, ctx.net, field);
  if (!ctx.verify) return bytes;
  const key = stamp === null ? null : `${stamp}\0${what}`;
  if (key !== null && ctx.cache!.has(key)) return bytes;
  await check(bytes);
  if (key !== null) ctx.cache!.add(key);
  return bytes;
}

/**
 * The bytes of a graph file, checked against its recorded SHA-256.
 */
export function readGraph(
  ctx: ReadContext,
  manifest: Manifest,
  gname: string,
): Promise<Uint8Array> {
  const entry = manifest.graphs[gname];
  const field = `graphs[${JSON.stringify(gname)}].file`;
  const loc = inModel(ctx.base, entry.file, field);
  return readVerified(
    ctx,
    loc,
    field,
    `sha256 ${entry.sha256}`,
    async (bytes) => {
      const got = await sha256Hex(bytes);
      if (got !== entry.sha256) {
        throw new TypeError(
          `Graph file "${
            describe(loc)
          }" has SHA-256 ${got}: expected ${entry.sha256} (${field}): the file is damaged or from another conversion; convert the model again`,
        );
      }
    },
  );
}

function untrained(manifest: Manifest, seed: number): Weights {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`Invalid seed "${seed}": expected an integer`);
  }
  // generated on demand and not kept: a tensor is the same each time it is drawn
  return (name) => {
    const t = manifest.tensors[name];
    if (!t) throw new TypeError(`Unknown tensor "${name}"`);
    return untrainedTensor(t.init, t.shape, name, seed);
  };
}

/** Where weights named `weights` live: a weight set in the model, or a path/URL of the caller's. */
function weightsLocation(
  manifest: Manifest,
  ctx: ReadContext,
  weights: string,
): { loc: Location; record?: Record<string, string> } {
  const set = Object.hasOwn(manifest.weight_sets, weights)
    ? manifest.weight_sets[weights]
    : undefined;
  if (set) {
    const field = `weight_sets[${JSON.stringify(weights)}].file`;
    return { loc: inModel(ctx.base, set.file, field), record: set.sha256 };
  }
  if (weights.endsWith(".safetensors")) return { loc: userLocation(weights) };
  const sets = [
    "untrained",
    "untrained:SEED",
    ...Object.keys(manifest.weight_sets),
  ];
  throw new TypeError(
    `Unknown weights "${weights}": expected one of ${
      sets.join(", ")
    }, or a .safetensors path (relative to the current directory) or URL`,
  );
}

/** Checks presence and shapes of the needed tensors. */
function checkShapes(
  manifest: Manifest,
  file: SafetensorsFile,
  weights: string,
  needed: (name: string) => boolean,
): void {
  for (const [name, info] of Object.entries(manifest.tensors)) {
    if (!needed(name)) continue;
    const t = file.tensors.get(name);
    if (!t) {
      throw new TypeError(
        `Weights "${weights}" lack tensor "${name}": expected a state dict of ${manifest.name}`,
      );
    }
    if (t.shape.join("x") !== info.shape.join("x")) {
      throw new RangeError(
        `Tensor "${name}" of weights "${weights}" has shape [${t.shape}]: expected [${info.shape}]`,
      );
    }
  }
}

/** Index of the first NaN or ±Infinity, or -1. */
function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) return i; // NaN and ±Infinity give NaN
  }
  return -1;
}

/** Finite values and, where the manifest records one, the SHA-256 of each needed tensor. */
async function checkValues(
  manifest: Manifest,
  file: SafetensorsFile,
  weights: string,
  needed: (name: string) => boolean,
  record: Record<string, string> | undefined,
): Promise<void> {
  for (const name of Object.keys(manifest.tensors)) {
    if (!needed(name)) continue;
    const data = tensorToFloat32(file.tensors.get(name)!);
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      throw new RangeError(
        `Tensor "${name}" of weights "${weights}" holds ${
          data[bad]
        } at index ${bad}: expected finite weights (the file is damaged, or training diverged)`,
      );
    }
    const want = record?.[name];
    if (want === undefined) continue;
    const got = await sha256Hex(new Uint8Array(data.buffer));
    if (got !== want) {
      throw new TypeError(
        `Tensor "${name}" of weights "${weights}" has SHA-256 ${got}: expected ${want} (as the manifest records): the file is damaged or was replaced; convert the weights again`,
      );
    }
  }
}

function parseWeightFile(bytes: Uint8Array, loc: Location): SafetensorsFile {
  try {
    return parseSafetensors(bytes);
  } catch (err) {
    const e = err as Error;
    throw new (e instanceof RangeError ? RangeError : TypeError)(
      `Weights "${describe(loc)}": ${e.message}`,
      { cause: err },
    );
  }
}

/**
 * The weights named `weights` (`untrained`, `untrained:SEED`, a weight set in
 * the model folder, or a `.safetensors` path relative to the current
 * directory, or URL); only tensors where `needed` holds are checked.
 */
export async function resolveWeights(
  manifest: Manifest,
  ctx: ReadContext,
  weights: string,
  seed: number,
  needed: (name: string) => boolean = () => true,
  part = "",
): Promise<Weights> {
  const m = /^untrained:(-?\d+)$/.exec(weights);
  if (m) return untrained(manifest, Number(m[1]));
  if (weights === "untrained") return untrained(manifest, seed);
  const { loc, record } = weightsLocation(manifest, ctx, weights);
  const open = (bytes: Uint8Array) => {
    const file = parseWeightFile(bytes, loc);
    checkShapes(manifest, file, weights, needed);
    return file;
  };
  const what = `weights ${part || "*"} ${JSON.stringify(record ?? null)}`;
  const file = open(
    await readVerified(
      ctx,
      loc,
      "",
      what,
      (bytes) => checkValues(manifest, open(bytes), weights, needed, record),
    ),
  );
  return (name) => {
    const t = file.tensors.get(name);
    if (!t) throw new TypeError(`Unknown tensor "${name}"`);
    return tensorToFloat32(t);
  };
}
