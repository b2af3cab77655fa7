// Snapshot files and the lock file that are fifos, devices or symlinks (to
// /dev/zero, say) are refused quickly with an error naming the path, never read
// (a fifo would block for ever, /dev/zero fill memory); oversized ones are
// refused by their size before reading (issue 20). Every case runs the CLI as a
// child process under a time guard, with a fake HOME.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, run, TINY, tmp } from "./_cli.ts";

/** The guard: a case that takes longer has hung (the CLI starts in ~1-3 s). */
const GUARD_MS = 60_000;

/** Deno's cache, kept when HOME is faked (else the child fetches its packages again). */
const DENO_DIR: string = JSON.parse(
  new TextDecoder().decode(
    new Deno.Command(Deno.execPath(), { args: ["info", "--json"] })
      .outputSync().stdout,
  ),
).denoDir;

/** Runs the CLI as a child; killed and failed when it outlasts the guard. */
async function guarded(
  args: string[],
  home: string,
): Promise<{ code: number; err: string; ms: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, ...args],
    cwd: ROOT,
    env: { HOME: home, DENO_DIR },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const err = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), GUARD_MS);
  });
  const status = await Promise.race([child.status, hung]);
  clearTimeout(timer);
  if (status === null) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`hung: ${args.join(" ")} ran past ${GUARD_MS} ms`);
  }
  return { code: status.code, err: await err, ms: performance.now() - t0 };
}

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
}

/** A stopped invert run with a complete snapshot (step 3 of 20). */
async function stoppedRun(dir: string): Promise<string> {
  const out = `${dir}/run`;
  const r = await run([
    "invert",
    ...TINY,
    ...["--layer", "1", "--steps", "20", "--stop-at", "3", "--out", out],
  ]);
  assertEquals(r.code, 0, r.err);
  return out;
}

const resume = (out: string) => ["invert", "--quiet", "--resume", out];

Deno.test("snapshot files that are a fifo, a link to /dev/zero or oversized: --resume fails at once naming the file", async (t) => {
  const dir = await tmp();
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  const out = await stoppedRun(dir);
  const snap = `${out}/snapshot`;
  const keep = `${dir}/kept`;
  await Deno.mkdir(keep);
  for (const f of ["state.json", "image.npy", "traces.csv"]) {
    await Deno.copyFile(`${snap}/${f}`, `${keep}/${f}`);
  }
  const restore = async () => {
    for (const f of ["state.json", "image.npy", "traces.csv"]) {
      await Deno.remove(`${snap}/${f}`).catch(() => {});
      await Deno.copyFile(`${keep}/${f}`, `${snap}/${f}`);
    }
  };
  const cases: [string, string, (p: string) => Promise<void>, RegExp][] = [
    ["state.json a fifo", "state.json", mkfifo, /fifo/],
    [
      "state.json a link to /dev/zero",
      "state.json",
      (p) => Deno.symlink("/dev/zero", p),
      /symbolic link/,
    ],
    [
      "state.json of 2 MiB",
      "state.json",
      (p) => Deno.writeTextFile(p, `{"format":${" ".repeat(2 << 20)}1}`),
      /at most 1048576 bytes/,
    ],
    [
      "image.npy a link to /dev/zero",
      "image.npy",
      (p) => Deno.symlink("/dev/zero", p),
      /symbolic link/,
    ],
    ["image.npy a fifo", "image.npy", mkfifo, /fifo/],
    ["traces.csv a fifo", "traces.csv", mkfifo, /fifo/],
    [
      "traces.csv a link to /dev/zero",
      "traces.csv",
      (p) => Deno.symlink("/dev/zero", p),
      /symbolic link/,
    ],
  ];
  for (const [name, file, make, why] of cases) {
    await t.step(name, async () => {
      await restore();
      await Deno.remove(`${snap}/${file}`);
      await make(`${snap}/${file}`);
      const r = await guarded(resume(out), home);
      assertEquals(r.code, 1, r.err);
      assert(r.err.includes(`${snap}/${file}`), r.err);
      assert(why.test(r.err), r.err);
      assert(r.ms < GUARD_MS, `${r.ms} ms`);
    });
  }
  // the intact snapshot still resumes
  await restore();
  const ok = await guarded(resume(out), home);
  assertEquals(ok.code, 0, ok.err);
});

Deno.test("a lock file that is a fifo or a link to /dev/zero: the run fails at once naming it, writing nothing", async (t) => {
  const dir = await tmp();
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  for (
    const [name, make, why] of [
      ["a fifo", mkfifo, /fifo/],
      [
        "a link to /dev/zero",
        (p: string) => Deno.symlink("/dev/zero", p),
        /symbolic link/,
      ],
      ["a link to a fifo", async (p: string) => {
        // the fifo outside the folder: a file of the user's inside it is refused earlier
        const fifo = `${
          p.replace(/\/[^/]+\/[^/]+$/, "")
        }/${crypto.randomUUID()}.fifo`;
        await mkfifo(fifo);
        await Deno.symlink(fifo, p);
      }, /symbolic link/],
    ] as const
  ) {
    await t.step(name, async () => {
      const out = await Deno.makeTempDir({ dir });
      const lock = `${out}/.vitrep.lock`;
      await make(lock);
      const r = await guarded([
        "invert",
        ...TINY,
        ...["--layer", "1", "--steps", "5", "--out", out],
      ], home);
      assertEquals(r.code, 1, r.err);
      assert(r.err.includes(lock), r.err);
      assert(why.test(r.err), r.err);
      const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      assert(
        names.every((n) => n.startsWith(".vitrep.lock")),
        `wrote ${names.join(" ")}`,
      );
    });
  }
});

Deno.test("a grid's plan.json or a cell's metrics.json that is a fifo: --collect fails or skips at once, never hangs", async () => {
  const dir = await tmp();
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  const out = `${dir}/grid`;
  const made = await run([
    "grid",
    ...TINY,
    ...["--layers", "1", "--steps", "2", "--out", out],
  ]);
  assertEquals(made.code, 0, made.err);
  // a finished cell's metrics.json as a fifo: the cell is not read as done
  const cells = [...Deno.readDirSync(`${out}/cells`)].map((e) => e.name);
  assert(cells.length > 0, "no cells");
  const metrics = `${out}/cells/${cells[0]}/metrics.json`;
  await Deno.remove(metrics);
  await mkfifo(metrics);
  const collected = await guarded(["grid", "--collect", "--out", out], home);
  assert(collected.ms < GUARD_MS, collected.err);
  // plan.json as a fifo: refused naming it
  await Deno.remove(`${out}/plan.json`);
  await mkfifo(`${out}/plan.json`);
  const r = await guarded(["grid", "--collect", "--out", out], home);
  assert(r.code !== 0, r.err);
  assert(r.err.includes("plan.json"), r.err);
});

Deno.test("a new run into a folder whose metrics.json or marker is a fifo fails at once, never hangs", async () => {
  const dir = await tmp();
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  for (const name of ["metrics.json", ".vitrep-run.json"]) {
    const out = `${dir}/fifo_${name}`;
    await Deno.mkdir(out);
    await mkfifo(`${out}/${name}`);
    const r = await guarded(
      ["invert", ...TINY, "--layer", "1", "--steps", "2", "--out", out],
      home,
    );
    assert(r.code !== 0, r.err);
    assert(r.err.includes(out), r.err);
  }
});
