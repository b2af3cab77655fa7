/**
 * A lean copy of an essay report, to commit or share: the page, its data and
 * only the files the page shows, with large images re-encoded (thumbnails
 * shrunk, montages as JPEG), so a standard-budget report fits in a few MB
 * instead of the hundreds the run folder holds (every cell's npy, SVG twins,
 * side-by-sides).
 *
 * @module
 */
import { dirname, isAbsolute, join, normalize } from "node:path";
import {
  decodePng,
  encodeJpeg,
  type ImageTensor,
  resizeBilinear,
} from "../io/mod.ts";
import {
  claimFolder,
  type FolderState,
  inspectFolder,
  MARKER_FILE,
  readMarker,
  removeOutputs,
  unclaimEmpty,
  writeMarker,
} from "../io/paths.ts";
import type { Budget } from "./budgets.ts";
import type { ClaimRecord } from "./claims.ts";
import { summaryMarkdown } from "./report.ts";

/** Options of {@linkcode publishReport}. */
export interface PublishOptions {
  /** Width in pixels of a thumbnail (`class="thumb"`) after shrinking (default 112). */
  thumbWidth?: number;
  /** Widest montage (`class="montage"`) in pixels (default 1600). */
  montageWidth?: number;
  /** JPEG quality of re-encoded images (default 85). */
  quality?: number;
  /** PNGs up to this many bytes are copied as they are (default 24 KiB: heatmaps, plots). */
  keepBytes?: number;
  /** How messages name what gave `dir` (the command line passes its option; default "publish folder"). */
  option?: string;
}

/** What {@linkcode publishReport} wrote. */
export interface Published {
  /** Files written, the page and its data included. */
  files: number;
  /** Their total size in bytes. */
  bytes: number;
}

const TEXT = new TextDecoder();

/**
 * A page's local references: the `src` of its images and the `href` of its
 * links that are relative paths (not `#anchors`, URLs or absolute paths),
 * each with its image's class (null for links).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { localReferences } from "./publish.ts";
 * const refs = localReferences(`<img src="a/b.png" alt="x" class="thumb"><a href="#top">t</a><a href="https://x.org">x</a><a href="c.png">c</a>`);
 * assert.deepEqual(refs, [{ ref: "a/b.png", cls: "thumb" }, { ref: "c.png", cls: null }]);
 * ```
 */
export function localReferences(
  html: string,
): { ref: string; cls: string | null }[] {
  const found = new Map<string, string | null>();
  for (const m of html.matchAll(/<(img|a)\b[^>]*>/g)) {
    const tag = m[0];
    const attr = (name: string) =>
      tag.match(new RegExp(`\\s${name}="([^"]*)"`))?.[1] ?? null;
    const ref = attr(m[1] === "img" ? "src" : "href");
    if (ref === null || /^(#|[a-z][a-z0-9+.-]*:|\/)/i.test(ref)) continue;
    const cls = m[1] === "img" ? attr("class") : null;
    if (!found.has(ref) || cls !== null) found.set(ref, cls);
  }
  return [...found].map(([ref, cls]) => ({ ref, cls }));
}

const unescape = (s: string) =>
  s.replaceAll("&quot;", '"').replaceAll("&lt;", "<").replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");

/** A file's new bytes and name: shrunk or re-encoded images, anything else as it is. */
function lean(
  ref: string,
  cls: string | null,
  bytes: Uint8Array,
  o: Required<PublishOptions>,
): { ref: string; bytes: Uint8Array } {
  if (!/\.png$/i.test(ref) || bytes.length <= o.keepBytes) {
    return { ref, bytes };
  }
  if (cls !== "thumb" && cls !== "montage") return { ref, bytes };
  let img: ImageTensor = decodePng(bytes);
  const widest = cls === "thumb" ? o.thumbWidth : o.montageWidth;
  if (img.width > widest) {
    img = resizeBilinear(
      img,
      Math.max(1, Math.round(img.height * widest / img.width)),
      widest,
    );
  }
  return {
    ref: ref.replace(/\.png$/i, ".jpg"),
    bytes: encodeJpeg(img, o.quality),
  };
}

/** The command a published copy's marker names. */
const PUBLISH_COMMAND = "essay --publish";

/**
 * The hint when `dir` is not a copy vitrep published (no marker): how to
 * replace an older copy, which had none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { publishHint } from "./publish.ts";
 * assert.match(publishHint("docs/essay"), /git rm -r docs\/essay/);
 * ```
 */
export function publishHint(dir: string): string {
  return `if it is a copy published by an older vitrep (before ${MARKER_FILE}), check that it holds nothing of yours, remove it yourself (e.g. git rm -r ${dir}) and publish again; else publish into a new folder`;
}

/**
 * Writes a lean copy of the essay report in `out` into `dir`: index.html
 * (its image references rewritten where an image changed format),
 * claims.json, summary.md, and every file the page shows or links, at the
 * same relative paths. Thumbnails are shrunk to `thumbWidth` and, with
 * montages, stored as JPEG; small PNGs (heatmaps, plots) are copied as they
 * are. `dir` must be new, empty or a copy published earlier (marked by
 * vitrep's `.vitrep-run.json`, see src/io/paths.ts): the new copy is written
 * into a marked sibling folder first (a failure leaves the old copy), then
 * replaces only the files the old copy's marker lists; any other file there
 * makes it refuse, naming it, and stays. A reference to a missing file, or
 * one leaving the report folder, fails naming it. Returns the count and size
 * of what was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { publishReport } from "./publish.ts";
 * const out = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${out}/index.html`, `<p><a href="#x">x</a><a href="notes.txt">notes</a></p>`);
 * await Deno.writeTextFile(`${out}/claims.json`, "{}");
 * await Deno.writeTextFile(`${out}/summary.md`, "|a|");
 * await Deno.writeTextFile(`${out}/notes.txt`, "n");
 * const r = await publishReport(out, `${out}/lean`);
 * assert.equal(r.files, 4);
 * assert.equal(await Deno.readTextFile(`${out}/lean/notes.txt`), "n");
 * // again: the earlier copy (marked) is replaced; a file of the user's there is refused
 * await publishReport(out, `${out}/lean`);
 * await Deno.writeTextFile(`${out}/lean/keep.txt`, "mine");
 * await assert.rejects(publishReport(out, `${out}/lean`), /keep\.txt/);
 * assert.equal(await Deno.readTextFile(`${out}/lean/keep.txt`), "mine");
 * ```
 */
export async function publishReport(
  out: string,
  dir: string,
  options: PublishOptions = {},
): Promise<Published> {
  const o: Required<PublishOptions> = {
    thumbWidth: 112,
    montageWidth: 1600,
    quality: 85,
    keepBytes: 24 * 1024,
    option: "publish folder",
    ...options,
  };
  const flag = { flag: o.option, hint: publishHint(dir), replace: true };
  const target = await inspectFolder(dir, "publish", flag);
  let html = TEXT.decode(await Deno.readFile(join(out, "index.html")));
  // everything goes into a new sibling folder of vitrep's own (marked), moved into `dir` at the end
  const tmp = `${dir.replace(/[/\\]+$/, "")}.vitrep-tmp-${
    crypto.randomUUID().slice(0, 8)
  }`;
  await claimFolder(tmp, "publish", { ...flag, command: PUBLISH_COMMAND });
  const written: Uint8Array[] = [];
  const rels: string[] = [];
  const put = async (rel: string, bytes: Uint8Array) => {
    rels.push(rel);
    await Deno.mkdir(dirname(join(tmp, rel)), { recursive: true });
    await Deno.writeFile(join(tmp, rel), bytes);
    written.push(bytes);
  };
  try {
    html = await copyShown(out, html, o, put);
    for (const name of ["claims.json", "summary.md"]) {
      await put(name, await Deno.readFile(join(out, name)));
    }
    await put("index.html", new TextEncoder().encode(html));
    await writeMarker(tmp, "publish", PUBLISH_COMMAND, rels);
  } catch (err) {
    await discard(tmp, rels);
    throw err;
  }
  await moveInto(tmp, dir, target, rels, o.option);
  return {
    files: written.length,
    bytes: written.reduce((s, b) => s + b.length, 0),
  };
}

/** Removes the sibling folder `tmp` of an unfinished copy: only the files written there. */
async function discard(tmp: string, rels: readonly string[]): Promise<void> {
  try {
    await writeMarker(tmp, "publish", PUBLISH_COMMAND, rels);
    await removeOutputs(tmp, "publish");
    await unclaimEmpty(tmp, true);
  } catch {
    // left for the user to see; it holds only vitrep's files
  }
}

/**
 * Puts the copy in `tmp` (marked, listing `rels`) in place of `dir`: a new
 * `dir` is the renamed `tmp`; otherwise the old copy's listed files go (a
 * file vitrep did not write there refuses, naming it), then the new files
 * move in and `dir`'s marker lists them.
 */
async function moveInto(
  tmp: string,
  dir: string,
  target: FolderState,
  rels: readonly string[],
  option: string,
): Promise<void> {
  if (target.status === "new") {
    try {
      await Deno.rename(tmp, dir);
      return;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) {
        await discard(tmp, rels);
        throw err;
      }
    }
  }
  try {
    // checked again: made meanwhile, or a file put there since
    const now = await inspectFolder(dir, "publish", {
      flag: option,
      hint: publishHint(dir),
    });
    if (now.status === "marked") await removeOutputs(dir, "publish");
  } catch (err) {
    await discard(tmp, rels);
    throw err;
  }
  const old = (await readMarker(dir))?.files ?? [];
  // listed before the move, so a failure midway leaves nothing unlisted
  await writeMarker(dir, "publish", PUBLISH_COMMAND, [...old, ...rels]);
  for (const rel of rels) {
    await Deno.mkdir(dirname(join(dir, rel)), { recursive: true });
    await Deno.rename(join(tmp, rel), join(dir, rel));
  }
  await writeMarker(dir, "publish", PUBLISH_COMMAND, rels);
  await writeMarker(tmp, "publish", PUBLISH_COMMAND, []);
  await removeOutputs(tmp, "publish").catch(() => {});
  await unclaimEmpty(tmp, true);
}

/** A page reference as a path inside the report folder; one leaving it fails. */
function inside(out: string, ref: string): string {
  const rel = normalize(unescape(ref)).replaceAll("\\", "/");
  if (isAbsolute(rel) || rel === ".." || rel.startsWith("../")) {
    throw new TypeError(
      `Cannot publish the report in "${out}": its page shows "${ref}", outside the report folder: expected paths inside it (run the essay command again to rewrite the page)`,
    );
  }
  return rel;
}

/** Copies (leaner) every file the page shows; the page with references to re-encoded images rewritten. */
async function copyShown(
  out: string,
  html: string,
  o: Required<PublishOptions>,
  put: (rel: string, bytes: Uint8Array) => Promise<void>,
): Promise<string> {
  for (const { ref, cls } of localReferences(html)) {
    const path = join(out, inside(out, ref));
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (err) {
      throw new TypeError(
        `Cannot publish the report in "${out}": its page shows "${ref}", which cannot be read (${
          err instanceof Error ? err.message : err
        }): run the essay command again to complete the report`,
      );
    }
    const slim = lean(inside(out, ref), cls, bytes, o);
    await put(slim.ref, slim.bytes);
    if (slim.ref !== inside(out, ref)) {
      html = html.replaceAll(`"${ref}"`, `"${slim.ref}"`);
    }
  }
  return html;
}

/** The README's markers around the essay summary. */
export const SUMMARY_MARKERS = [
  "<!-- essay summary: made by `deno task readme` from docs/essay/claims.json -->",
  "<!-- end of essay summary -->",
] as const;

/**
 * `text` (a README) with the part between {@linkcode SUMMARY_MARKERS}
 * replaced by {@linkcode summaryMarkdown} of a report's claims.json contents,
 * naming the report's page as `page`. Fails when the markers are missing or
 * the data is not a report's claims.json.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readmeWithSummary, SUMMARY_MARKERS } from "./publish.ts";
 * import { BUDGETS } from "./budgets.ts";
 * const readme = `# x\n${SUMMARY_MARKERS[0]}\nold\n${SUMMARY_MARKERS[1]}\nrest\n`;
 * const claims = [{ id: "vit_depth", section: "S", quote: "q", rule: "r", experiments: [], origin: ["untrained"], verdict: "agrees", numbers: { psnr_1: 28.3 }, missing: [] }];
 * const next = readmeWithSummary(readme, { budget: BUDGETS.standard, claims }, "docs/essay/index.html");
 * assert.match(next, /\| vit_depth \| S \| agrees \| psnr_1 = 28\.300 \|/);
 * assert.match(next, /Rules and figures: docs\/essay\/index.html\./);
 * assert.ok(next.endsWith("rest\n"));
 * ```
 */
export function readmeWithSummary(
  text: string,
  report: unknown,
  page: string,
): string {
  const [open, close] = SUMMARY_MARKERS;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) {
    throw new TypeError(
      `Invalid README: the essay summary markers are missing: expected the lines "${open}" and "${close}" around it`,
    );
  }
  const r = report as { budget?: Budget; claims?: ClaimRecord[] };
  if (
    typeof r?.budget?.name !== "string" ||
    typeof r.budget.about !== "string" || !Array.isArray(r.claims)
  ) {
    throw new TypeError(
      `Invalid report data: expected the contents of an essay report's claims.json (budget and claims)`,
    );
  }
  return text.slice(0, a + open.length) + "\n\n" +
    summaryMarkdown(r.claims, r.budget, page) + "\n" + text.slice(b);
}
