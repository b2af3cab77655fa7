/**
 * A claim on a piece of work, as a lock file that is safe on a shared (NFS)
 * filesystem: only exclusive create and rename are used, never `flock`.
 *
 * The rules:
 * - **Take**: `Deno.open(path, { createNew: true })`, then write the holder
 *   (host, pid, start time, purpose, a random token). Of any number of
 *   processes, exactly one creates the file.
 * - **Held**: a lock file whose holder runs on another host, or on this host
 *   with a live pid, and whose modification time is within `staleAfterMs`.
 *   The holder refreshes that time every `staleAfterMs / 4` (a heartbeat), so
 *   age means "no sign of life", not "long job". A file still empty (its
 *   writer died between create and write) counts as held until it is
 *   `staleAfterMs` old.
 * - **Take over** a stale lock (its pid gone on this host, or older than
 *   `staleAfterMs`): only under a second lock, `PATH.takeover`, itself taken
 *   by exclusive create. Its holder re-reads the lock file and removes it only
 *   if it is still the very file judged stale (same contents), then competes
 *   by exclusive create like anyone else; the others wait for the takeover to
 *   end and try again. So a live lock is never removed by a taker, and of any
 *   number of racing takers exactly one ends up holding the lock. (One window
 *   remains, for locks stale by age only: a holder on another host that is
 *   merely slow could release between the re-read and the removal, and a
 *   newcomer's lock taken in that instant would be removed.) A takeover lock
 *   left by a killed taker is removed once it is `staleAfterMs` old.
 * - **Release**: only the holder whose token is in the file removes it.
 *
 * A lock file that is not a regular file (a fifo, a device, a symlink, say
 * to /dev/zero) or is over 64 KiB is refused with an error naming it, never
 * read; a holder that is a zombie (killed, not yet reaped) counts as dead.
 *
 * @module
 */
import { readRegularText, ReplacedError } from "./regular.ts";

/**
 * Who holds a lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acquireLock, type LockInfo } from "./lock.ts";
 * const lock = await acquireLock(`${await Deno.makeTempDir()}/a.lock`, { purpose: "demo" });
 * const info: LockInfo = lock.info;
 * assert.equal(info.purpose, "demo");
 * assert.ok(!Number.isNaN(Date.parse(info.started)));
 * await lock.release();
 * ```
 */
export interface LockInfo {
  /** Host name of the holder. */
  host: string;
  /** Process id of the holder on its host. */
  pid: number;
  /** When the holder took the lock (ISO 8601). */
  started: string;
  /** What the lock is for, e.g. `grid cell 3`. */
  purpose: string;
}

/**
 * Options of {@linkcode acquireLock}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acquireLock, type LockOptions } from "./lock.ts";
 * const opts: LockOptions = { staleAfterMs: 60_000, purpose: "grid cell 3" };
 * const lock = await acquireLock(`${await Deno.makeTempDir()}/b.lock`, opts);
 * assert.equal(lock.info.purpose, "grid cell 3");
 * await lock.release();
 * ```
 */
export interface LockOptions {
  /** A lock not refreshed for this long is taken over (default 10 minutes). */
  staleAfterMs?: number;
  /** Recorded in the lock for whoever finds it held. */
  purpose?: string;
}

/**
 * A lock held by this process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acquireLock, type Lock } from "./lock.ts";
 * const path = `${await Deno.makeTempDir()}/c.lock`;
 * const lock: Lock = await acquireLock(path);
 * await lock.release();
 * await assert.rejects(() => Deno.stat(path), Deno.errors.NotFound);
 * ```
 */
export interface Lock {
  /** What the lock file says. */
  info: LockInfo;
  /** Removes the lock (if it is still ours) and stops its heartbeat. */
  release(): Promise<void>;
}

/**
 * Thrown by {@linkcode acquireLock} when a live process holds the lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LockedError } from "./lock.ts";
 * const err = new LockedError("/tmp/x.lock", {
 *   host: "n1", pid: 7, started: "2026-01-01T00:00:00.000Z", purpose: "demo",
 * });
 * assert.equal(err.holder.pid, 7);
 * assert.match(err.message, /pid 7 on n1/);
 * ```
 */
export class LockedError extends Error {
  /** The lock file. */
  readonly path: string;
  /** Who holds it. */
  readonly holder: LockInfo;
  /**
   * Names the lock file and its holder.
   *
   * @param path the lock file
   * @param holder who holds it
   */
  constructor(path: string, holder: LockInfo) {
    super(
      `Locked: ${path} is held by pid ${holder.pid} on ${holder.host} since ${holder.started}${
        holder.purpose ? ` (${holder.purpose})` : ""
      }: wait for it to finish, or remove the file if that process is gone`,
    );
    this.name = "LockedError";
    this.path = path;
    this.holder = holder;
  }
}

const DEFAULT_STALE_MS = 10 * 60 * 1000;

interface Found {
  /** The file's contents, to tell one lock file from another. */
  text: string;
  info: LockInfo | null;
  token: string | null;
  ageMs: number;
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** The largest lock file read (a holder's record is a few hundred bytes). */
const MAX_LOCK_BYTES = 64 * 1024;

/**
 * Whether `pid` runs on this host (true when it cannot be told). A zombie
 * (killed, not yet reaped by its parent: state Z in /proc/PID/stat) or a
 * dying process (X) is not alive: it will never write or release again.
 */
function pidAlive(pid: number): boolean {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return true; // no /proc: assume alive, age decides
  }
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return false;
  }
  // "PID (COMM) STATE …": COMM may hold spaces and parentheses
  const state = stat.slice(stat.lastIndexOf(")") + 1).trim()[0];
  return state !== "Z" && state !== "X";
}

async function readLock(path: string): Promise<Found | null> {
  let text: string, mtime: Date | null;
  try {
    // a fifo, device or link there (say to /dev/zero) is refused, not read
    text = await readRegularText(path, MAX_LOCK_BYTES, "lock file");
    mtime = (await Deno.lstat(path)).mtime;
  } catch (err) {
    // gone, or removed and created again by another process meanwhile: read it afresh
    if (err instanceof Deno.errors.NotFound || err instanceof ReplacedError) {
      return null;
    }
    throw err;
  }
  const ageMs = mtime ? Date.now() - mtime.getTime() : 0;
  try {
    const j = JSON.parse(text);
    const { host, pid, started, purpose, token } = j;
    if (typeof host === "string" && Number.isInteger(pid)) {
      return {
        text,
        info: { host, pid, started: String(started), purpose: purpose ?? "" },
        token: typeof token === "string" ? token : null,
        ageMs,
      };
    }
  } catch {
    // being written, or garbage
  }
  return { text, info: null, token: null, ageMs };
}

function isStale(found: Found, staleAfterMs: number): boolean {
  if (found.ageMs > staleAfterMs) return true;
  const info = found.info;
  if (info === null) return false;
  if (info.host !== hostname()) return false;
  return info.pid !== Deno.pid && !pidAlive(info.pid);
}

async function tryCreate(path: string, text: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { createNew: true, write: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  }
  try {
    await file.write(new TextEncoder().encode(text));
  } finally {
    file.close();
  }
  return true;
}

/**
 * Removes the stale lock `stale` under the takeover lock; false when another
 * process is taking over (then wait and retry).
 */
async function takeOver(
  path: string,
  stale: Found,
  staleAfterMs: number,
): Promise<boolean> {
  const mutex = `${path}.takeover`;
  const me = JSON.stringify({ host: hostname(), pid: Deno.pid }) + "\n";
  if (!(await tryCreate(mutex, me))) {
    const other = await readLock(mutex);
    if (other !== null && other.ageMs > staleAfterMs) {
      await Deno.remove(mutex).catch(() => {});
    }
    return false;
  }
  try {
    const now = await readLock(path);
    if (now !== null && now.text === stale.text) {
      await Deno.remove(path).catch(() => {});
    }
    return true;
  } finally {
    await Deno.remove(mutex).catch(() => {});
  }
}

function holderOf(found: Found | null, path: string): LockInfo {
  return found?.info ?? {
    host: "unknown",
    pid: 0,
    started: "unknown",
    purpose: `a lock being written at ${path}`,
  };
}

/**
 * Takes the lock file at `path` for this process, taking over a stale one
 * (see the module doc for the rules); throws {@linkcode LockedError} when a
 * live process holds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acquireLock, LockedError } from "./lock.ts";
 * const path = `${await Deno.makeTempDir()}/cell.lock`;
 * const lock = await acquireLock(path, { purpose: "example" });
 * assert.equal(lock.info.pid, Deno.pid);
 * await assert.rejects(() => acquireLock(path), LockedError);
 * await lock.release();
 * const again = await acquireLock(path);
 * await again.release();
 * ```
 */
export async function acquireLock(
  path: string,
  opts: LockOptions = {},
): Promise<Lock> {
  const staleAfterMs = opts.staleAfterMs ?? DEFAULT_STALE_MS;
  if (!(staleAfterMs > 0)) {
    throw new RangeError(
      `Invalid staleAfterMs "${staleAfterMs}": expected a positive number of milliseconds`,
    );
  }
  const info: LockInfo = {
    host: hostname(),
    pid: Deno.pid,
    started: new Date().toISOString(),
    purpose: opts.purpose ?? "",
  };
  const token = crypto.randomUUID();
  const text = JSON.stringify({ ...info, token }) + "\n";
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await tryCreate(path, text)) {
      return held(path, info, token, staleAfterMs);
    }
    const found = await readLock(path);
    if (found === null) continue; // released meanwhile
    if (!isStale(found, staleAfterMs)) {
      throw new LockedError(path, holderOf(found, path));
    }
    if (!(await takeOver(path, found, staleAfterMs))) {
      await new Promise((r) => setTimeout(r, 10)); // another process takes over: wait
    }
  }
  throw new LockedError(path, holderOf(await readLock(path), path));
}

function held(
  path: string,
  info: LockInfo,
  token: string,
  staleAfterMs: number,
): Lock {
  const beat = setInterval(() => {
    const now = new Date();
    Deno.utime(path, now, now).catch(() => {});
  }, Math.max(10, Math.floor(staleAfterMs / 4)));
  Deno.unrefTimer(beat);
  return {
    info,
    async release() {
      clearInterval(beat);
      const found = await readLock(path).catch(() => null);
      if (found?.token === token) await Deno.remove(path).catch(() => {});
    },
  };
}
