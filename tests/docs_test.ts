// The committed standard-budget essay report (docs/essay, made by `essay --publish`): every
// file its page shows is there, its data is a complete report, summary.md and the README's
// essay summary are what its claims.json makes (`deno task readme`), and the page opens in a
// real headless Chromium with no console error and every image loading.
import assert from "node:assert/strict";
import {
  CLAIMS,
  localReferences,
  readmeWithSummary,
  summaryMarkdown,
  VERDICTS,
} from "../src/essay/mod.ts";
import { checkReportPage } from "./_chromium.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DOCS = `${ROOT}docs/essay`;

Deno.test("docs/essay: the committed report is complete and the README's summary is made from it", async (t) => {
  const json = JSON.parse(await Deno.readTextFile(`${DOCS}/claims.json`));
  assert.equal(json.budget.name, "standard");
  // the standard budget's weight draws: every claim that ran says how many
  assert.ok(json.budget.seeds >= 3);
  assert.deepEqual(
    json.claims.map((c: { id: string }) => c.id),
    CLAIMS.map((c) => c.id),
  );
  for (const c of json.claims) {
    assert.ok(VERDICTS.includes(c.verdict), `${c.id}: ${c.verdict}`);
  }
  const html = await Deno.readTextFile(`${DOCS}/index.html`);
  const refs = localReferences(html);
  assert.ok(refs.length > 50, `${refs.length} references`);
  for (const { ref } of refs) await Deno.stat(`${DOCS}/${ref}`);
  assert.equal(
    await Deno.readTextFile(`${DOCS}/summary.md`),
    summaryMarkdown(json.claims, json.budget),
  );
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  assert.equal(
    readmeWithSummary(readme, json, "docs/essay/index.html"),
    readme,
    "README.md's essay summary differs from docs/essay/claims.json: run deno task readme",
  );
  await t.step(
    "in headless Chromium: no console error, every image loads, the claims table",
    async () => {
      await checkReportPage(`${DOCS}/index.html`, json.claims, 50);
    },
  );
});
