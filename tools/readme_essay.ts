/**
 * `deno task readme`: rewrites the README's essay summary (between its two
 * `essay summary` markers) from the committed report's data,
 * docs/essay/claims.json, with the same table `essay` writes into summary.md.
 * Both claims.json formats are read: today's (numbers per weight draw, mean
 * and range) and the one before seeds, which a report committed by an
 * earlier version holds and which prints as it did then.
 * `--check` changes nothing and exits 1 when the README differs (the tests
 * check the same).
 *
 *     deno task readme [--check]
 *
 * @module
 */
import { readmeWithSummary } from "../src/essay/mod.ts";

const root = new URL("../", import.meta.url);
const readme = new URL("README.md", root);
const text = await Deno.readTextFile(readme);
const claims = JSON.parse(
  await Deno.readTextFile(new URL("docs/essay/claims.json", root)),
);
const next = readmeWithSummary(text, claims, "docs/essay/index.html");
if (Deno.args.includes("--check")) {
  if (next !== text) {
    console.error(
      "README.md's essay summary differs from docs/essay/claims.json: run deno task readme",
    );
    Deno.exit(1);
  }
  console.log("README.md's essay summary matches docs/essay/claims.json");
} else if (next === text) {
  console.log("README.md's essay summary is up to date");
} else {
  await Deno.writeTextFile(readme, next);
  console.log("rewrote README.md's essay summary from docs/essay/claims.json");
}
