/// <reference lib="dom" />
/**
 * The browser page's entry (bundled by `deno task web` into web/dist/main.js):
 * the explorer's controls and views on the main thread, every model call in a
 * worker (web/worker.ts → web/dist/worker.js) so the page stays responsive.
 * A run is a strip of layer representations side by side, or a class
 * generation; the settings come from the form or from the query string
 * (web/settings.ts), and a finished run writes its figures as JSON into
 * `#result` (one entry per layer), which the Chromium tests read.
 *
 * @module
 */

import { parseManifest } from "../src/model/manifest.ts";
import {
  buildControls,
  type Controls,
  currentSwaps,
  describeModel,
  fillForm,
  fillModels,
  formSettings,
  showSwaps,
} from "./controls.ts";
import type { FromWorker, Job, RunResult } from "./protocol.ts";
import {
  checkForModel,
  DEFAULTS,
  type ModelInfo,
  modelInfo,
  MODELS,
  readSettings,
  type Settings,
  toQuery,
} from "./settings.ts";
import { History, RunView } from "./view.ts";

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el as T;
}

/** The page's state: its elements, the worker, the model's info, the target. */
interface Page {
  c: Controls;
  view: RunView;
  history: History;
  status: HTMLElement;
  backend: HTMLElement;
  result: HTMLElement;
  run: HTMLButtonElement;
  stop: HTMLButtonElement;
  drop: HTMLElement;
  worker: Worker;
  info: ModelInfo | null;
  infoOf: string;
  dropped: File | null;
  query: Settings;
  runs: number;
}

const manifests = new Map<string, Promise<ModelInfo>>();

/** The model's manifest, read once per model. */
function infoFor(model: string): Promise<ModelInfo> {
  let p = manifests.get(model);
  if (!p) {
    const url = new URL(`${MODELS[model].path}/manifest.json`, location.href);
    p = fetch(url).then(async (r) => {
      if (!r.ok) {
        throw new TypeError(`Cannot load model "${url}": HTTP ${r.status}`);
      }
      return modelInfo(parseManifest(await r.json(), url.href));
    });
    manifests.set(model, p);
    p.catch(() => manifests.delete(model));
  }
  return p;
}

/** Shows an error and writes it into `#result`. */
function fail(page: Page, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  page.status.textContent = `error: ${message}`;
  page.result.textContent = JSON.stringify({ error: message });
  page.result.dataset.state = "error";
  page.run.disabled = false;
  page.stop.disabled = true;
}

/** Builds the controls for `s.model` (reading its manifest). */
async function showModel(page: Page, s: Settings): Promise<ModelInfo> {
  const info = await infoFor(s.model);
  page.info = info;
  page.infoOf = s.model;
  buildControls(page.c, s, info, (url) => pickSample(page, url));
  showMode(page, s.mode);
  return info;
}

function pickSample(page: Page, url: string): void {
  page.dropped = null;
  page.drop.classList.remove("picked");
  (page.c.form.elements.namedItem("image") as HTMLInputElement).value = url;
  for (const b of page.c.samples.querySelectorAll<HTMLElement>(".sample")) {
    b.classList.toggle("picked", b.dataset.url === url);
  }
}

/** Shows the fields of a mode (layers and image for invert, the class for generate); generate only for trained models. */
function showMode(page: Page, mode: string): void {
  const select = page.c.form.elements.namedItem("mode") as HTMLSelectElement;
  const trained = MODELS[page.infoOf]?.generate !== undefined;
  (select.options.namedItem("generate") as HTMLOptionElement).disabled =
    !trained;
  if (!trained && mode === "generate") {
    select.value = mode = "invert";
  }
  page.c.form.dataset.mode = mode;
  byId("layers-box").hidden = mode !== "invert";
  byId("image-box").hidden = mode !== "invert";
  byId("class-box").hidden = mode !== "generate";
}

/** The job of settings checked against the model. */
function makeJob(page: Page, s: Settings, info: ModelInfo): Job {
  const checked = checkForModel(s, info);
  s = { ...s, layers: checked.layers };
  const m = MODELS[s.model];
  const image = s.image ||
    (page.c.samples.querySelector<HTMLElement>(".sample")?.dataset.url ?? "");
  return {
    settings: s,
    modelUrl: new URL(m.path, location.href).href,
    weights: m.weights,
    ablations: checked.ablations,
    swaps: s.swap.map((w) => {
      const i = w.indexOf("=");
      return { part: w.slice(0, i).trim(), weights: w.slice(i + 1).trim() };
    }),
    steps: checked.steps,
    every: s.every || Math.max(1, Math.round(checked.steps / 50)),
    image: page.dropped && !s.image
      ? page.dropped
      : new URL(image, location.href).href,
    generate: checked.classIndex === null ? undefined : {
      index: checked.classIndex,
      name: info.classes?.[checked.classIndex] ?? String(checked.classIndex),
      preset: m.generate!,
    },
  };
}

/** A run's title in the history. */
function title(s: Settings, r: RunResult): string {
  const what = s.mode === "generate"
    ? `generate ${r.generate?.class.name}`
    : `layers ${s.layers.join(",")}`;
  const extra = [
    ...s.remove.map((x) => `−${x}`),
    ...s.swap.map((x) => `swap ${x}`),
  ];
  return `${s.model} ${what}${
    extra.length ? ` (${extra.join(", ")})` : ""
  }, ${r.backend}`;
}

/** Counts a run (also one that fails before it starts) and empties `#result`. */
function beginRun(page: Page): void {
  page.runs++;
  page.result.textContent = "";
  delete page.result.dataset.state;
  page.result.dataset.run = String(page.runs);
}

/** Starts a run of settings: checks them, resets the view, posts the job. */
async function start(page: Page, s: Settings): Promise<void> {
  beginRun(page);
  page.run.disabled = true;
  page.stop.disabled = false;
  try {
    const info = page.infoOf === s.model && page.info
      ? page.info
      : await showModel(page, s);
    const job = makeJob(page, s, info);
    const layers = s.check ? [] : job.generate ? [-1] : job.settings.layers;
    page.view.reset(
      layers,
      job.steps,
      (l) => l === -1 ? `class ${job.generate!.name}` : `layer ${l}`,
    );
    page.status.textContent = `starting ${s.model}…`;
    page.worker.postMessage({ type: "run", job });
  } catch (err) {
    fail(page, err);
  }
}

/** Handles what the worker sends. */
function onMessage(page: Page, m: FromWorker): void {
  const v = page.view;
  if (m.type === "status") page.status.textContent = m.text;
  else if (m.type === "loaded") {
    page.backend.textContent = `backend: ${m.backend}${
      m.note ? ` — ${m.note}` : ""
    }; weights: ${m.weights}`;
  } else if (m.type === "target") v.target(m.frame);
  else if (m.type === "begin") {
    page.status.textContent = m.layer === -1
      ? "generating…"
      : `layer ${m.layer}…`;
  } else if (m.type === "progress") {
    v.progress(m.layer, m.step, m.rows, m.frame, m.plot);
    const what = m.layer === -1 ? "generate" : `layer ${m.layer}`;
    page.status.textContent = `${what}: step ${m.step + 1}`;
  } else if (m.type === "layerDone") {
    v.layerDone(m.layer, m.entry, m.png, m.csv);
  } else if (m.type === "error") fail(page, m.message);
  else if (m.type === "done") finish(page, m.result);
}

function finish(page: Page, r: RunResult): void {
  const s = r.settings;
  page.result.textContent = JSON.stringify(r);
  page.result.dataset.state = "done";
  page.run.disabled = false;
  page.stop.disabled = true;
  const last = r.layers.at(-1);
  page.status.textContent = r.mode === "check"
    ? "check done"
    : `${r.stopped ? "stopped" : "done"}: ${
      r.generate
        ? `read as ${r.generate.predicted.name}`
        : `${r.layers.length} layer${
          r.layers.length === 1 ? "" : "s"
        }, final PSNR ${last?.final.psnr.toFixed(2)} dB at layer ${last?.layer}`
    }`;
  if (r.mode === "check") return;
  page.history.add(title(s, r), page.view.done(r), () => {
    fillForm(page.c.form, s);
    showModel(page, s).catch((err) => fail(page, err));
  });
}

function elements(): Page {
  const c: Controls = {
    form: byId("options"),
    layers: byId("layers"),
    ablations: byId("ablations"),
    classes: byId("class"),
    swapParts: byId("swap-parts"),
    swapWeights: byId("swap-weights"),
    swaps: byId("swaps"),
    samples: byId("samples"),
    info: byId("model-info"),
  };
  const worker = new Worker(new URL("worker.js", import.meta.url), {
    type: "module",
  });
  return {
    c,
    view: new RunView({
      strip: byId("strip"),
      scrub: byId("scrub"),
      scrubLabel: byId("scrub-label"),
      metrics: byId("metrics"),
      downloads: byId("downloads"),
    }),
    history: new History(byId("history")),
    status: byId("status"),
    backend: byId("backend"),
    result: byId("result"),
    run: byId("run"),
    stop: byId("stop"),
    drop: byId("drop"),
    worker,
    info: null,
    infoOf: "",
    dropped: null,
    query: DEFAULTS,
    runs: 0,
  };
}

/** The drop zone and the file picker: a dropped or picked image is the target. */
function wireImage(page: Page): void {
  const { drop } = page;
  const picker = page.c.form.elements.namedItem("file") as HTMLInputElement;
  const take = (f: File | null) => {
    if (!f) return;
    page.dropped = f;
    (page.c.form.elements.namedItem("image") as HTMLInputElement).value = "";
    for (const b of page.c.samples.querySelectorAll(".sample")) {
      b.classList.remove("picked");
    }
    drop.classList.add("picked");
    drop.dataset.file = f.name;
  };
  drop.ondragover = (e) => (e.preventDefault(), drop.classList.add("over"));
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    take(e.dataTransfer?.files[0] ?? null);
  };
  picker.onchange = () => take(picker.files?.[0] ?? null);
}

/** Wires the form: model and mode changes rebuild it, submit runs, stop stops. */
function wireForm(page: Page): void {
  const { form } = page.c;
  const read = () => formSettings(page.c, page.info, page.query);
  const f = form.elements as unknown as Record<string, HTMLInputElement>;
  f.model.onchange = () => {
    // the new model's own strip, samples and classes (the run fields stay)
    const s: Settings = {
      ...DEFAULTS,
      mode: f.mode.value === "generate" ? "generate" : "invert",
      model: f.model.value,
    };
    showModel(page, s).catch((err) => fail(page, err));
  };
  f.mode.onchange = () => showMode(page, f.mode.value);
  page.c.layers.onchange = () => {
    const ticked = [
      ...page.c.layers.querySelectorAll<HTMLInputElement>("input:checked"),
    ].map((b) => Number(b.value));
    if (page.info) {
      page.c.info.textContent = describeModel(page.infoOf, page.info, ticked);
    }
  };
  byId<HTMLButtonElement>("swap-add").onclick = () => {
    const part = (f["swap-part"].value ?? "").trim();
    if (part === "") return;
    showSwaps(page.c, [
      ...currentSwaps(page.c),
      `${part}=${f["swap-weights"].value}`,
    ]);
  };
  form.onsubmit = (e) => {
    e.preventDefault();
    let s: Settings;
    try {
      s = read();
    } catch (err) {
      beginRun(page);
      return fail(page, err);
    }
    history.replaceState(null, "", `?${toQuery(s)}`);
    start(page, s);
  };
  page.stop.onclick = () => page.worker.postMessage({ type: "stop" });
}

/** Reads the query, builds the form, runs when the query asks for a run. */
async function main(): Promise<void> {
  const page = elements();
  page.worker.onmessage = (e: MessageEvent<FromWorker>) =>
    onMessage(page, e.data);
  page.worker.onerror = (e) => fail(page, `the worker failed: ${e.message}`);
  fillModels(page.c.form.elements.namedItem("model") as HTMLSelectElement);
  let bad: unknown = null;
  try {
    page.query = readSettings(new URLSearchParams(location.search));
  } catch (err) {
    bad = err; // the form keeps the defaults
  }
  fillForm(page.c.form, page.query);
  wireImage(page);
  wireForm(page);
  try {
    await showModel(page, page.query);
  } catch (err) {
    bad ??= err;
  }
  if (bad) {
    beginRun(page);
    return fail(page, bad);
  }
  if (location.search) start(page, page.query);
  else page.status.textContent = "pick a model, layers and an image, then run";
}

main();
