/**
 * Internal to the command line: the output folder of a run. `--out` must not
 * be empty or a root-like folder (the filesystem root, the home folder or one
 * above it); while a run writes, it holds the folder's lock (`.vitrep.lock`,
 * see src/io/lock.ts), so a second process given the same folder fails at
 * once naming the holder; and a new run refuses a folder holding another
 * run's results (metrics.json or a snapshot with other options) unless
 * `--overwrite` is given.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { acquireLock, type Lock, LockedError } from "../io/mod.ts";
import { type Raw, usage } from "./options.ts";
import { recoverSnapshot, removeSnapshot, statePath } from "./snapshot.ts";

/** The lock file inside an output folder. */
export const LOCK_FILE = ".vitrep.lock";

function home(): string | undefined {
  return Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
}

/**
 * Refuses an `--out` that is empty or root-like: the filesystem root, the
 * home folder or a folder above it (usage errors naming the value).
 */
export function checkOutPath(out: string, flag = "--out"): string {
  if (out.trim() === "") {
    throw usage(
      new TypeError(
        `Invalid ${flag} "${out}": expected a folder for the results, e.g. out/run1`,
      ),
    );
  }
  const abs = resolvePath(out);
  const h = home();
  const above = h !== undefined &&
    (resolvePath(h) === abs ||
      resolvePath(h).startsWith(abs.replace(/[/\\]*$/, "/")));
  if (/^([A-Za-z]:)?[/\\]*$/.test(abs) || above) {
    throw usage(
      new RangeError(
        `Invalid ${flag} "${out}" (${abs}): a run does not write into the filesystem root or the home folder (or one above it): expected a folder of its own, e.g. ${
          h ?? ""
        }/out/run1`,
      ),
    );
  }
  return out;
}

/** Another run's record found in an output folder. */
interface Found {
  file: string;
  command: unknown;
  options: unknown;
}

async function readRecord(path: string): Promise<Found | null> {
  try {
    const j = JSON.parse(await Deno.readTextFile(path));
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

/** The first record of a run in `out` that differs from this one (command or options). */
async function otherRun(
  out: string,
  command: string,
  options: Raw,
): Promise<Found | null> {
  for (
    const path of [
      `${out}/metrics.json`,
      statePath(out),
      `${out}/snapshot.json`,
    ]
  ) {
    const r = await readRecord(path);
    if (
      r &&
      (r.command !== command || canonical(r.options) !== canonical(options))
    ) return r;
  }
  return null;
}

/** What a run needs to claim its output folder. */
export interface OutClaim {
  /** The command, as recorded in metrics.json. */
  command: string;
  /** The saved options of this run (what metrics.json records). */
  options: Raw;
  /** `--overwrite`: replace another run's results. */
  overwrite: boolean;
  /** Continuing the run already in this folder (--resume DIR without another --out). */
  continuing: boolean;
}

/** A claimed output folder: release when the run is done. */
export interface OutFolder {
  /** The folder. */
  dir: string;
  /** Removes temporaries and the lock (and the folder, if this run created it and left it empty). */
  release(): Promise<void>;
}

/**
 * Claims `out` for a run: creates it, takes its lock (a runtime error naming
 * the holder when another live process has it; a dead one's lock is taken
 * over), repairs a snapshot a kill interrupted, removes temporaries, and
 * refuses (usage error) a folder holding another run unless `overwrite`,
 * which clears that run's records first. A new run starts without a snapshot.
 */
export async function claimOut(
  out: string,
  claim: OutClaim,
): Promise<OutFolder> {
  const existed = await Deno.stat(out).then(() => true, () => false);
  await Deno.mkdir(out, { recursive: true });
  let lock: Lock;
  try {
    lock = await acquireLock(`${out}/${LOCK_FILE}`, {
      purpose: `vitrep ${claim.command}`,
      staleAfterMs: 60_000,
    });
  } catch (err) {
    await cleanEmpty(out, existed);
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
  const folder: OutFolder = {
    dir: out,
    async release() {
      await recoverSnapshot(out).catch(() => {});
      await lock.release();
      await cleanEmpty(out, existed);
    },
  };
  try {
    await recoverSnapshot(out);
    if (!claim.continuing) {
      const other = await otherRun(out, claim.command, claim.options);
      if (other && !claim.overwrite) {
        throw usage(
          new RangeError(
            `Invalid --out "${out}": it holds another run (${other.file}${
              typeof other.command === "string"
                ? `, a ${other.command} run`
                : ""
            } with other options): expected a new folder; add --overwrite to replace that run, or --resume ${out} to continue it`,
          ),
        );
      }
      await clearRun(out);
    }
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

/** Removes `dir` if this run created it and left it empty. */
export async function cleanEmpty(dir: string, existed: boolean): Promise<void> {
  if (existed) return;
  try {
    for await (const _ of Deno.readDir(dir)) return;
    await Deno.remove(dir);
  } catch {
    // gone already
  }
}
