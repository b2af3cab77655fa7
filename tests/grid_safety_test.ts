// grid's plan as untrusted input and its options as careless input (issue 20):
// a tampered cell folder, key, settings or image hash is refused at --cell; --plan
// over another grid's folder is refused unless --replan; options beyond their
// ranges, or fixed by the plan, are refused before anything is written; a grid
// left incomplete by another process's cell exits 3 naming it.
// Every folder is a temporary one; nothing runs against HOME or /.
import { assert, assertEquals } from "./_assert.ts";
import { exists, json, ROOT, run, tmp } from "./_cli.ts";
import { canonicalJson, type GridPlan } from "../src/grid/plan.ts";
import { TASK_LIMITS, taskResources } from "../src/grid/emit.ts";
import { sha256Hex } from "../src/io/mod.ts";

const MODEL = `${ROOT}tests/fixtures/tiny_vit`;
const LOCK_URL = new URL("../src/io/lock.ts", import.meta.url).href;
const BASE = [
  "grid",
  ...["--model", MODEL, "--weights", "fixture", "--threads", "1", "--quiet"],
  ...["--steps", "4"],
];
const GRID = [...BASE, "--layers", "1,2"];

/** Plans GRID (plus `more`) into `out`; returns plan.json as parsed. */
async function plan(out: string, more: string[] = []) {
  const r = await run([...GRID, ...more, "--out", out, "--plan"]);
  assertEquals(r.code, 0, r.err);
  return await json(`${out}/plan.json`);
}

/** Rewrites plan.json in `out` with `edit` applied. */
async function tamper(out: string, edit: (p: GridPlan) => void) {
  const p = await json(`${out}/plan.json`);
  edit(p);
  await Deno.writeTextFile(`${out}/plan.json`, JSON.stringify(p, null, 1));
}

const cell = (out: string, i: number, ...more: string[]) =>
  run(["grid", "--out", out, "--cell", String(i), "--quiet", ...more]);

Deno.test("grid --cell: a cell folder outside OUT/cells is refused, naming it; nothing is written there", async () => {
  const dir = await tmp();
  const out = `${dir}/p/q`;
  await plan(out);
  await tamper(out, (p) => (p.cells[0].dir = "../../x"));
  for (const args of [["--cell", "0"], ["--collect"]]) {
    const r = await run(["grid", "--out", out, "--quiet", ...args]);
    assertEquals(r.code, 1, r.err);
    assert(r.err.includes('"../../x"') && r.err.includes("cells"), r.err);
  }
  assert(!(await exists(`${dir}/x`)), "the run escaped OUT");
  assert(!(await exists(`${out}/cells`)), "a cell folder was made");
  // a key that is a path is refused the same way
  await tamper(out, (p) => {
    p.cells[0].key = "../../../y";
    p.cells[0].dir = "cells/../../../y";
  });
  const k = await cell(out, 0);
  assertEquals(k.code, 1, k.err);
  assert(k.err.includes('"../../../y"'), k.err);
  assert(!(await exists(`${dir}/y`)));
});

Deno.test("grid --cell: a cell folder that is a symlink out of OUT/cells is refused", async () => {
  const dir = await tmp();
  const out = `${dir}/g`;
  const p = await plan(out);
  await Deno.mkdir(`${out}/cells`, { recursive: true });
  await Deno.mkdir(`${dir}/elsewhere`);
  await Deno.symlink(`${dir}/elsewhere`, `${out}/cells/${p.cells[0].key}`);
  const r = await cell(out, 0);
  assertEquals(r.code, 1, r.err);
  assert(r.err.includes(Deno.realPathSync(`${dir}/elsewhere`)), r.err);
  assertEquals([...Deno.readDirSync(`${dir}/elsewhere`)], []);
});

Deno.test("grid --cell: settings that do not match the key, or a changed target image, are refused naming both", async () => {
  const dir = await tmp();
  const out = `${dir}/g`;
  const image = `${dir}/target.png`;
  await Deno.copyFile(`${ROOT}assets/chelsea.png`, image);
  const p = await plan(out, ["--image", image]);
  const cases: [string, (p: GridPlan) => void, string[]][] = [
    ["steps", (q) => (q.cells[0].settings.steps = 400), [p.cells[0].key]],
    ["layer", (q) => {
      (q.cells[0].settings as { layer: number }).layer = 2;
    }, ["layer 1"]],
    ["ablations", (q) => {
      q.rows[0].variant.ablations = [{ remove: ["mlp"], layers: [1] }];
    }, ["mlp"]],
    ["seed", (q) => (q.rows[0].load.seed = 7), [p.cells[0].key]],
    ["image hash", (q) => (q.image!.sha256 = "0".repeat(64)), [
      "0".repeat(64),
      p.image.sha256,
    ]],
  ];
  for (const [what, edit, texts] of cases) {
    await Deno.writeTextFile(`${out}/plan.json`, JSON.stringify(p));
    await tamper(out, edit);
    const r = await cell(out, 0);
    assertEquals(r.code, 1, `${what}: ${r.err}`);
    for (const t of texts) assert(r.err.includes(t), `${what}: ${r.err}`);
    assert(!(await exists(`${out}/cells`)), `${what}: a cell folder was made`);
  }
  // the plan as written, with the image changed on disk: both hashes named
  await Deno.writeTextFile(`${out}/plan.json`, JSON.stringify(p));
  await Deno.copyFile(`${ROOT}tests/fixtures/images/rocket.jpg`, image);
  const r = await cell(out, 0);
  assertEquals(r.code, 1, r.err);
  assert(r.err.includes(p.image.sha256) && r.err.includes(image), r.err);
  assert(/hash to [0-9a-f]{64}/.test(r.err), r.err);
  assert(!(await exists(`${out}/cells`)));
  // the image back: the cell runs
  await Deno.copyFile(`${ROOT}assets/chelsea.png`, image);
  const ok = await cell(out, 0);
  assertEquals(ok.code, 0, ok.err);
});

Deno.test("grid --cell: a key recomputed over other weight-set hashes is refused when the model loads", async () => {
  const out = `${await tmp()}/g`;
  const p = await plan(out);
  const c = p.cells[0];
  c.canonical.weightSets = { fixture: "0123456789abcdef" };
  c.key = (await sha256Hex(canonicalJson(c.canonical))).slice(0, 16);
  c.dir = `cells/${c.key}`;
  await Deno.writeTextFile(`${out}/plan.json`, JSON.stringify(p));
  const r = await cell(out, 0);
  assertEquals(r.code, 1, r.err);
  assert(r.err.includes("0123456789abcdef"), r.err);
  assert(!(await exists(`${out}/${c.dir}/metrics.json`)));
  assert(!(await exists(`${out}/${c.dir}/cell.json`)));
});

Deno.test("grid --plan over another grid's folder is refused naming it and its finished cells, unless --replan", async () => {
  const dir = await tmp();
  const out = `${dir}/live`;
  const first = await plan(out);
  const r0 = await cell(out, 0);
  assertEquals(r0.code, 0, r0.err);
  const before = await Deno.readTextFile(`${out}/plan.json`);
  // the same grid again: not a change (e.g. to emit a job file)
  const again = await run([...GRID, "--out", out, "--plan"]);
  assertEquals(again.code, 0, again.err);
  // another grid: refused, the plan untouched
  const other = [...BASE, "--layers", "1,3", "--out", out, "--plan"];
  const r = await run(other);
  assertEquals(r.code, 2, r.err);
  assert(r.err.includes(`"${out}"`), r.err);
  assert(r.err.includes("2 cells, 1 finished"), r.err);
  assert(r.err.includes("--replan"), r.err);
  assertEquals(await Deno.readTextFile(`${out}/plan.json`), before);
  // with a job file too: nothing written
  const emit = await run([...other, "--emit", "slurm"]);
  assertEquals(emit.code, 2, emit.err);
  assert(!(await exists(`${out}/job.sbatch`)));
  // a plan.json that is not a plan: refused as well
  const junk = `${dir}/junk`;
  await Deno.mkdir(junk);
  await Deno.writeTextFile(`${junk}/plan.json`, "{}");
  const j = await run([...GRID, "--out", junk, "--plan"]);
  assertEquals(j.code, 2, j.err);
  assertEquals(await Deno.readTextFile(`${junk}/plan.json`), "{}");
  // --replan: replaced; the cell with the same key is reused
  const re = await run([...other, "--replan"]);
  assertEquals(re.code, 0, re.err);
  const now = await json(`${out}/plan.json`);
  assertEquals(now.cells[0].key, first.cells[0].key);
  assert(now.cells[1].key !== first.cells[1].key);
  const reused = await cell(out, 0);
  assertEquals(reused.code, 0, reused.err);
  assert(reused.err.includes("finished already"), reused.err);
  // --replan without --plan is a usage error
  const bare = await run([...GRID, "--out", `${dir}/x`, "--replan"]);
  assertEquals(bare.code, 2, bare.err);
  assert(bare.err.includes("--replan"), bare.err);
  assert(!(await exists(`${dir}/x`)));
});

Deno.test("grid: out-of-range and plan-fixed options are refused before anything is written", async (t) => {
  const dir = await tmp();
  const bad: [string[], string][] = [
    [["--save-every", "1000001"], '"1000001"'],
    [["--plan", "--save-every", "1000001"], '"1000001"'],
    [["--plan", "--emit", "slurm", "--save-every", "1000001"], '"1000001"'],
    [["--plan", "--emit", "slurm", "--cpus", "257"], '"257"'],
    [["--plan", "--emit", "slurm", "--cpus", "0"], '"0"'],
    [["--plan", "--emit", "slurm", "--time", "43201"], '"43201"'],
    [["--plan", "--emit", "k8s", "--time", "0"], '"0"'],
    [["--plan", "--emit", "k8s", "--mem", "10"], '"10"'],
    [["--plan", "--emit", "slurm", "--mem", "lots"], '"lots"'],
    [["--plan", "--emit", "slurm", "--parallel", "0"], '"0"'],
    [["--plan", "--emit", "slurm", "--parallel", "10001"], '"10001"'],
  ];
  for (const [args, text] of bad) {
    await t.step(args.join(" "), async () => {
      const out = `${dir}/o_${crypto.randomUUID()}`;
      const r = await run([...GRID, "--out", out, ...args]);
      assertEquals(r.code, 2, r.err);
      assert(r.err.includes(text), r.err);
      assert(!(await exists(out)), `${out} was created`);
    });
  }
  const out = `${dir}/planned`;
  await plan(out);
  const before = await Deno.readTextFile(`${out}/plan.json`);
  const fixed: [string[], string[]][] = [
    [["--cell", "0", "--steps", "9"], ["--steps"]],
    [["--cell", "0", "--model", MODEL, "--threads", "2"], [
      "--model",
      "--threads",
    ]],
    [["--cell", "0", "--save-every", "1000001"], ['"1000001"']],
    [["--collect", "--steps", "9"], ["--steps"]],
    [["--collect", "--save-every", "3"], ["--save-every"]],
    [["--no-verify"], ["--no-verify"]],
  ];
  for (const [args, texts] of fixed) {
    await t.step(args.join(" "), async () => {
      const r = await run(["grid", "--out", out, ...args]);
      assertEquals(r.code, 2, r.err);
      for (const x of texts) assert(r.err.includes(x), r.err);
      assert(!(await exists(`${out}/cells`)), "a cell ran");
      assert(!(await exists(`${out}/grid.md`)), "collect ran");
      assertEquals(await Deno.readTextFile(`${out}/plan.json`), before);
    });
  }
  // the limits themselves are accepted
  const ok = await run([
    ...GRID,
    ...["--out", `${dir}/max`, "--plan", "--emit", "slurm"],
    ...["--cpus", "256", "--time", "43200", "--save-every", "1000000"],
  ]);
  assertEquals(ok.code, 0, ok.err);
  const sb = await Deno.readTextFile(`${dir}/max/job.sbatch`);
  assert(sb.includes("--cpus-per-task=256\n"), sb);
  assert(sb.includes("--time=30-00:00:00\n"), sb);
});

Deno.test("grid --emit: an estimated time beyond the limit is cut to it", () => {
  const plan = {
    model: { peakMiB: 100 },
    cells: [{ cost: { coreSeconds: 1e12 }, settings: { steps: 10 } }],
  } as unknown as GridPlan;
  const r = taskResources(plan, {});
  assertEquals(r.minutes, TASK_LIMITS.minutes);
  assertEquals(r.cpus, 2);
  assertEquals(taskResources(plan, { minutes: 60 }).minutes, 60);
});

/** A second process holding the lock at `path` until its stdin closes; resolves with its pid once held. */
function holder(path: string) {
  const code = `
    import { acquireLock } from ${JSON.stringify(LOCK_URL)};
    const lock = await acquireLock(${
    JSON.stringify(path)
  }, { purpose: "test holder" });
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

Deno.test("grid: a cell another process holds leaves the grid incomplete: named with its pid, exit 3", async () => {
  const out = `${await tmp()}/held`;
  const p = await plan(out);
  const key = p.cells[1].key;
  await Deno.mkdir(`${out}/cells/${key}`, { recursive: true });
  const { child, ready } = holder(`${out}/cells/${key}/cell.lock`);
  try {
    assert((await ready).startsWith("held "));
    const r = await run([...GRID, "--out", out]);
    assertEquals(r.code, 3, r.err);
    assert(r.err.includes("incomplete"), r.err);
    assert(r.err.includes(`cell 1 (${key}`), r.err);
    assert(r.err.includes(`pid ${child.pid}`), r.err);
    assert(!r.err.includes("cell 0 ("), r.err);
    assert(await exists(`${out}/cells/${p.cells[0].key}/metrics.json`));
  } finally {
    await child.stdin.close();
    await child.status;
  }
  const again = await run([...GRID, "--out", out]);
  assertEquals(again.code, 0, again.err);
  assert(again.out.includes("reused 1 of 2 cells"), again.out);
});
