// A real single-node Slurm cluster (tools/slurm_local.sh: munged, slurmctld,
// slurmd started here and stopped by pid at the end) runs grid cells as an
// array job from the sbatch file `grid --emit slurm` writes; the collected
// grid must equal the same grid run in one process, also when one array task
// is cancelled mid-cell (scancel) and requeued (scontrol requeue); and the
// smoke essay emitted as one array (essay --plan --emit slurm, submit.sh),
// reported with --report-only, equals the one-process smoke run claim for
// claim. Jobs run the deno on PATH (a logging wrapper here), as nodes do. Skipped,
// with the reason printed, where Slurm or root is missing (.ci/run installs
// slurm-wlm and munge).
import { assert, assertEquals } from "./_assert.ts";
import { run, tmp } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MODEL = `${ROOT}tests/fixtures/tiny_vit`;

function which(bin: string): boolean {
  for (
    const d of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin"])
  ) {
    try {
      if (Deno.statSync(`${d}/${bin}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

const missing = [
  "slurmctld",
  "slurmd",
  "munged",
  "mungekey",
  "sbatch",
  "scancel",
  "scontrol",
]
  .filter((b) => !which(b));
const why = missing.length > 0
  ? `missing ${missing.join(", ")} (apt-get install slurm-wlm munge)`
  : Deno.uid() !== 0
  ? "not root (the single-node cluster runs its daemons as root)"
  : null;
if (why !== null) console.log(`cluster_slurm_test: skipped: ${why}`);

/** Runs a command; its stdout, failing on a non-zero exit. */
async function sh(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<string> {
  const o = await new Deno.Command(cmd, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert(
    o.success,
    `${cmd} ${args.join(" ")}: ${dec.decode(o.stderr)}${dec.decode(o.stdout)}`,
  );
  return dec.decode(o.stdout).trim();
}

/** A `deno` at `path` that logs each use to `log`, then runs this Deno: what a node has on its PATH. */
async function denoWrapper(path: string, log: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\necho "$0" >> '${log}'\nexec '${Deno.execPath()}' "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
}

/** Lines of a file (0 when it is not there). */
const lines = (path: string) =>
  Deno.readTextFile(path).then((t) => t.split("\n").length - 1, () => 0);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const grid = (steps: number, out: string) => [
  "grid",
  ...["--model", MODEL, "--weights", "fixture", "--threads", "1", "--quiet"],
  ...["--steps", String(steps), "--layers", "1-3"],
  ...["--variant", "plain=", "--variant", "no LN=--remove layernorm"],
  ...["--out", out],
];

/**
 * The essay experiments the array test runs: a generate grid on the small
 * trained ViT, invert grids on untrained ViT-B/32 (one traced), and the
 * filters command: 14 tasks, about 80 s with the one-process run.
 * VITREP_SLURM_ESSAY=all runs every smoke experiment: 51 tasks, 10 to 14
 * minutes on a 2-core machine (too slow for CI).
 */
const ESSAY_ONLY = Deno.env.get("VITREP_SLURM_ESSAY") === "all"
  ? "generation,vit_depth,resnet_depth,vit_stem,resnet_stem,stem_trained,filters,overcomplete_stem,swaps,vit_recovery,residual,noninvertible,mixer_p16,mixer_p8,ffvit"
  : "generation,vit_stem,filters,noninvertible,swaps";

const json = async (path: string) => JSON.parse(await Deno.readTextFile(path));
const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** Equal grid.csv and every cell's representation.npy. */
async function assertSameGrid(a: string, b: string): Promise<void> {
  assertEquals(
    await Deno.readTextFile(`${a}/grid.csv`),
    await Deno.readTextFile(`${b}/grid.csv`),
  );
  const plan = await json(`${a}/plan.json`);
  for (const c of plan.cells) {
    assertEquals(
      await Deno.readFile(`${a}/cells/${c.key}/representation.npy`),
      await Deno.readFile(`${b}/cells/${c.key}/representation.npy`),
      `cell ${c.index}`,
    );
  }
}

Deno.test({
  name:
    "Slurm: an array job of grid cells, collected, equals the one-process grid; a cancelled and requeued task too",
  ignore: why !== null,
  async fn(t) {
    const dir = await tmp();
    // the nodes' deno: on PATH (emitted jobs name no path of this machine's Deno), here a
    // wrapper that logs each use and runs this Deno
    await denoWrapper(`${dir}/bin/deno`, `${dir}/deno.log`);
    const env = {
      SLURM_CONF: `${dir}/slurm/slurm.conf`,
      PATH: `${dir}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    };
    const tool = `${ROOT}tools/slurm_local.sh`;
    const started = performance.now();
    await sh("bash", [tool, "start", `${dir}/slurm`], env);
    console.log(
      `slurm: node idle after ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    /** Submits OUT/job.sbatch; the job id. */
    const submit = async (out: string) =>
      await sh("sbatch", ["--parsable", `${out}/job.sbatch`], env);
    const queued = async (id: string) =>
      (await sh("squeue", ["-h", "-j", id], env)) !== "";
    const waitFor = async (id: string) => {
      for (let i = 0; i < 1200 && await queued(id); i++) await sleep(250);
      assert(!(await queued(id)), `job ${id} still queued after 5 minutes`);
    };
    const plan = async (steps: number, out: string) => {
      const r = await run([
        ...grid(steps, out),
        "--plan",
        "--emit",
        "slurm",
        "--parallel",
        "2",
        "--cpus",
        "1",
      ]);
      assertEquals(r.code, 0, r.err);
    };
    const collect = async (out: string) => {
      const r = await run(["grid", "--out", out, "--collect"]);
      assertEquals(r.code, 0, r.err);
    };
    try {
      await t.step("six cells, two at a time", async () => {
        const one = await run(grid(30, `${dir}/one`));
        assertEquals(one.code, 0, one.err);
        await plan(30, `${dir}/slurm_grid`);
        const t0 = performance.now();
        const id = await submit(`${dir}/slurm_grid`);
        await waitFor(id);
        const t1 = performance.now();
        await collect(`${dir}/slurm_grid`);
        const t2 = performance.now();
        console.log(
          `slurm: 6 cells × 30 steps: submit → done ${
            ((t1 - t0) / 1000).toFixed(1)
          } s, collect ${((t2 - t1) / 1000).toFixed(1)} s`,
        );
        await assertSameGrid(`${dir}/slurm_grid`, `${dir}/one`);
        // every task ran the deno on the node's PATH
        assertEquals(await lines(`${dir}/deno.log`), 6);
        const log = await Deno.readTextFile(
          `${dir}/slurm_grid/logs/cell_4.log`,
        );
        assert(log.includes("grid cell 4 ") && log.includes("done"), log);
      });
      await t.step(
        "task 0 cancelled mid-cell and requeued: it continues from its snapshot",
        async () => {
          const out = `${dir}/requeue`;
          const one = await run(grid(600, `${dir}/one600`));
          assertEquals(one.code, 0, one.err);
          await plan(600, out);
          const key = (await json(`${out}/plan.json`)).cells[0].key;
          const t0 = performance.now();
          const id = await submit(out);
          // cancel task 0 once it has written a snapshot (every 60 steps)
          for (
            let i = 0;
            i < 600 && !(await exists(`${out}/cells/${key}/snapshot`));
            i++
          ) {
            await sleep(50);
          }
          assert(await exists(`${out}/cells/${key}/snapshot`), "no snapshot");
          await sh("scancel", [`${id}_0`], env);
          for (let i = 0; i < 200 && await queued(`${id}_0`); i++) {
            await sleep(100);
          }
          // stopped (a SIGTERM: it wrote its outputs, marked interrupted) or killed: not finished
          const m = await json(`${out}/cells/${key}/metrics.json`).catch(() =>
            null
          );
          assert(
            m === null || m.interrupted === true,
            "cell 0 finished before the cancel",
          );
          await sh("scontrol", ["requeue", `${id}_0`], env);
          // Slurm holds a requeued job for about two minutes (its begin time): start it now
          await sh(
            "scontrol",
            ["update", `JobId=${id}_0`, "StartTime=now"],
            env,
          );
          await waitFor(id);
          const t1 = performance.now();
          await collect(out);
          console.log(
            `slurm: 6 cells × 600 steps, task 0 cancelled and requeued: submit → collected ${
              ((performance.now() - t0) / 1000).toFixed(1)
            } s (collect ${((performance.now() - t1) / 1000).toFixed(1)} s)`,
          );
          const log = await Deno.readTextFile(`${out}/logs/cell_0.log`);
          assert(/CANCELLED/.test(log), log);
          assert(/continuing from step [1-9]\d*/.test(log), log);
          await assertSameGrid(out, `${dir}/one600`);
        },
      );
      await t.step(
        `the smoke essay as ONE emitted array (${ESSAY_ONLY}) equals the one-process smoke run claim for claim`,
        async () => {
          const only = ["--budget", "smoke", "--only", ESSAY_ONLY];
          const t0 = performance.now();
          const one = await run([
            "essay",
            ...only,
            "--out",
            `${dir}/essay_one`,
          ]);
          assertEquals(one.code, 0, one.err);
          const t1 = performance.now();
          const out = `${dir}/essay_array`;
          const e = await run([
            "essay",
            ...only,
            ...["--out", out, "--plan", "--emit", "slurm"],
            ...["--parallel", "2", "--cpus", "1"],
          ]);
          assertEquals(e.code, 0, e.err);
          const tasks = (await json(`${out}/tasks.json`)).tasks;
          const sb = await Deno.readTextFile(`${out}/job.sbatch`);
          assert(!sb.includes(Deno.execPath()) && !sb.includes("/_npx/"), sb);
          const before = await lines(`${dir}/deno.log`);
          const t2 = performance.now();
          const id = await sh("bash", [`${out}/submit.sh`], env);
          await waitFor(id);
          const t3 = performance.now();
          const r = await run(["essay", "--out", out, "--report-only"]);
          assertEquals(r.code, 0, r.err);
          console.log(
            `slurm: essay smoke --only ${ESSAY_ONLY}: one process ${
              ((t1 - t0) / 1000).toFixed(1)
            } s; emitted ${tasks.length} tasks in ${
              ((t2 - t1) / 1000).toFixed(1)
            } s, submit → done ${((t3 - t2) / 1000).toFixed(1)} s, report ${
              ((performance.now() - t3) / 1000).toFixed(1)
            } s`,
          );
          assertEquals(await lines(`${dir}/deno.log`) - before, tasks.length);
          assert(!r.out.includes("missing"), r.out);
          const a = await json(`${out}/claims.json`);
          const b = await json(`${dir}/essay_one/claims.json`);
          assertEquals(a.missing, []);
          type Claim = { id: string; verdict: string; numbers: unknown };
          const of = (c: Claim) => [c.id, c.verdict, c.numbers];
          assertEquals(a.claims.map(of), b.claims.map(of));
          assert(
            a.claims.filter((c: Claim) => c.verdict !== "not run").length >= 3,
          );
          // the cells are the same runs: equal representations
          for (
            const x of tasks.filter((x: { cell: number | null }) =>
              x.cell !== null
            )
          ) {
            const grid = `cells/${x.experiment}`;
            const key =
              (await json(`${out}/${grid}/plan.json`)).cells[x.cell].key;
            for (const f of ["representation.npy", "generated.png"]) {
              const [p, q] = [
                `${out}/${grid}/cells/${key}/${f}`,
                `${dir}/essay_one/${grid}/cells/${key}/${f}`,
              ];
              if (await exists(q)) {
                assertEquals(
                  await Deno.readFile(p),
                  await Deno.readFile(q),
                  `${x.experiment} cell ${x.cell}: ${f}`,
                );
              }
            }
          }
        },
      );
    } finally {
      await sh("bash", [tool, "stop", `${dir}/slurm`], env);
    }
  },
});
