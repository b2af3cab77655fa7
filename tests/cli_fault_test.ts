// Faults on real processes (issue 10 #2, #3): runs killed with SIGKILL at
// random moments resume to exactly the uninterrupted result, and two processes
// given the same --out: one runs, the other fails at once naming it. Bounded:
// 6 kills of a 300-step run on the tiny model, well under a minute.
import { assert, assertEquals } from "./_assert.ts";
import { exists, json, ROOT, run, spawnCli, TINY, tmp } from "./_cli.ts";
import { decodeNpy } from "../src/io/mod.ts";

const STEPS = "300";
const INV = (out: string, ...more: string[]) => [
  "invert",
  ...TINY,
  ...["--image", `${ROOT}assets/chelsea.png`, "--layer", "2"],
  ...["--steps", STEPS, "--trace-every", "7", "--out", out],
  ...more,
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The step of the snapshot in `out`, or -1 while there is none (or it is being replaced). */
async function snapshotStep(out: string): Promise<number> {
  try {
    return (await json(`${out}/snapshot/state.json`)).step;
  } catch {
    return -1;
  }
}

/** A small seeded generator, so a failure can be replayed from its seed. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function csvRows(text: string): number[][] {
  return text.trim().split("\n").slice(1).map((l) => l.split(",").map(Number));
}

Deno.test("kill -9 at random moments of a --save-every 1 run: every resume continues, the result equals the uninterrupted run's", async () => {
  const dir = await tmp();
  const full = await run(INV(`${dir}/full`));
  assertEquals(full.code, 0, full.err);
  const seed = Date.now() % 100000;
  const random = lcg(seed);
  const out = `${dir}/killed`;
  const log: string[] = [`seed ${seed}`];
  const started = performance.now();
  let kills = 0;
  for (let k = 0; k < 6; k++) {
    const before = await snapshotStep(out);
    const args = k === 0
      ? INV(out, "--save-every", "1")
      : ["invert", "--quiet", "--resume", out];
    const child = spawnCli(args);
    const stderr = new Response(child.stderr).text();
    let exited: Deno.CommandStatus | null = null;
    child.status.then((s) => (exited = s));
    // wait until it is stepping (its snapshot moves), then a random moment more
    while (exited === null && (await snapshotStep(out)) <= before) {
      await sleep(5);
    }
    if (exited === null) {
      const delay = Math.floor(random() * 150);
      await sleep(delay);
      try {
        child.kill("SIGKILL");
      } catch {
        // ended meanwhile
      }
      log.push(`run ${k}: killed ${delay} ms after step ${before} moved`);
      kills++;
    }
    const status = await child.status;
    await child.stdout.cancel();
    const text = await stderr;
    if (status.code !== 0) {
      assertEquals(status.signal, "SIGKILL", `${log.join("; ")}: ${text}`);
    }
    if (status.code === 0) break; // finished before the kill
  }
  // the last resume runs to the end
  if (
    !(await exists(`${out}/metrics.json`)) ||
    (await json(`${out}/metrics.json`)).interrupted !== false
  ) {
    const last = await run(["invert", "--quiet", "--resume", out]);
    assertEquals(last.code, 0, `${log.join("; ")}: ${last.err}`);
  }
  log.push(`${((performance.now() - started) / 1000).toFixed(1)} s`);
  assert(kills >= 3, `only ${kills} kills landed: ${log.join("; ")}`);
  const a = decodeNpy(await Deno.readFile(`${dir}/full/representation.npy`));
  const b = decodeNpy(await Deno.readFile(`${out}/representation.npy`));
  assertEquals(b.shape, a.shape);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) {
    worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  }
  assert(worst <= 1e-6, `${log.join("; ")}: max |Δ| ${worst}`);
  const ta = csvRows(await Deno.readTextFile(`${dir}/full/traces.csv`));
  const tb = csvRows(await Deno.readTextFile(`${out}/traces.csv`));
  assertEquals(tb.map((r) => r[0]), ta.map((r) => r[0]), log.join("; "));
  for (let r = 0; r < ta.length; r++) {
    for (let c = 0; c < ta[r].length; c++) {
      const x = ta[r][c], y = tb[r][c];
      assert(
        Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x)),
        `${log.join("; ")}: traces row ${r} column ${c}: ${x} vs ${y}`,
      );
    }
  }
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.final, (await json(`${dir}/full/metrics.json`)).final);
  // no temporaries, no lock left
  const names = [...Deno.readDirSync(out)].map((e) => e.name);
  assert(
    names.every((n) => !n.endsWith(".tmp") && !n.startsWith("snapshot.")),
    names.join(" "),
  );
  assert(!names.includes(".vitrep.lock"), names.join(" "));
});

Deno.test("two processes on one --out: the second fails at once naming the first; the first completes", async () => {
  const out = `${await tmp()}/shared`;
  const first = spawnCli(INV(out).map((a) => a === STEPS ? "1500" : a));
  const firstErr = new Response(first.stderr).text();
  let firstDone = false;
  first.status.then(() => (firstDone = true));
  while (!(await exists(`${out}/.vitrep.lock`))) {
    if (firstDone) {
      assert(false, `the first run ended early: ${await firstErr}`);
    }
    await sleep(10);
  }
  const t0 = performance.now();
  const second = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, ...INV(out)],
    cwd: ROOT,
  }).output();
  const secs = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(second.stderr);
  assertEquals(second.code, 1, err);
  assert(err.includes(`pid ${first.pid}`), err);
  assert(err.includes("another run writes there"), err);
  assert(!firstDone, `the second took ${secs} s: not at once`);
  const status = await first.status;
  await first.stdout.cancel();
  assertEquals(status.code, 0, await firstErr);
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.final.steps, 1500);
  assertEquals(m.options.steps, "1500");
});

/** The largest |a − b| of two npy files' values (same shape asserted). */
async function npyDiff(a: string, b: string): Promise<number> {
  const x = decodeNpy(await Deno.readFile(a));
  const y = decodeNpy(await Deno.readFile(b));
  assertEquals(y.shape, x.shape);
  let worst = 0;
  for (let i = 0; i < x.data.length; i++) {
    worst = Math.max(worst, Math.abs(x.data[i] - y.data[i]));
  }
  return worst;
}

/** Reads a child's stderr until `pattern` shows (or it ends); the rest is drained in the background. */
async function waitFor(
  child: Deno.ChildProcess,
  pattern: RegExp,
): Promise<{ text: string; rest: Promise<string> }> {
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const rest = (async () => {
    let more = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return more;
      more += value;
    }
  })();
  return { text, rest };
}

for (
  const [command, args, file] of [
    ["invert", (out: string) => INV(out), "representation.npy"],
    ["generate", (out: string) => [
      "generate",
      ...TINY,
      ...["--class", "3", "--steps", STEPS, "--jitter-after", "100"],
      ...["--canvas", "48", "--trace-every", "7", "--out", out],
    ], "generated.npy"],
  ] as const
) {
  Deno.test(`SIGTERM (Slurm, Kubernetes) on a running ${command}: stops after the step, snapshot, exit 130; --resume ends equal to the uninterrupted run`, async () => {
    const dir = await tmp();
    const full = await run(args(`${dir}/full`));
    assertEquals(full.code, 0, full.err);
    const out = `${dir}/term`;
    // progress lines (no --quiet): the first one says it is stepping
    const child = spawnCli(args(out).filter((a) => a !== "--quiet"));
    const { text, rest } = await waitFor(child, new RegExp(`/${STEPS} `));
    child.kill("SIGTERM");
    const [status] = await Promise.all([child.status, child.stdout.cancel()]);
    const err = text + await rest;
    assertEquals(status.code, 130, err);
    assertEquals(status.signal, null, err);
    assert(err.includes("SIGTERM"), err);
    const m = await json(`${out}/metrics.json`);
    assertEquals(m.interrupted, true);
    assertEquals(m.stopReason, "SIGTERM");
    const steps = m.final.steps;
    assert(steps >= 1 && steps < Number(STEPS), `stopped at ${steps}`);
    // the snapshot is of the step it stopped at (not the start record)
    assertEquals(await snapshotStep(out), steps);
    assert(!(await exists(`${out}/.vitrep.lock`)), "the lock stayed");
    const resumed = await run([command, "--quiet", "--resume", out]);
    assertEquals(resumed.code, 0, resumed.err);
    const rm = await json(`${out}/metrics.json`);
    assertEquals(rm.resumedFrom.step, steps);
    assertEquals(rm.interrupted, false);
    assertEquals(rm.final, (await json(`${dir}/full/metrics.json`)).final);
    const worst = await npyDiff(`${dir}/full/${file}`, `${out}/${file}`);
    assert(worst <= 1e-6, `max |Δ| ${worst}`);
    assertEquals(
      await Deno.readTextFile(`${out}/traces.csv`),
      await Deno.readTextFile(`${dir}/full/traces.csv`),
    );
  });
}

Deno.test("kill -9 before the first snapshot: the start record lets --resume restart it, ending equal to the uninterrupted run", async () => {
  const dir = await tmp();
  const full = await run(INV(`${dir}/full`));
  assertEquals(full.code, 0, full.err);
  assert(
    !(await exists(`${dir}/full/snapshot`)),
    "a finished run kept its start record",
  );
  // 1. killed at once: before it claimed its folder, nothing of it exists
  const early = `${dir}/early`;
  const first = spawnCli(INV(early));
  first.kill("SIGKILL");
  await Promise.all([
    first.status,
    first.stdout.cancel(),
    first.stderr.cancel(),
  ]);
  const none = await run(["invert", "--quiet", "--resume", early]);
  assertEquals(none.code, 1, none.err);
  assert(none.err.includes("run its command again"), none.err);
  // 2. killed after its start, between steps, long before --save-every's first snapshot
  const random = lcg(Date.now() % 100000);
  const log: string[] = [];
  for (const [k, save] of [[0, "0"], [1, "200"]] as const) {
    const out = `${dir}/killed${k}`;
    const child = spawnCli(INV(out, "--save-every", save));
    let ended = false;
    child.status.then(() => (ended = true));
    while (!ended && (await snapshotStep(out)) < 0) await sleep(5);
    const delay = Math.floor(random() * 100);
    await sleep(delay);
    child.kill("SIGKILL");
    const [status] = await Promise.all([
      child.status,
      child.stdout.cancel(),
      child.stderr.cancel(),
    ]);
    log.push(`run ${k}: killed ${delay} ms after the start record`);
    assertEquals(status.signal, "SIGKILL", log.join("; "));
    assertEquals(await snapshotStep(out), 0, log.join("; "));
    assert(!(await exists(`${out}/metrics.json`)), log.join("; "));
    const state = await json(`${out}/snapshot/state.json`);
    assertEquals(state.options.steps, STEPS);
    assertEquals(state.options["save-every"], save);
    const resumed = await run(["invert", "--quiet", "--resume", out]);
    assertEquals(resumed.code, 0, `${log.join("; ")}: ${resumed.err}`);
    const m = await json(`${out}/metrics.json`);
    assertEquals(m.resumedFrom.step, 0);
    assertEquals(m.final, (await json(`${dir}/full/metrics.json`)).final);
    const worst = await npyDiff(
      `${dir}/full/representation.npy`,
      `${out}/representation.npy`,
    );
    assert(worst <= 1e-6, `${log.join("; ")}: max |Δ| ${worst}`);
    assertEquals(
      await Deno.readTextFile(`${out}/traces.csv`),
      await Deno.readTextFile(`${dir}/full/traces.csv`),
    );
  }
  // 3. the original command again also starts over cleanly
  const again = await run(INV(early));
  assertEquals(again.code, 0, again.err);
});
