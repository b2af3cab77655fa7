// src/io/lock.ts: exclusive claims between real processes, a dead holder's lock
// taken over, an old lock taken over, racing takers, release by the holder only.
import { assert, assertEquals } from "./_assert.ts";
import { acquireLock, LockedError } from "../src/io/mod.ts";

const LOCK_URL = new URL("../src/io/lock.ts", import.meta.url).href;

/** A second Deno process that takes the lock, prints a line, then waits for stdin to close. */
function holder(path: string): {
  child: Deno.ChildProcess;
  ready: Promise<string>;
} {
  const code = `
    import { acquireLock } from ${JSON.stringify(LOCK_URL)};
    const lock = await acquireLock(${
    JSON.stringify(path)
  }, { purpose: "second process" });
    console.log("held " + Deno.pid);
    for await (const _ of Deno.stdin.readable) { /* wait */ }
    await lock.release();
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const ready = reader.read().then((r) => {
    reader.releaseLock();
    child.stdout.cancel().catch(() => {});
    return r.value ?? "";
  });
  return { child, ready };
}

Deno.test("lock: a live second process holds it; we get LockedError naming it; after release we take it", async () => {
  const path = `${await Deno.makeTempDir()}/cell.lock`;
  const { child, ready } = holder(path);
  const line = await ready;
  assert(line.startsWith("held "), line);
  const pid = Number(line.trim().split(" ")[1]);
  let err: unknown;
  try {
    await acquireLock(path, { purpose: "test" });
  } catch (e) {
    err = e;
  }
  assert(err instanceof LockedError, String(err));
  assertEquals(err.holder.pid, pid);
  assertEquals(err.path, path);
  assert(err.message.includes(`pid ${pid}`), err.message);
  assert(err.message.includes(Deno.hostname()), err.message);
  assert(err.message.includes(err.holder.started), err.message);
  assert(err.message.includes(path), err.message);
  await child.stdin.close();
  assertEquals((await child.status).code, 0);
  const mine = await acquireLock(path);
  assertEquals(mine.info.pid, Deno.pid);
  await mine.release();
  await Deno.remove(path).then(
    () => assert(false, "release left the file"),
    (e) => assert(e instanceof Deno.errors.NotFound),
  );
});

Deno.test("lock: a killed holder's lock (same host) is taken over", async () => {
  const path = `${await Deno.makeTempDir()}/cell.lock`;
  const { child, ready } = holder(path);
  await ready;
  child.kill("SIGKILL");
  await child.status;
  await child.stdin.close().catch(() => {});
  const held = JSON.parse(await Deno.readTextFile(path));
  assertEquals(held.pid, child.pid);
  const lock = await acquireLock(path);
  assertEquals(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
  await lock.release();
});

Deno.test("lock: another host's lock is held until it is older than staleAfterMs", async () => {
  const path = `${await Deno.makeTempDir()}/cell.lock`;
  const other = {
    host: "elsewhere-node-7",
    pid: 1,
    started: "2026-01-01T00:00:00.000Z",
    purpose: "x",
    token: "t",
  };
  await Deno.writeTextFile(path, JSON.stringify(other));
  let err: unknown;
  try {
    await acquireLock(path, { staleAfterMs: 60_000 });
  } catch (e) {
    err = e;
  }
  assert(err instanceof LockedError && err.holder.host === other.host);
  const old = new Date(Date.now() - 120_000);
  await Deno.utime(path, old, old);
  const lock = await acquireLock(path, { staleAfterMs: 60_000 });
  assertEquals(lock.info.host, Deno.hostname());
  await lock.release();
});

Deno.test("lock: racing takers of one stale lock: exactly one wins", async () => {
  const path = `${await Deno.makeTempDir()}/cell.lock`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      host: Deno.hostname(),
      pid: 2 ** 22 + 12345, // above Linux's pid_max: never alive
      started: "2026-01-01T00:00:00.000Z",
      purpose: "dead",
      token: "dead",
    }),
  );
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, () => acquireLock(path)),
  );
  const won = results.filter((r) => r.status === "fulfilled");
  assertEquals(won.length, 1);
  for (const r of results) {
    if (r.status === "rejected") assert(r.reason instanceof LockedError);
  }
  await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value
    .release();
  const leftovers = [...Deno.readDirSync(path.replace(/\/[^/]*$/, ""))];
  assertEquals(leftovers.map((e) => e.name), []);
});

Deno.test("lock: release does not remove a lock someone else took; bad staleAfterMs is a RangeError", async () => {
  const path = `${await Deno.makeTempDir()}/cell.lock`;
  const a = await acquireLock(path);
  await Deno.remove(path); // as if taken over
  const b = await acquireLock(path);
  await a.release();
  assertEquals(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
  let err: unknown;
  try {
    await acquireLock(path, { staleAfterMs: 0 });
  } catch (e) {
    err = e;
  }
  assert(err instanceof RangeError && err.message.includes('"0"'));
  await b.release();
});

Deno.test("lock: four processes racing for one dead holder's lock: exactly one holds it", async () => {
  const path = `${await Deno.makeTempDir()}/cell.lock`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      host: Deno.hostname(),
      pid: 2 ** 22 + 54321,
      started: "2026-01-01T00:00:00.000Z",
      purpose: "dead",
      token: "dead",
    }),
  );
  const code = `
    import { acquireLock } from ${JSON.stringify(LOCK_URL)};
    try {
      const lock = await acquireLock(${JSON.stringify(path)});
      await new Promise((r) => setTimeout(r, 500)); // hold while the others try
      await lock.release();
      console.log("won");
    } catch (err) {
      console.log(err.name === "LockedError" ? "lost" : "error " + err);
    }
  `;
  const outs = await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Deno.Command(Deno.execPath(), {
          args: ["eval", code],
          stdout: "piped",
        })
          .output(),
    ),
  );
  const said = outs.map((o) => new TextDecoder().decode(o.stdout).trim())
    .sort();
  assertEquals(said, ["lost", "lost", "lost", "won"]);
});

/** The state letter of `pid` in /proc/PID/stat ("" when it is gone). */
function procState(pid: number): string {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 1).trim()[0];
  } catch {
    return "";
  }
}

Deno.test({
  name:
    "lock: a holder killed but not yet reaped (a zombie) is not alive: its lock is taken over",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const path = `${await Deno.makeTempDir()}/cell.lock`;
    const code = `
      import { acquireLock } from ${JSON.stringify(LOCK_URL)};
      await acquireLock(${JSON.stringify(path)}, { purpose: "zombie to be" });
      console.log("held " + Deno.pid);
      setInterval(() => {}, 1000);
    `;
    // the holder's parent becomes \`sleep\` (sh execs it), which never reaps it:
    // once killed, the holder stays a zombie until sleep ends
    const parent = new Deno.Command("sh", {
      args: ["-c", '"$0" eval "$1" & exec sleep 60', Deno.execPath(), code],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = parent.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      const line = (await reader.read()).value ?? "";
      reader.cancel().catch(() => {});
      assert(line.startsWith("held "), line);
      const pid = Number(line.trim().split(" ")[1]);
      await assertLockedBy(path, pid);
      Deno.kill(pid, "SIGKILL");
      for (let i = 0; i < 500 && procState(pid) !== "Z"; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assertEquals(procState(pid), "Z", "the holder is not a zombie");
      assertEquals(JSON.parse(await Deno.readTextFile(path)).pid, pid);
      const lock = await acquireLock(path, { purpose: "after the zombie" });
      assertEquals(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
      await lock.release();
    } finally {
      parent.kill("SIGKILL");
      await parent.status;
    }
  },
});

/** Asserts that acquiring `path` fails naming `pid`. */
async function assertLockedBy(path: string, pid: number): Promise<void> {
  let err: unknown;
  try {
    await acquireLock(path);
  } catch (e) {
    err = e;
  }
  assert(err instanceof LockedError, String(err));
  assertEquals(err.holder.pid, pid);
}
