// A real single-node Slurm cluster (tools/slurm_local.sh: munged, slurmctld,
// slurmd started here and stopped by pid at the end) runs grid cells as an
// array job from the sbatch file `grid --emit slurm` writes; the collected
// grid must equal the same grid run in one process, also when one array task
// is cancelled mid-cell (scancel) and requeued (scontrol requeue). Skipped,
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const grid = (steps: number, out: string) => [
  "grid",
  ...["--model", MODEL, "--weights", "fixture", "--threads", "1", "--quiet"],
  ...["--steps", String(steps), "--layers", "1-3"],
  ...["--variant", "plain=", "--variant", "no LN=--remove layernorm"],
  ...["--out", out],
];

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
    const env = { SLURM_CONF: `${dir}/slurm/slurm.conf` };
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
    } finally {
      await sh("bash", [tool, "stop", `${dir}/slurm`], env);
    }
  },
});
