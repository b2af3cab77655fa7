/**
 * The one rule for every path vitrep writes or removes.
 *
 * - **Where**: {@linkcode checkWritePath} refuses `""`, the filesystem root,
 *   the home folder and every folder above it, and system folders (/etc,
 *   /usr, /var, /tmp itself, …), judged on the path with its symlinks
 *   resolved, so a link to the home folder is refused too.
 * - **Into what**: {@linkcode claimFolder} writes only into a folder that is
 *   new, empty, or already marked as vitrep's own output of the same kind by
 *   {@linkcode MARKER_FILE} (written first). Any other folder is refused,
 *   naming some of its files.
 * - **What goes**: {@linkcode removeOutputs} deletes only from a folder
 *   carrying vitrep's marker of the expected kind, and there only the files
 *   its marker lists or that vitrep writes for that kind (by name), never a
 *   whole tree: a file vitrep did not write makes it refuse, naming it.
 *
 * @module
 */
import {
  basename,
  dirname,
  isAbsolute,
  join,
  parse,
  resolve,
  sep,
} from "node:path";
import { listDir, writeJson } from "./files.ts";
import { PLAN_FORMAT_NAME, readRegularText, RECORD_BYTES } from "./regular.ts";

/** The marker of a folder vitrep made: `DIR/.vitrep-run.json`. */
export const MARKER_FILE = ".vitrep-run.json";
/** The marker's format version (its `vitrep` field). */
export const MARKER_VERSION = 1;

/** Lock files vitrep keeps in its folders while it writes (never the user's). */
const LOCKS = [".vitrep.lock", "cell.lock"];
const IGNORED = new Set([
  MARKER_FILE,
  ...LOCKS,
  ...LOCKS.map((l) => `${l}.takeover`),
]);

// ---------------------------------------------------------------------------
// Where vitrep may write

/** Folders refused themselves (a subfolder may be fine: /tmp/x, /mnt/disk/out). */
const SYSTEM_FOLDERS = [
  "/tmp",
  "/var",
  "/var/tmp",
  "/home",
  "/root",
  "/opt",
  "/srv",
  "/mnt",
  "/media",
  "/snap",
  "/run",
  "/nix",
  "/Users",
  "/Volumes",
  "/private",
  "/private/tmp",
  "/private/var",
  "/Applications",
];
/** Folders refused with everything inside them. */
const SYSTEM_TREES = [
  "/etc",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/boot",
  "/proc",
  "/sys",
  "/dev",
  "/var/lib",
  "/var/log",
  "/var/cache",
  "/var/spool",
  "/var/mail",
  "/nix/store",
  "/System",
  "/Library",
  "/private/etc",
];
/** Windows: below a drive's root, compared without case. */
const WINDOWS_TREES = ["windows", "program files", "program files (x86)"];
const WINDOWS_FOLDERS = ["users", "programdata"];

/** Options of {@linkcode checkWritePath}. */
export interface PathCheckOptions {
  /**
   * The home folder to protect; by default `HOME`, else `USERPROFILE` (null:
   * none). Tests pass a fake one.
   */
  home?: string | null;
}

function defaultHome(): string | null {
  return Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? null;
}

function realPathOrNull(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

/**
 * `path` made absolute with every symlink in it resolved, as the system
 * would when writing there: the real path of its deepest existing ancestor
 * joined with the rest (a dangling symlink followed to its target). `..` is
 * applied after the symlink before it, as the system does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveReal } from "./paths.ts";
 * const dir = Deno.realPathSync(await Deno.makeTempDir());
 * await Deno.mkdir(`${dir}/a`);
 * await Deno.symlink(`${dir}/a`, `${dir}/link`);
 * assert.equal(resolveReal(`${dir}/link/new/x`), `${dir}/a/new/x`);
 * ```
 */
export function resolveReal(path: string): string {
  // not resolve(): it would apply ".." before the symlinks
  let p = isAbsolute(path) ? path : `${Deno.cwd()}${sep}${path}`;
  const rest: string[] = [];
  for (let hops = 0; hops < 64; hops++) {
    const real = realPathOrNull(p);
    if (real !== null) return resolve(real, ...rest);
    let link: string | null = null;
    try {
      if (Deno.lstatSync(p).isSymlink) link = Deno.readLinkSync(p);
    } catch {
      // not there
    }
    if (link !== null) {
      p = isAbsolute(link) ? link : `${dirname(p)}${sep}${link}`;
      continue;
    }
    const parent = dirname(p);
    if (parent === p) return resolve(p, ...rest);
    rest.unshift(basename(p));
    p = parent;
  }
  return resolve(p, ...rest);
}

const within = (path: string, folder: string) =>
  path === folder ||
  path.startsWith(folder.endsWith(sep) ? folder : folder + sep);

/** Why vitrep must not write into `real` (a resolved path), or null. */
function refusal(real: string, home: string | null): string | null {
  const root = parse(real).root;
  if (real === root || /^([A-Za-z]:)?[/\\]*$/.test(real)) {
    return "vitrep does not write into the filesystem root";
  }
  const homes = home === null || home.trim() === ""
    ? []
    : [resolve(home), resolveReal(home)];
  // inside the home folder is the user's to choose (a home under /var/lib too)
  if (homes.some((h) => h !== parse(h).root && real !== h && within(real, h))) {
    return null;
  }
  for (const h of homes) {
    if (within(h, real)) {
      return real === h
        ? "vitrep does not write into the home folder itself"
        : `vitrep does not write into a folder holding the home folder (${h})`;
    }
  }
  if (/^[A-Za-z]:[/\\]/.test(real)) {
    const below = real.slice(3).toLowerCase().replaceAll("\\", "/");
    const top = below.split("/")[0];
    if (WINDOWS_TREES.includes(top) || WINDOWS_FOLDERS.includes(below)) {
      return "it is a system folder";
    }
  }
  if (
    SYSTEM_FOLDERS.includes(real) || SYSTEM_TREES.some((t) => within(real, t))
  ) {
    return "it is a system folder (or inside one)";
  }
  return null;
}

/**
 * Checks a folder vitrep is asked to write into (or remove from), given as
 * option `flag`, and returns it resolved (symlinks followed). Refused with a
 * RangeError naming the value, the resolved path and a valid choice: `""`
 * or blanks, the filesystem root, the home folder and any folder above it,
 * and system folders (/etc, /usr, /bin, /var, /tmp, /home, … themselves;
 * everything inside /etc, /usr, /proc, /sys, /dev, /boot, …). Subfolders of
 * the home folder or of /tmp are fine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkWritePath } from "./paths.ts";
 * const home = "/home/someone";
 * assert.throws(() => checkWritePath("/", "--out", { home }), RangeError);
 * assert.throws(() => checkWritePath("/home", "--out", { home }), /home folder/);
 * assert.throws(() => checkWritePath("/etc/vitrep", "--out", { home }), /system folder/);
 * assert.throws(() => checkWritePath(" ", "--out", { home }), /Invalid --out " "/);
 * assert.equal(checkWritePath("/home/someone/out/run1", "--out", { home }), "/home/someone/out/run1");
 * ```
 */
export function checkWritePath(
  path: string,
  flag = "--out",
  options: PathCheckOptions = {},
): string {
  const home = options.home === undefined ? defaultHome() : options.home;
  const hint = `expected a folder of its own, e.g. ${
    home ? join(home, "out", "run1") : "out/run1"
  }`;
  if (path.trim() === "") {
    throw new RangeError(
      `Invalid ${flag} "${path}": an empty path would mean the current folder: ${hint}`,
    );
  }
  const real = resolveReal(path);
  const why = refusal(real, home);
  if (why !== null) {
    throw new RangeError(
      `Invalid ${flag} "${path}" (${real}): ${why}: ${hint}`,
    );
  }
  return real;
}

// ---------------------------------------------------------------------------
// Kinds of output and what vitrep writes in each

/** A kind of output folder: one per command's output. */
export type OutputKind = "run" | "grid" | "essay" | "publish";

/** The files of a run (invert, generate, forward, filters, condition, demo and batches), by name. */
const RUN_NAMES = new Set([
  "metrics.json",
  "traces.csv",
  "representation.png",
  "representation.npy",
  "target.png",
  "side_by_side.png",
  "convergence.png",
  "convergence.svg",
  "generated.png",
  "generated.npy",
  "canvas.png",
  "progress.png",
  "progress.svg",
  "generated_grid.png",
  "batch.md",
  "demo.png",
  "output.npy",
  "filters.png",
  "condition.json",
  "state.json",
  "image.npy",
  "snapshot.json",
  "snapshot.npy",
]);
const CELL_NAMES = new Set(["cell.json", "failed.json"]);
const GRID_TOP = new Set([
  "plan.json",
  "grid.png",
  "grid.svg",
  "grid.csv",
  "grid.md",
  "metrics.json",
  "job.sbatch",
  "job.yaml",
]);
const ESSAY_TOP = new Set([
  "index.html",
  "claims.json",
  "summary.md",
  "depth.png",
  "depth.svg",
]);

const parts = (rel: string) => rel.split("/");
const isTmp = (name: string) => name.endsWith(".tmp");

function runFile(rel: string): boolean {
  const p = parts(rel);
  const name = p.at(-1)!;
  return p.length <= 4 && (RUN_NAMES.has(name) || isTmp(name));
}

function gridFile(rel: string): boolean {
  const p = parts(rel);
  if (p.length === 1) return GRID_TOP.has(p[0]) || isTmp(p[0]);
  if (p[0] === "logs") return true;
  return p[0] === "cells" &&
    (runFile(p.slice(2).join("/")) || CELL_NAMES.has(p.at(-1)!));
}

function essayFile(rel: string): boolean {
  const p = parts(rel);
  if (p.length === 1) return ESSAY_TOP.has(p[0]) || isTmp(p[0]);
  if (p[0] === "maps") return p.length === 2 && p[1].endsWith(".png");
  return p[0] === "cells" && p.length > 2 &&
    (gridFile(p.slice(2).join("/")) || runFile(p.slice(2).join("/")));
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    const v = JSON.parse(await readRegularText(path, RECORD_BYTES, "record"));
    return v && typeof v === "object" ? v : null;
  } catch {
    return null;
  }
}

/** The command an older vitrep's record in `dir` names (a folder without marker), or null. */
async function runRecord(dir: string): Promise<string | null> {
  for (const f of ["metrics.json", "snapshot/state.json", "snapshot.json"]) {
    const c = (await readJson(join(dir, f)))?.command;
    if (typeof c === "string" && c !== "grid") return c;
  }
  return null;
}

async function gridRecord(dir: string): Promise<string | null> {
  const f = (await readJson(join(dir, "plan.json")))?.format;
  return typeof f === "string" && f.startsWith(`${PLAN_FORMAT_NAME}/`)
    ? "grid"
    : null;
}

async function essayRecord(dir: string): Promise<string | null> {
  const j = await readJson(join(dir, "claims.json"));
  return j && typeof j.essay === "object" && typeof j.budget === "object" &&
      Array.isArray(j.experiments)
    ? "essay"
    : null;
}

interface KindRule {
  /** What the kind is, for messages. */
  about: string;
  /** Files vitrep writes for the kind, by relative path (`/`-separated). */
  known(rel: string): boolean;
  /** An older vitrep's record of this kind in a folder without marker: its command. */
  record(dir: string): Promise<string | null>;
}

const RULES: Readonly<Record<OutputKind, KindRule>> = {
  run: { about: "a run's output", known: runFile, record: runRecord },
  grid: { about: "a grid", known: gridFile, record: gridRecord },
  essay: { about: "an essay report", known: essayFile, record: essayRecord },
  publish: {
    about: "a published essay report",
    known: () => false,
    record: () => Promise.resolve(null),
  },
};

// ---------------------------------------------------------------------------
// The marker

/** The contents of {@linkcode MARKER_FILE}. */
export interface Marker {
  /** The marker's format version ({@linkcode MARKER_VERSION}). */
  vitrep: number;
  /** The kind of output the folder holds. */
  kind: OutputKind;
  /** The command that made it (invert, generate, grid, essay, …). */
  command: string;
  /** A random id of the run that made the folder. */
  id: string;
  /** When the folder was claimed (ISO 8601). */
  created: string;
  /** The files vitrep wrote there, relative (`/`-separated), where known. */
  files: string[];
}

/**
 * Reads `dir`'s marker: null when there is none; a TypeError naming the file
 * when it is not a marker vitrep wrote (a user's file of that name).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimFolder, readMarker } from "./paths.ts";
 * const dir = `${await Deno.makeTempDir()}/out`;
 * assert.equal(await readMarker(dir), null);
 * await claimFolder(dir, "run", { command: "invert" });
 * assert.equal((await readMarker(dir))?.command, "invert");
 * ```
 */
export async function readMarker(dir: string): Promise<Marker | null> {
  const path = join(dir, MARKER_FILE);
  let text: string;
  try {
    text = await readRegularText(path, RECORD_BYTES, "vitrep marker");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new TypeError(
      `Cannot read "${path}": ${err instanceof Error ? err.message : err}`,
    );
  }
  let m: Partial<Marker> | null = null;
  try {
    m = JSON.parse(text);
  } catch {
    // named below
  }
  if (
    !m || typeof m !== "object" || typeof m.vitrep !== "number" ||
    !(typeof m.kind === "string" && m.kind in RULES) ||
    typeof m.command !== "string" || typeof m.id !== "string" ||
    !Array.isArray(m.files) || !m.files.every((f) => typeof f === "string")
  ) {
    throw new TypeError(
      `Invalid marker "${path}": expected vitrep's JSON { vitrep, kind, command, id, created, files }: vitrep did not write it, so it treats the folder as not its own`,
    );
  }
  return m as Marker;
}

/**
 * Writes `dir`'s marker (atomically) for output of `kind` made by `command`,
 * listing `files`; returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readMarker, writeMarker } from "./paths.ts";
 * const dir = await Deno.makeTempDir();
 * await writeMarker(dir, "publish", "essay", ["index.html"]);
 * assert.deepEqual((await readMarker(dir))?.files, ["index.html"]);
 * ```
 */
export async function writeMarker(
  dir: string,
  kind: OutputKind,
  command: string,
  files: readonly string[] = [],
): Promise<Marker> {
  const m: Marker = {
    vitrep: MARKER_VERSION,
    kind,
    command,
    id: crypto.randomUUID(),
    created: new Date().toISOString(),
    files: [...new Set(files)].sort(),
  };
  await writeJson(join(dir, MARKER_FILE), m);
  return m;
}

// ---------------------------------------------------------------------------
// Looking into a folder

/** A folder's contents, relative paths with `/`. */
interface Contents {
  files: string[];
  dirs: string[];
  /** Subfolders with their own marker (another output of vitrep's), not entered. */
  nested: string[];
}

const WALK_LIMIT = 100_000;

async function walk(dir: string, rel = "", c?: Contents): Promise<Contents> {
  c ??= { files: [], dirs: [], nested: [] };
  for (const e of await listDir(rel ? join(dir, rel) : dir)) {
    if (IGNORED.has(e.name)) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (c.files.length + c.dirs.length > WALK_LIMIT) {
      throw new RangeError(
        `Cannot check "${dir}": it holds more than ${WALK_LIMIT} entries: expected an output folder of vitrep's`,
      );
    }
    if (e.isDirectory && !e.isSymlink) {
      const sub = join(dir, r);
      if (await exists(join(sub, MARKER_FILE))) c.nested.push(r);
      else {
        c.dirs.push(r);
        await walk(dir, r, c);
      }
    } else c.files.push(r);
  }
  return c;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

const some = (names: readonly string[]) =>
  names.slice(0, 4).join(", ") + (names.length > 4 ? ", …" : "");

/** Options of {@linkcode inspectFolder} and {@linkcode claimFolder}. */
export interface FolderOptions extends PathCheckOptions {
  /** The option that named the folder, for messages (default `--out`). */
  flag?: string;
  /** The command that writes (recorded in a new marker; default the kind). */
  command?: string;
  /**
   * Replace vitrep's output of another kind (`--overwrite`): removed as
   * {@linkcode removeOutputs} does; a folder that is not vitrep's is still refused.
   */
  overwrite?: boolean;
  /** Extra hint for a folder that is not vitrep's, e.g. how to replace an older copy. */
  hint?: string;
  /**
   * The output in a marked folder will be replaced ({@linkcode removeOutputs}):
   * refuse now if it holds a file vitrep did not write.
   */
  replace?: boolean;
}

/** A folder as {@linkcode inspectFolder} found it. */
export interface FolderState {
  /** The folder as given. */
  dir: string;
  /** Resolved (symlinks followed). */
  real: string;
  /**
   * `new`: not there; `empty`: nothing in it (but vitrep's locks); `marked`:
   * vitrep's marker; `legacy`: an older vitrep's output of the kind without
   * marker (only vitrep's files in it).
   */
  status: "new" | "empty" | "marked" | "legacy";
  /** Its marker (status `marked`), or null. */
  marker: Marker | null;
  /** status `legacy`: the command its record names. */
  command?: string;
}

function kindRule(kind: OutputKind): KindRule {
  const r = RULES[kind];
  if (!r) {
    throw new TypeError(
      `Invalid output kind "${kind}": expected ${
        Object.keys(RULES).join(", ")
      }`,
    );
  }
  return r;
}

/**
 * Looks at `dir` before vitrep writes output of `kind` there, changing
 * nothing: its path is checked ({@linkcode checkWritePath}), and it must be
 * new, empty, marked by vitrep for `kind` (or for another kind with
 * `overwrite`), or an older vitrep's output of `kind` without marker where
 * every file is one vitrep writes for that kind. Anything else is refused
 * with a RangeError naming some of the files found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectFolder } from "./paths.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal((await inspectFolder(`${dir}/new`, "run")).status, "new");
 * assert.equal((await inspectFolder(dir, "run")).status, "empty");
 * await Deno.writeTextFile(`${dir}/keep.txt`, "mine");
 * await assert.rejects(inspectFolder(dir, "run"), /keep\.txt/);
 * ```
 */
export async function inspectFolder(
  dir: string,
  kind: OutputKind,
  options: FolderOptions = {},
): Promise<FolderState> {
  const rule = kindRule(kind);
  const flag = options.flag ?? "--out";
  const real = checkWritePath(dir, flag, options);
  const head = `Invalid ${flag} "${dir}" (${real})`;
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { dir, real, status: "new", marker: null };
    }
    throw err;
  }
  if (!st.isDirectory) {
    throw new RangeError(
      `${head}: it is a file, not a folder: expected a new folder for ${rule.about}`,
    );
  }
  let marker: Marker | null;
  try {
    marker = await readMarker(dir);
  } catch (err) {
    throw new RangeError(
      `${head}: ${err instanceof Error ? err.message : err}`,
    );
  }
  if (marker !== null) {
    if (marker.kind !== kind && !options.overwrite) {
      throw new RangeError(
        `${head}: it holds ${
          RULES[marker.kind].about
        } that vitrep made (${marker.command}; ${MARKER_FILE}): expected a new or empty folder, or one holding ${rule.about}; add --overwrite to replace that output (only the files vitrep wrote there)`,
      );
    }
    if (options.replace || (marker.kind !== kind && options.overwrite)) {
      await checkRemovable(dir, marker, head);
    }
    return { dir, real, status: "marked", marker };
  }
  const top = (await listDir(dir)).filter((e) => !IGNORED.has(e.name));
  if (top.length === 0) return { dir, real, status: "empty", marker: null };
  let found = top.map((e) => e.name + (e.isDirectory ? "/" : ""));
  const command = await rule.record(dir);
  if (command !== null) {
    const c = await walk(dir);
    const foreign = [...c.files.filter((f) => !rule.known(f)), ...c.nested];
    if (foreign.length === 0) {
      return { dir, real, status: "legacy", marker: null, command };
    }
    found = foreign;
  }
  throw new RangeError(
    `${head}: it holds files vitrep did not write there (${
      some(found)
    }) and no ${MARKER_FILE}: expected a new or empty folder, or one vitrep made for ${rule.about}; vitrep never writes into or removes from a folder of yours${
      options.hint ? `: ${options.hint}` : ""
    }`,
  );
}

/** A folder claimed by {@linkcode claimFolder}. */
export interface ClaimedFolder extends FolderState {
  /** The marker now in it. */
  marker: Marker;
  /** Whether this claim created the folder. */
  created: boolean;
  /** What it was before the claim. */
  was: FolderState["status"];
}

/**
 * Claims `dir` for output of `kind` (see {@linkcode inspectFolder}): a new
 * folder is created with the marker written first; an empty one gets the
 * marker; an older vitrep's output of the kind gets a marker listing its
 * files; vitrep's output of another kind is replaced with `overwrite` (only
 * its files removed). A folder marked for `kind` is kept as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimFolder, MARKER_FILE } from "./paths.ts";
 * const dir = `${await Deno.makeTempDir()}/grid`;
 * const c = await claimFolder(dir, "grid", { command: "grid" });
 * assert.equal(c.created, true);
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [MARKER_FILE]);
 * await assert.rejects(claimFolder(dir, "essay"), /holds a grid that vitrep made/);
 * ```
 */
export async function claimFolder(
  dir: string,
  kind: OutputKind,
  options: FolderOptions = {},
): Promise<ClaimedFolder> {
  const f = await inspectFolder(dir, kind, options);
  const command = options.command ?? kind;
  if (f.status === "new") {
    await Deno.mkdir(dirname(resolve(dir)), { recursive: true });
    try {
      await Deno.mkdir(dir);
    } catch (err) {
      // made meanwhile by another process: look again
      if (err instanceof Deno.errors.AlreadyExists) {
        return claimFolder(dir, kind, options);
      }
      throw err;
    }
    const marker = await writeMarker(dir, kind, command);
    return { ...f, marker, created: true, was: "new" };
  }
  if (f.status === "empty") {
    const marker = await writeMarker(dir, kind, command);
    return { ...f, marker, created: false, was: "empty" };
  }
  if (f.status === "legacy") {
    const marker = await writeMarker(
      dir,
      kind,
      f.command ?? command,
      (await walk(dir)).files,
    );
    return { ...f, marker, created: false, was: "legacy" };
  }
  let marker = f.marker!;
  if (marker.kind !== kind) {
    await removeOutputs(dir, marker.kind, options);
    marker = await writeMarker(dir, kind, command);
  }
  return { ...f, marker, created: false, was: "marked" };
}

// ---------------------------------------------------------------------------
// Removing only what vitrep made

/**
 * Removes vitrep's output of `kind` from `dir`: only when `dir` carries
 * vitrep's marker of that kind, and only the files the marker lists or that
 * vitrep writes for the kind by name, then the subfolders left empty. A file
 * it did not write (or a subfolder with another marker) makes it refuse
 * before removing anything, with a RangeError naming it. The marker stays
 * (rewrite it for the next output). Returns the files removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimFolder, removeOutputs } from "./paths.ts";
 * const dir = `${await Deno.makeTempDir()}/run`;
 * await claimFolder(dir, "run", { command: "invert" });
 * await Deno.writeTextFile(`${dir}/metrics.json`, "{}");
 * assert.deepEqual(await removeOutputs(dir, "run"), ["metrics.json"]);
 * await Deno.writeTextFile(`${dir}/keep.txt`, "mine");
 * await assert.rejects(removeOutputs(dir, "run"), /keep\.txt/);
 * assert.equal(await Deno.readTextFile(`${dir}/keep.txt`), "mine");
 * ```
 */
export async function removeOutputs(
  dir: string,
  kind: OutputKind,
  options: FolderOptions = {},
): Promise<string[]> {
  const rule = kindRule(kind);
  const real = checkWritePath(dir, options.flag ?? "--out", options);
  const head = `Cannot remove vitrep's output from "${dir}" (${real})`;
  const marker = await readMarker(dir).catch((err) => {
    throw new RangeError(`${head}: ${err.message}`);
  });
  if (marker === null || marker.kind !== kind) {
    throw new RangeError(
      `${head}: ${
        marker === null
          ? `it has no ${MARKER_FILE}`
          : `its ${MARKER_FILE} is of ${RULES[marker.kind].about}`
      }: vitrep removes only from a folder it marked for ${rule.about}${
        options.hint ? `: ${options.hint}` : ""
      }`,
    );
  }
  const c = await checkRemovable(dir, marker, head);
  for (const f of c.files) {
    await Deno.remove(join(dir, f)).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
  const deepest = [...c.dirs].sort((a, b) => parts(b).length - parts(a).length);
  for (const d of deepest) {
    if ((await listDir(join(dir, d))).length === 0) {
      await Deno.remove(join(dir, d)).catch(() => {});
    }
  }
  return c.files;
}

/** `dir`'s contents when every file is one vitrep wrote by `marker`'s kind; else a RangeError naming the others. */
async function checkRemovable(
  dir: string,
  marker: Marker,
  head: string,
): Promise<Contents> {
  const rule = RULES[marker.kind];
  const listed = new Set(marker.files);
  const c = await walk(dir);
  const foreign = [
    ...c.files.filter((f) => !listed.has(f) && !rule.known(f)),
    ...c.nested.map((n) => `${n}/ (another folder of vitrep's)`),
  ];
  if (foreign.length > 0) {
    throw new RangeError(
      `${head}: it holds files vitrep did not write there (${
        some(foreign)
      }): expected only the files its ${MARKER_FILE} lists; move those away, or give another folder`,
    );
  }
  return c;
}

/**
 * Records in `dir`'s marker the files vitrep wrote there: those it already
 * lists (still there) and those changed since `since` (ms since the epoch:
 * when the run started); returns the list. A file of the user's that was
 * there before is not listed, so it is never removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimFolder, recordFiles } from "./paths.ts";
 * const dir = `${await Deno.makeTempDir()}/out`;
 * const since = Date.now();
 * await claimFolder(dir, "publish", { command: "essay" });
 * await Deno.writeTextFile(`${dir}/index.html`, "<p>");
 * assert.deepEqual(await recordFiles(dir, since), ["index.html"]);
 * ```
 */
export async function recordFiles(
  dir: string,
  since: number,
): Promise<string[]> {
  const marker = await readMarker(dir);
  if (marker === null) return [];
  const listed = new Set(marker.files);
  const files: string[] = [];
  for (const f of (await walk(dir)).files) {
    if (listed.has(f)) files.push(f);
    else {
      const m = (await Deno.lstat(join(dir, f)).catch(() => null))?.mtime;
      if (m && m.getTime() >= since - 2000) files.push(f);
    }
  }
  const next = [...new Set(files)].sort();
  if (JSON.stringify(next) !== JSON.stringify(marker.files)) {
    await writeJson(join(dir, MARKER_FILE), { ...marker, files: next });
  }
  return next;
}

/**
 * Undoes a claim that wrote nothing: when `dir` holds only vitrep's marker
 * (and locks), the marker goes, and the folder too if `created`. Returns
 * whether it did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimFolder, unclaimEmpty } from "./paths.ts";
 * const dir = `${await Deno.makeTempDir()}/out`;
 * const c = await claimFolder(dir, "run");
 * assert.equal(await unclaimEmpty(dir, c.created), true);
 * assert.equal(await Deno.stat(dir).then(() => true, () => false), false);
 * ```
 */
export async function unclaimEmpty(
  dir: string,
  created: boolean,
): Promise<boolean> {
  const names = (await listDir(dir)).map((e) => e.name);
  if (names.some((n) => n !== MARKER_FILE)) return false;
  await Deno.remove(join(dir, MARKER_FILE)).catch(() => {});
  if (created) await Deno.remove(dir).catch(() => {});
  return true;
}
