/**
 * A child process of vitrep: `deno run -A MODULE ARGS` as a function of its
 * arguments, resolving to its exit code; an abort signal stops it with one
 * SIGINT (it stops after its step and writes, as Ctrl-C does).
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** Runs a command line of a module and resolves to its exit code. */
export type ArgsRunner = (args: readonly string[]) => Promise<number>;

/** Options of {@linkcode denoRunner}. */
export interface DenoRunnerOptions {
  /** Aborted: the running child gets one SIGINT. */
  signal?: AbortSignal;
  /** Where the child's stdout goes (the CLI passes stderr: progress); discarded when absent. */
  stdout?: WritableStream<Uint8Array>;
}

/**
 * Runs `deno run -A MODULE ARGS` with this Deno executable: a local module
 * (a `file:` URL) by its path with its folder as the working directory, any
 * other by its URL. The child's stdin is closed, its stderr is this
 * process's, its stdout goes to `o.stdout`; the runner resolves to its exit
 * code. The child stays in this process group, so Ctrl-C reaches it too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pathToFileURL } from "node:url";
 * import { denoRunner } from "./process.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/exit.ts`, "Deno.exit(Number(Deno.args[0]));");
 * const run = denoRunner(pathToFileURL(`${dir}/exit.ts`));
 * assert.equal(await run(["3"]), 3);
 * ```
 */
export function denoRunner(
  module: URL,
  o: DenoRunnerOptions = {},
): ArgsRunner {
  const local = module.protocol === "file:";
  return async (args) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", local ? fileURLToPath(module) : module.href, ...args],
      cwd: local ? fileURLToPath(new URL(".", module)) : undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const stop = () => child.kill("SIGINT");
    o.signal?.addEventListener("abort", stop);
    const forward = o.stdout
      ? child.stdout.pipeTo(o.stdout, { preventClose: true })
      : child.stdout.cancel();
    try {
      const { code } = await child.status;
      await forward;
      return code;
    } finally {
      o.signal?.removeEventListener("abort", stop);
    }
  };
}
