// grid as plan → cells → collect across processes (no batch system needed):
// --plan, --cell I (and the index from the environment), --collect, two workers
// on one cell, and the Slurm and Kubernetes job files. The real Slurm cluster
// runs in cluster_slurm_test.ts.
import { assert, assertEquals } from "./_assert.ts";
import { run, tmp } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MODEL = `${ROOT}tests/fixtures/tiny_vit`;
const GRID = [
  "grid",
  ...["--model", MODEL, "--weights", "fixture", "--threads", "1", "--quiet"],
  ...["--steps", "6", "--layers", "1-3"],
  ...["--variant", "plain=", "--variant", "no LN=--remove layernorm"],
];

const json = async (path: string) => JSON.parse(await Deno.readTextFile(path));

/** Runs mod.ts in a new process. */
function spawn(args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function outputOf(child: Deno.ChildProcess) {
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

Deno.test("grid --plan writes every cell with its key, options and cost; --cell and --collect rebuild the one-process grid", async () => {
  const dir = await tmp();
  // the grid in one process
  const whole = await run([...GRID, "--out", `${dir}/whole`]);
  assertEquals(whole.code, 0, whole.err);
  const wm = await json(`${dir}/whole/metrics.json`);
  // the plan: nothing runs
  const planned = await run([...GRID, "--out", `${dir}/apart`, "--plan"]);
  assertEquals(planned.code, 0, planned.err);
  assert(planned.out.includes("6 cells"), planned.out);
  const plan = await json(`${dir}/apart/plan.json`);
  assertEquals(plan.cells.length, 6);
  assertEquals(
    plan.cells.map((c: { key: string }) => c.key),
    wm.cells.map((c: { key: string }) => c.key),
  );
  for (const [i, c] of plan.cells.entries()) {
    assertEquals(c.index, i);
    assertEquals(c.settings.steps, 6);
    assertEquals(c.settings.layer, [1, 2, 3][i % 3]);
    assert(c.cost.gflop > 0 && c.cost.coreSeconds > 0, JSON.stringify(c.cost));
  }
  // deeper layers cost more
  assert(plan.cells[2].cost.gflop > plan.cells[0].cost.gflop);
  assertEquals(plan.rows[1].variant.ablations, [{
    remove: ["ln1", "ln2"],
    layers: [1, 2, 3],
  }]);
  assert(
    !(await Deno.stat(`${dir}/apart/cells`).then(() => true, () => false)),
  );
  // collect before any cell: every cell missing, listed by index and key, exit 1
  const early = await run(["grid", "--out", `${dir}/apart`, "--collect"]);
  assertEquals(early.code, 1, early.err);
  for (const c of plan.cells) {
    assert(early.err.includes(`cell ${c.index} (${c.key}`), early.err);
  }
  assert((await Deno.readTextFile(`${dir}/apart/grid.md`)).includes("missing"));
  // the cells, by --cell and by the environment as a batch system sets it
  for (const i of [0, 1, 2]) {
    const r = await run([
      "grid",
      "--out",
      `${dir}/apart`,
      "--cell",
      String(i),
      "--quiet",
    ]);
    assertEquals(r.code, 0, r.err);
  }
  const env = [["SLURM_ARRAY_TASK_ID", "3"], ["JOB_COMPLETION_INDEX", "4"]];
  for (const [k, v] of env) {
    const r = await outputOf(
      spawn(["grid", "--out", `${dir}/apart`, "--quiet"], { [k]: v }),
    );
    assertEquals(r.code, 0, r.err);
    assert(r.err.includes(`grid cell ${v} `), r.err);
  }
  // four of six: collect marks the other two, exit 1
  const part = await run(["grid", "--out", `${dir}/apart`, "--collect"]);
  assertEquals(part.code, 1, part.err);
  assert(part.err.includes(`cell 5 (${plan.cells[5].key}`), part.err);
  assert(!part.err.includes(`cell 4 (`), part.err);
  const last = await run([
    "grid",
    "--out",
    `${dir}/apart`,
    "--cell",
    "5",
    "--quiet",
  ]);
  assertEquals(last.code, 0, last.err);
  // a finished cell: exit 0 at once
  const again = await run([
    "grid",
    "--out",
    `${dir}/apart`,
    "--cell",
    "5",
    "--quiet",
  ]);
  assertEquals(again.code, 0, again.err);
  assert(again.err.includes("finished already"), again.err);
  const done = await run(["grid", "--out", `${dir}/apart`, "--collect"]);
  assertEquals(done.code, 0, done.err);
  assertEquals(
    await Deno.readTextFile(`${dir}/apart/grid.csv`),
    await Deno.readTextFile(`${dir}/whole/grid.csv`),
  );
  for (const c of plan.cells) {
    assertEquals(
      await Deno.readFile(`${dir}/apart/cells/${c.key}/representation.npy`),
      await Deno.readFile(`${dir}/whole/cells/${c.key}/representation.npy`),
    );
  }
});

Deno.test("grid cell steps: bad indices and mixed steps are usage errors naming the value", async () => {
  const dir = await tmp();
  const planned = await run([...GRID, "--out", `${dir}/p`, "--plan"]);
  assertEquals(planned.code, 0, planned.err);
  const cases: [string[], string][] = [
    [["--cell", "6"], '"6"'],
    [["--cell", "x"], '"x"'],
    [[], "SLURM_ARRAY_TASK_ID"],
    [["--cell", "1", "--collect"], "--collect"],
    [["--cell", "1", "--layers", "2"], "--layers"],
    [["--emit", "slurm"], "--plan"],
  ];
  for (const [args, text] of cases) {
    const r = await run(["grid", "--out", `${dir}/p`, ...args]);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert(r.err.includes(text), `${args.join(" ")}: ${r.err}`);
  }
  const bad = await run([
    ...GRID,
    "--out",
    `${dir}/q`,
    "--plan",
    "--emit",
    "pbs",
  ]);
  assertEquals(bad.code, 2, bad.err);
  assert(
    bad.err.includes('"pbs"') && bad.err.includes("slurm or k8s"),
    bad.err,
  );
  assert(!(await Deno.stat(`${dir}/q`).then(() => true, () => false)));
  const none = await run(["grid", "--out", `${dir}/none`, "--cell", "0"]);
  assertEquals(none.code, 1, none.err);
  assert(none.err.includes("plan.json"), none.err);
});

Deno.test("grid: two workers on one cell: one computes, the other exits at once naming it", async () => {
  const dir = await tmp();
  const out = `${dir}/two`;
  const planned = await run([
    "grid",
    ...["--model", MODEL, "--weights", "fixture", "--threads", "1"],
    ...["--steps", "1500", "--layers", "3", "--out", out, "--plan"],
  ]);
  assertEquals(planned.code, 0, planned.err);
  const key = (await json(`${out}/plan.json`)).cells[0].key;
  const a = spawn(["grid", "--out", out, "--cell", "0", "--quiet"]);
  const aDone = outputOf(a);
  let finishedA = false;
  aDone.then(() => (finishedA = true));
  // wait for A's claim
  for (let t = 0; t < 600; t++) {
    if (
      await Deno.stat(`${out}/cells/${key}/cell.lock`).then(
        () => true,
        () => false,
      )
    ) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const holder = await json(`${out}/cells/${key}/cell.lock`);
  assertEquals(holder.pid, a.pid);
  const b = await outputOf(
    spawn(["grid", "--out", out, "--cell", "0", "--quiet"]),
  );
  assertEquals(b.code, 0, b.err);
  assert(b.err.includes(`claimed by pid ${a.pid}`), b.err);
  assert(!finishedA, "A finished before B gave up: the test proves nothing");
  const ra = await aDone;
  assertEquals(ra.code, 0, ra.err);
  assert(ra.err.includes("done"), ra.err);
  const m = await json(`${out}/cells/${key}/metrics.json`);
  assertEquals(m.final.steps, 1500);
  assert(
    !(await Deno.stat(`${out}/cells/${key}/cell.lock`).then(
      () => true,
      () => false,
    )),
  );
});

Deno.test("grid --emit slurm and k8s: array job and Indexed Job over the plan's cells", async () => {
  const dir = await tmp();
  const out = `${dir}/jobs`;
  const s = await run([
    ...GRID,
    ...[
      "--out",
      out,
      "--plan",
      "--emit",
      "slurm",
      "--parallel",
      "2",
      "--cpus",
      "1",
    ],
  ]);
  assertEquals(s.code, 0, s.err);
  assert(s.out.includes(`sbatch ${out}/job.sbatch`), s.out);
  assert(s.out.includes(`grid --out ${out} --collect`), s.out);
  const sb = await Deno.readTextFile(`${out}/job.sbatch`);
  const directive = (k: string) =>
    sb.match(new RegExp(`^#SBATCH --${k}(?:=(.*))?$`, "m"));
  assertEquals(directive("array")?.[1], "0-5%2");
  assertEquals(directive("cpus-per-task")?.[1], "1");
  assert(/^\d+M$/.test(directive("mem")?.[1] ?? ""), sb);
  assert(/^\d+-\d\d:\d\d:00$/.test(directive("time")?.[1] ?? ""), sb);
  assert(directive("requeue") !== null, sb);
  assertEquals(directive("output")?.[1], `${out}/logs/cell_%a.log`);
  assert(await Deno.stat(`${out}/logs`).then((st) => st.isDirectory));
  const exec = sb.split("\n").find((l) => l.startsWith("exec "))!;
  assert(exec.includes(`grid --out ${out}`) && !exec.includes("--cell"), exec);
  const k = await run([
    ...GRID,
    ...[
      "--out",
      out,
      "--plan",
      "--emit",
      "k8s",
      "--parallel",
      "3",
      "--container",
      "reg/vitrep:1",
    ],
  ]);
  assertEquals(k.code, 0, k.err);
  const yaml = await Deno.readTextFile(`${out}/job.yaml`);
  for (
    const line of [
      'apiVersion: "batch/v1"',
      'kind: "Job"',
      '  completionMode: "Indexed"',
      "  completions: 6",
      "  parallelism: 3",
      "  backoffLimitPerIndex: 2",
      '          image: "reg/vitrep:1"',
      '              mountPath: "/grid"',
      '            claimName: "vitrep-grid"',
    ]
  ) assert(yaml.split("\n").includes(line), `${line}\n${yaml}`);
  assert(/\n {14}memory: "\d+Mi"\n/.test(yaml), yaml);
  // the pod's command, run here with the index Kubernetes gives an Indexed Job's pod
  const args = yaml.split("\n").filter((l) => /^ {12}- "/.test(l)).map((l) =>
    JSON.parse(l.trim().slice(2))
  );
  assertEquals(args.slice(0, 3), ["grid", "--out", "/grid"]);
  const r = await outputOf(
    spawn(["grid", "--out", out, ...args.slice(3)], {
      JOB_COMPLETION_INDEX: "2",
    }),
  );
  assertEquals(r.code, 0, r.err);
  const key = (await json(`${out}/plan.json`)).cells[2].key;
  assertEquals((await json(`${out}/cells/${key}/metrics.json`)).final.layer, 3);
});

Deno.test("grid: a failed cell's outcome (exploded or diverged at step N) reaches failed.json, grid.csv, grid.md and --collect", async () => {
  const out = `${await tmp()}/boom`;
  const r = await run([
    "grid",
    ...["--model", MODEL, "--weights", "fixture", "--quiet"],
    ...["--layers", "2", "--steps", "6"],
    ...["--variant", "ok=", "--variant", "boom=--lr 1e38", "--out", out],
  ]);
  assertEquals(r.code, 1, r.err);
  const plan = await json(`${out}/plan.json`);
  const failed = await json(`${out}/cells/${plan.cells[1].key}/failed.json`);
  assert(["exploded", "non-finite"].includes(failed.kind), failed.kind);
  assert(Number.isInteger(failed.step) && failed.step >= 0, `${failed.step}`);
  const outcome = `${
    failed.kind === "exploded" ? "exploded" : "diverged"
  } at step ${failed.step}`;
  const csv = (await Deno.readTextFile(`${out}/grid.csv`)).trim().split("\n");
  assert(csv[0].endsWith(",outcome"), csv[0]);
  assert(csv[1].endsWith(",ok"), csv[1]);
  assert(csv[2].endsWith(`,${outcome}`), csv[2]);
  assert(
    (await Deno.readTextFile(`${out}/grid.md`)).includes(`| ${outcome} |`),
  );
  const m = await json(`${out}/metrics.json`);
  assertEquals(m.cells[1].outcome, outcome);
  const c = await run(["grid", "--out", out, "--collect"]);
  assertEquals(c.code, 1, c.err);
  assert(
    c.err.includes(`cell 1 (${plan.cells[1].key}, boom × layer 2): ${outcome}`),
    c.err,
  );
});

Deno.test("grid: a worker killed mid-cell (SIGKILL) leaves its lock; the next takes it over and continues from the snapshot", async () => {
  const dir = await tmp();
  const cellArgs = [
    ...["--model", MODEL, "--weights", "fixture", "--threads", "1", "--quiet"],
    ...["--steps", "800", "--layers", "2"],
  ];
  const whole = await run(["grid", ...cellArgs, "--out", `${dir}/whole`]);
  assertEquals(whole.code, 0, whole.err);
  const out = `${dir}/killed`;
  const planned = await run(["grid", ...cellArgs, "--out", out, "--plan"]);
  assertEquals(planned.code, 0, planned.err);
  const key = (await json(`${out}/plan.json`)).cells[0].key;
  const cell = `${out}/cells/${key}`;
  const a = spawn([
    "grid",
    "--out",
    out,
    "--cell",
    "0",
    "--quiet",
    "--save-every",
    "50",
  ]);
  // a periodic snapshot (the start record at step 0 is there from the first moment)
  for (let t = 0; t < 600; t++) {
    const step = await json(`${cell}/snapshot/state.json`).then(
      (s) => s.step,
      () => -1,
    );
    if (step > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  a.kill("SIGKILL");
  await a.output();
  assertEquals((await json(`${cell}/cell.lock`)).pid, a.pid);
  assert(
    !(await Deno.stat(`${cell}/metrics.json`).then(() => true, () => false)),
  );
  const b = await run(["grid", "--out", out, "--cell", "0", "--quiet"]);
  assertEquals(b.code, 0, b.err);
  assert(/continuing from step [1-9]\d*/.test(b.err), b.err);
  assertEquals(
    await Deno.readFile(`${cell}/representation.npy`),
    await Deno.readFile(`${dir}/whole/cells/${key}/representation.npy`),
  );
});

/** A `deno` at `path` that logs each use to `log`, then runs this Deno: what a node has on its PATH. */
async function denoWrapper(path: string, log: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\necho "$0" >> '${log}'\nexec '${Deno.execPath()}' "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
}

/** This Deno's binary at `path` (a hard link, else a copy): a Deno whose execPath is there. */
async function denoAt(path: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.link(Deno.execPath(), path).catch(() =>
    Deno.copyFile(Deno.execPath(), path)
  );
}

Deno.test("grid --emit run by a Deno in an npx cache: the job files name no path of it; a task runs deno from the node's PATH, or --deno PATH, or $VITREP_DENO", async () => {
  const dir = await tmp();
  const npx = `${dir}/home/.npm/_npx/0a1b2c3d4e5f/node_modules/deno/deno`;
  await denoAt(npx);
  const exec = await new Deno.Command(npx, {
    args: ["eval", "console.log(Deno.execPath())"],
    stdout: "piped",
  }).output();
  // the case of the issue: this run's Deno.execPath() is inside an npx cache
  assert(new TextDecoder().decode(exec.stdout).includes("/_npx/"));
  const out = `${dir}/jobs`;
  const emit = async (kind: string, ...more: string[]) => {
    const o = await new Deno.Command(npx, {
      args: [
        "run",
        "-A",
        `${ROOT}mod.ts`,
        ...GRID,
        ...["--out", out, "--plan", "--emit", kind, ...more],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assertEquals(o.code, 0, dec.decode(o.stderr));
    return dec.decode(o.stdout);
  };
  const printed = await emit("slurm");
  const sbatch = await Deno.readTextFile(`${out}/job.sbatch`);
  await emit("k8s");
  const yaml = await Deno.readTextFile(`${out}/job.yaml`);
  for (const text of [sbatch, yaml, printed]) {
    assert(!text.includes("/_npx/") && !text.includes(npx), text);
    assert(!text.includes(Deno.execPath()), text);
  }
  assert(sbatch.split("\n").includes("deno=${VITREP_DENO:-deno}"), sbatch);
  // the script as a node runs it: deno from PATH, or $VITREP_DENO
  const node = `${dir}/node/bin/deno`, other = `${dir}/other/deno`;
  await denoWrapper(node, `${dir}/node.log`);
  await denoWrapper(other, `${dir}/other.log`);
  const task = async (i: number, env: Record<string, string> = {}) => {
    const o = await new Deno.Command("bash", {
      args: [`${out}/job.sbatch`],
      env: {
        PATH: `${dir}/node/bin:/usr/bin:/bin`,
        HOME: Deno.env.get("HOME") ?? dir,
        SLURM_ARRAY_TASK_ID: String(i),
        ...env,
      },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(o.stderr);
    assertEquals(o.code, 0, err);
    assert(err.includes(`grid cell ${i} `) && err.includes("done"), err);
  };
  await task(1);
  assertEquals(await Deno.readTextFile(`${dir}/node.log`), `${node}\n`);
  await task(2, { VITREP_DENO: other });
  assertEquals(await Deno.readTextFile(`${dir}/other.log`), `${other}\n`);
  assertEquals(await Deno.readTextFile(`${dir}/node.log`), `${node}\n`);
  // --deno PATH: the nodes' Deno, named
  await emit("slurm", "--deno", "/opt/vitrep bin/deno");
  assert(
    (await Deno.readTextFile(`${out}/job.sbatch`)).split("\n").includes(
      "deno=${VITREP_DENO:-'/opt/vitrep bin/deno'}",
    ),
  );
  const bad = await run([
    ...GRID,
    ...["--out", `${dir}/bad`, "--plan", "--emit", "slurm"],
    ...["--deno", "deno\nrm -rf x"],
  ]);
  assertEquals(bad.code, 2, bad.err);
  assert(/Invalid --deno "deno\\nrm -rf x": expected the path/.test(bad.err));
  assert(!(await Deno.stat(`${dir}/bad`).then(() => true, () => false)));
});
