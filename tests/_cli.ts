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
