/// <reference lib="dom" />
/**
 * The page's form, built for the model at hand: the model picker (with the
 * memory each needs), the strip of layers (0..N, so a layer beyond the model
 * cannot be picked), the per-encoder ablation grid (the block parts × layers
 * 1..N, what the CLI's `--remove X --remove-layers 1-4` sets), the swaps, the
 * class picker (generate mode), the sample images of the model's data set,
 * and the reading of all of it into {@linkcode Settings}.
 *
 * @module
 */

import {
  defaultLayers,
  formatBytes,
  type ModelInfo,
  MODELS,
  parseRemove,
  readSettings,
  removeText,
  samples,
  type Settings,
} from "./settings.ts";

/** Creates an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children);
  return el;
}

/** The model picker: one option per model, grouped, with the memory it needs. */
export function fillModels(select: HTMLSelectElement): void {
  const groups = new Map<string, HTMLOptGroupElement>();
  for (const [key, m] of Object.entries(MODELS)) {
    let g = groups.get(m.group);
    if (!g) {
      g = h("optgroup", { label: m.group });
      groups.set(m.group, g);
      select.append(g);
    }
    const mem = formatBytes(m.sessionMiB * 2 ** 20);
    g.append(h("option", { value: key }, `${m.label} — ${mem}`));
  }
}

/** The form's parts that depend on the model. */
export interface Controls {
  form: HTMLFormElement;
  layers: HTMLElement;
  ablations: HTMLTableElement;
  classes: HTMLSelectElement;
  swapParts: HTMLDataListElement;
  swapWeights: HTMLSelectElement;
  swaps: HTMLElement;
  samples: HTMLElement;
  info: HTMLElement;
}

/** The strip's checkboxes: layers 0..N, `checked` ticked. */
function buildLayers(c: Controls, info: ModelInfo, checked: number[]): void {
  c.layers.replaceChildren();
  for (let l = 0; l <= info.numLayers; l++) {
    const box = h("input", {
      type: "checkbox",
      name: "layers",
      value: String(l),
      checked: checked.includes(l),
    });
    c.layers.append(
      h(
        "label",
        {
          class: "layer",
          title: `${info.layerNames[l]}: a chain to it holds ${
            formatBytes(info.chainBytes[l])
          } of weights`,
        },
        box,
        l === 0 ? "0 (input)" : String(l),
      ),
    );
  }
}

/** The ablation grid: a row per block part, a column per encoder layer. */
function buildAblations(c: Controls, info: ModelInfo, remove: string[]): void {
  const n = info.numLayers;
  const removed = new Set<string>();
  for (const text of remove) {
    const r = parseRemove(text);
    const ranges = r.layers === "all" ? [[1, n]] : r.layers;
    for (const [a, b] of ranges) {
      for (let l = a; l <= Math.min(b, n); l++) {
        for (const p of r.parts) removed.add(`${p}@${l}`);
      }
    }
  }
  const parts = [...new Set(info.parts.flat())];
  const head = h("tr", {}, h("th", {}, "layer"));
  for (let l = 1; l <= n; l++) {
    head.append(
      h("th", { "data-col": String(l), title: "toggle the layer" }, String(l)),
    );
  }
  const rows = parts.map((p) => {
    const tr = h(
      "tr",
      {},
      h(
        "th",
        { "data-row": p, title: "toggle the row" },
        `${p} · ${info.partNames[p] ?? p}`,
      ),
    );
    for (let l = 1; l <= n; l++) {
      const has = info.parts[l].includes(p);
      tr.append(h(
        "td",
        {},
        h("input", {
          type: "checkbox",
          "data-part": p,
          "data-layer": String(l),
          disabled: !has,
          checked: has && removed.has(`${p}@${l}`),
          title: `remove ${p} in layer ${l}`,
        }),
      ));
    }
    return tr;
  });
  c.ablations.replaceChildren(h("thead", {}, head), h("tbody", {}, ...rows));
  c.ablations.onclick = (e) => {
    const th = (e.target as HTMLElement).closest("th");
    if (!th) return;
    const sel = th.dataset.row
      ? `input[data-part="${th.dataset.row}"]:not(:disabled)`
      : th.dataset.col
      ? `input[data-layer="${th.dataset.col}"]:not(:disabled)`
      : null;
    if (!sel) return;
    const boxes = [...c.ablations.querySelectorAll<HTMLInputElement>(sel)];
    const on = !boxes.every((b) => b.checked);
    for (const b of boxes) b.checked = on;
  };
}

/** The `remove` values the grid sets: one per part, its layers as ranges. */
export function gridRemove(c: Controls, info: ModelInfo): string[] {
  const byPart = new Map<string, number[]>();
  for (
    const box of c.ablations.querySelectorAll<HTMLInputElement>(
      "input[data-part]:checked",
    )
  ) {
    const list = byPart.get(box.dataset.part!) ?? [];
    list.push(Number(box.dataset.layer));
    byPart.set(box.dataset.part!, list);
  }
  return [...byPart].map(([p, layers]) =>
    removeText(p, layers, info.numLayers)
  );
}

/** The swap chips: each `PART=WEIGHTS` with a button that removes it. */
export function showSwaps(c: Controls, swaps: readonly string[]): void {
  c.swaps.replaceChildren(...swaps.map((s) => {
    const x = h("button", { type: "button", title: "remove this swap" }, "×");
    const chip = h("span", { class: "chip", "data-swap": s }, s, x);
    x.onclick = () => chip.remove();
    return chip;
  }));
}

/** The swaps the chips hold. */
export function currentSwaps(c: Controls): string[] {
  return [...c.swaps.querySelectorAll<HTMLElement>("[data-swap]")].map((e) =>
    e.dataset.swap!
  );
}

/** The class picker (generate mode): the model's class names. */
function buildClasses(c: Controls, info: ModelInfo, chosen: string): void {
  const names = info.classes ?? [];
  c.classes.replaceChildren(
    ...names.map((n, i) => h("option", { value: n }, `${i} ${n}`)),
  );
  const q = chosen.toLowerCase();
  const i = /^\d+$/.test(q)
    ? Number(q)
    : names.findIndex((n) => n.toLowerCase() === q);
  c.classes.selectedIndex = i >= 0 && i < names.length ? i : 0;
}

/** Sample images of the model's data set, each a button that picks it. */
function buildSamples(
  c: Controls,
  model: string,
  info: ModelInfo,
  chosen: string,
  pick: (url: string) => void,
): void {
  const list = samples(MODELS[model].samples, info.classes ?? undefined);
  const current = chosen || list[0].url;
  c.samples.replaceChildren(...list.map((s) => {
    const b = h(
      "button",
      {
        type: "button",
        class: s.url === current ? "sample picked" : "sample",
        "data-url": s.url,
        title: s.label,
      },
      h("img", { src: s.url, alt: s.label }),
      h("span", {}, s.label),
    );
    b.onclick = () => pick(s.url);
    return b;
  }));
}

/** What the model line says: size, depth, and the memory of the chosen strip. */
export function describeModel(
  model: string,
  info: ModelInfo,
  layers: number[],
): string {
  const n = info.numLayers;
  const deepest = Math.max(0, ...layers.filter((l) => l <= n));
  const mem = (l: number) => formatBytes(info.chainBytes[l]);
  return `${model}: ${info.architecture}, ${info.imageSize}² input, layers 0..${n}, ${
    MODELS[model].weights
  } weights. Weights in sessions (forward and gradient): ${
    mem(n)
  } for every layer, ${mem(deepest)} up to layer ${deepest}.`;
}

/** Builds every model-dependent control from settings and the model's info. */
export function buildControls(
  c: Controls,
  s: Settings,
  info: ModelInfo,
  pick: (url: string) => void,
): void {
  const fit = s.layers.filter((l) => l <= info.numLayers);
  const layers = fit.length ? fit : defaultLayers(info.numLayers);
  buildLayers(c, info, layers);
  buildAblations(c, info, s.remove);
  buildClasses(c, info, s.class);
  buildSamples(c, s.model, info, s.image, pick);
  c.swapParts.replaceChildren(
    ...info.swapParts.map((p) => h("option", { value: p })),
  );
  const others = [
    ...info.weightSets.filter((w) => w !== MODELS[s.model].weights),
    "untrained:0",
    "untrained:1",
    "untrained:2",
  ].filter((w) => w !== MODELS[s.model].weights);
  c.swapWeights.replaceChildren(
    ...others.map((w) => h("option", { value: w }, w)),
  );
  showSwaps(c, s.swap);
  c.info.textContent = describeModel(s.model, info, layers);
}

/** Fills the fields that do not depend on the model. */
export function fillForm(form: HTMLFormElement, s: Settings): void {
  const f = form.elements as unknown as Record<string, HTMLInputElement>;
  f.mode.value = s.mode;
  f.model.value = s.model;
  f.steps.value = s.steps ? String(s.steps) : "";
  f.every.value = s.every ? String(s.every) : "";
  f.seed.value = String(s.seed);
  f.backend.value = s.backend;
  f.image.value = s.image;
}

/**
 * Settings from the form: its fields, the grid's ablations, the swap chips;
 * `check` kept from the query. Throws as {@linkcode readSettings}.
 */
export function formSettings(
  c: Controls,
  info: ModelInfo | null,
  query: Settings,
): Settings {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(c.form)) {
    if (typeof v === "string" && !k.startsWith("swap-") && k !== "file") {
      q.append(k, v);
    }
  }
  if (!q.has("layers") && q.get("mode") === "invert") {
    throw new RangeError(
      `Invalid layers "": expected at least one layer of the strip ticked`,
    );
  }
  for (const r of info ? gridRemove(c, info) : []) q.append("remove", r);
  for (const w of currentSwaps(c)) q.append("swap", w);
  return { ...readSettings(q), check: query.check };
}
