/// <reference lib="dom" />
/**
 * The page's run view: the strip of layer panels (the representation as it
 * forms and its convergence curve with the noise baseline), the frames kept
 * every few steps and the scrubber that steps back through them, the metrics
 * table with each layer's downloads (representation PNG, traces CSV) and the
 * run's metrics JSON, and the history of the page's runs side by side.
 *
 * @module
 */

import { h } from "./controls.ts";
import type {
  Frame,
  GenerateEntry,
  LayerEntry,
  RunResult,
} from "./protocol.ts";

type Row = Record<string, number | null>;

/** One panel of the strip: a layer (or the generated class, layer −1). */
interface Panel {
  layer: number;
  figure: HTMLElement;
  canvas: HTMLCanvasElement;
  box: HTMLElement;
  caption: HTMLElement;
  frames: { step: number; frame: Frame }[];
  rows: Row[];
  plot: string;
  entry?: LayerEntry | GenerateEntry;
  png?: string;
  csv?: string;
}

/** The view's elements. */
export interface ViewElements {
  strip: HTMLElement;
  scrub: HTMLInputElement;
  scrubLabel: HTMLElement;
  metrics: HTMLTableElement;
  downloads: HTMLElement;
}

/** Draws an RGBA frame into a canvas at its own size. */
export function drawFrame(canvas: HTMLCanvasElement, f: Frame): void {
  canvas.width = f.width;
  canvas.height = f.height;
  const img = new ImageData(f.width, f.height);
  img.data.set(f.rgba);
  canvas.getContext("2d")!.putImageData(img, 0, 0);
}

/** A download link for bytes or text (an object URL the history frees). */
function download(
  name: string,
  data: BlobPart,
  type: string,
  text: string,
  urls: string[],
): HTMLAnchorElement {
  const url = URL.createObjectURL(new Blob([data], { type }));
  urls.push(url);
  return h("a", { href: url, download: name, "data-download": name }, text);
}

function fixed(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : v.toFixed(digits);
}

const SVG = "http://www.w3.org/2000/svg";

/** The bytes of frames a run keeps for the scrubber (all panels together). */
const FRAME_BYTES = 256 * 2 ** 20;

/**
 * Puts a plot (SVG from the worker) into `box` with its clip ids made unique
 * to the panel, and a vertical marker at `step` (none when null): x from the
 * first and last points of the plot's first series, whose steps are known.
 */
function showPlot(
  box: HTMLElement,
  svg: string,
  id: string,
  span: [number, number],
  step: number | null,
): void {
  box.innerHTML = svg.replaceAll('id="clip', `id="${id}clip`).replaceAll(
    "url(#clip",
    `url(#${id}clip`,
  );
  const line = box.querySelector("polyline[data-label]");
  if (step === null || !line) return;
  const pts = (line.getAttribute("points") ?? "").trim().split(/\s+/).map((p) =>
    p.split(",").map(Number)
  );
  const [x0, x1] = [pts[0][0], pts.at(-1)![0]];
  if (!(span[1] > span[0])) return;
  const x = x0 + (x1 - x0) * (step - span[0]) / (span[1] - span[0]);
  const r = box.querySelector("clipPath rect");
  const top = Number(r?.getAttribute("y") ?? 0);
  const bottom = top + Number(r?.getAttribute("height") ?? 200);
  const mark = document.createElementNS(SVG, "line");
  for (
    const [k, v] of Object.entries({
      x1: x,
      x2: x,
      y1: top,
      y2: bottom,
      stroke: "#888",
      "stroke-dasharray": "3 2",
      "data-label": "scrub",
    })
  ) mark.setAttribute(k, String(v));
  box.querySelector("svg")?.append(mark);
}

/** The view of the current run: panels, frames, scrubber, metrics, downloads. */
export class RunView {
  #el: ViewElements;
  #panels = new Map<number, Panel>();
  #steps = 1;
  #following = true;
  #urls: string[] = [];
  #target: HTMLCanvasElement | null = null;

  constructor(el: ViewElements) {
    this.#el = el;
    el.scrub.oninput = () => {
      this.#following = Number(el.scrub.value) >= Number(el.scrub.max);
      this.#show(Number(el.scrub.value));
    };
  }

  /** Empties the view for a run of `steps` steps over `layers` (−1: a generation). */
  reset(
    layers: readonly number[],
    steps: number,
    title: (l: number) => string,
  ): void {
    this.#panels.clear();
    this.#urls = [];
    this.#steps = steps;
    this.#following = true;
    const { strip, scrub, metrics, downloads } = this.#el;
    this.#target = h("canvas", { class: "px" });
    const target = h(
      "figure",
      { class: "panel target" },
      this.#target,
      h("figcaption", {}, "target"),
    );
    strip.replaceChildren(...(layers[0] === -1 ? [] : [target]));
    for (const layer of layers) {
      const canvas = h("canvas", { class: "px" });
      const box = h("div", { class: "plot" });
      const caption = h("figcaption", {}, `${title(layer)}: waiting`);
      const figure = h(
        "figure",
        { class: "panel", "data-layer": String(layer) },
        h("h3", {}, title(layer)),
        canvas,
        caption,
        box,
      );
      strip.append(figure);
      this.#panels.set(layer, {
        layer,
        figure,
        canvas,
        box,
        caption,
        frames: [],
        rows: [],
        plot: "",
      });
    }
    scrub.max = String(steps);
    scrub.value = String(steps);
    scrub.disabled = true;
    this.#el.scrubLabel.textContent = "";
    metrics.replaceChildren();
    downloads.replaceChildren();
  }

  /** Shows the target image. */
  target(f: Frame): void {
    if (this.#target) drawFrame(this.#target, f);
  }

  /** Adds trace rows and a frame of a layer. */
  progress(
    layer: number,
    step: number,
    rows: Row[],
    frame: Frame,
    plot: string | null,
  ): void {
    const p = this.#panels.get(layer);
    if (!p) return;
    p.rows.push(...rows);
    if (plot !== null) p.plot = plot;
    p.frames.push({ step: step + 1, frame });
    // frames kept within FRAME_BYTES for the run: every other one goes when full
    const cap = Math.max(
      20,
      Math.floor(FRAME_BYTES / this.#panels.size / frame.rgba.length),
    );
    if (p.frames.length > cap) {
      p.frames = p.frames.filter((_, i) =>
        i % 2 === 1 || i === p.frames.length - 1
      );
    }
    p.figure.classList.add("running");
    this.#el.scrub.disabled = false;
    if (this.#following) {
      this.#el.scrub.value = String(step + 1);
      this.#draw(p, step + 1);
      this.#el.scrubLabel.textContent = `after step ${step + 1}`;
    }
  }

  /** Shows every panel as it was after `step` steps (its last frame at or before it). */
  #show(step: number): void {
    for (const p of this.#panels.values()) this.#draw(p, step);
    this.#el.scrubLabel.textContent = `after step ${step}`;
  }

  #draw(p: Panel, step: number): void {
    const f = p.frames.findLast((f) => f.step <= step) ?? p.frames[0];
    if (!f) return;
    drawFrame(p.canvas, f.frame);
    const rows = p.rows;
    const last = p.frames.at(-1)!.step;
    const span: [number, number] = [rows[0]?.step ?? 0, rows.at(-1)?.step ?? 0];
    const id = `p${p.layer + 1}`;
    showPlot(p.box, p.plot, id, span, f.step < last ? f.step - 1 : null);
    const row = rows.findLast((r) => r.step! < f.step);
    p.caption.textContent = p.layer === -1
      ? `after step ${f.step}: p = ${fixed(row?.probability, 3)}`
      : `after step ${f.step}: embedding distance ${
        fixed(row?.embedding_distance, 3)
      }`;
  }

  /** A layer's final figures and files: its metrics row and download links. */
  layerDone(
    layer: number,
    entry: LayerEntry | GenerateEntry,
    png: Uint8Array,
    csv: string,
  ): void {
    const p = this.#panels.get(layer);
    if (!p) return;
    p.entry = entry;
    p.figure.classList.remove("running");
    p.figure.classList.add("done");
    const stem = layer === -1 ? "generated" : `layer${layer}_representation`;
    const links = h(
      "td",
      {},
      download(
        `${stem}.png`,
        png as Uint8Array<ArrayBuffer>,
        "image/png",
        "PNG",
        this.#urls,
      ),
      " ",
      download(
        layer === -1 ? "traces.csv" : `layer${layer}_traces.csv`,
        csv,
        "text/csv",
        "CSV",
        this.#urls,
      ),
    );
    p.png = this.#urls.at(-2);
    p.csv = this.#urls.at(-1);
    if (!this.#el.metrics.tHead) {
      this.#el.metrics.append(...this.#header(layer === -1));
    }
    const cells = "layer" in entry
      ? [
        String(entry.layer),
        entry.name,
        fixed(entry.final.psnr, 2),
        fixed(entry.final.ssim, 3),
        entry.criterionStep === null ? "not met" : String(entry.criterionStep),
        fixed(entry.msPerStep, 1),
        String(entry.final.steps),
        entry.backend,
      ]
      : [
        `${entry.class.index} ${entry.class.name}`,
        `${entry.predicted.name} (p ${fixed(entry.predicted.probability, 3)})`,
        fixed(entry.final.probability, 3),
        fixed(entry.final.logit, 2),
        fixed(entry.msPerStep, 1),
        String(entry.final.steps),
        entry.backend,
      ];
    this.#el.metrics.tBodies[0].append(
      h(
        "tr",
        { "data-layer": String(layer) },
        ...cells.map((c) => h("td", {}, c)),
        links,
      ),
    );
    p.caption.textContent = "layer" in entry
      ? `final (after step ${entry.final.steps}): PSNR ${
        fixed(entry.final.psnr, 2)
      } dB, SSIM ${fixed(entry.final.ssim, 3)}`
      : `final: p(${entry.class.name}) = ${
        fixed(entry.final.probability, 3)
      }, read as ${entry.predicted.name}`;
  }

  #header(generate: boolean): HTMLTableSectionElement[] {
    const names = generate
      ? [
        "class",
        "read as",
        "p(class)",
        "logit",
        "ms/step",
        "steps",
        "backend",
        "downloads",
      ]
      : [
        "layer",
        "name",
        "PSNR (dB)",
        "SSIM",
        "criterion step",
        "ms/step",
        "steps",
        "backend",
        "downloads",
      ];
    return [
      h("thead", {}, h("tr", {}, ...names.map((n) => h("th", {}, n)))),
      h("tbody"),
    ];
  }

  /** The run's metrics JSON link; returns the thumbnails and URLs the history keeps. */
  done(
    result: RunResult,
  ): {
    images: { label: string; url: string; figure: string }[];
    urls: string[];
  } {
    const json = JSON.stringify(result, null, 1);
    this.#el.downloads.replaceChildren(
      "run: ",
      download(
        "metrics.json",
        json,
        "application/json",
        "metrics JSON",
        this.#urls,
      ),
    );
    const images = [...this.#panels.values()].filter((p) => p.entry && p.png)
      .map((p) => ({
        label: p.layer === -1 ? "generated" : `layer ${p.layer}`,
        url: p.png!,
        figure: p.entry && "layer" in p.entry
          ? `PSNR ${fixed(p.entry.final.psnr, 2)}`
          : `p ${fixed((p.entry as GenerateEntry).final.probability, 3)}`,
      }));
    return { images, urls: this.#urls };
  }
}

/** The history of the page's runs: a card per run, side by side. */
export class History {
  #el: HTMLElement;
  #count = 0;

  constructor(el: HTMLElement) {
    this.#el = el;
  }

  /** Adds a finished run; `restore` puts its settings back into the form. */
  add(
    title: string,
    run: {
      images: { label: string; url: string; figure: string }[];
      urls: string[];
    },
    restore: () => void,
  ): void {
    this.#count++;
    const again = h("button", {
      type: "button",
      title: "put these settings back into the form",
    }, "settings");
    const close = h("button", {
      type: "button",
      title: "remove from the history",
    }, "×");
    const card = h(
      "div",
      { class: "card", "data-run": String(this.#count) },
      h(
        "div",
        { class: "card-title" },
        `#${this.#count} ${title}`,
        " ",
        again,
        close,
      ),
      h(
        "div",
        { class: "thumbs" },
        ...run.images.map((i) =>
          h(
            "figure",
            {},
            h("img", { src: i.url, alt: i.label }),
            h("figcaption", {}, `${i.label}: ${i.figure}`),
          )
        ),
      ),
    );
    again.onclick = restore;
    close.onclick = () => {
      card.remove();
      for (const u of run.urls) URL.revokeObjectURL(u);
    };
    this.#el.prepend(card);
    const cards = this.#el.querySelectorAll(".card");
    for (const old of [...cards].slice(12)) {
      (old.querySelector("button:last-child") as HTMLButtonElement).click();
    }
  }
}
