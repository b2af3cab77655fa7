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
