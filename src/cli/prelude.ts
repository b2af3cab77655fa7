/**
 * Internal to the command line: what `invert` and `generate` do alike with
 * their options before the model — merged from a snapshot on `--resume`
 * (given identity options checked against it), every check that needs no
 * model, the output folder checked.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import {
  absoluteWeights,
  backendOpt,
  controlOpts,
  defaults,
  type Raw,
  savedTypes,
  type Spec,
  stepsOpt,
  str,
  threadsOpt,
  usage,
} from "./options.ts";
import { checkVariantOpts } from "./model.ts";
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

/** A run's options before the model: merged with a snapshot, checked. */
export interface Prelude {
  /** The options: defaults, the snapshot's, the given ones. */
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
}

/**
 * Reads the snapshot of `--resume`, merges the options and checks everything
 * that needs no model (usage errors): control, variant, backend and thread
 * options, the output folder, and `--steps` against the snapshot's step.
 */
export async function prelude(
  command: string,
  spec: Spec,
  given: Raw,
  canonical: (raw: Raw) => Record<string, unknown>,
): Promise<Prelude> {
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
  const steps = stepsOpt(raw, "steps", 1);
  checkVariantOpts(raw);
  backendOpt(raw);
  threadsOpt(raw);
  const out = checkOutPath(
    given.out === undefined && resumeDir !== undefined
      ? resumeDir
      : str(raw, "out"),
  );
  if (snap && snap.step > steps) {
    throw usage(
      new RangeError(
        `Invalid --steps "${steps}" with --resume: the snapshot is at step ${snap.step}: expected at least that many steps`,
      ),
    );
  }
  const continuing = resumeDir !== undefined &&
    resolvePath(out) === resolvePath(resumeDir);
  return { raw, snap, resumeDir, out, continuing, control };
}
