/**
 * Files written whole or not at all, and the CSV tables runs write and read.
 *
 * @module
 */

/**
 * Writes to a temporary name in the same folder, then renames over `path`, so a
 * failure leaves the previous file (or none), never a partial one.
 *
 * @example
 * ```ts
 * import { writeAtomic } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await writeAtomic(path, "hello");
 * console.assert(Deno.readTextFileSync(path) === "hello");
 * ```
 */
export async function writeAtomic(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Whether something exists at `path` (a file, a folder, a link's target),
 * checked now: for messages and choices, not as a lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { existsSync } from "./files.ts";
 * assert.ok(existsSync("deno.json"));
 * assert.ok(!existsSync("no/such/file"));
 * ```
 */
export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes pretty-printed JSON atomically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeJson } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await writeJson(path, { a: 1 });
 * assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)), { a: 1 });
 * ```
 */
export function writeJson(path: string, value: unknown): Promise<void> {
  return writeAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * The SHA-256 of bytes or of a string's UTF-8, as 64 hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256Hex } from "./files.ts";
 * assert.equal(
 *   await sha256Hex("abc"),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** One file of a set written by {@linkcode writeFiles}: its name in the folder and its contents. */
export interface FileData {
  /** The file's name inside the folder. */
  name: string;
  /** Its contents. */
  data: Uint8Array | string;
}

/**
 * Writes a set of files into `dir` as one unit, as far as a filesystem allows:
 * every file is first written to a temporary name (`NAME.UUID.tmp`), and only
 * when all are written are they renamed into place, in the order given (put
 * the file that marks the set complete, e.g. metrics.json, last). A failure
 * while writing (a full disk) removes the temporaries and leaves the previous
 * files untouched; renames need no space.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFiles } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFiles(dir, [{ name: "a.txt", data: "A" }, { name: "b.txt", data: "B" }]);
 * assert.equal(Deno.readTextFileSync(`${dir}/b.txt`), "B");
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.txt", "b.txt"]);
 * ```
 */
export async function writeFiles(
  dir: string,
  files: readonly FileData[],
): Promise<void> {
  const tmps: string[] = [];
  try {
    for (const f of files) {
      const tmp = `${dir}/${f.name}.${crypto.randomUUID()}.tmp`;
      tmps.push(tmp);
      if (typeof f.data === "string") await Deno.writeTextFile(tmp, f.data);
      else await Deno.writeFile(tmp, f.data);
    }
  } catch (err) {
    for (const t of tmps) await Deno.remove(t).catch(() => {});
    throw err;
  }
  for (let i = 0; i < files.length; i++) {
    await Deno.rename(tmps[i], `${dir}/${files[i].name}`);
  }
}

/**
 * Removes the temporaries a killed writer may have left in `dir`: files named
 * `*.tmp` (from {@linkcode writeAtomic} and {@linkcode writeFiles}); returns
 * their names. Call it only while no other process writes into `dir` (e.g.
 * holding its lock).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeTemporaries } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/x.json.1234.tmp`, "partial");
 * await Deno.writeTextFile(`${dir}/x.json`, "{}");
 * assert.deepEqual(await removeTemporaries(dir), ["x.json.1234.tmp"]);
 * ```
 */
export async function removeTemporaries(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await listDir(dir)) {
    if (e.isFile && e.name.endsWith(".tmp")) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
      removed.push(e.name);
    }
  }
  return removed.sort();
}

/**
 * The entries of folder `dir`, sorted by name; none when it does not exist
 * (other errors are thrown).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDir } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/b.txt`, "");
 * await Deno.mkdir(`${dir}/a`);
 * assert.deepEqual((await listDir(dir)).map((e) => e.name), ["a", "b.txt"]);
 * assert.deepEqual(await listDir(`${dir}/missing`), []);
 * ```
 */
export async function listDir(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** One row of a trace table. */
export type Row = Record<string, number | null>;

/**
 * One row of a table with text cells too (grid.csv).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CsvRow, toCsv } from "./files.ts";
 * const row: CsvRow = { variant: "no LN", layer: 4, psnr: null };
 * assert.equal(toCsv(["variant", "layer", "psnr"], [row]), "variant,layer,psnr\nno LN,4,\n");
 * ```
 */
export type CsvRow = Record<string, number | string | null>;

/** A CSV field: null as empty, text quoted when it holds a comma, quote or newline. */
function csvField(v: number | string | null | undefined): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return String(v);
  return /[",\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/**
 * A CSV table: numeric rows (null as an empty field), or rows with text cells,
 * quoted where needed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toCsv } from "./files.ts";
 * assert.equal(toCsv(["a", "b"], [{ a: 1, b: null }]), "a,b\n1,\n");
 * assert.equal(toCsv(["v"], [{ v: "x, y" }]), 'v\n"x, y"\n');
 * ```
 */
export function toCsv(
  columns: readonly string[],
  rows: readonly (Row | CsvRow)[],
): string {
  const lines = rows.map((r) => columns.map((c) => csvField(r[c])).join(","));
  return [columns.join(","), ...lines].join("\n") + "\n";
}

/** Reads a CSV written by {@linkcode toCsv} (no rows when the file is missing). */
export async function readCsv(path: string): Promise<Row[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const [head, ...lines] = text.trim().split("\n");
  const cols = head.split(",");
  return lines.filter((l) => l.trim() !== "").map((l) => {
    const cells = l.split(",");
    return Object.fromEntries(
      cols.map((c, i) => [c, cells[i] === "" ? null : Number(cells[i])]),
    );
  });
}
