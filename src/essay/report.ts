/**
 * The essay report as one offline HTML page: the essay's sections in order,
 * each claim quoted with its verdict and the rule that computed it, then the
 * experiments (settings, montage, table with per-patch PSNR maps, convergence
 * plots of long runs). Images are relative paths inside the report folder;
 * only files that exist are referenced.
 *
 * @module
 */
import type { DepthLine } from "./depth.ts";
import { join } from "node:path";
import type { Budget } from "./budgets.ts";
import { type ClaimRecord, CLAIMS, ESSAY } from "./claims.ts";
import type { Planned } from "./experiments.ts";
import { GENERATE_DEFAULTS, INVERT_DEFAULTS } from "../optimize/mod.ts";
import { HEAT_RANGE } from "./patches.ts";
import type { CellResult, ExperimentResult } from "./results.ts";

/** What the report shows. */
export interface ReportData {
  /** The report folder (image paths are relative to it). */
  out: string;
  /** The budget run. */
  budget: Budget;
  /** The target image. */
  image: string;
  /** Every experiment as planned. */
  planned: readonly Planned[];
  /** Results by experiment. */
  results: ReadonlyMap<string, ExperimentResult>;
  /** Every claim, judged. */
  claims: readonly ClaimRecord[];
  /** Whether the run was interrupted. */
  interrupted: boolean;
  /** PSNR against relative depth across architectures: the figure (relative path) and its lines. */
  depth?: { figure: string | null; lines: readonly DepthLine[] };
}

/** Escapes text for HTML. */
function esc(s: unknown): string {
  return String(s).replaceAll("&", "&amp;").replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

const fmt = (v: number | null | undefined, d = 2) =>
  v === null || v === undefined
    ? "—"
    : Number.isFinite(v)
    ? Math.abs(v) >= 1e5 ? v.toExponential(2) : v.toFixed(d)
    : v > 0
    ? "∞"
    : "NaN";

const ORIGIN: Record<string, string> = {
  untrained: "untrained models",
  small: "the small models trained here on Fashion-MNIST",
  ImageNet: "ImageNet weights",
};

/** Whether `rel` exists in the report folder. */
function exists(out: string, rel: string): Promise<boolean> {
  return Deno.stat(join(out, rel)).then(() => true, () => false);
}

/** A relative path as a URL path. */
const href = (rel: string) => rel.replaceAll("\\", "/");

/** An <img> when the file exists in the report folder, else nothing. */
async function img(
  out: string,
  rel: string | null,
  alt: string,
  cls = "",
): Promise<string> {
  if (rel === null || !(await exists(out, rel))) return "";
  return `<img src="${esc(href(rel))}" alt="${esc(alt)}"${
    cls ? ` class="${cls}"` : ""
  }>`;
}

function verdictBadge(v: string): string {
  return `<span class="verdict ${v.replace(" ", "-")}">${esc(v)}</span>`;
}

/** The one-line settings of a planned experiment. */
function settings(p: Planned): string {
  const g = p.grid;
  if (!g) {
    return p.trained
      ? `${esc(p.trained.model)}, weights ${esc(p.trained.weights)} (${
        esc(ORIGIN[p.origin])
      }) against untrained seed 0`
      : "";
  }
  const rows = g.rows.map(([l, o]) =>
    `<q>${esc(l)}</q>${o ? ` (<code>${esc(o)}</code>)` : ""}`
  ).join(", ");
  const cols = g.layers
    ? `layers ${g.layers.join(", ")}`
    : `classes ${g.classes!.join(", ")}`;
  const d = g.layers ? INVERT_DEFAULTS : GENERATE_DEFAULTS;
  const sch = (x: { start: number; end: number }) => `${x.start}→${x.end}`;
  return `model <b>${esc(g.model)}</b>, weights ${
    esc(g.weights ?? "untrained")
  } (${
    esc(ORIGIN[p.origin])
  }), seed 0; ${cols}; rows ${rows}; ${g.steps} steps per cell; learning rate ${
    sch(d.lr)
  }, blur σ ${
    sch(d.sigma)
  } (${d.kernelSize}×${d.kernelSize}) unless a row sets them${
    g.layers ? `; ${INVERT_DEFAULTS.loss.toUpperCase()} feature loss` : ""
  }`;
}

function cellStatus(c: CellResult): string {
  if (c.exploded) return `<span class="exploded">${esc(c.exploded)}</span>`;
  if (c.criterionMet === null) return esc(c.status);
  return c.criterionMet ? `yes (step ${c.criterionStep})` : "no";
}

async function invertTable(
  out: string,
  cells: readonly CellResult[],
): Promise<string> {
  const rows = [];
  for (const c of cells) {
    const rep = await img(
      out,
      join(c.dir, "representation.png"),
      `${c.row}, layer ${c.column}`,
      "thumb",
    );
    const map = await img(out, c.heatmap, "per-patch PSNR", "thumb");
    const plot = await exists(out, join(c.dir, "convergence.png"))
      ? `<a href="${esc(href(join(c.dir, "convergence.png")))}">plot</a>`
      : "";
    rows.push(
      `<tr><td>${esc(c.row)}</td><td>${c.column}</td><td>${
        fmt(c.embeddingDistance, 3)
      }</td><td>${fmt(c.noiseBaseline, 3)}</td><td>${cellStatus(c)}</td><td>${
        fmt(c.inputDistance)
      }</td><td>${fmt(c.psnr)}</td><td>${fmt(c.ssim, 3)}</td><td>${
        fmt(c.patches?.median)
      }</td><td>${
        fmt(c.patches?.iqr)
      }</td><td>${rep}</td><td>${map}</td><td>${plot}</td></tr>`,
    );
  }
  return `<table class="cells"><thead><tr><th>variant</th><th>layer</th><th>‖O(a)−O(a_g)‖₂</th><th>noise baseline ‖O(a)−O(a′)‖₂</th><th>criterion met</th><th>‖a−a_g‖₂</th><th>PSNR dB</th><th>SSIM</th><th>patch PSNR median</th><th>patch PSNR IQR</th><th>representation</th><th>per-patch PSNR (${
    HEAT_RANGE[0]
  }–${HEAT_RANGE[1]} dB)</th><th>convergence</th></tr></thead><tbody>${
    rows.join("")
  }</tbody></table>`;
}

function generateTable(cells: readonly CellResult[]): string {
  return `<table class="cells"><thead><tr><th>variant</th><th>class</th><th>status</th><th>final logit</th><th>probability</th></tr></thead><tbody>${
    cells.map((c) =>
      `<tr><td>${esc(c.row)}</td><td>${c.column}</td><td>${
        c.exploded ? cellStatus(c) : esc(c.status)
      }</td><td>${fmt(c.logit, 3)}</td><td>${fmt(c.probability, 4)}</td></tr>`
    ).join("")
  }</tbody></table>`;
}

/** One experiment: settings, command, montage, table, long-run plots. */
async function experimentHtml(d: ReportData, p: Planned): Promise<string> {
  const head = `<section class="experiment" id="exp-${esc(p.id)}"><h4>${
    esc(p.title)
  } <small>(${esc(p.id)})</small></h4>`;
  if (p.missing) {
    return `${head}<p class="notrun">not run: ${
      esc(p.missing.reason)
    }. To run it: <code>${esc(p.missing.command)}</code></p></section>`;
  }
  const r = d.results.get(p.id);
  const parts = [head, `<p>${settings(p)}</p>`];
  if (!r || r.status !== "done") {
    parts.push(
      `<p class="notrun">${esc(r?.status ?? "not run")}${
        r?.error ? `: ${esc(r.error)}` : ""
      } (run the same command again to continue)</p>`,
    );
  }
  if (r?.values) {
    parts.push(
      `<p>${
        Object.entries(r.values).map(([k, v]) => `${esc(k)} = ${fmt(v, 3)}`)
          .join(", ")
      }</p>`,
    );
  }
  parts.push(
    await img(
      d.out,
      r?.figure ?? join("cells", p.id, "grid.png"),
      p.title,
      "montage",
    ),
  );
  if (r && r.cells.length > 0) {
    parts.push(
      p.grid?.classes
        ? generateTable(r.cells)
        : await invertTable(d.out, r.cells),
    );
    const long = p.grid && p.grid.steps >= 10 * d.budget.vitSteps;
    if (long || p.id === "noninvertible" || p.id === "vit_recovery") {
      for (const c of r.cells) {
        parts.push(
          await img(
            d.out,
            join(c.dir, "convergence.png"),
            `convergence: ${c.row}`,
            "plot",
          ),
        );
      }
    }
  }
  parts.push("</section>");
  return parts.join("\n");
}

/** The cross-architecture depth figure and its points. */
async function depthHtml(d: ReportData): Promise<string> {
  const lines = d.depth?.lines ?? [];
  if (lines.length === 0) return "";
  const rows = lines.map((l) =>
    `<tr><td>${esc(l.model)}</td><td>${
      l.points.map((p) => `${p.layer}: ${fmt(p.psnr)} (${esc(p.row)})`).join(
        ", ",
      )
    }</td></tr>`
  ).join("");
  return `<section class="experiment" id="depth"><h4>Representation against relative depth, across architectures</h4><p>From the depth experiments (${
    lines.map((l) =>
      `<a href="#exp-${esc(l.experiment)}">${esc(l.experiment)}</a>`
    )
      .join(", ")
  }): at each layer the best PSNR among the rows that keep the layer norms (the learning rates the budget tries), exploded cells left out, against layer / the model's blocks.</p>${
    d.depth?.figure
      ? await img(
        d.out,
        d.depth.figure,
        "PSNR against relative depth",
        "plot",
      )
      : ""
  }<table class="cells"><thead><tr><th>model</th><th>layer: PSNR dB (row)</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function claimHtml(c: ClaimRecord): string {
  const nums = Object.entries(c.numbers).map(([k, v]) =>
    `<code>${esc(k)}</code> = ${fmt(v, 3)}`
  ).join(", ");
  const notRun =
    c.notRun?.map((n) =>
      `<li>${esc(n.reason)}: <code>${esc(n.command)}</code></li>`
    ).join("") ?? "";
  return `<article class="claim" id="claim-${esc(c.id)}"><blockquote>${
    esc(c.quote)
  }</blockquote><p>${verdictBadge(c.verdict)} <b>Rule:</b> ${
    esc(c.rule)
  }</p><p><b>Numbers</b> (${
    esc(c.origin.map((o) => ORIGIN[o]).join("; ") || "nothing run")
  }): ${nums || "none"}; experiments ${
    c.experiments.map((e) => `<a href="#exp-${esc(e)}">${esc(e)}</a>`).join(
      ", ",
    )
  }.</p>${notRun ? `<ul class="notrun">${notRun}</ul>` : ""}</article>`;
}

function summaryTable(claims: readonly ClaimRecord[]): string {
  return `<table id="claims"><thead><tr><th>claim</th><th>section</th><th>verdict</th><th>numbers from</th></tr></thead><tbody>${
    claims.map((c) =>
      `<tr data-claim="${esc(c.id)}" data-verdict="${
        esc(c.verdict)
      }"><td><a href="#claim-${esc(c.id)}">${esc(c.id)}</a></td><td>${
        esc(c.section)
      }</td><td>${verdictBadge(c.verdict)}</td><td>${
        esc(c.origin.map((o) => ORIGIN[o]).join("; ") || "—")
      }</td></tr>`
    ).join("")
  }</tbody></table>`;
}

const STYLE =
  `body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
blockquote{margin:.5em 0;padding:.3em 1em;border-left:4px solid #999;font-style:italic}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:middle}
.verdict{padding:1px 8px;border-radius:8px;font-weight:bold;color:#fff}.agrees{background:#2a7}.partly{background:#d90}.disagrees{background:#c33}.not-run{background:#888}
.exploded{color:#c33;font-weight:bold}.notrun{color:#555}img.montage{max-width:100%}img.thumb{width:72px;height:72px;image-rendering:pixelated}img.plot{max-width:48%}
.experiment{border-top:1px dashed #bbb;margin-top:1em}`;

/**
 * The report page: a summary table of every claim (`#claims`, one row per
 * claim with `data-claim` and `data-verdict`), then the essay's sections with
 * their claims and experiments.
 *
 * @example
 * ```ts ignore
 * import { reportHtml } from "./report.ts";
 * await Deno.writeTextFile("out/essay/index.html", await reportHtml(data));
 * ```
 */
export async function reportHtml(d: ReportData): Promise<string> {
  const sections = [...new Set(CLAIMS.map((c) => c.section))];
  const shown = new Set<string>();
  const body: string[] = [];
  for (const s of sections) {
    body.push(`<h2>${esc(s)}</h2>`);
    for (const c of d.claims.filter((x) => x.section === s)) {
      body.push(claimHtml(c));
    }
    if (d.claims.some((c) => c.section === s && c.id === "resnet_vs_vit")) {
      body.push(await depthHtml(d));
    }
    for (const c of d.claims.filter((x) => x.section === s)) {
      for (const e of c.experiments) {
        const p = d.planned.find((x) => x.id === e);
        if (!p || shown.has(e)) continue;
        shown.add(e);
        body.push(await experimentHtml(d, p));
      }
    }
  }
  const counts = ["agrees", "partly", "disagrees", "not run"].map((v) =>
    `${d.claims.filter((c) => c.verdict === v).length} ${v}`
  ).join(", ");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vitrep: ${
    esc(ESSAY.title)
  }, re-run</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><h1>${esc(ESSAY.title)}: the claims, re-run</h1>
<p>Each claim of the essay <a href="${ESSAY.url}">${
    esc(ESSAY.title)
  }</a> is quoted with the experiment that tests it, run by <code>vitrep essay</code>, and a verdict computed from the numbers by the rule stated next to it. Budget <b>${
    esc(d.budget.name)
  }</b>: ${esc(d.budget.about)}. Target image: <code>${
    esc(d.image.split(/[/\\]/).pop())
  }</code>. ${
    d.interrupted
      ? "<b>Interrupted: run the same command again to continue.</b> "
      : ""
  }${
    d.budget.name === "smoke"
      ? "<b>The smoke budget runs a few steps per cell: its verdicts test the pipeline, not the essay.</b> "
      : ""
  }Verdicts: ${counts}. A run that blew up is marked <span class="exploded">exploded</span>, not as a criterion not met. The per-patch PSNR maps and their spread (IQR) measure the essay's "patchwork".</p>
${summaryTable(d.claims)}
${body.join("\n")}
</body></html>
`;
}

/**
 * The claims as a Markdown table (claim, quote's section, verdict, numbers),
 * for a README: `OUT/summary.md`; `page` is where the report's page is, as
 * the text should name it (default `index.html`, beside the summary).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summaryMarkdown } from "./report.ts";
 * import { BUDGETS } from "./budgets.ts";
 * const md = summaryMarkdown([{ id: "vit_depth", section: "S", quote: "q", rule: "r", experiments: [], origin: ["untrained"], verdict: "partly", numbers: { psnr_1: 28.3, psnr_12: 18.18 }, missing: [] }], BUDGETS.standard);
 * assert.match(md, /\| vit_depth \| S \| partly \| psnr_1 = 28\.300, psnr_12 = 18\.180 \|/);
 * ```
 */
export function summaryMarkdown(
  claims: readonly ClaimRecord[],
  budget: Budget,
  page = "index.html",
): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  return [
    `Budget ${budget.name} (${budget.about}); numbers from ${
      [...new Set(claims.flatMap((c) => c.origin))].map((o) => ORIGIN[o])
        .join(", ") || "nothing run"
    }. Rules and figures: ${page}.`,
    "",
    "| claim | section | verdict | numbers |",
    "| --- | --- | --- | --- |",
    ...claims.map((c) =>
      `| ${c.id} | ${cell(c.section)} | ${c.verdict} | ${
        cell(
          Object.entries(c.numbers).map(([k, v]) => `${k} = ${fmt(v, 3)}`)
            .join(", "),
        )
      } |`
    ),
  ].join("\n") + "\n";
}
