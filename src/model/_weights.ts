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
  type SizeLimit,
  sizeLimit,
  smallFileLimit,
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
  file: { loc: Location; field: string; limit?: SizeLimit },
  what: string,
  check: (bytes: Uint8Array) => Promise<void>,
): Promise<Uint8Array> {
  const { loc, field, limit } = file;
  const stamp = ctx.verify && ctx.cache ? await fileStamp(loc) : null;
  const bytes = await readLocation(loc, ctx.net, field, limit);
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
  const limit = smallFileLimit("graph files", ctx.net);
  return readVerified(
    ctx,
    { loc, field, limit },
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
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(
      `Invalid seed "${seed}": expected a non-negative integer`,
    );
  }
  // generated on demand and not kept: a tensor is the same each time it is drawn
  return (name) => {
    const t = manifest.tensors[name];
    if (!t) throw new TypeError(`Unknown tensor "${name}"`);
    return untrainedTensor(t.init, t.shape, name, seed);
  };
}

/** Header room of a weight set beyond its tensors' data: 1 MiB and 1 KiB per tensor. */
function headerRoom(tensors: number): number {
  return 2 ** 20 + 1024 * tensors;
}

/** The most bytes a weight set of the manifest may hold: its tensors (float32) and a header. */
function weightSetLimit(
  manifest: Manifest,
  ctx: ReadContext,
  weights: string,
): SizeLimit {
  const entries = Object.values(manifest.tensors);
  const data = entries.reduce(
    (sum, t) => sum + 4 * t.shape.reduce((a, b) => a * b, 1),
    0,
  );
  return sizeLimit(
    8 + data + headerRoom(entries.length),
    `what the ${entries.length} tensors of the manifest take, ${data} bytes, with a header: the file is not weight set "${weights}"`,
    ctx.net,
  );
}

/** Where weights named `weights` live: a weight set in the model, or a path/URL of the caller's. */
function weightsLocation(
  manifest: Manifest,
  ctx: ReadContext,
  weights: string,
): { loc: Location; record?: Record<string, string>; limit?: SizeLimit } {
  const set = Object.hasOwn(manifest.weight_sets, weights)
    ? manifest.weight_sets[weights]
    : undefined;
  if (set) {
    const field = `weight_sets[${JSON.stringify(weights)}].file`;
    return {
      loc: inModel(ctx.base, set.file, field),
      record: set.sha256,
      limit: weightSetLimit(manifest, ctx, weights),
    };
  }
  if (weights.endsWith(".safetensors")) return { loc: userLocation(weights) };
  throw unknownWeights(manifest, ctx.base, weights);
}

/** A word for a shell command line, quoted where it needs to be. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The model folder for messages: relative to the current directory when inside it. */
function folderText(base: Location): string {
  if (base.kind === "url") return base.url;
  let cwd = "";
  try {
    cwd = typeof Deno === "undefined" ? "" : Deno.cwd();
  } catch {
    // no read permission: the path as given
  }
  return cwd && base.path.startsWith(cwd + "/")
    ? base.path.slice(cwd.length + 1)
    : base.path;
}

/**
 * The error for weights that are neither untrained, a weight set of the
 * folder nor a .safetensors file: it lists the folder's weight sets and names
 * the converter command that adds `weights` to the folder.
 */
function unknownWeights(
  manifest: Manifest,
  base: Location,
  weights: string,
): TypeError {
  const names = Object.keys(manifest.weight_sets);
  const folder = folderText(base);
  const out = base.kind === "url" ? "DIR" : folder;
  const convert = (w: string, name?: string) =>
    [
      "python3",
      "tools/convert.py",
      ...manifest.runtime.convert_args,
      "--weights",
      w,
    ]
      .concat(name === undefined ? [] : ["--name", name], ["--out", out])
      .map(shellWord).join(" ");
  const file = /\.(pth|pt|bin|ckpt)$/i.test(weights);
  const name = file
    ? weights.replace(/^.*[\\/]/, "").replace(/\.[^.]+$/, "")
    : weights;
  const commands = file
    ? `vitrep reads weight sets the converter writes: ${
      convert(weights, name)
    }, then --weights ${shellWord(name)}`
    : manifest.runtime.torchvision_weights && /^[A-Z][A-Z0-9_]*$/.test(weights)
    ? `${
      convert(weights)
    } (torchvision downloads them: needs a network), or from a state-dict file such as torchvision's download: ${
      convert(`/path/to/${manifest.name}.pth`, weights)
    }`
    : convert("/path/to/checkpoint.pth", weights);
  const where = base.kind === "url"
    ? ` (DIR: a local copy of ${folder}, served in its place)`
    : "";
  return new TypeError(
    `Unknown weights "${weights}": ${folder} has no weight set of that name (${
      names.length > 0
        ? `its weight sets: ${names.join(", ")}`
        : "it has no converted weight sets"
    }): expected one of ${
      ["untrained", "untrained:SEED", ...names].join(", ")
    }, or a .safetensors path (relative to the current directory) or URL. To convert them into the folder (needs PyTorch; README, "Trained weights"): ${commands}${where}`,
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

/** The SEED of `untrained:SEED`: a non-negative integer, as `seed` takes. */
function untrainedSeed(weights: string): number {
  const text = weights.slice("untrained:".length);
  const seed = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(seed)) {
    throw new RangeError(
      `Invalid weights "${weights}": expected untrained:SEED with SEED a non-negative integer, e.g. untrained:1`,
    );
  }
  return seed;
}

/**
 * Every needed tensor of a weight set has a SHA-256 in the manifest, so a
 * verified weight set is verified whole.
 */
function checkHashes(
  record: Record<string, string>,
  weights: string,
  needed: (name: string) => boolean,
  manifest: Manifest,
): void {
  const missing = Object.keys(manifest.tensors).filter((n) =>
    needed(n) && !Object.hasOwn(record, n)
  );
  if (missing.length === 0) return;
  const shown = missing.slice(0, 5).map((n) => `"${n}"`).join(", ");
  const more = missing.length > 5 ? ` and ${missing.length - 5} more` : "";
  throw new TypeError(
    `Weight set "${weights}" has no SHA-256 for ${missing.length} tensor${
      missing.length === 1 ? "" : "s"
    } (${shown}${more}) in weight_sets[${
      JSON.stringify(weights)
    }].sha256: expected one for every tensor; convert the weights again, or load with verify: false`,
  );
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
  if (weights.startsWith("untrained:")) {
    return untrained(manifest, untrainedSeed(weights));
  }
  if (weights === "untrained") return untrained(manifest, seed);
  const { loc, record, limit } = weightsLocation(manifest, ctx, weights);
  if (record && ctx.verify) checkHashes(record, weights, needed, manifest);
  const open = (bytes: Uint8Array) => {
    const file = parseWeightFile(bytes, loc);
    checkShapes(manifest, file, weights, needed);
    return file;
  };
  const what = `weights ${part || "*"} ${JSON.stringify(record ?? null)}`;
  const file = open(
    await readVerified(
      ctx,
      { loc, field: "", limit },
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
