// `essay --budget smoke` end to end on the repository's model folders (untrained
// weights; every experiment a few steps), then the report in a real headless
// Chromium driven over the DevTools protocol: no console error, every image
// loads, and the claims table on the page equals claims.json.
import assert from "node:assert/strict";
import {
  CLAIMS,
  discoverModels,
  localReferences,
  plan,
} from "../src/essay/mod.ts";
import { BUDGETS } from "../src/essay/mod.ts";
import { checkReportPage } from "./_chromium.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VERDICTS = [
  "agrees",
  "partly",
  "disagrees",
  "borderline",
  "not testable",
  "not run",
];
/**
 * A hang must fail, not block: past this the run is stopped (SIGTERM: the grid
 * process stops after its step) and the test fails. The smoke budget takes
 * about 4 CPU-minutes (every untrained-weight row drawn twice); the limit
 * allows for a shared machine.
 */
const LIMIT_MS = 900_000;

async function essay(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "essay", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), LIMIT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

Deno.test("essay --budget smoke: index.html and claims.json with a verdict or 'not run' for every claim; the page in Chromium", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "vitrep_essay_" });
  const pub = `${out}-published`;
  try {
    const r = await essay([
      "--budget",
      "smoke",
      "--out",
      out,
      "--publish",
      pub,
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const json = JSON.parse(await Deno.readTextFile(`${out}/claims.json`));
    assert.deepEqual(
      json.claims.map((c: { id: string }) => c.id),
      CLAIMS.map((c) => c.id),
    );
    const planned = plan(BUDGETS.smoke, {
      models: await discoverModels(`${ROOT}weights`),
      root: `${ROOT}weights`,
      weights: [],
      image: "x",
    });
    const runnable = new Set(
      planned.filter((p) => p.status === "run").map((p) => p.id),
    );
    for (const c of json.claims) {
      assert.ok(VERDICTS.includes(c.verdict), `${c.id}: ${c.verdict}`);
      const claim = CLAIMS.find((x) => x.id === c.id)!;
      if (claim.experiments.every((e) => runnable.has(e))) {
        // everything it needs ran: a computed verdict, its numbers all measured
        assert.notEqual(c.verdict, "not run", `${c.id}: ${JSON.stringify(c)}`);
        assert.ok(
          Object.values(c.numbers).every((v) => typeof v === "number"),
          c.id,
        );
      } else {
        assert.equal(c.verdict, "not run", c.id);
        assert.ok(
          c.notRun?.length > 0 &&
            c.notRun.every((n: { command: string }) => n.command),
          c.id,
        );
      }
    }
    // exploded runs are labelled: ViT-B/32 without layer norms at encoder 12 blows up even in a few steps
    const explodes = json.claims.find((c: { id: string }) =>
      c.id === "no_ln_explodes"
    );
    if (runnable.has("vit_depth")) assert.equal(explodes.numbers.no_ln_12, 1);
    const html = await Deno.readTextFile(`${out}/index.html`);
    for (const m of html.matchAll(/<img src="([^"]+)"/g)) {
      await Deno.stat(`${out}/${m[1]}`); // every image referenced is there
    }
    assert.match(html, /<span class="exploded">exploded/);
    const md = await Deno.readTextFile(`${out}/summary.md`);
    for (const c of json.claims) {
      assert.match(
        md,
        new RegExp(`^\\| ${c.id} \\| .* \\| ${c.verdict} \\|`, "m"),
      );
    }

    await t.step(
      "headless Chromium: no console error, every image loads, the claims table",
      async () => {
        await checkReportPage(`${out}/index.html`, json.claims, 11);
      },
    );
    await t.step(
      "--publish: a lean copy with every file the page shows, the depth figure, smaller than the run",
      async () => {
        assert.match(r.stdout, /published .*: \d+ files, [\d.]+ MiB/);
        const page = await Deno.readTextFile(`${pub}/index.html`);
        const refs = localReferences(page);
        assert.ok(refs.length > 10);
        for (const { ref } of refs) await Deno.stat(`${pub}/${ref}`);
        assert.ok(refs.some((x) => x.ref === "depth.png"), "depth figure");
        assert.ok(
          refs.some((x) => x.cls === "thumb" && x.ref.endsWith(".jpg")),
        );
        assert.deepEqual(
          JSON.parse(await Deno.readTextFile(`${pub}/claims.json`)),
          json,
        );
        const size = async (dir: string): Promise<number> => {
          let total = 0;
          for await (const e of Deno.readDir(dir)) {
            const p = `${dir}/${e.name}`;
            total += e.isDirectory ? await size(p) : (await Deno.stat(p)).size;
          }
          return total;
        };
        assert.ok((await size(pub)) * 5 < (await size(out)));
        await checkReportPage(`${pub}/index.html`, json.claims, 11);
      },
    );
    await t.step(
      "--report-only: the same claims from the finished cells, computing nothing",
      async () => {
        const again = await essay([
          "--budget",
          "smoke",
          "--out",
          out,
          "--report-only",
        ]);
        assert.equal(again.code, 0, again.stderr.slice(-2000));
        assert.doesNotMatch(again.stderr, /computing in/);
        const j2 = JSON.parse(await Deno.readTextFile(`${out}/claims.json`));
        assert.deepEqual(j2.claims, json.claims);
      },
    );
    await t.step("a second run reuses every finished cell", async () => {
      const again = await essay([
        "--budget",
        "smoke",
        "--out",
        out,
        "--only",
        "vit_stem",
      ]);
      assert.equal(again.code, 0, again.stderr.slice(-2000));
      const m = JSON.parse(
        await Deno.readTextFile(`${out}/cells/vit_stem/metrics.json`),
      );
      // 2 layers × 2 weight draws
      assert.equal(m.reused, 4);
      assert.equal(m.computed, 0);
    });
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
    await Deno.remove(pub, { recursive: true }).catch(() => {});
  }
});

Deno.test("essay: the trained-model claims run on a small trained ViT folder (here the tiny fixture as weights/fmnist_vit)", async () => {
  const models = await Deno.makeTempDir({ prefix: "vitrep_models_" });
  const out = await Deno.makeTempDir({ prefix: "vitrep_essay_" });
  try {
    await Deno.symlink(
      `${ROOT}tests/fixtures/tiny_vit`,
      `${models}/fmnist_vit`,
    );
    const r = await essay([
      "--models",
      models,
      "--weights",
      "fixture",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const json = JSON.parse(await Deno.readTextFile(`${out}/claims.json`));
    const trained = [
      "generation",
      "stem_trained",
      "filters",
      "swap_pos_embedding",
      "swap_ln1",
    ];
    for (const c of json.claims) {
      if (c.id === "stem_depth") {
        // it ran, but the fixture has fewer than 4 encoders: encoder 4's number is missing
        assert.equal(c.verdict, "not run");
        assert.match(c.reason, /not measured/);
        assert.deepEqual(c.origin, ["small"]);
      } else if (trained.includes(c.id)) {
        assert.notEqual(c.verdict, "not run", `${c.id}: ${JSON.stringify(c)}`);
        assert.deepEqual(c.origin, ["small"]);
      } else {
        // no untrained model folders (or other trained weights, or a training run) there:
        // not run, with the converter (or training) command
        assert.equal(c.verdict, "not run", c.id);
        assert.match(
          c.notRun[0].command,
          /python3 tools\/(convert\.py \w+ (--weights \S+ )?--out |train_residual\.py )/,
        );
      }
    }
    const swaps = JSON.parse(
      await Deno.readTextFile(`${out}/cells/swaps/metrics.json`),
    );
    assert.deepEqual(
      swaps.rows.map((x: { swaps: unknown[] }) => x.swaps.length),
      // every row has the trained stem; 2 weight draws
      [1, 2, 2, 1, 2, 2],
    );
    await Deno.stat(`${out}/cells/filters/filters.png`);
    assert.match(
      await Deno.readTextFile(`${out}/index.html`),
      /the small models trained here \(Fashion-MNIST/,
    );
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
    await Deno.remove(models, { recursive: true }).catch(() => {});
  }
});
