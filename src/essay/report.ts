/**
 * The essay report as one offline HTML page: a contents list, the headline
 * counts (verdicts apart from "not testable" and "not run"), the claims
 * table, then the essay's sections in order — each claim quoted with the
 * essay's setup beside this run's (deviations highlighted), its verdict with
 * the rule that computed it, the numbers per weight draw with their range,
 * and a note when a model stands in for the essay's — then the experiments
 * (settings, montage, cell table with per-patch PSNR maps and their colour
 * bar, convergence plots of long runs). Images are relative paths inside the
 * report folder; only files that exist are referenced. Smoke-budget pages
 * mark every verdict as a pipeline check.
 *
 * @module
 */
import { invocationArgs, rowText } from "../grid/mod.ts";
import type { DepthLine } from "./depth.ts";
import { join } from "node:path";
import { type Budget, budgetDeviations } from "./budgets.ts";
import { type ClaimRecord, CLAIMS, ESSAY, isLegacyRecord } from "./claims.ts";
import type { Planned } from "./experiments.ts";
import { GENERATE_DEFAULTS, INVERT_DEFAULTS } from "../optimize/mod.ts";
import { HEAT_COLOURS, HEAT_RANGE } from "./patches.ts";
import type { CellResult, ExperimentResult } from "./results.ts";
import type { Unit } from "./rules.ts";
import { SETUP_FIELDS } from "./setup.ts";

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

/**
 * A number as its unit reads: yes/no for flags, a percentage for shares,
 * dB with two decimals, others with three.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatValue } from "./report.ts";
 * assert.equal(formatValue(1, "bool"), "yes");
 * assert.equal(formatValue(0.053, "share"), "5.3%");
 * assert.equal(formatValue(28.338, "dB"), "28.34 dB");
 * assert.equal(formatValue(null, "ratio"), "—");
 * ```
 */
export function formatValue(v: number | null | undefined, unit: Unit): string {
  if (v === null || v === undefined) return "—";
  switch (unit) {
    case "bool":
      return v === 1 ? "yes" : v === 0 ? "no" : `${fmt(v * 100, 0)}% yes`;
    case "share":
      return `${fmt(v * 100, 1)}%`;
    case "dB":
      return `${fmt(v)} dB`;
    case "distance":
      return fmt(v);
    default:
      return fmt(v, 3);
  }
}

/** A quantity's mean over seeds as its unit reads: flags as "k of n yes" when the seeds differ. */
function meanText(
  values: readonly (number | null)[],
  mean: number | null,
  unit: Unit,
): string {
  if (unit !== "bool" || mean === null || mean === 0 || mean === 1) {
    return formatValue(mean, unit);
  }
  const got = values.filter((v) => v !== null);
  return `${got.filter((v) => v === 1).length} of ${got.length} yes`;
}

const ORIGIN: Record<string, string> = {
  untrained: "untrained models",
  small:
    "the small models trained here (Fashion-MNIST; colour photographs for the colour ViT)",
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

/** A verdict's badge; on smoke pages with a "pipeline check" tag beside it. */
function verdictBadge(v: string, smoke: boolean): string {
  return `<span class="verdict ${v.replaceAll(" ", "-")}">${esc(v)}</span>${
    smoke ? ` <span class="pipeline-tag">pipeline check</span>` : ""
  }`;
}

/** The one-line settings of a planned experiment. */
function settings(p: Planned, budget: Budget): string {
  const g = p.grid;
  if (p.commands) {
    const rows = [...new Set(p.commands.map((c) => c.key))].join(", ");
    return `model <b>${esc(p.model ?? "")}</b>, untrained, weight draws ${
      p.seeds.join(", ")
    }; numbers ${esc(rows)}; e.g. <code>${
      esc(
        ["deno run -A mod.ts", ...invocationArgs(p.commands[0].call)].join(
          " ",
        ),
      )
    }</code>`;
  }
  if (p.valuesFile) {
    return `numbers read from <code>${
      esc(p.valuesFile)
    }</code> (a run outside vitrep, given with <code>essay --values</code>)`;
  }
  if (!g) {
    return p.trained
      ? `${esc(p.trained.model)}, weights ${esc(p.trained.weights)} (${
        esc(ORIGIN[p.origin])
      }) against untrained seed 0`
      : "";
  }
  const rows = g.rows.filter((r) => r.seed === 0).map((r) =>
    `<q>${esc(r.label)}</q>${
      rowText(r.changes) ? ` (<code>${esc(rowText(r.changes))}</code>)` : ""
    }`
  ).join(", ");
  const cols = g.layers
    ? `layers ${g.layers.join(", ")}`
    : `classes ${g.classes!.join(", ")}`;
  const d = g.layers ? INVERT_DEFAULTS : GENERATE_DEFAULTS;
  const sch = (x: { start: number; end: number }) => `${x.start}→${x.end}`;
  const lr = g.layers && budget.lr ? budget.lr : sch(d.lr);
  return `model <b>${esc(g.model)}</b>, weights ${
    esc(g.weights ?? "untrained")
  } (${esc(ORIGIN[p.origin])}), ${
    p.seeds.length > 1
      ? `every row drawn with seeds ${p.seeds.join(", ")}`
      : "seed 0"
  }; ${cols}; rows ${rows}; ${g.steps} steps per cell unless a row sets them; learning rate ${
    esc(lr)
  }, blur σ ${
    sch(d.sigma)
  } (${d.kernelSize}×${d.kernelSize}) unless a row sets them; input ${
    budget.normalize
      ? "normalized with the model's mean/std"
      : "pixels/255, not normalized"
  }${g.layers ? `; ${INVERT_DEFAULTS.loss.toUpperCase()} feature loss` : ""}${
    p.judge
      ? `; images scored by <b>${esc(p.judge.model)}</b> (${
        esc(p.judge.weights)
      })`
      : ""
  }`;
}

/** The criterion as the claims read it: met at the end, or met and lost. */
function cellStatus(c: CellResult): string {
  if (c.exploded) return `<span class="exploded">${esc(c.exploded)}</span>`;
  if (c.criterionAtEnd === null) {
    if (c.criterionMet === null) return esc(c.status);
    return c.criterionMet ? `yes (step ${c.criterionStep})` : "no";
  }
  if (c.criterionAtEnd) {
    return `met at the end (first at step ${c.criterionStep ?? "?"})`;
  }
  return c.criterionMet
    ? `<span class="lost">met at step ${c.criterionStep}, lost by the end</span>`
    : "no";
}

const COLOUR_BAR =
  `<span class="bar" style="background:linear-gradient(to right,${
    HEAT_COLOURS.join(",")
  })"></span>`;

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
    const pe = c.patchError;
    rows.push(
      `<tr><td>${esc(c.row)}</td><td>${c.column}</td><td>${
        fmt(c.embeddingDistance, 3)
      }</td><td>${fmt(c.noiseBaseline, 3)}</td><td>${
        c.bestEmbedding
          ? `${fmt(c.bestEmbedding.distance, 3)} (step ${c.bestEmbedding.step})`
          : "—"
      }</td><td>${cellStatus(c)}</td><td>${fmt(c.inputDistance)}</td><td>${
        fmt(c.psnr)
      }</td><td>${fmt(c.ssim, 3)}</td><td>${fmt(c.patches?.median)}</td><td>${
        pe ? formatValue(pe.offset + pe.gain, "share") : "—"
      }</td><td>${rep}</td><td>${map}</td><td>${plot}</td></tr>`,
    );
  }
  return `<table class="cells"><thead><tr><th>variant</th><th>layer</th><th>‖O(a)−O(a_g)‖₂ at the end</th><th>noise baseline ‖O(a)−O(a′)‖₂</th><th>lowest ‖O(a)−O(a_g)‖₂</th><th>criterion</th><th>‖a−a_g‖₂</th><th>PSNR dB</th><th>SSIM</th><th>patch PSNR median</th><th>patch offset + gain share of the error</th><th>representation</th><th>per-patch PSNR<br>${
    HEAT_RANGE[0]
  } dB ${COLOUR_BAR} ${
    HEAT_RANGE[1]
  } dB</th><th>convergence</th></tr></thead><tbody>${
    rows.join("")
  }</tbody></table>`;
}

function generateTable(cells: readonly CellResult[]): string {
  return `<table class="cells"><thead><tr><th>variant</th><th>class</th><th>status</th><th>final logit</th><th>own probability</th><th>judging model's probability</th></tr></thead><tbody>${
    cells.map((c) =>
      `<tr><td>${esc(c.row)}</td><td>${c.column}</td><td>${
        c.exploded ? cellStatus(c) : esc(c.status)
      }</td><td>${fmt(c.logit, 3)}</td><td>${fmt(c.probability, 4)}</td><td>${
        fmt(c.judgeProbability, 4)
      }</td></tr>`
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
  const parts = [head, `<p>${settings(p, d.budget)}</p>`];
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
        Object.entries(r.values).map(([k, v]) =>
          `${esc(k)} = ${k === "filters" ? String(v) : fmt(v, 3)}`
        )
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
      l.points.map((p) =>
        `${p.layer}: ${fmt(p.psnr)}${
          p.min !== p.max ? ` (${fmt(p.min)}–${fmt(p.max)})` : ""
        }`
      ).join(", ")
    }</td></tr>`
  ).join("");
  return `<section class="experiment" id="depth"><h4>Representation against relative depth, across architectures</h4><p>From the depth experiments (${
    lines.map((l) =>
      `<a href="#exp-${esc(l.experiment)}">${esc(l.experiment)}</a>`
    )
      .join(", ")
  }): at each layer, per weight draw, the best PSNR among the rows that keep the layer norms (the learning rates the budget tries), exploded cells left out; the mean over draws (their range in brackets), against layer / the model's blocks.</p>${
    d.depth?.figure
      ? await img(
        d.out,
        d.depth.figure,
        "PSNR against relative depth",
        "plot",
      )
      : ""
  }<table class="cells"><thead><tr><th>model</th><th>layer: PSNR dB (range over draws)</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

/** The essay's setup beside this run's; rows that deviate highlighted. */
function setupTable(c: ClaimRecord): string {
  const rows = SETUP_FIELDS.map((f) => {
    const e = c.essay_setup[f.key] ?? null, r = c.run_setup[f.key] ?? null;
    if (e === null && r === null) return "";
    const dev = c.deviations.some((x) => x.startsWith(`${f.label}:`));
    return `<tr${dev ? ' class="dev"' : ""}><th>${esc(f.label)}</th><td>${
      e === null
        ? (f.key === "seeds" ? "one (as shown)" : "not stated")
        : esc(e)
    }</td><td>${r === null ? "—" : esc(r)}</td></tr>`;
  }).join("");
  return `<table class="setup"><thead><tr><th></th><th>the essay</th><th>this run</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The numbers per seed, mean and range; then the rule's verdict per seed. */
function numbersTable(c: ClaimRecord): string {
  const seeds = c.seeds.map((s) => `<th>seed ${s}</th>`).join("");
  const rows = Object.entries(c.values).map(([k, vs]) => {
    const u = c.quantities[k]?.unit ?? "ratio";
    const range = c.range[k];
    return `<tr><td><code>${esc(k)}</code></td>${
      vs.map((v) => `<td>${esc(formatValue(v, u))}</td>`).join("")
    }<td><b>${esc(meanText(vs, c.numbers[k], u))}</b></td><td>${
      range && range[0] !== range[1] && u !== "bool"
        ? `${esc(formatValue(range[0], u))} – ${esc(formatValue(range[1], u))}`
        : ""
    }</td><td class="about">${esc(c.quantities[k]?.about ?? "")}</td></tr>`;
  }).join("");
  const per = c.seeds.length > 1
    ? `<tr><td>rule per seed</td>${
      c.per_seed.map((v) => `<td>${esc(v ?? "—")}</td>`).join("")
    }<td colspan="3"></td></tr>`
    : "";
  return `<table class="numbers"><thead><tr><th>quantity</th>${seeds}<th>${
    c.seeds.length > 1 ? "mean" : "value"
  }</th><th>range</th><th>what it is</th></tr></thead><tbody>${rows}${per}</tbody></table>`;
}

/** Why a claim was not judged (or is borderline). */
function whyHtml(c: ClaimRecord): string {
  const notRun =
    c.notRun?.map((n) =>
      `<li>${esc(n.reason)}: <code>${esc(n.command)}</code></li>`
    ).join("") ?? "";
  if (c.verdict === "not testable") {
    return `<p class="why"><b>Not testable here:</b> ${
      esc(c.reason)
    }. To test it: <code>${
      esc(c.command)
    }</code>. The numbers below are shown for reference; they are not a verdict.</p>`;
  }
  return [
    c.reason
      ? `<p class="why"><b>${
        c.verdict === "borderline" ? "Borderline" : "Why"
      }:</b> ${esc(c.reason)}.</p>`
      : "",
    notRun ? `<ul class="notrun">${notRun}</ul>` : "",
  ].join("");
}

function claimHtml(c: ClaimRecord, smoke: boolean): string {
  const devs = c.deviations.length
    ? `<p><b>Deviations from the essay:</b></p><ul class="devs">${
      c.deviations.map((x) => `<li>${esc(x)}</li>`).join("")
    }</ul>`
    : `<p><b>Deviations from the essay:</b> none in the fields the essay states.</p>`;
  return `<article class="claim" id="claim-${esc(c.id)}"><h3>${
    esc(c.id)
  }</h3><blockquote>${esc(c.quote)}</blockquote><p>${
    verdictBadge(c.verdict, smoke)
  } <b>Rule:</b> ${esc(c.rule)}</p>${whyHtml(c)}${setupTable(c)}${devs}${
    c.stand_in
      ? `<p class="standin"><b>Stand-in:</b> ${
        esc(c.stand_in)
      }. A verdict on a stand-in says what this model does, not what the essay's model does.</p>`
      : ""
  }<p><b>Numbers</b> (${
    esc(c.origin.map((o) => ORIGIN[o]).join("; ") || "nothing run")
  }; ${c.seeds.length} weight draw${c.seeds.length > 1 ? "s" : ""}):</p>${
    numbersTable(c)
  }<p>Experiments: ${
    c.experiments.map((e) => `<a href="#exp-${esc(e)}">${esc(e)}</a>`).join(
      ", ",
    )
  }.</p></article>`;
}

function summaryTable(claims: readonly ClaimRecord[], smoke: boolean): string {
  return `<table id="claims"><thead><tr><th>claim</th><th>section</th><th>verdict</th><th>deviations</th><th>numbers from</th></tr></thead><tbody>${
    claims.map((c) =>
      `<tr data-claim="${esc(c.id)}" data-verdict="${
        esc(c.verdict)
      }"><td><a href="#claim-${esc(c.id)}">${esc(c.id)}</a></td><td>${
        esc(c.section)
      }</td><td>${
        verdictBadge(c.verdict, smoke)
      }</td><td>${c.deviations.length}${
        c.stand_in ? ", stand-in" : ""
      }</td><td>${
        esc(c.origin.map((o) => ORIGIN[o]).join("; ") || "—")
      }</td></tr>`
    ).join("")
  }</tbody></table>`;
}

/**
 * The headline counts: the verdicts, then apart from them the claims not
 * judged (not testable, not run).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { headline } from "./report.ts";
 * const c = (verdict: string) => ({ verdict }) as never;
 * assert.equal(headline([c("agrees"), c("borderline"), c("not testable")]), "Verdicts on 2 claims: 1 agree, 0 partly, 0 disagree, 1 borderline. Not judged: 1 not testable, 0 not run.");
 * ```
 */
export function headline(
  claims: readonly Pick<ClaimRecord, "verdict">[],
): string {
  const n = (v: string) => claims.filter((c) => c.verdict === v).length;
  const judged = claims.length - n("not testable") - n("not run");
  return `Verdicts on ${judged} claims: ${n("agrees")} agree, ${
    n("partly")
  } partly, ${n("disagrees")} disagree, ${
    n("borderline")
  } borderline. Not judged: ${n("not testable")} not testable, ${
    n("not run")
  } not run.`;
}

const STYLE =
  `body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
blockquote{margin:.5em 0;padding:.3em 1em;border-left:4px solid #999;font-style:italic}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:middle}
.verdict{padding:1px 8px;border-radius:8px;font-weight:bold;color:#fff}.agrees{background:#2a7}.partly{background:#d90}.disagrees{background:#c33}.borderline{background:#76c}.not-testable{background:#579}.not-run{background:#888}
tr.dev td,tr.dev th{background:#fff3cd}tr.dev td:last-child{font-weight:bold}.why{border-left:3px solid #579;padding-left:.6em}.standin{color:#633}.lost{color:#b60}
td.about{color:#555;font-size:12px;max-width:420px}.bar{display:inline-block;width:80px;height:10px;vertical-align:middle;border:1px solid #999}
.exploded{color:#c33;font-weight:bold}.notrun{color:#555}img.montage{max-width:100%}img.thumb{width:72px;height:72px;image-rendering:pixelated}img.plot{max-width:48%}
.experiment{border-top:1px dashed #bbb;margin-top:1em}.claim{border-top:2px solid #ddd;margin-top:1.5em}nav ul{columns:2;font-size:13px}
.pipeline{border:3px dashed #c33;background:#fee;padding:.6em 1em;font-weight:bold;margin:1em 0}.pipeline-tag{border:1px dashed #c33;color:#c33;font-size:11px;padding:0 4px;border-radius:4px}
body.smoke .verdict{background:repeating-linear-gradient(45deg,#888,#888 6px,#aaa 6px,#aaa 12px)}`;

/** The contents list: sections, their claims, the depth figure. */
function contents(claims: readonly ClaimRecord[]): string {
  const sections = [...new Set(CLAIMS.map((c) => c.section))];
  return `<nav><b>Contents</b><ul>${
    sections.map((s, i) =>
      `<li><a href="#section-${i}">${esc(s)}</a>: ${
        claims.filter((c) => c.section === s).map((c) =>
          `<a href="#claim-${esc(c.id)}">${esc(c.id)}</a>`
        ).join(", ")
      }</li>`
    ).join("")
  }</ul></nav>`;
}

/** The page's opening: what it is, the budget and its deviations, the headline counts. */
function intro(d: ReportData): string {
  const smoke = d.budget.name === "smoke";
  const devs = budgetDeviations(d.budget);
  return `<p>Each claim of the essay <a href="${ESSAY.url}">${
    esc(ESSAY.title)
  }</a> is quoted with the essay's setup beside this run's, the experiment that tests it, run by <code>vitrep essay</code>, and a verdict computed from the numbers by the rule stated next to it, over every weight draw: <b>borderline</b> when the draws fall on both sides of a cut-off, <b>not testable</b> when the model run cannot test the claim (the reason and what would test it are given). Budget <b>${
    esc(d.budget.name)
  }</b>: ${esc(d.budget.about)}. Target image: <code>${
    esc(d.image.split(/[/\\]/).pop())
  }</code>. ${
    d.interrupted
      ? "<b>Interrupted: run the same command again to continue.</b> "
      : ""
  }A run that blew up is marked <span class="exploded">exploded</span>, not as a criterion not met.</p>${
    devs.length
      ? `<p><b>How this budget departs from the essay's settings</b> (the <code>essay</code> budget runs them):</p><ul class="devs">${
        devs.map((x) => `<li>${esc(x)}</li>`).join("")
      }</ul>`
      : ""
  }${
    smoke
      ? `<div class="pipeline">Pipeline check, not a result: the smoke budget runs a few steps per cell and ${d.budget.seeds} weight draws. Its verdicts test that the pipeline runs end to end; they say nothing about the essay.</div>`
      : ""
  }<p class="headline"><b>${esc(headline(d.claims))}</b></p>`;
}

/**
 * The report page: a contents list, the headline counts, a summary table of
 * every claim (`#claims`, one row per claim with `data-claim` and
 * `data-verdict`), then the essay's sections with their claims and
 * experiments.
 *
 * @example
 * ```ts ignore
 * import { reportHtml } from "./report.ts";
 * await Deno.writeTextFile("out/essay/index.html", await reportHtml(data));
 * ```
 */
export async function reportHtml(d: ReportData): Promise<string> {
  const smoke = d.budget.name === "smoke";
  const sections = [...new Set(CLAIMS.map((c) => c.section))];
  const shown = new Set<string>();
  const body: string[] = [];
  for (const [i, s] of sections.entries()) {
    body.push(`<h2 id="section-${i}">${esc(s)}</h2>`);
    for (const c of d.claims.filter((x) => x.section === s)) {
      body.push(claimHtml(c, smoke));
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
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vitrep: ${
    esc(ESSAY.title)
  }, re-run${
    smoke ? " (pipeline check)" : ""
  }</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body${smoke ? ' class="smoke"' : ""}><h1>${
    esc(ESSAY.title)
  }: the claims, re-run${smoke ? " — pipeline check" : ""}</h1>
${intro(d)}
${contents(d.claims)}
${summaryTable(d.claims, smoke)}
${body.join("\n")}
</body></html>
`;
}

/** A record's numbers as the summary prints them: mean (range), flags as yes/no. */
function numbersText(c: ClaimRecord): string {
  return Object.entries(c.numbers).map(([k, v]) => {
    const u = c.quantities?.[k]?.unit ?? "ratio";
    const r = c.range?.[k];
    const spread = r && r[0] !== r[1] && u !== "bool"
      ? ` (${formatValue(r[0], u)} to ${formatValue(r[1], u)})`
      : "";
    return `${k} = ${meanText(c.values?.[k] ?? [], v, u)}${spread}`;
  }).join(", ");
}

/**
 * The claims as a Markdown table (claim, quote's section, verdict, numbers),
 * for a README: `OUT/summary.md`; `page` is where the report's page is, as
 * the text should name it (default `index.html`, beside the summary). The
 * numbers are each quantity's mean over the weight draws with its range.
 * Records of the format before seeds (a report committed by an earlier
 * version, see {@linkcode isLegacyRecord}) print as they did then, so such a
 * report's summary stays what it was.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summaryMarkdown } from "./report.ts";
 * import { BUDGETS } from "./budgets.ts";
 * const legacy = summaryMarkdown([{ id: "vit_depth", section: "S", verdict: "partly", numbers: { psnr_1: 28.3, psnr_12: 18.18 }, origin: ["untrained"] }] as never, BUDGETS.standard);
 * assert.match(legacy, /\| vit_depth \| S \| partly \| psnr_1 = 28\.300, psnr_12 = 18\.180 \|/);
 * const now = summaryMarkdown([{ id: "vit_depth", section: "S", verdict: "borderline", numbers: { gain: 1 }, seeds: [0, 1], values: { gain: [0.5, 1.5] }, range: { gain: [0.5, 1.5] }, quantities: { gain: { about: "", unit: "dB" } }, origin: ["untrained"] }] as never, BUDGETS.standard);
 * assert.match(now, /\| vit_depth \| S \| borderline \| gain = 1\.00 dB \(0\.50 dB to 1\.50 dB\) \|/);
 * ```
 */
export function summaryMarkdown(
  claims: readonly ClaimRecord[],
  budget: Budget,
  page = "index.html",
): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const legacy = claims.some(isLegacyRecord);
  const seeds = Math.max(1, ...claims.map((c) => c.seeds?.length ?? 1));
  return [
    `Budget ${budget.name} (${budget.about}); numbers from ${
      [...new Set(claims.flatMap((c) => c.origin))].map((o) => ORIGIN[o])
        .join(", ") || "nothing run"
    }${
      legacy ? "" : `; up to ${seeds} weight draws (mean, with the range)`
    }. Rules and figures: ${page}.`,
    "",
    "| claim | section | verdict | numbers |",
    "| --- | --- | --- | --- |",
    ...claims.map((c) =>
      `| ${c.id} | ${cell(c.section)} | ${c.verdict} | ${
        cell(
          isLegacyRecord(c)
            ? Object.entries(c.numbers).map(([k, v]) => `${k} = ${fmt(v, 3)}`)
              .join(", ")
            : numbersText(c),
        )
      } |`
    ),
  ].join("\n") + "\n";
}
