/**
 * A lean copy of an essay report, to commit or share: the page, its data and
 * only the files the page shows, with large images re-encoded (thumbnails
 * shrunk, montages as JPEG), so a standard-budget report fits in a few MB
 * instead of the hundreds the run folder holds (every cell's npy, SVG twins,
 * side-by-sides).
 *
 * @module
 */
import { dirname, join } from "node:path";
import {
  decodePng,
  encodeJpeg,
  type ImageTensor,
  listDir,
  resizeBilinear,
} from "../io/mod.ts";
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

/**
 * Writes a lean copy of the essay report in `out` into `dir`: index.html
 * (its image references rewritten where an image changed format),
 * claims.json, summary.md, and every file the page shows or links, at the
 * same relative paths. Thumbnails are shrunk to `thumbWidth` and, with
 * montages, stored as JPEG; small PNGs (heatmaps, plots) are copied as they
 * are. `dir` must be new, empty or an earlier published report, which the
 * new copy replaces as a whole (written beside it first: a failure leaves
 * the old one). A reference to a missing file fails naming it. Returns the
 * count and size of what was written.
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
    ...options,
  };
  await checkTarget(dir);
  let html = TEXT.decode(await Deno.readFile(join(out, "index.html")));
  // everything goes into a fresh sibling folder that replaces `dir` at the end
  const tmp = `${dir.replace(/[/\\]+$/, "")}.tmp-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const written: Uint8Array[] = [];
  const put = async (rel: string, bytes: Uint8Array) => {
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
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(tmp, dir);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  return {
    files: written.length,
    bytes: written.reduce((s, b) => s + b.length, 0),
  };
}

/** `dir` must be new, empty, or an earlier published report (it holds index.html and claims.json). */
async function checkTarget(dir: string): Promise<void> {
  const names = (await listDir(dir)).map((e) => e.name);
  if (
    names.length > 0 &&
    !(names.includes("index.html") && names.includes("claims.json"))
  ) {
    throw new TypeError(
      `Invalid publish folder "${dir}": it holds other files (${
        names.slice(0, 3).join(", ")
      }…): expected a new or empty folder, or an earlier published report`,
    );
  }
}

/** Copies (leaner) every file the page shows; the page with references to re-encoded images rewritten. */
async function copyShown(
  out: string,
  html: string,
  o: Required<PublishOptions>,
  put: (rel: string, bytes: Uint8Array) => Promise<void>,
): Promise<string> {
  for (const { ref, cls } of localReferences(html)) {
    const path = join(out, unescape(ref));
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
    const slim = lean(unescape(ref), cls, bytes, o);
    await put(slim.ref, slim.bytes);
    if (slim.ref !== unescape(ref)) {
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
