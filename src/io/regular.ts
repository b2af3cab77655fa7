/**
 * Reading a file that must be a plain regular file of bounded size (a lock
 * file, a snapshot's state, image or trace): a symlink, fifo, device or
 * folder in its place is refused before it is opened (a fifo would block the
 * read for ever, a link to /dev/zero would fill memory), and a file larger
 * than the stated cap is refused before it is read.
 *
 * @module
 */

/** What is at a path that is not a regular file, in words. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isSymlink) return "a symbolic link";
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a fifo (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/** The first error of a file that is not regular or is over `maxBytes`; null when it is fine. */
function refusal(
  path: string,
  info: Deno.FileInfo,
  maxBytes: number,
  what: string,
): Error | null {
  if (!info.isFile || info.isSymlink) {
    return new TypeError(
      `Invalid ${what} "${path}": it is ${
        kindOf(info)
      }: expected a regular file (remove or replace it)`,
    );
  }
  if (info.size > maxBytes) {
    return new RangeError(
      `Invalid ${what} "${path}" of ${info.size} bytes: expected at most ${maxBytes} bytes`,
    );
  }
  return null;
}

/**
 * The file was replaced (another inode) between its check and its opening: a
 * TypeError, so callers for which that is a normal race (a lock file another
 * process removes and creates again) can tell it apart and read again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReplacedError } from "./regular.ts";
 * assert.ok(new ReplacedError("x") instanceof TypeError);
 * ```
 */
export class ReplacedError extends TypeError {
  /** Makes the error; `message` names the file and what happened to it. */
  constructor(message: string) {
    super(message);
    this.name = "ReplacedError";
  }
}

/**
 * Reads the regular file at `path` of at most `maxBytes` bytes. A symlink,
 * fifo, device, socket or folder there is a TypeError and a larger file a
 * RangeError, both naming `what` and the path, decided by `lstat` before the
 * file is opened (and checked again on the open file); a missing file throws
 * `Deno.errors.NotFound` as `Deno.readFile` does.
 *
 * @param path the file
 * @param maxBytes the largest size accepted
 * @param what the kind of file, for messages (e.g. `snapshot state`)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRegularFile } from "./regular.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, "{}");
 * assert.deepEqual(await readRegularFile(`${dir}/a.json`, 16, "record"), new TextEncoder().encode("{}"));
 * await assert.rejects(() => readRegularFile(`${dir}/a.json`, 1, "record"), RangeError);
 * await Deno.symlink("/dev/zero", `${dir}/zero`);
 * await assert.rejects(() => readRegularFile(`${dir}/zero`, 16, "record"), /symbolic link/);
 * ```
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const before = await Deno.lstat(path);
  const bad = refusal(path, before, maxBytes, what);
  if (bad) throw bad;
  const file = await Deno.open(path, { read: true });
  try {
    const info = await file.stat();
    const swapped = before.ino !== null && info.ino !== before.ino;
    const late = refusal(path, info, maxBytes, what);
    if (late) throw late;
    if (swapped) {
      throw new ReplacedError(
        `Invalid ${what} "${path}": it was replaced while being opened: expected a file left alone while it is read`,
      );
    }
    // read at most maxBytes + 1 bytes: a file growing past the cap is refused too
    const chunks: Uint8Array[] = [];
    let n = 0;
    while (n <= maxBytes) {
      const want = Math.max(info.size + 1 - n, 1 << 16);
      const buf = new Uint8Array(Math.min(maxBytes + 1 - n, want));
      const got = await file.read(buf);
      if (got === null) break;
      chunks.push(buf.subarray(0, got));
      n += got;
    }
    if (n > maxBytes) {
      throw new RangeError(
        `Invalid ${what} "${path}": it grew past ${maxBytes} bytes while being read: expected at most ${maxBytes} bytes`,
      );
    }
    if (chunks.length === 1) return chunks[0].slice();
    const all = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  } finally {
    file.close();
  }
}

/**
 * {@linkcode readRegularFile} as UTF-8 text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRegularText } from "./regular.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/state.json`, '{"step":3}');
 * assert.equal(await readRegularText(`${dir}/state.json`, 1024, "state"), '{"step":3}');
 * await assert.rejects(() => readRegularText(dir, 1024, "state"), /a folder/);
 * ```
 */
export async function readRegularText(
  path: string,
  maxBytes: number,
  what: string,
): Promise<string> {
  return new TextDecoder().decode(
    await readRegularFile(path, maxBytes, what),
  );
}

/**
 * The largest run record read back (metrics.json, a cell's failure record):
 * settings and final figures, a few KiB in practice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RECORD_BYTES } from "./regular.ts";
 * assert.equal(RECORD_BYTES, 16 * 1024 * 1024);
 * ```
 */
export const RECORD_BYTES = 16 * 1024 * 1024;

/**
 * The largest grid plan.json read back (one entry per cell: ~1 KiB each).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PLAN_BYTES } from "./regular.ts";
 * assert.equal(PLAN_BYTES, 256 * 1024 * 1024);
 * ```
 */
export const PLAN_BYTES = 256 * 1024 * 1024;

/**
 * The name of a grid plan.json's format (its tag is `NAME/VERSION`, see
 * src/grid/plan.ts), by which a grid's folder is known.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PLAN_FORMAT_NAME } from "./regular.ts";
 * assert.equal(PLAN_FORMAT_NAME, "vitrep-grid-plan");
 * ```
 */
export const PLAN_FORMAT_NAME = "vitrep-grid-plan";

/**
 * The largest `.npy` file of a float32 image [1, 3, S, S] with S at most
 * `side`, header included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { npyBytes } from "./regular.ts";
 * assert.equal(npyBytes(224), 12 * 224 * 224 + 64 * 1024);
 * ```
 */
export function npyBytes(side: number): number {
  return 12 * side * side + 64 * 1024;
}
