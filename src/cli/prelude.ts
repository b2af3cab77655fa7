/**
 * Internal to the command line: what `invert` and `generate` do alike with
 * their options before the model — merged from a snapshot on `--resume`
 * (given identity options checked against it), then read once into typed
 * settings (every check that needs no model), the output folder checked.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import {
  absoluteWeights,
  defaults,
  type Raw,
  savedTypes,
  type Spec,
} from "./options.ts";
import { controlOpts, str } from "../run/read.ts";
import { usage } from "../run/settings.ts";
import { modelSpec } from "../run/model_options.ts";
import type { ModelSpec } from "../run/variant.ts";
import { checkOutPath } from "../run/outdir.ts";
import { readSnapshotState, type Snapshot } from "../run/snapshot.ts";

/**
 * Options for a resumed run: defaults, then the snapshot's, then those given.
 * A given identity option (model, image, layer, …) must agree with the snapshot.
 */
export function mergeResume(
  spec: Spec,
  given: Raw,
  snap: Snapshot,
  dir: string,
  canonical: (raw: Raw) => Record<string, unknown>,
): Raw {
  const base = { ...defaults(spec), ...snap.options };
  const merged = { ...base, ...given };
  const a = canonical(base), b = canonical(merged);
  for (const [name, o] of Object.entries(spec)) {
    if (!o.identity || given[name] === undefined) continue;
    if (JSON.stringify(a[name]) !== JSON.stringify(b[name])) {
      throw usage(
        new RangeError(
          `Invalid --${name} "${
            str(given, name)
          }" with --resume: the snapshot in "${dir}" was made with --${name} ${
            JSON.stringify(snap.options[name] ?? spec[name].default)
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
 * output folder, and `--steps` against the snapshot's step.
 */
export async function prelude<S extends { steps: number }>(
  command: string,
  spec: Spec,
  given: Raw,
  canonical: (raw: Raw) => Record<string, unknown>,
  read: (raw: Raw) => S,
): Promise<Prelude<S>> {
  given = absoluteWeights(given);
  let raw: Raw = { ...defaults(spec), ...given };
  let snap: Snapshot | null = null;
  const resumeDir = given.resume as string | undefined;
  if (resumeDir !== undefined) {
    snap = await readSnapshotState(resumeDir, command, {
      saved: savedTypes(spec),
    });
    raw = mergeResume(spec, given, snap, resumeDir, canonical);
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
