// The CLI test harness shared by cli_test.ts and grid_test.ts: runs main() in-process
// capturing what it prints, and gives each test a temporary folder removed at the end.
import { main } from "../src/cli/main.ts";

/** Runs main() capturing what it prints. */
export async function run(
  args: string[],
  signal?: AbortSignal,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(args, { signal });
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

// Every test's files go under one folder, removed when the tests end.
const BASE = Deno.makeTempDirSync({ prefix: "vitrep_cli_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(BASE, { recursive: true });
  } catch {
    // already gone
  }
});

/** A new empty folder under the tests' temporary folder. */
export function tmp(): Promise<string> {
  return Deno.makeTempDir({ dir: BASE });
}

/** The repository root (a path ending in /). */
export const ROOT: string = new URL("../", import.meta.url).pathname;

/** The tiny fixture ViT (32², 3 layers) with its fixture weights, quiet. */
export const TINY: string[] = [
  "--model",
  `${ROOT}tests/fixtures/tiny_vit`,
  "--weights",
  "fixture",
  "--quiet",
];

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A JSON file's contents. */
// deno-lint-ignore no-explicit-any
export async function json(path: string): Promise<any> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** Runs `deno run -A mod.ts ARGS` from the repository root as a child process (stdout, stderr piped). */
export function spawnCli(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `deno run -A --no-check tools/NAME ARGS` from the repository root; its exit code and output. */
export async function runTool(
  name: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", `${ROOT}tools/${name}`, ...args],
    cwd: ROOT,
    env,
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: text(r.stdout), err: text(r.stderr) };
}

let denoDir: Promise<string> | null = null;

/** Deno's cache folder, so a child with another HOME does not fetch everything again. */
function cacheDir(): Promise<string> {
  denoDir ??= new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output().then((r) =>
    JSON.parse(new TextDecoder().decode(r.stdout)).denoDir as string
  );
  return denoDir;
}

/**
 * Runs `deno run -A mod.ts ARGS` from the repository root as a child process
 * whose home folder is `home` (HOME and USERPROFILE: a fake one, so tests of
 * home-folder refusals never touch the real home); its exit code and output.
 */
export async function runWithHome(
  home: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, ...args],
    cwd: ROOT,
    env: { HOME: home, USERPROFILE: home, DENO_DIR: await cacheDir() },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: text(r.stdout), err: text(r.stderr) };
}
