/**
 * The one manifest-dependent refinement of a run's settings: the settings a
 * model's manifest recommends (`recommended.invert`, `recommended.generate`)
 * become the defaults of those the user did not give — in the typed settings
 * the command line parsed once, and in the options record the run keeps.
 *
 * @module
 */
import {
  didYouMean,
  layerIndex,
  type Manifest,
  parseManifest,
} from "../model/mod.ts";
import { readRegularText } from "../io/mod.ts";
import { type RunOptions, usage } from "./settings.ts";

/** A command that takes settings from a model's manifest. */
export type Recommending = "invert" | "generate";

/**
 * The options a manifest's `recommended` may set, per command: the
 * optimization settings, not what a run is of (model, image, layer, class).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RECOMMENDABLE } from "./refine.ts";
 * assert.ok(RECOMMENDABLE.invert.includes("steps") && !RECOMMENDABLE.invert.includes("layer"));
 * ```
 */
export const RECOMMENDABLE: Readonly<Record<Recommending, readonly string[]>> =
  {
    invert: ["steps", "lr", "sigma", "kernel-size", "loss"],
    generate: [
      "steps",
      "lr",
      "sigma",
      "kernel-size",
      "constant",
      "jitter-after",
      "canvas",
    ],
  };

/**
 * Reads one setting from its text (`name` one of {@linkcode RECOMMENDABLE}'s):
 * the part of the typed settings it sets; throws an error whose message
 * ends, after its first ": ", with what was expected.
 */
export type FieldParser<S> = (name: string, text: string) => Partial<S>;

/** The settings a manifest recommends, as option text and as typed settings. */
export interface Recommended<S> {
  /** As typed on the command line (numbers and booleans as strings). */
  options: RunOptions;
  /** Each read by the command's field parser, by option name. */
  settings: Record<string, Partial<S>>;
}

/**
 * The settings `manifest` recommends for `command`, each read alone by
 * `field`; an unknown name or a bad value is a TypeError (a runtime error:
 * the model folder is at fault) naming the field and `file`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { recommendedSettings } from "./refine.ts";
 * const file = "weights/fmnist_vit/manifest.json";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * const field = (_name: string, text: string) => {
 *   if (!/^\d+$/.test(text)) throw new RangeError(`Invalid --steps "${text}": expected a positive integer`);
 *   return { steps: Number(text) };
 * };
 * m.recommended = { generate: { steps: 300 } };
 * const r = recommendedSettings(m, "generate", field, file);
 * assert.deepEqual(r, { options: { steps: "300" }, settings: { steps: { steps: 300 } } });
 * m.recommended = { generate: { steps: "many" } };
 * assert.throws(
 *   () => recommendedSettings(m, "generate", field, file),
 *   /Invalid recommended.generate.steps "many" in weights\/fmnist_vit\/manifest.json: expected a positive integer/,
 * );
 * ```
 */
export function recommendedSettings<S>(
  manifest: Manifest,
  command: Recommending,
  field: FieldParser<S>,
  file: string,
): Recommended<S> {
  const given = manifest.recommended?.[command] ?? {};
  const allowed = RECOMMENDABLE[command];
  const options: RunOptions = {};
  const settings: Record<string, Partial<S>> = {};
  for (const [name, value] of Object.entries(given)) {
    const where = `recommended.${command}.${name}`;
    if (!allowed.includes(name)) {
      const near = didYouMean(name, allowed);
      throw new TypeError(
        `Invalid ${where} in ${file}: ${command} takes no --${name} from a manifest: ${
          near.length ? `did you mean ${near.join(", ")}? ` : ""
        }expected one of ${allowed.join(", ")}`,
      );
    }
    const text = String(value);
    try {
      settings[name] = field(name, text);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const hint = msg.includes(": ") ? msg.slice(msg.indexOf(": ") + 2) : msg;
      throw new TypeError(
        `Invalid ${where} ${JSON.stringify(value)} in ${file}: ${hint}`,
      );
    }
    options[name] = text;
  }
  return { options, settings };
}

/** Size cap of a manifest read for its recommended settings (as the loader's). */
const MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * The settings the manifest of the model folder `source` recommends for
 * `command`, as option text (unchecked: what the help shows); undefined for
 * a model at a URL, whose manifest is not fetched for this.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { manifestRecommends } from "./refine.ts";
 * assert.deepEqual(await manifestRecommends("tests/fixtures/tiny_vit", "invert"), {});
 * assert.equal(await manifestRecommends("https://example.org/m", "invert"), undefined);
 * ```
 */
export async function manifestRecommends(
  source: string,
  command: Recommending,
): Promise<RunOptions | undefined> {
  if (/^https?:\/\//.test(source)) return undefined;
  const file = `${source}/manifest.json`;
  const json = JSON.parse(
    await readRegularText(file, MANIFEST_BYTES, "manifest"),
  );
  const values = parseManifest(json, file).recommended?.[command] ?? {};
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, String(v)]),
  );
}

/**
 * Which recommended settings a run takes: each option the user did not give
 * (`given`), unless the run resumes a snapshot (`resumed`, its options),
 * whose values stand — on resume, those the snapshot holds with the
 * recommended value, for metrics.json's `modelDefaults`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { takenDefaults } from "./refine.ts";
 * const rec = { steps: "300", lr: "2:0.2" };
 * assert.deepEqual(takenDefaults({ lr: "1" }, rec, null), { steps: "300" });
 * assert.deepEqual(takenDefaults({}, rec, { steps: "300", lr: "1" }), { steps: "300" });
 * ```
 */
export function takenDefaults(
  given: RunOptions,
  recommended: RunOptions,
  resumed: RunOptions | null,
): RunOptions {
  return Object.fromEntries(
    Object.entries(recommended).filter(([k, v]) =>
      given[k] === undefined &&
      (resumed === null || String(resumed[k]) === String(v))
    ),
  );
}

/** A run's settings after its model's manifest refined them. */
export interface Refined<S> {
  /** The typed settings, recommended values in place of defaults. */
  settings: S;
  /** The options record the run keeps, the same values as text. */
  options: RunOptions;
  /** The settings that came from the manifest (metrics.json's `modelDefaults`). */
  modelDefaults: RunOptions;
}

/**
 * What a run's refinement starts from: its typed settings read once from its
 * options record (`options`), the options the user gave (`given`), a resumed
 * snapshot's options (null for a fresh run) and where the model is
 * (`source`, whose manifest.json errors name).
 */
export interface Refining<S> {
  /** The typed settings, read once. */
  settings: S;
  /** The options record they were read from. */
  options: RunOptions;
  /** The options given on the command line. */
  given: RunOptions;
  /** A resumed snapshot's options; null for a fresh run. */
  resumed: RunOptions | null;
  /** Where the model is (see modelSource). */
  source: string;
}

/**
 * Refines settings parsed once from the command line (`settings`, with their
 * options record `options`) by the model's manifest: each recommended setting
 * the run takes (see {@linkcode takenDefaults}) replaces the default, in both
 * (each recommended value read once, by `field`).
 * A resumed run keeps its options (the snapshot's values stand).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "../model/mod.ts";
 * import { refineSettings } from "./refine.ts";
 * const file = "weights/fmnist_vit/manifest.json";
 * const m = parseManifest(JSON.parse(await Deno.readTextFile(file)), file);
 * m.recommended = { invert: { steps: 300, lr: "2:0.2" } };
 * const field = (name: string, text: string) =>
 *   name === "steps" ? { steps: Number(text) } : { lr: text };
 * const r = refineSettings({
 *   settings: { steps: 720, lr: "1" },
 *   options: { steps: "720", lr: "1" },
 *   given: { lr: "1" },
 *   resumed: null,
 *   manifest: m,
 *   command: "invert",
 *   field,
 *   file,
 * });
 * assert.deepEqual(r.settings, { steps: 300, lr: "1" });
 * assert.deepEqual(r.options, { steps: "300", lr: "1" });
 * assert.deepEqual(r.modelDefaults, { steps: "300" });
 * ```
 */
export function refineSettings<S>(run: {
  settings: S;
  options: RunOptions;
  given: RunOptions;
  resumed: RunOptions | null;
  manifest: Manifest;
  command: Recommending;
  field: FieldParser<S>;
  file: string;
}): Refined<S> {
  const rec = recommendedSettings(
    run.manifest,
    run.command,
    run.field,
    run.file,
  );
  const modelDefaults = takenDefaults(run.given, rec.options, run.resumed);
  if (run.resumed !== null) {
    return { settings: run.settings, options: run.options, modelDefaults };
  }
  const settings = { ...run.settings };
  for (const name of Object.keys(modelDefaults)) {
    Object.assign(settings as object, rec.settings[name]);
  }
  return {
    settings,
    options: { ...run.options, ...modelDefaults },
    modelDefaults,
  };
}

/**
 * Checks that the blur kernel fits the model's image size (a usage error
 * naming `--kernel-size` otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKernel } from "./refine.ts";
 * checkKernel(9, 32);
 * assert.throws(() => checkKernel(99, 32), /Invalid --kernel-size "99"/);
 * ```
 */
export function checkKernel(kernelSize: number, size: number): void {
  if ((kernelSize - 1) / 2 >= size) {
    throw usage(
      new RangeError(
        `Invalid --kernel-size "${kernelSize}": expected a kernel narrower than twice the model's ${size}px image`,
      ),
    );
  }
}

/**
 * Checks that generate's canvas (`text` as given) holds the model's image
 * size (a usage error naming `--canvas` otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCanvasSize } from "./refine.ts";
 * checkCanvasSize(40, "40", 32);
 * assert.throws(() => checkCanvasSize(8, "8", 32), /Invalid --canvas "8"/);
 * ```
 */
export function checkCanvasSize(
  canvasSize: number,
  text: string,
  size: number,
): void {
  if (canvasSize < size) {
    throw usage(
      new RangeError(
        `Invalid --canvas "${text}": expected at least the model's image size ${size}`,
      ),
    );
  }
}

/**
 * The layer option `--NAME` gives: a number, or a layer name (`stem`,
 * `layer2.3`, a ResNet stage `layer2`, …) resolved with the model's manifest.
 * Before the model is known a well-formed name gives NaN. `whole` is the
 * option as given when `text` is one item of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerArg } from "./refine.ts";
 * assert.equal(layerArg("2", "layer"), 2);
 * assert.ok(Number.isNaN(layerArg("layer2", "layer")));
 * assert.throws(() => layerArg("1-", "layer"), /Invalid --layer "1-"/);
 * ```
 */
export function layerArg(
  text: string,
  name: string,
  manifest?: Manifest,
  whole: string = text,
): number {
  const t = text.trim();
  const quoted = whole === text
    ? `--${name} "${text}"`
    : `--${name} "${whole}" (layer ${t})`;
  if (manifest === undefined) {
    if (/^\d+$/.test(t)) return Number(t);
    if (/^[A-Za-z_][\w.]*$/.test(t)) return NaN;
    throw usage(
      new RangeError(
        `Invalid ${quoted}: expected a layer number (0 = input processing, 1..N = blocks) or a layer name, e.g. layer2 or layer2.3 for a ResNet`,
      ),
    );
  }
  try {
    return layerIndex(manifest, t);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw usage(
      new RangeError(
        err.message.replace(
          /^Invalid layer "[^"]*" for \S+:/,
          `Invalid ${quoted}:`,
        ),
      ),
    );
  }
}
