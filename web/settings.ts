/**
 * The page's options: the models it offers and the query parameters that set
 * a run (`?model=tiny&layer=1&steps=20&backend=wasm&remove=attention`), the
 * same names as the form's fields. Pure functions: no DOM.
 *
 * @module
 */

import type { Ablation, BackendName, BlockPart } from "../src/model/mod.ts";

/** A model the page offers: its folder relative to the page, and weights. */
export interface PageModel {
  /** The model folder, relative to `web/index.html`. */
  path: string;
  /** The weight set `loadModel` gets. */
  weights: string;
}

/** The models of the page (small bundled ones, and untrained ViT-B/32). */
export const MODELS: Readonly<Record<string, PageModel>> = {
  fmnist_vit: { path: "../weights/fmnist_vit", weights: "trained" },
  tiny: { path: "../tests/fixtures/tiny_vit", weights: "fixture" },
  vit_b_32: { path: "../weights/vit_b_32", weights: "untrained" },
};

/** What the `remove` checkboxes stand for in each encoder. */
export const REMOVABLE: Readonly<Record<string, readonly BlockPart[]>> = {
  layernorm: ["ln1", "ln2"],
  attention: ["attn"],
  residual: ["res1", "res2"],
  mlp: ["mlp"],
};

/** One run of the page. */
export interface Settings {
  /** A key of {@linkcode MODELS}. */
  model: string;
  /** The layer to represent: 0 = input processing, 1..N = encoder. */
  layer: number;
  /** Gradient steps. */
  steps: number;
  /** `wasm`, `webgpu` or `auto` (wasm in a browser). */
  backend: BackendName;
  /** Keys of {@linkcode REMOVABLE}, removed in every encoder. */
  remove: string[];
  /** Draw the image and plot every this many steps (0: about 50 times a run). */
  every: number;
  /** Only compare a forward output and an input gradient (for the test). */
  check: boolean;
  /** An image URL (relative to the page) instead of the default cat. */
  image: string;
}

/** The defaults, also the form's initial values. */
export const DEFAULTS: Settings = {
  model: "fmnist_vit",
  layer: 1,
  steps: 200,
  backend: "wasm",
  remove: [],
  every: 0,
  check: false,
  image: "../assets/chelsea.png",
};

function integer(
  name: string,
  text: string | null,
  fallback: number,
  max: number,
): number {
  if (text === null || text === "") return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`Invalid ${name} "${text}": expected 0..${max}`);
  }
  return v;
}

function oneOf(name: string, text: string | null, valid: string[]): string {
  if (text !== null && !valid.includes(text)) {
    throw new TypeError(
      `Invalid ${name} "${text}": expected one of ${valid.join(", ")}`,
    );
  }
  return text ?? "";
}

/**
 * Reads settings from query parameters (or a form's fields); missing ones
 * take {@linkcode DEFAULTS}, bad ones throw naming the value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSettings } from "./settings.ts";
 *
 * const s = readSettings(new URLSearchParams("model=tiny&steps=20&remove=mlp"));
 * assert.deepEqual([s.model, s.steps, s.remove], ["tiny", 20, ["mlp"]]);
 * assert.throws(() => readSettings(new URLSearchParams("steps=-1")), RangeError);
 * ```
 */
export function readSettings(q: URLSearchParams): Settings {
  const model = oneOf("model", q.get("model"), Object.keys(MODELS)) ||
    DEFAULTS.model;
  const backend = oneOf("backend", q.get("backend"), [
    "wasm",
    "webgpu",
    "auto",
  ]) ||
    DEFAULTS.backend;
  const remove = q.getAll("remove").flatMap((r) => r.split(",")).filter((r) =>
    r
  );
  for (const r of remove) oneOf("remove", r, Object.keys(REMOVABLE));
  return {
    model,
    layer: integer("layer", q.get("layer"), DEFAULTS.layer, 1000),
    steps: Math.max(
      1,
      integer("steps", q.get("steps"), DEFAULTS.steps, 1_000_000),
    ),
    backend: backend as BackendName,
    remove,
    every: integer("every", q.get("every"), DEFAULTS.every, 1_000_000),
    check: q.get("check") === "1",
    image: q.get("image") || DEFAULTS.image,
  };
}

/**
 * The ablations of a run: each checked part removed in every encoder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ablations } from "./settings.ts";
 *
 * assert.deepEqual(ablations(["attention"]), [{ remove: ["attn"], layers: "all" }]);
 * ```
 */
export function ablations(remove: readonly string[]): Ablation[] {
  return remove.map((r) => ({ remove: REMOVABLE[r], layers: "all" as const }));
}
