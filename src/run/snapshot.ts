/**
 * The run lifecycle (src/run): snapshots, the state a run continues from with
 * `--resume`. A snapshot is one folder, `DIR/snapshot/`, holding `state.json`
 * (step, options, the image's shape and sha256), `image.npy` and `traces.csv`
 * (the trace rows before that step). It is written as
 * `DIR/snapshot.tmp-UUID/`, then swapped into place by renames (the previous
 * one moved to `DIR/snapshot.old-UUID/` and removed after), so a kill at any
 * moment leaves either the previous complete snapshot or the new one:
 * {@linkcode recoverSnapshot} puts a moved-aside one back and removes
 * temporaries. Reading validates every field and names the file and field,
 * and reads regular files only, each under a stated size cap (state.json
 * 1 MiB; image.npy its pixels' bytes and 64 KiB of header; traces.csv 32
 * bytes a field of the rows expected): a fifo, device or symlink (say to
 * /dev/zero) in a snapshot is refused, naming it, never read.
 *
 * @module
 */
import { decodeNpy, encodeNpy, type Row } from "../io/mod.ts";
import { listDir, removeTemporaries, sha256Hex as sha256 } from "../io/mod.ts";
import { readRegularFile, readRegularText } from "../io/regular.ts";
import { LIMITS, type RunOptions, type SavedTypes, usage } from "./settings.ts";

/** The `format` of snapshot/state.json. */
export const SNAPSHOT_FORMAT = "vitrep-snapshot/2";
/** The snapshot folder's name inside a run's folder. */
export const SNAPSHOT_DIR = "snapshot";
const TMP_PREFIX = `${SNAPSHOT_DIR}.tmp-`;
const OLD_PREFIX = `${SNAPSHOT_DIR}.old-`;

/** The largest state.json read (options and a few fields: a few KiB). */
const MAX_STATE_BYTES = 1024 * 1024;
/** Room for an npy header (its length field is 16 bits). */
const NPY_HEADER_BYTES = 64 * 1024;
/** The largest field of traces.csv (a number is at most 24 characters). */
const MAX_FIELD_BYTES = 32;

/** The largest image.npy of a [1, 3, S, S] image with S at most `side`. */
function imageCap(side: number): number {
  return 4 * 3 * side * side + NPY_HEADER_BYTES;
}

/** The contents of snapshot/state.json. */
export interface Snapshot {
  format: string;
  command: string;
  /** The step the run continues from (0 for a run of several classes, whose classes hold the snapshots; null in its file). */
  step: number;
  /** The saved options, as on the command line. */
  options: RunOptions;
  /** invert: first step meeting the noise criterion so far. */
  criterionStep?: number | null;
  /** generate with several classes: their folders. */
  classes?: { index: number; dir: string }[];
  /** The image: shape and sha256 of image.npy. */
  image?: { shape: number[]; sha256: string };
}

/** What a snapshot holds besides its state. */
export interface SnapshotData {
  /** The image to continue from. */
  image: Float32Array;
  /** Its shape, e.g. [1, 3, S, S]. */
  shape: readonly number[];
  /** traces.csv as written so far (rows before `step`). */
  traces: string;
}

/**
 * Where the snapshot of the run in `dir` lives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { snapshotDir, statePath } from "./snapshot.ts";
 * assert.ok(snapshotDir("out/cat") === "out/cat/snapshot");
 * assert.ok(statePath("out/cat") === "out/cat/snapshot/state.json");
 * ```
 */
export function snapshotDir(dir: string): string {
  return `${dir}/${SNAPSHOT_DIR}`;
}

/** The state file of the snapshot in `dir`, for messages. */
export function statePath(dir: string): string {
  return `${snapshotDir(dir)}/state.json`;
}

/**
 * The folder to read `dir`'s snapshot from without changing anything (no
 * lock needed): `snapshot/`, or when a kill left none in place, the complete
 * one moved aside (which {@linkcode recoverSnapshot} puts back).
 */
async function readableDir(dir: string): Promise<string> {
  const live = snapshotDir(dir);
  if (await isDir(live)) return live;
  for (const e of await listDir(dir).catch(() => [])) {
    const path = `${dir}/${e.name}`;
    if (e.name.startsWith(OLD_PREFIX) && await isComplete(path)) return path;
  }
  return live;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Writes a snapshot of `dir`'s run as one unit (see the module doc): the
 * previous snapshot stays complete until the new one is.
 */
export async function saveSnapshot(
  dir: string,
  state: Omit<Snapshot, "format" | "image" | "step"> & { step: number | null },
  data?: SnapshotData,
): Promise<void> {
  const tmp = `${dir}/${TMP_PREFIX}${crypto.randomUUID()}`;
  const old = `${dir}/${OLD_PREFIX}${crypto.randomUUID()}`;
  const live = snapshotDir(dir);
  try {
    await Deno.mkdir(tmp);
    let image: Snapshot["image"];
    if (data) {
      const bytes = encodeNpy(data.image, data.shape);
      await Deno.writeFile(`${tmp}/image.npy`, bytes);
      await Deno.writeTextFile(`${tmp}/traces.csv`, data.traces);
      image = { shape: [...data.shape], sha256: await sha256(bytes) };
    }
    const full = { format: SNAPSHOT_FORMAT, ...state, image };
    await Deno.writeTextFile(
      `${tmp}/state.json`,
      JSON.stringify(full, null, 2) + "\n",
    );
    const hadOld = await isDir(live);
    if (hadOld) await Deno.rename(live, old);
    await Deno.rename(tmp, live);
    // a file of the user's in it stays (and the folder with it)
    if (hadOld) await removeSnapshotFolder(old).catch(() => {});
  } catch (err) {
    await removeSnapshotFolder(tmp).catch(() => {});
    await recoverSnapshot(dir).catch(() => {});
    throw err;
  }
}

/**
 * Brings `dir`'s snapshot back to a complete state after a kill or a failed
 * write: a snapshot moved aside (`snapshot.old-*`) returns when there is no
 * `snapshot/`; unfinished `snapshot.tmp-*` folders, leftover `snapshot.old-*`
 * and `*.tmp` files are removed. Call it holding the folder's lock.
 */
export async function recoverSnapshot(dir: string): Promise<void> {
  const names = (await listDir(dir)).map((e) => e.name);
  const live = snapshotDir(dir);
  for (const name of names.filter((n) => n.startsWith(OLD_PREFIX))) {
    const path = `${dir}/${name}`;
    if (!(await isDir(live)) && await isComplete(path)) {
      await Deno.rename(path, live);
    } else await removeSnapshotFolder(path).catch(() => {});
  }
  for (const name of names.filter((n) => n.startsWith(TMP_PREFIX))) {
    await removeSnapshotFolder(`${dir}/${name}`).catch(() => {});
  }
  await removeTemporaries(dir);
}

async function isComplete(path: string): Promise<boolean> {
  try {
    const s = JSON.parse(
      await readRegularText(
        `${path}/state.json`,
        MAX_STATE_BYTES,
        "snapshot state",
      ),
    );
    if (!s?.image) return true;
    const bytes = await readRegularFile(
      `${path}/image.npy`,
      imageCap(LIMITS.canvas),
      "snapshot image",
    );
    return await sha256(bytes) === s.image.sha256 &&
      (await Deno.stat(`${path}/traces.csv`)).isFile;
  } catch {
    return false;
  }
}

/** Whether `dir` holds a snapshot (a complete one, or one {@linkcode recoverSnapshot} can bring back). */
export async function hasSnapshot(dir: string): Promise<boolean> {
  if (await isDir(snapshotDir(dir))) return true;
  const entries = await listDir(dir).catch(() => []);
  return entries.some((e) => e.name.startsWith(OLD_PREFIX));
}

/** The files vitrep writes in a snapshot folder (and its temporaries, `*.tmp`). */
const SNAPSHOT_FILES = ["state.json", "image.npy", "traces.csv"];

/**
 * Removes a snapshot folder `path` (live, moved aside or unfinished): only
 * the files vitrep writes there, then the folder if that left it empty;
 * never a whole tree. Other files stay: a TypeError names them.
 */
async function removeSnapshotFolder(path: string): Promise<void> {
  const entries = await listDir(path);
  const others: string[] = [];
  for (const e of entries) {
    if (
      e.isFile && (SNAPSHOT_FILES.includes(e.name) || e.name.endsWith(".tmp"))
    ) {
      await Deno.remove(`${path}/${e.name}`).catch(() => {});
    } else others.push(e.name);
  }
  if (others.length > 0) {
    throw new TypeError(
      `Cannot remove the snapshot "${path}": it holds files vitrep did not write there (${
        others.slice(0, 4).join(", ")
      }): move them away`,
    );
  }
  await Deno.remove(path).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

/** Removes `dir`'s snapshot (a run that starts over): only vitrep's files in it. */
export async function removeSnapshot(dir: string): Promise<void> {
  await removeSnapshotFolder(snapshotDir(dir));
}

// ---------------------------------------------------------------------------
// Reading, with every field validated.

function invalid(dir: string, field: string, value: unknown, want: string) {
  return new TypeError(
    `Invalid snapshot "${statePath(dir)}": "${field}" is ${
      value === undefined ? "missing" : JSON.stringify(value)
    }: expected ${want}`,
  );
}

const isInt = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Checks the saved options against the command's options (names and types). */
function checkOptions(
  dir: string,
  options: unknown,
  saved?: SavedTypes,
): RunOptions {
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw invalid(dir, "options", options, "an object of saved options");
  }
  for (const [k, v] of Object.entries(options)) {
    const type = saved?.[k];
    if (saved && type === undefined) {
      throw invalid(
        dir,
        `options.${k}`,
        v,
        `no such saved option (expected only ${Object.keys(saved).join(", ")})`,
      );
    }
    const ok = type === "boolean"
      ? typeof v === "boolean"
      : typeof v === "string" ||
        (Array.isArray(v) && v.every((x) => typeof x === "string"));
    if (saved && !ok) {
      throw invalid(
        dir,
        `options.${k}`,
        v,
        type === "boolean" ? "true or false" : "a string",
      );
    }
  }
  return options as RunOptions;
}

/**
 * Reads and validates `dir`'s snapshot/state.json of a `command` run: format,
 * command, step (a non-negative integer), criterion step, options (names and types of `spec` when given). Missing: a runtime
 * error; of another command: a usage error.
 */
export async function readSnapshotState(
  dir: string,
  command: string,
  opts: { saved?: SavedTypes } = {},
): Promise<Snapshot> {
  let s: Snapshot;
  try {
    s = JSON.parse(
      await readRegularText(
        `${await readableDir(dir)}/state.json`,
        MAX_STATE_BYTES,
        "snapshot state",
      ),
    );
  } catch (err) {
    const legacy = await Deno.stat(`${dir}/snapshot.json`).then(() => true)
      .catch(() => false);
    throw new TypeError(
      `Cannot resume from "${dir}": ${
        err instanceof Deno.errors.NotFound
          ? legacy
            ? "its snapshot.json is of an older vitrep (before snapshot/)"
            : `no ${SNAPSHOT_DIR}/state.json there (nor snapshot.json): the folder holds no run that started (a run records its settings there before its first step; one stopped before that never started: run its command again)`
          : `${statePath(dir)}: ${err instanceof Error ? err.message : err}`
      }: expected the --out folder of a run stopped with Ctrl-C or --stop-at, or run with --save-every`,
    );
  }
  if (typeof s !== "object" || s === null) {
    throw invalid(dir, "(top level)", s, "an object");
  }
  if (s.format !== SNAPSHOT_FORMAT) {
    throw invalid(dir, "format", s.format, SNAPSHOT_FORMAT);
  }
  if (s.command !== command) {
    if (typeof s.command !== "string") {
      throw invalid(dir, "command", s.command, `"${command}"`);
    }
    throw usage(
      new TypeError(
        `Invalid --resume "${dir}": its snapshot is of a ${s.command} run: expected a ${command} run's folder`,
      ),
    );
  }
  checkOptions(dir, s.options, opts.saved);
  if (s.step === null && Array.isArray(s.classes)) {
    checkClasses(dir, s.classes);
    return { ...s, step: 0 };
  }
  if (!isInt(s.step)) {
    throw invalid(dir, "step", s.step, "a non-negative integer");
  }
  const c = s.criterionStep;
  if (c !== undefined && c !== null && !(isInt(c) && c < s.step)) {
    throw invalid(
      dir,
      "criterionStep",
      c,
      `null or an integer step below the snapshot's step ${s.step}`,
    );
  }
  const img = s.image;
  if (
    typeof img !== "object" || img === null || !Array.isArray(img.shape) ||
    !img.shape.every(isInt) || typeof img.sha256 !== "string"
  ) {
    throw invalid(dir, "image", img, "{ shape, sha256 } of image.npy");
  }
  return s;
}

function checkClasses(dir: string, classes: unknown[]): void {
  for (const [i, c] of classes.entries()) {
    const x = c as { index?: unknown; dir?: unknown };
    if (
      !isInt(x?.index) || typeof x.dir !== "string" ||
      !/^class_\d+$/.test(x.dir)
    ) {
      throw invalid(dir, `classes[${i}]`, c, '{ index, dir: "class_N" }');
    }
  }
}

/**
 * Reads `dir`'s snapshot image: it must match the sha256 in state.json, be
 * [1, 3, S, S] with S one of `sides`, and hold only finite values.
 */
export async function readSnapshotData(
  dir: string,
  state: Snapshot,
  sides: readonly number[],
): Promise<Float32Array> {
  const path = `${await readableDir(dir)}/image.npy`;
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(
      path,
      imageCap(Math.max(...sides)),
      "snapshot image",
    );
  } catch (err) {
    throw new TypeError(
      `Cannot read "${path}": ${err instanceof Error ? err.message : err}`,
    );
  }
  if (await sha256(bytes) !== state.image?.sha256) {
    throw new TypeError(
      `Invalid snapshot image "${path}": its sha256 differs from "image.sha256" in ${
        statePath(dir)
      }: expected the image written with that state (the file was changed)`,
    );
  }
  let npy: { data: Float32Array; shape: number[] };
  try {
    npy = decodeNpy(bytes);
  } catch (err) {
    throw new TypeError(
      `Cannot read "${path}": ${err instanceof Error ? err.message : err}`,
    );
  }
  const [b, c, h, w] = npy.shape;
  if (
    npy.shape.length !== 4 || b !== 1 || c !== 3 || h !== w ||
    !sides.includes(h)
  ) {
    throw new RangeError(
      `Invalid snapshot image "${path}" of shape [${npy.shape}]: expected [1, 3, S, S] with S in ${
        sides.join(" or ")
      }`,
    );
  }
  const bad = npy.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new RangeError(
      `Invalid snapshot image "${path}": value ${bad} is ${
        npy.data[bad]
      }: expected finite pixels`,
    );
  }
  return npy.data;
}

/**
 * Reads `dir`'s snapshot traces.csv: the header must be `columns`, every
 * field a number (empty only in `nullable` columns), and the steps exactly
 * those a run writing every `traceEvery`-th row (and the last) had written
 * before `step`.
 */
export async function readSnapshotRows(
  dir: string,
  step: number,
  columns: readonly string[],
  traceEvery: number,
  nullable: readonly string[] = [],
): Promise<Row[]> {
  const path = `${await readableDir(dir)}/traces.csv`;
  const want: number[] = [];
  for (let k = 0; k < step; k += traceEvery) want.push(k);
  if (step > 0 && want.at(-1) !== step - 1) want.push(step - 1);
  let text: string;
  try {
    const cap = (want.length + 1) * columns.length * MAX_FIELD_BYTES;
    text = await readRegularText(path, cap, "snapshot traces");
  } catch (err) {
    throw new TypeError(
      `Cannot read "${path}": ${err instanceof Error ? err.message : err}`,
    );
  }
  const [head, ...lines] = text.replace(/\n$/, "").split("\n");
  if (head !== columns.join(",")) {
    throw new TypeError(
      `Invalid snapshot traces "${path}": header "${head}": expected "${
        columns.join(",")
      }"`,
    );
  }
  const rows = lines.map((line, i) => {
    const cells = line.split(",");
    if (cells.length !== columns.length) {
      throw new TypeError(
        `Invalid snapshot traces "${path}": row ${
          i + 1
        } has ${cells.length} fields: expected ${columns.length}`,
      );
    }
    return Object.fromEntries(columns.map((c, j) => {
      const t = cells[j];
      if (t === "" && nullable.includes(c)) return [c, null];
      const v = Number(t);
      if (t.trim() === "" || Number.isNaN(v)) {
        throw new TypeError(
          `Invalid snapshot traces "${path}": row ${
            i + 1
          }, "${c}" is "${t}": expected a number`,
        );
      }
      return [c, v];
    })) as Row;
  });
  const steps = rows.map((r) => r.step);
  if (JSON.stringify(steps) !== JSON.stringify(want)) {
    throw new TypeError(
      `Invalid snapshot traces "${path}": steps ${
        steps.length > 8 ? `${steps.slice(0, 8).join(",")}…` : steps.join(",")
      }: expected the rows of steps ${
        want.length > 8 ? `${want.slice(0, 8).join(",")}…` : want.join(",")
      } (every ${traceEvery}th before step ${step}, and the last)`,
    );
  }
  return rows;
}
