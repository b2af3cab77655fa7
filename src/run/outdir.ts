/**
 * The run lifecycle (src/run): the output folder of a run, by the rule of
 * src/io/paths.ts. `--out` must not be empty, the filesystem root, the home
 * folder or one above it, or a system folder (symlinks followed); it must be
 * new, empty or vitrep's own run folder (`.vitrep-run.json`). While a run
 * writes, it holds the folder's lock (`.vitrep.lock`, see src/io/lock.ts), so
 * a second process given the same folder fails at once naming the holder;
 * and a new run refuses a folder holding another run's results (metrics.json
 * or a snapshot with other options, or another command's output) unless
 * `--overwrite` is given, which removes only the files that run wrote.
 *
 * @module
 */
import { acquireLock, type Lock, LockedError } from "../io/mod.ts";
import {
  checkWritePath,
  claimFolder,
  type FolderOptions,
  type FolderState,
  inspectFolder,
  type Marker,
  MARKER_FILE,
  recordFiles,
  removeOutputs,
  unclaimEmpty,
  writeMarker,
} from "../io/paths.ts";
import { readRegularText, RECORD_BYTES } from "../io/mod.ts";
import { type RunOptions, usage } from "./settings.ts";
import { recoverSnapshot, removeSnapshot, statePath } from "./snapshot.ts";

/** The lock file inside an output folder. */
export const LOCK_FILE = ".vitrep.lock";

/**
 * Refuses an `--out` vitrep must not write into (usage errors naming the
 * value): empty, the filesystem root, the home folder or one above it, a
 * system folder (see checkWritePath in src/io/paths.ts).
 */
export function checkOutPath(out: string, flag = "--out"): string {
  try {
    checkWritePath(out, flag);
  } catch (err) {
    throw usage(err as Error);
  }
  return out;
}

/** {@linkcode inspectFolder} with its refusals as usage errors. */
export async function inspectOut(
  dir: string,
  kind: Parameters<typeof inspectFolder>[1],
  options: FolderOptions = {},
): Promise<FolderState> {
  try {
    return await inspectFolder(dir, kind, options);
  } catch (err) {
    throw err instanceof RangeError ? usage(err) : err;
  }
}

/** Another run's record found in an output folder. */
interface Found {
  file: string;
  command: unknown;
  options: unknown;
}

async function readRecord(path: string): Promise<Found | null> {
  try {
    const j = JSON.parse(
      await readRegularText(path, RECORD_BYTES, "run record"),
    );
    return { file: path, command: j?.command, options: j?.options };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    return { file: path, command: undefined, options: undefined };
  }
}

/** Key-order-independent JSON. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/**
 * The first record of a run in `out` that differs from this one (command or
 * options); the marker names the command of a run without records (filters).
 */
async function otherRun(
  out: string,
  command: string,
  options: RunOptions,
  marker: Marker | null,
): Promise<Found | null> {
  let records = 0;
  for (
    const path of [
      `${out}/metrics.json`,
      statePath(out),
      `${out}/snapshot.json`,
    ]
  ) {
    const r = await readRecord(path);
    if (r) records++;
    if (
      r &&
      (r.command !== command || canonical(r.options) !== canonical(options))
    ) return r;
  }
  if (records === 0 && marker !== null && marker.command !== command) {
    return {
      file: `${out}/${MARKER_FILE}`,
      command: marker.command,
      options: undefined,
    };
  }
  return null;
}

/** What a run needs to claim its output folder. */
export interface OutClaim {
  /** The command, as recorded in metrics.json. */
  command: string;
  /** The saved options of this run (what metrics.json records). */
  options: RunOptions;
  /** `--overwrite`: replace another run's results. */
  overwrite: boolean;
  /** Continuing the run already in this folder (--resume DIR without another --out). */
  continuing: boolean;
}

/** A claimed output folder: release when the run is done. */
export interface OutFolder {
  /** The folder. */
  dir: string;
  /** Records the files written in the marker, removes temporaries and the lock (and the marker and folder, if this run made them and wrote nothing). */
  release(): Promise<void>;
}

/**
 * Claims `out` for a run: checks it (a usage error for a folder vitrep must
 * not write into: see src/io/paths.ts), creates and marks it, takes its lock
 * (a runtime error naming the holder when another live process has it; a
 * dead one's lock is taken over), repairs a snapshot a kill interrupted,
 * removes temporaries, and refuses (usage error) a folder holding another
 * run unless `overwrite`, which removes only that run's files first. A new
 * run starts without a snapshot. Release records the files the run wrote in
 * the marker.
 */
export async function claimOut(
  out: string,
  claim: OutClaim,
): Promise<OutFolder> {
  const since = Date.now();
  const opts = { command: claim.command, overwrite: claim.overwrite };
  // nothing is written into a folder that is refused
  const seen = await inspectOut(out, "run", opts);
  const created = seen.status === "new";
  if (created) await claimFolder(out, "run", opts);
  let lock: Lock;
  try {
    lock = await acquireLock(`${out}/${LOCK_FILE}`, {
      purpose: `vitrep ${claim.command}`,
      staleAfterMs: 60_000,
    });
  } catch (err) {
    if (created) await unclaimEmpty(out, true);
    if (err instanceof LockedError) {
      const h = err.holder;
      throw new TypeError(
        `Cannot write to --out "${out}": another run writes there (pid ${h.pid} on ${h.host}, started ${h.started}${
          h.purpose ? `, ${h.purpose}` : ""
        }): wait for it to end, or give another --out`,
        { cause: err },
      );
    }
    throw err;
  }
  const fresh = created || seen.status === "empty";
  const folder: OutFolder = {
    dir: out,
    async release() {
      await recoverSnapshot(out).catch(() => {});
      await recordFiles(out, since).catch(() => {});
      await lock.release();
      if (fresh) await unclaimEmpty(out, created);
    },
  };
  try {
    await recoverSnapshot(out);
    const other = claim.continuing
      ? null
      : await otherRun(out, claim.command, claim.options, seen.marker);
    if (other && !claim.overwrite) {
      throw usage(
        new RangeError(
          `Invalid --out "${out}": it holds another run (${other.file}${
            typeof other.command === "string" ? `, a ${other.command} run` : ""
          } with other options): expected a new folder; add --overwrite to replace that run (only the files it wrote), or --resume ${out} to continue it`,
        ),
      );
    }
    await claimFolder(out, "run", opts).catch((err) => {
      throw err instanceof RangeError ? usage(err) : err;
    });
    if (other) {
      await removeOutputs(out, "run").catch((err) => {
        throw err instanceof RangeError ? usage(err) : err;
      });
      await writeMarker(out, "run", claim.command);
    } else if (!claim.continuing) await clearRun(out);
    return folder;
  } catch (err) {
    await folder.release();
    throw err;
  }
}

/** Removes a run's records (metrics.json, the snapshot, an older snapshot.json/.npy) from `out`. */
async function clearRun(out: string): Promise<void> {
  await removeSnapshot(out);
  for (const f of ["metrics.json", "snapshot.json", "snapshot.npy"]) {
    await Deno.remove(`${out}/${f}`).catch(() => {});
  }
}

/**
 * Claims a grid's `--out` (kind grid, see src/io/paths.ts): new, empty or
 * vitrep's grid folder; vitrep's output of another kind (an invert run's
 * folder) only with `overwrite`, which removes only that output's files.
 * Refusals are usage errors. Returns a function recording the files the
 * grid wrote in the marker (call it when done).
 */
export async function claimGridOut(
  out: string,
  overwrite: boolean,
): Promise<() => Promise<void>> {
  const since = Date.now();
  await claimFolder(out, "grid", { command: "grid", overwrite }).catch(
    (err) => {
      throw err instanceof RangeError ? usage(err) : err;
    },
  );
  return async () => {
    await recordFiles(out, since).catch(() => {});
  };
}
