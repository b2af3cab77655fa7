/**
 * What `invert` and `generate` do alike with their options before the model
 * — merged from a snapshot on `--resume` (given identity options checked
 * against it), then read once into typed settings (every check that needs no
 * model), the output folder checked. The command's option table comes as
 * {@linkcode OptionTable}: its defaults, saved and identity options.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { controlOpts, str } from "./read.ts";
import { type RunOptions, type SavedTypes, usage } from "./settings.ts";
import { modelSpec } from "./model_options.ts";
import type { ModelSpec } from "./variant.ts";
import { checkOutPath } from "./outdir.ts";
import { readSnapshotState, type Snapshot } from "./snapshot.ts";

type Raw = RunOptions;

/** What a run's options are, as its command's option table gives them. */
export interface OptionTable {
  /** The default values, as typed on the command line. */
  defaults: RunOptions;
  /** The options a snapshot saves, with their types. */
  saved: SavedTypes;
  /** The options a snapshot fixes (a different value on --resume is an error), in the table's order. */
  identity: readonly string[];
}

/**
 * Options for a resumed run: defaults, then the snapshot's, then those given.
 * A given identity option (model, image, layer, …) must agree with the
 * snapshot (compared in `canonical` form; a usage error naming it otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergeResume } from "./prelude.ts";
 * const table = { defaults: { steps: "10", seed: "0" }, saved: {}, identity: ["seed"] };
 * const snap = { options: { seed: "3", steps: "20" } } as unknown as Parameters<typeof mergeResume>[2];
 * const canonical = (raw: Record<string, unknown>) => ({ seed: Number(raw.seed) });
 * assert.deepEqual(mergeResume(table, { steps: "30" }, snap, "out/x", canonical), { steps: "30", seed: "3" });
 * assert.throws(
 *   () => mergeResume(table, { seed: "4" }, snap, "out/x", canonical),
 *   /Invalid --seed "4" with --resume: the snapshot in "out\/x" was made with --seed "3"/,
 * );
 * ```
 */
export function mergeResume(
  table: OptionTable,
  given: Raw,
  snap: Snapshot,
  dir: string,
  canonical: (raw: Raw) => Record<string, unknown>,
): Raw {
  const base = { ...table.defaults, ...snap.options };
  const merged = { ...base, ...given };
  const a = canonical(base), b = canonical(merged);
  for (const name of table.identity) {
    if (given[name] === undefined) continue;
    if (JSON.stringify(a[name]) !== JSON.stringify(b[name])) {
      throw usage(
        new RangeError(
          `Invalid --${name} "${
            str(given, name)
          }" with --resume: the snapshot in "${dir}" was made with --${name} ${
            JSON.stringify(snap.options[name] ?? table.defaults[name])
          }; leave it out to continue that run`,
        ),
      );
    }
  }
  return merged;
}

/** A run's options before the model: merged with a snapshot, read once into typed settings. */
export interface Prelude<S> {
  /** The options: defaults, the snapshot's, the given ones (the one record the run keeps). */
  raw: Raw;
  /** The snapshot resumed from, if any. */
  snap: Snapshot | null;
  /** `--resume`. */
  resumeDir?: string;
  /** The output folder (with --resume and no --out: the resumed one). */
  out: string;
  /** Whether the run continues in its own folder. */
  continuing: boolean;
  /** Run control options. */
  control: ReturnType<typeof controlOpts>;
  /** The command's typed settings, read once (layer names unresolved until the model is known). */
  settings: S;
  /** The model and its variant as typed settings. */
  model: ModelSpec;
}

/**
 * Reads the snapshot of `--resume`, merges the options and reads them, once,
 * into typed settings — control, the command's own (`read`), model and
 * variant — checking everything that needs no model (usage errors), the
 * output folder, and `--steps` against the snapshot's step. `given`: the
 * options given (paths already absolute).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prelude } from "./prelude.ts";
 * const table = {
 *   defaults: {
 *     model: "tests/fixtures/tiny_vit", weights: "fixture", seed: "0",
 *     backend: "auto", out: "out/x", steps: "10", "trace-every": "1",
 *     "save-every": "0",
 *   },
 *   saved: {},
 *   identity: [],
 * };
 * const pre = await prelude("invert", table, { steps: "5" }, () => ({}), (raw) => ({ steps: Number(raw.steps) }));
 * assert.equal(pre.settings.steps, 5);
 * assert.equal(pre.snap, null);
 * assert.equal(pre.continuing, false);
 * ```
 */
export async function prelude<S extends { steps: number }>(
  command: string,
  table: OptionTable,
  given: Raw,
  canonical: (raw: Raw) => Record<string, unknown>,
  read: (raw: Raw) => S,
): Promise<Prelude<S>> {
  let raw: Raw = { ...table.defaults, ...given };
  let snap: Snapshot | null = null;
  const resumeDir = given.resume as string | undefined;
  if (resumeDir !== undefined) {
    snap = await readSnapshotState(resumeDir, command, {
      saved: table.saved,
    });
    raw = mergeResume(table, given, snap, resumeDir, canonical);
  }
  const control = controlOpts(raw);
  const settings = read(raw);
  const model = modelSpec(raw);
  const out = checkOutPath(
    given.out === undefined && resumeDir !== undefined
      ? resumeDir
      : str(raw, "out"),
  );
  if (snap && snap.step > settings.steps) {
    throw usage(
      new RangeError(
        `Invalid --steps "${settings.steps}" with --resume: the snapshot is at step ${snap.step}: expected at least that many steps`,
      ),
    );
  }
  const continuing = resumeDir !== undefined &&
    resolvePath(out) === resolvePath(resumeDir);
  return { raw, snap, resumeDir, out, continuing, control, settings, model };
}
