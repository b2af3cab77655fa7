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

/** Writes pretty-printed JSON atomically. */
export function writeJson(path: string, value: unknown): Promise<void> {
  return writeAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** One row of a trace table. */
export type Row = Record<string, number | null>;

/** A CSV table of numeric rows (null as an empty field). */
export function toCsv(
  columns: readonly string[],
  rows: readonly Row[],
): string {
  const lines = rows.map((r) =>
    columns.map((c) => (r[c] === null || r[c] === undefined ? "" : r[c]))
      .join(",")
  );
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
