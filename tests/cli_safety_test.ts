// Hostile input on the command line (issue 10): resource limits, where a run
// may write, snapshots as one unit, resume that checks its files, relative
// weights and a run's outcome. Run in-process through main() on the tiny model.
import { assert, assertEquals } from "./_assert.ts";
import {
  exists,
  json,
  ROOT,
  run,
  runWithHome,
  spawnCli,
  TINY,
  tmp,
} from "./_cli.ts";
import { acquireLock, decodeNpy, encodeNpy } from "../src/io/mod.ts";
import { LIMITS } from "../src/run/settings.ts";
import { saveSnapshot } from "../src/run/snapshot.ts";

const PHOTO = `${ROOT}assets/chelsea.png`;
const INV = (out: string, ...more: string[]) => [
  "invert",
  ...TINY,
  "--image",
  PHOTO,
  "--layer",
  "2",
  "--trace-every",
  "3",
  "--out",
  out,
  ...more,
];

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** [args, exit code, texts the message must contain]: each must fail before writing --out. */
const LIMIT_CASES: [string[], number, string[]][] = [
  [["invert", "--threads", "100000"], 2, [
    '"100000"',
    `at most ${LIMITS.threads}`,
  ]],
  [["invert", "--remove", "attn", "--remove-layers", "1-9007199254740991"], 2, [
    '"1-9007199254740991"',
    "1..3",
  ]],
  [
    [
      "generate",
      "--class",
      "1",
      "--remove",
      "mlp",
      "--remove-layers",
      "2,5-99999999999",
    ],
    2,
    [
      "99999999999",
      "1..3",
    ],
  ],
  [["invert", "--steps", "1000001"], 2, ['"1000001"', "at most 1000000"]],
  [["invert", "--save-every", "99999999"], 2, ["--save-every", "1000000"]],
  [["invert", "--trace-every", "99999999"], 2, ["--trace-every", "1000000"]],
  [["invert", "--stop-at", "99999999"], 2, ["--stop-at", "1000000"]],
  [["generate", "--class", "1", "--canvas", "1000000"], 2, [
    '"1000000"',
    `at most ${LIMITS.canvas}`,
  ]],
  [["generate", "--class", "1", "--jitter-after", "5000000"], 2, [
    "--jitter-after",
    "1000000",
  ]],
  [["filters", "--scale", "100000"], 2, [
    '"100000"',
    `at most ${LIMITS.scale}`,
  ]],
  [["filters", "--columns", "100000"], 2, ['"100000"', "at most 16"]],
  [
    [
      "filters",
      "--model",
      "vit_b_32",
      "--weights",
      "untrained",
      "--scale",
      "64",
    ],
    2,
    [
      "81961×40981 px",
      "lower --scale",
    ],
  ],
  [["forward", "--threads", "100000"], 2, ["--threads"]],
  [["grid", "--layers", "1-1000000"], 2, ['"1-1000000"', "at most 1024"]],
  [["grid", "--layers", "1-1000"], 2, [
    '"1-1000"',
    "0 (input processing) to 3",
  ]],
  [["invert", "--out", ""], 2, ['--out ""']],
  [["invert", "--out", "/"], 2, ['--out "/"', "root"]],
  [["generate", "--class", "1", "--out", "/"], 2, ['--out "/"']],
  [["forward", "--out", ""], 2, ['--out ""']],
  [["filters", "--out", "/"], 2, ['--out "/"']],
  [["demo", "--out", ""], 2, ['--out ""']],
];

Deno.test("limits: huge numbers and root-like --out fail at once, naming the value and the limit", async (t) => {
  const dir = await tmp();
  for (const [args, code, texts] of LIMIT_CASES) {
    await t.step(args.join(" "), async () => {
      const [cmd, ...rest] = args;
      const tiny = ["forward", "filters"].includes(cmd)
        ? TINY.filter((a) => a !== "--quiet")
        : TINY;
      const out = `${dir}/out_${crypto.randomUUID()}`;
      const outArgs = rest.includes("--out") ? [] : ["--out", out];
      const layer = cmd === "invert" ? ["--layer", "1"] : [];
      const started = performance.now();
      const r = await run([cmd, ...tiny, ...layer, ...rest, ...outArgs]);
      assertEquals(r.code, code, r.err);
      for (const text of texts) {
        assert(r.err.includes(text), `"${r.err}" lacks ${text}`);
      }
      assert(performance.now() - started < 10_000, "not at once");
      assert(!(await exists(out)), `${out} was created`);
    });
  }
  // the home folder: a fake one, in a child process (never the real home)
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  const r = await runWithHome(home, [
    "invert",
    ...TINY,
    "--layer",
    "1",
    "--out",
    home,
  ]);
  assertEquals(r.code, 2, r.err);
  assert(r.err.includes("home folder"), r.err);
  assertEquals([...Deno.readDirSync(home)], []);
});

Deno.test("--out holding another run: refused naming it; --overwrite replaces it (and its snapshot); the same run may repeat", async () => {
  const out = `${await tmp()}/run`;
  const first = await run(INV(out, "--steps", "6", "--stop-at", "3"));
  assertEquals(first.code, 0, first.err);
  assert(await exists(`${out}/snapshot/state.json`));
  const other = await run(INV(out, "--steps", "4"));
  assertEquals(other.code, 2, other.err);
  assert(other.err.includes(`${out}/metrics.json`), other.err);
  assert(other.err.includes("--overwrite"), other.err);
  assert(other.err.includes(`--resume ${out}`), other.err);
  // nothing of the first run was touched
  assertEquals((await json(`${out}/metrics.json`)).final.steps, 3);
  assertEquals((await json(`${out}/snapshot/state.json`)).step, 3);
  // --overwrite: the new run replaces the old one, its snapshot included
  const replaced = await run(INV(out, "--steps", "4", "--overwrite"));
  assertEquals(replaced.code, 0, replaced.err);
  assertEquals((await json(`${out}/metrics.json`)).final.steps, 4);
  assert(!(await exists(`${out}/snapshot`)), "stale snapshot kept");
  const resume = await run(["invert", "--quiet", "--resume", out]);
  assertEquals(resume.code, 1, resume.err);
  assert(resume.err.includes("snapshot/state.json"), resume.err);
  // the same options again: allowed, same result
  const before = await Deno.readFile(`${out}/representation.npy`);
  const again = await run(INV(out, "--steps", "4"));
  assertEquals(again.code, 0, again.err);
  assertEquals(await Deno.readFile(`${out}/representation.npy`), before);
  // a folder of the user's (files of no run, no marker) is refused, with or without --overwrite
  const plain = `${await tmp()}/plain`;
  await Deno.mkdir(plain);
  await Deno.writeTextFile(`${plain}/notes.txt`, "mine");
  for (const more of [[], ["--overwrite"]]) {
    const r = await run(INV(plain, "--steps", "2", ...more));
    assertEquals(r.code, 2, r.err);
    assert(r.err.includes("notes.txt"), r.err);
    assertEquals([...Deno.readDirSync(plain)].map((e) => e.name), [
      "notes.txt",
    ]);
  }
  assertEquals(await Deno.readTextFile(`${plain}/notes.txt`), "mine");
});

Deno.test("--out lock: a live holder is named and nothing is written; a dead holder's lock is taken over", async () => {
  const out = `${await tmp()}/locked`;
  await Deno.mkdir(out);
  const lock = await acquireLock(`${out}/.vitrep.lock`, { purpose: "test" });
  try {
    const r = await run(INV(out, "--steps", "2"));
    assertEquals(r.code, 1, r.err);
    assert(r.err.includes(`pid ${Deno.pid}`), r.err);
    assert(r.err.includes(lock.info.host), r.err);
    assert(r.err.includes(lock.info.started), r.err);
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), [
      ".vitrep.lock",
    ]);
  } finally {
    await lock.release();
  }
  // a lock left by a process that died (same host)
  const child = new Deno.Command("true").spawn();
  await child.status;
  await Deno.writeTextFile(
    `${out}/.vitrep.lock`,
    JSON.stringify({
      host: Deno.hostname(),
      pid: child.pid,
      started: new Date().toISOString(),
      purpose: "killed",
      token: "x",
    }),
  );
  const r = await run(INV(out, "--steps", "2"));
  assertEquals(r.code, 0, r.err);
  assert(!(await exists(`${out}/.vitrep.lock`)), "lock not released");
});

Deno.test("snapshots: one unit; a write failure or a kill between renames keeps the previous one; temporaries are cleaned", async () => {
  const out = `${await tmp()}/snap`;
  const r = await run(
    INV(out, "--steps", "8", "--save-every", "2", "--stop-at", "4"),
  );
  assertEquals(r.code, 0, r.err);
  const state = await json(`${out}/snapshot/state.json`);
  assertEquals(state.step, 4);
  const bytes = await Deno.readFile(`${out}/snapshot/image.npy`);
  assertEquals(state.image.sha256, await sha256(bytes));
  assertEquals(state.image.shape, [1, 3, 32, 32]);
  // a failing write (bad image) leaves the previous snapshot and no temporaries
  let failed = false;
  try {
    await saveSnapshot(out, {
      command: "invert",
      step: 6,
      options: state.options,
    }, {
      image: new Float32Array(5),
      shape: [1, 3, 32, 32],
      traces: "",
    });
  } catch {
    failed = true;
  }
  assert(failed, "the bad write did not fail");
  assertEquals((await json(`${out}/snapshot/state.json`)).step, 4);
  assertEquals(await Deno.readFile(`${out}/snapshot/image.npy`), bytes);
  assert(
    [...Deno.readDirSync(out)].every((e) => !e.name.includes(".tmp")),
    "temporaries left",
  );
  // as if killed between the renames: the old snapshot moved aside, none in place,
  // a half-written new one and stray temporaries beside it
  await Deno.rename(`${out}/snapshot`, `${out}/snapshot.old-1234`);
  await Deno.mkdir(`${out}/snapshot.tmp-5678`);
  await Deno.writeTextFile(`${out}/snapshot.tmp-5678/state.json`, "{");
  await Deno.writeTextFile(`${out}/metrics.json.abcd.tmp`, "partial");
  const resumed = await run(["invert", "--quiet", "--resume", out]);
  assertEquals(resumed.code, 0, resumed.err);
  assertEquals((await json(`${out}/metrics.json`)).resumedFrom.step, 4);
  const full = `${await tmp()}/full`;
  assertEquals((await run(INV(full, "--steps", "8"))).code, 0);
  assertEquals(
    await Deno.readFile(`${out}/representation.npy`),
    await Deno.readFile(`${full}/representation.npy`),
  );
  const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  assert(
    names.every((n) => !n.includes(".tmp") && !n.startsWith("snapshot.")),
    names.join(" "),
  );
});

/** A stopped run's folder to corrupt, one field at a time. */
async function stoppedRun(): Promise<string> {
  const out = `${await tmp()}/stopped`;
  const r = await run(INV(out, "--steps", "10", "--stop-at", "7"));
  assertEquals(r.code, 0, r.err);
  return out;
}

/** [what is changed, change to state.json, the message must contain]. */
const BAD_STATE: [string, (s: Record<string, unknown>) => void, string[]][] = [
  ["negative step", (s) => (s.step = -1), ['"step" is -1']],
  ["fractional step", (s) => (s.step = 2.5), ['"step" is 2.5']],
  ["null step", (s) => (s.step = null), ['"step" is null']],
  ["string step", (s) => (s.step = "3"), ['"step" is "3"']],
  ["step past --steps", (s) => (s.step = 11), ["--steps", "step 11"]],
  ["criterion step text", (s) => (s.criterionStep = "x"), [
    '"criterionStep" is "x"',
  ]],
  ["criterion step after the step", (s) => (s.criterionStep = 9), [
    '"criterionStep" is 9',
  ]],
  ["options a string", (s) => (s.options = "layer 2"), [
    '"options" is "layer 2"',
  ]],
  ["an option of the wrong type", (s) => {
    (s.options as Record<string, unknown>).steps = 10;
  }, ['"options.steps" is 10']],
  ["an unknown option", (s) => {
    (s.options as Record<string, unknown>).bogus = "1";
  }, ['"options.bogus"']],
  ["format", (s) => (s.format = "x"), ['"format" is "x"']],
  ["no image record", (s) => delete s.image, ['"image" is missing']],
];

Deno.test("resume checks every snapshot field, naming the file and the field", async (t) => {
  const base = await stoppedRun();
  const file = "snapshot/state.json";
  for (const [what, change, texts] of BAD_STATE) {
    await t.step(what, async () => {
      const out = `${await tmp()}/bad`;
      await Deno.mkdir(out);
      await Deno.mkdir(`${out}/snapshot`);
      for (const f of ["image.npy", "traces.csv", "state.json"]) {
        await Deno.copyFile(`${base}/snapshot/${f}`, `${out}/snapshot/${f}`);
      }
      const s = await json(`${out}/${file}`);
      change(s);
      await Deno.writeTextFile(`${out}/${file}`, JSON.stringify(s));
      const r = await run(["invert", "--quiet", "--resume", out]);
      assert(r.code === 1 || r.code === 2, `${r.code}: ${r.err}`);
      if (!texts.includes("--steps")) assert(r.err.includes(file), r.err);
      for (const text of texts) assert(r.err.includes(text), r.err);
      assert(!(await exists(`${out}/metrics.json`)), "outputs written");
    });
  }
});

/** Rewrites the snapshot image and its sha256 in state.json. */
async function replaceImage(out: string, data: Float32Array, shape: number[]) {
  const bytes = encodeNpy(data, shape);
  await Deno.writeFile(`${out}/snapshot/image.npy`, bytes);
  const s = await json(`${out}/snapshot/state.json`);
  s.image = { shape, sha256: await sha256(bytes) };
  await Deno.writeTextFile(`${out}/snapshot/state.json`, JSON.stringify(s));
}

Deno.test("resume checks the snapshot image and traces", async () => {
  const check = async (
    corrupt: (out: string) => Promise<void>,
    texts: string[],
  ) => {
    const out = await stoppedRun();
    await corrupt(out);
    const r = await run(["invert", "--quiet", "--resume", out]);
    assertEquals(r.code, 1, r.err);
    for (const text of texts) assert(r.err.includes(text), r.err);
    assertEquals((await json(`${out}/metrics.json`)).final.steps, 7);
  };
  const img = async (out: string) =>
    decodeNpy(await Deno.readFile(`${out}/snapshot/image.npy`)).data;
  // changed bytes, checksum not updated
  await check(async (out) => {
    const d = await img(out);
    d[10] = 0.123;
    await Deno.writeFile(
      `${out}/snapshot/image.npy`,
      encodeNpy(d, [1, 3, 32, 32]),
    );
  }, ["snapshot/image.npy", "sha256"]);
  // NaN with a matching checksum
  await check(async (out) => {
    const d = await img(out);
    d[5] = NaN;
    await replaceImage(out, d, [1, 3, 32, 32]);
  }, ["snapshot/image.npy", "value 5 is NaN"]);
  // another size
  await check(
    (out) => replaceImage(out, new Float32Array(3 * 16 * 16), [1, 3, 16, 16]),
    ["snapshot/image.npy", "[1,3,16,16]", "32"],
  );
  // traces: a garbage field, a missing row, a bad header
  const traces = async (out: string, edit: (lines: string[]) => string[]) => {
    const path = `${out}/snapshot/traces.csv`;
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    await Deno.writeTextFile(path, edit(lines).join("\n") + "\n");
  };
  await check(
    (out) =>
      traces(
        out,
        (l) => [l[0], l[1].replace(/^0,[^,]*/, "0,abc"), ...l.slice(2)],
      ),
    ["snapshot/traces.csv", 'row 1, "loss" is "abc"'],
  );
  await check(
    (out) => traces(out, (l) => [l[0], l[1], ...l.slice(3)]),
    ["snapshot/traces.csv", "steps 0,6", "0,3,6"],
  );
  await check(
    (out) => traces(out, (l) => ["a,b", ...l.slice(1)]),
    ["snapshot/traces.csv", 'header "a,b"'],
  );
});

Deno.test("metrics.json names the outcome; a run that diverges writes what is valid and exits 1", async () => {
  const dir = await tmp();
  const ok = await run(INV(`${dir}/ok`, "--steps", "3"));
  assertEquals(ok.code, 0, ok.err);
  const m = await json(`${dir}/ok/metrics.json`);
  assertEquals(
    m.outcome,
    m.final.criterionMet ? "criterion met" : "criterion not met",
  );
  const stop = await run(INV(`${dir}/stop`, "--steps", "5", "--stop-at", "2"));
  assertEquals(stop.code, 0, stop.err);
  assertEquals(
    (await json(`${dir}/stop/metrics.json`)).outcome,
    "stopped at step 2",
  );
  const gen = await run([
    "generate",
    ...TINY,
    ...["--class", "1", "--steps", "3", "--out", `${dir}/gen`],
  ]);
  assertEquals(gen.code, 0, gen.err);
  assertEquals((await json(`${dir}/gen/metrics.json`)).outcome, "completed");
  // non-finite
  const nan = await run(INV(`${dir}/nan`, "--steps", "10", "--lr", "1e38"));
  assertEquals(nan.code, 1, nan.err);
  const nm = await json(`${dir}/nan/metrics.json`);
  assert(/^non-finite at step \d+$/.test(nm.outcome), nm.outcome);
  assert(nan.err.includes("lower --lr"), nan.err);
  assert(!nan.out.includes("| layer |"), "a table for a diverged run");
  // exploded: finite but far outside [0, 1]; exit 1, no table, the outcome named,
  // the image before the step kept (and resumable)
  const big = await run(INV(`${dir}/big`, "--steps", "10", "--lr", "1e5"));
  assertEquals(big.code, 1, big.err);
  assert(!big.out.includes("| layer |"), "a table for an exploded run");
  const bm = await json(`${dir}/big/metrics.json`);
  assert(/^exploded at step \d+$/.test(bm.outcome), bm.outcome);
  assertEquals(bm.stopReason, "exploded");
  assertEquals(bm.interrupted, true);
  const kept = decodeNpy(await Deno.readFile(`${dir}/big/snapshot/image.npy`));
  assert(kept.data.every((v) => Math.abs(v) < 10), "kept a runaway image");
  assert(!(await exists(`${dir}/big/representation.npy`)));
  const calm = await run([
    "invert",
    "--quiet",
    ...["--resume", `${dir}/big`, "--lr", "0.01"],
  ]);
  assertEquals(calm.code, 0, calm.err);
  assertEquals(
    (await json(`${dir}/big/metrics.json`)).outcome.startsWith("criterion"),
    true,
  );
  const g = await run([
    "generate",
    ...TINY,
    ...["--class", "1", "--steps", "5", "--lr", "1e9", "--out", `${dir}/gbig`],
  ]);
  assertEquals(g.code, 1, g.err);
  const gm = await json(`${dir}/gbig/metrics.json`);
  assert(/^(exploded|non-finite) at step \d+$/.test(gm.outcome), gm.outcome);
});

Deno.test("a relative --weights path means the current folder, and is saved absolute", async () => {
  const dir = await tmp();
  await Deno.copyFile(
    `${ROOT}tests/fixtures/tiny_vit/fixture2.safetensors`,
    `${dir}/mine.safetensors`,
  );
  // run from `dir`
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}mod.ts`,
      "invert",
      ...["--model", `${ROOT}tests/fixtures/tiny_vit`],
      ...["--weights", "mine.safetensors", "--quiet", "--layer", "1"],
      ...["--steps", "2", "--out", "out"],
    ],
    cwd: dir,
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 0, err);
  const m = await json(`${dir}/out/metrics.json`);
  assertEquals(m.options.weights, `${dir}/mine.safetensors`);
});

Deno.test("terminal: -h, --version, a negative value named by our own check, plain progress lines into a pipe", async () => {
  const h = await run(["invert", "-h"]);
  assertEquals(h.code, 0);
  assert(h.out.includes("--steps N"), h.out);
  const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const v = await run(["--version"]);
  assertEquals(v.code, 0);
  assertEquals(v.out, `vitrep ${denoJson.version}`);
  for (const [flag, value] of [["--steps", "-1"], ["--lr", "-0.1:0"]]) {
    const out = `${await tmp()}/neg`;
    const r = await run(["invert", ...TINY, flag, value, "--out", out]);
    assertEquals(r.code, 2, r.err);
    assert(r.err.includes(`Invalid ${flag} "${value}"`), r.err);
    assert(!r.err.includes("ambiguous"), r.err);
  }
  const out = `${await tmp()}/pipe`;
  const child = spawnCli(
    INV(out, "--steps", "30").filter((a) => a !== "--quiet"),
  );
  const { code, stderr } = await child.output();
  const text = new TextDecoder().decode(stderr);
  assertEquals(code, 0, text);
  assert(!text.includes("\r") && !text.includes("\x1b["), JSON.stringify(text));
  assert(text.includes("invert encoder 2 (encoder_layer_1) 1/30"), text);
  assert(text.includes("30/30"), text);
});
