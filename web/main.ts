/// <reference lib="dom" />
/**
 * The browser page's entry (bundled by `deno task web` into web/dist/main.js):
 * picks a model, layer, ablations, steps and an image, runs the essay's layer
 * representation with the core modules (`loadModel`, `invert`, `linePlot`)
 * on onnxruntime-web, draws the image and the distance plot every few steps,
 * and writes the final figures as JSON into `#result`.
 *
 * @module
 */

import { linePlot } from "../src/figures/mod.ts";
import {
  decodeImage,
  fitToSize,
  type ImageTensor,
  MAX_IMAGE_BYTES,
  readImage,
} from "../src/io/mod.ts";
import { loadModel, type Model } from "../src/model/mod.ts";
import { invert, type StepInfo, type TraceRow } from "../src/optimize/mod.ts";
import { checkFigures } from "./check.ts";
import {
  ablations,
  DEFAULTS,
  MODELS,
  readSettings,
  type Settings,
} from "./settings.ts";

/** The page's elements. */
interface Ui {
  form: HTMLFormElement;
  stop: HTMLButtonElement;
  run: HTMLButtonElement;
  status: HTMLElement;
  caption: HTMLElement;
  result: HTMLElement;
  target: HTMLCanvasElement;
  current: HTMLCanvasElement;
  plot: HTMLCanvasElement;
  drop: HTMLElement;
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el as T;
}

/** Draws a CHW image in [0, 1] into a canvas at its own size. */
function draw(canvas: HTMLCanvasElement, img: ImageTensor): void {
  const { width, height, data } = img;
  canvas.width = width;
  canvas.height = height;
  const rgba = new ImageData(width, height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      rgba.data[4 * i + c] = Math.round(
        Math.min(Math.max(data[c * plane + i], 0), 1) * 255,
      );
    }
    rgba.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d")!.putImageData(rgba, 0, 0);
}

/** The convergence plot: both distances (log axes) and the noise baseline. */
function plotTrace(rows: readonly TraceRow[], noise: number): ImageTensor {
  const x = rows.map((r) => r.step);
  return linePlot({
    width: 420,
    height: 260,
    xLabel: "step",
    yLabel: "embedding distance",
    y2Label: "input distance",
    logY: true,
    logY2: true,
    series: [
      { label: "embedding", x, y: rows.map((r) => r.embeddingDistance) },
      {
        label: "input",
        x,
        y: rows.map((r) => r.inputDistance),
        axis: "right",
      },
    ],
    hlines: [{ label: "noise baseline", y: noise, dashed: true }],
  });
}

/** Fills the form from settings (so the URL and the form agree). */
function fillForm(form: HTMLFormElement, s: Settings): void {
  const f = form.elements as unknown as Record<string, HTMLInputElement>;
  f.model.value = s.model;
  f.layer.value = String(s.layer);
  f.steps.value = String(s.steps);
  f.backend.value = s.backend;
  for (const box of form.querySelectorAll<HTMLInputElement>("[name=remove]")) {
    box.checked = s.remove.includes(box.value);
  }
}

/** Settings from the form's fields, the query's `check`/`every`/`image` kept. */
function formSettings(form: HTMLFormElement, query: Settings): Settings {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) {
    if (typeof v === "string") q.append(k, v);
  }
  return { ...readSettings(q), every: query.every, image: query.image };
}

/** The target image: a dropped or picked file, else the settings' URL. */
async function targetImage(
  file: File | null,
  s: Settings,
  size: number,
): Promise<ImageTensor> {
  if (file && file.size > MAX_IMAGE_BYTES) {
    throw new RangeError(
      `Invalid image file "${file.name}": ${file.size} bytes exceeds the limit of ${MAX_IMAGE_BYTES} bytes (MAX_IMAGE_BYTES, 256 MiB): pick a smaller image`,
    );
  }
  const img = file
    ? decodeImage(new Uint8Array(await file.arrayBuffer()), file.name)
    : await readImage(s.image);
  return fitToSize(img, size);
}

function open(s: Settings): Promise<Model> {
  const m = MODELS[s.model];
  return loadModel(m.path, {
    weights: m.weights,
    backend: s.backend,
    ablations: ablations(s.remove),
  });
}

/** One inversion, drawn live; returns the figures for `#result`. */
async function represent(
  ui: Ui,
  model: Model,
  s: Settings,
  target: ImageTensor,
  stopped: () => boolean,
): Promise<Record<string, unknown>> {
  const size = target.height;
  const every = s.every || Math.max(1, Math.round(s.steps / 50));
  const rows: TraceRow[] = [];
  const times: number[] = [];
  let last = performance.now();
  const onStep = async (info: StepInfo) => {
    const now = performance.now();
    times.push(now - last);
    rows.push(info);
    if ((info.step + 1) % every === 0 || info.step + 1 === info.steps) {
      draw(ui.current, {
        data: info.image,
        channels: 3,
        height: size,
        width: size,
      });
      draw(ui.plot, plotTrace(rows, info.noiseBaseline));
      ui.caption.textContent = `a_g after ${info.step + 1} steps`;
      ui.status.textContent = `step ${info.step + 1}/${info.steps}: ` +
        `embedding distance ${info.embeddingDistance.toPrecision(4)} ` +
        `(noise baseline ${info.noiseBaseline.toPrecision(4)})`;
      await new Promise((r) => setTimeout(r, 0)); // let the page repaint
    }
    last = performance.now();
    return !stopped();
  };
  const r = await invert(model, target.data, {
    layer: s.layer,
    steps: s.steps,
    onStep,
  });
  draw(ui.current, r.image);
  const sorted = times.slice(1).sort((a, b) => a - b);
  return {
    noiseBaseline: r.noiseBaseline,
    criterionStep: r.criterionStep,
    final: r.final,
    msPerStep: sorted[Math.floor(sorted.length / 2)] ?? times[0],
  };
}

/** Shows an error and writes it into `#result`. */
function fail(ui: Ui, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  ui.status.textContent = `error: ${message}`;
  ui.result.textContent = JSON.stringify({ error: message });
  ui.result.dataset.state = "error";
}

/** Runs what the settings ask and fills `#result` (also on failure). */
async function run(ui: Ui, s: Settings, file: File | null): Promise<void> {
  let stop = false;
  ui.stop.onclick = () => (stop = true);
  ui.run.disabled = true;
  ui.stop.disabled = false;
  ui.result.textContent = "";
  delete ui.result.dataset.state;
  let model: Model | undefined;
  try {
    ui.status.textContent = `loading ${s.model} (${s.backend})…`;
    model = await open(s);
    const base = { settings: { ...s }, backend: model.backend };
    let out: Record<string, unknown>;
    if (s.check) {
      out = { ...base, ...await checkFigures(model, s.layer) };
    } else {
      const target = await targetImage(file, s, model.manifest.image_size);
      draw(ui.target, target);
      out = { ...base, ...await represent(ui, model, s, target, () => stop) };
      const f = out.final as { psnr: number; steps: number };
      ui.status.textContent += ` — done: PSNR ${
        f.psnr.toFixed(2)
      } dB after ${f.steps} steps`;
    }
    ui.result.textContent = JSON.stringify(out);
    ui.result.dataset.state = "done";
  } catch (err) {
    fail(ui, err);
  } finally {
    await model?.release();
    ui.run.disabled = false;
    ui.stop.disabled = true;
  }
}

/** Wires the form, the drop zone and the query string. */
function start(): void {
  const ui: Ui = {
    form: byId("options"),
    stop: byId("stop"),
    run: byId("run"),
    status: byId("status"),
    caption: byId("caption"),
    result: byId("result"),
    target: byId("target"),
    current: byId("current"),
    plot: byId("plot"),
    drop: byId("drop"),
  };
  let query = DEFAULTS;
  try {
    query = readSettings(new URLSearchParams(location.search));
  } catch (err) {
    fail(ui, err); // the form keeps the defaults
  }
  fillForm(ui.form, query);
  let dropped: File | null = null;
  const picker = ui.form.elements.namedItem("image") as HTMLInputElement;
  ui.drop.ondragover = (
    e,
  ) => (e.preventDefault(), ui.drop.classList.add("over"));
  ui.drop.ondragleave = () => ui.drop.classList.remove("over");
  ui.drop.ondrop = (e) => {
    e.preventDefault();
    ui.drop.classList.remove("over");
    dropped = e.dataTransfer?.files[0] ?? null;
  };
  picker.onchange = () => (dropped = picker.files?.[0] ?? null);
  ui.form.onsubmit = (e) => {
    e.preventDefault();
    let s: Settings;
    try {
      s = formSettings(ui.form, query);
    } catch (err) {
      return fail(ui, err);
    }
    history.replaceState(null, "", `?${toQuery(s)}`);
    run(ui, s, dropped);
  };
  if (location.search && ui.result.dataset.state !== "error") {
    run(ui, query, null);
  }
}

/** The query string of settings (what a link to this run needs). */
function toQuery(s: Settings): string {
  const q = new URLSearchParams({
    model: s.model,
    layer: String(s.layer),
    steps: String(s.steps),
    backend: s.backend,
  });
  for (const r of s.remove) q.append("remove", r);
  return q.toString();
}

start();
