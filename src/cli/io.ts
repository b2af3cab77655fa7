/**
 * Internal to the command line (src/cli.ts): files written atomically (JSON,
 * CSV, npy), labelled image rows, snapshots and --resume, the progress bar,
 * Ctrl-C handling and the per-run control both invert and generate use.
 *
 * @module
 */
import { fitToSize, type ImageTensor, readImage } from "../io/mod.ts";
import {
  decodeNpy,
  encodeNpy,
  readCsv,
  type Row,
  toCsv,
  writeAtomic,
  writeJson,
} from "../io/mod.ts";

export { readCsv, type Row, toCsv, writeAtomic, writeJson };
import { montage } from "../figures/mod.ts";
import { DivergedError } from "../optimize/mod.ts";
import { defaults, type Raw, type Spec, str, usage } from "./options.ts";

/** The `format` of snapshot.json. */
export const SNAPSHOT_FORMAT = "vitrep-snapshot/1";
/** Exit code of a run stopped by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

// ---------------------------------------------------------------------------
// Files.

/** Writes an npy file atomically: by default a square [1, 3, S, S] image. */
export function writeNpy(
  path: string,
  data: Float32Array,
  shape?: readonly number[],
): Promise<void> {
  const side = Math.round(Math.sqrt(data.length / 3));
  return writeAtomic(path, encodeNpy(data, shape ?? [1, 3, side, side]));
}

/** Every k-th row and the last. */
export function thin(rows: readonly Row[], k: number): Row[] {
  const last = rows.at(-1)?.step;
  return rows.filter((r) => (r.step as number) % k === 0 || r.step === last);
}

/** A square [3, S, S] image tensor around `data`. */
export function imageOf(data: Float32Array): ImageTensor {
  const side = Math.round(Math.sqrt(data.length / 3));
  return { data, channels: 3, height: side, width: side };
}

/** A labelled row of images, small images enlarged (whole multiples) to ≥128 px. */
export function labelledRow(
  images: readonly (ImageTensor | null)[],
  labels: readonly string[],
  title?: string,
): ImageTensor {
  const cell = enlargedSide(images);
  return montage({
    cells: [images],
    colLabels: labels,
    title,
    cellSize: [cell, cell],
  });
}

/** The cell side for images shown in a figure: small ones enlarged by a whole factor to ≥128 px. */
export function enlargedSide(images: readonly (ImageTensor | null)[]): number {
  const side = Math.max(...images.map((i) => i?.height ?? 0), 1);
  return side * Math.max(1, Math.ceil(128 / side));
}

/** Reads an image for a run and fits it to the model's size (resize + centre crop). */
export async function loadTarget(
  path: string,
  size: number,
): Promise<ImageTensor> {
  let img: ImageTensor;
  try {
    img = await readImage(path);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw new TypeError(
      `Cannot read image "${path}": ${
        err instanceof Deno.errors.NotFound
          ? "no such file"
          : err instanceof Error
          ? err.message
          : err
      }: expected a PNG or JPEG file`,
    );
  }
  return fitToSize(img, size);
}

/** Removes `dir` if this run created it and left it empty. */
export async function cleanEmpty(dir: string, existed: boolean): Promise<void> {
  if (existed) return;
  try {
    for await (const _ of Deno.readDir(dir)) return;
    await Deno.remove(dir);
  } catch {
    // gone already
  }
}

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Snapshots.

/** The contents of snapshot.json. */
export interface Snapshot {
  format: string;
  command: string;
  /** The step the run continues from. */
  step: number;
  /** The saved options, as on the command line. */
  options: Raw;
  /** invert: first step meeting the noise criterion so far. */
  criterionStep?: number | null;
}

/** Writes snapshot.npy and snapshot.json into `dir`. */
export async function writeSnapshot(
  dir: string,
  command: string,
  image: Float32Array,
  step: number,
  options: Raw,
  extra: Partial<Snapshot> = {},
): Promise<void> {
  await writeNpy(`${dir}/snapshot.npy`, image);
  await writeJson(`${dir}/snapshot.json`, {
    format: SNAPSHOT_FORMAT,
    command,
    step,
    options,
    ...extra,
  });
}

/** Reads `dir/snapshot.json` of a `command` run (runtime errors when missing, usage errors when of another command). */
export async function readSnapshotJson(
  dir: string,
  command: string,
): Promise<Snapshot> {
  let snap: Snapshot;
  try {
    snap = JSON.parse(await Deno.readTextFile(`${dir}/snapshot.json`));
  } catch (err) {
    throw new TypeError(
      `Cannot resume from "${dir}": ${
        err instanceof Deno.errors.NotFound
          ? "no snapshot.json there"
          : err instanceof Error
          ? err.message
          : err
      }: expected the --out folder of a run stopped with Ctrl-C or --stop-at, or run with --save-every`,
    );
  }
  if (snap?.format !== SNAPSHOT_FORMAT || typeof snap.options !== "object") {
    throw new TypeError(
      `Invalid snapshot "${dir}/snapshot.json": expected format ${SNAPSHOT_FORMAT}`,
    );
  }
  if (snap.command !== command) {
    throw usage(
      new TypeError(
        `Invalid --resume "${dir}": its snapshot is of a ${snap.command} run: expected a ${command} run's folder`,
      ),
    );
  }
  return snap;
}

/** Reads `dir/snapshot.npy`, a [1, 3, S, S] image with S one of `sides`. */
export async function readSnapshotImage(
  dir: string,
  sides: readonly number[],
): Promise<Float32Array> {
  let npy: { data: Float32Array; shape: number[] };
  try {
    npy = decodeNpy(await Deno.readFile(`${dir}/snapshot.npy`));
  } catch (err) {
    throw new TypeError(
      `Cannot read "${dir}/snapshot.npy": ${
        err instanceof Error ? err.message : err
      }`,
    );
  }
  const [b, c, h, w] = npy.shape;
  if (
    npy.shape.length !== 4 || b !== 1 || c !== 3 || h !== w ||
    !sides.includes(h)
  ) {
    throw new RangeError(
      `Invalid snapshot image "${dir}/snapshot.npy" of shape [${npy.shape}]: expected [1, 3, S, S] with S in ${
        sides.join(" or ")
      }`,
    );
  }
  return npy.data;
}

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

// ---------------------------------------------------------------------------
// Progress and interrupts.

/** A progress bar on stderr. */
export interface Bar {
  update(step: number, steps: number, extra: string): void;
  done(): void;
}

/** A progress bar labelled `label` (silent when `quiet`), redrawn at most every 200 ms. */
export function progress(label: string, quiet: boolean): Bar {
  const start = performance.now();
  const enc = new TextEncoder();
  let last = -Infinity;
  let count = 0;
  let pending: string | null = null;
  let open = false;
  const draw = (line: string, end: boolean) => {
    Deno.stderr.writeSync(enc.encode(`\r${line}\x1b[K${end ? "\n" : ""}`));
    last = performance.now();
    pending = null;
    open = !end;
  };
  return {
    update(step, steps, extra) {
      if (quiet) return;
      count++;
      const done = step + 1;
      const width = 24;
      const filled = Math.round((done / steps) * width);
      const secs = (performance.now() - start) / 1000;
      const rate = count / Math.max(secs, 1e-9);
      const eta = (steps - done) / rate;
      const line = `${label} [${"#".repeat(filled)}${
        "-".repeat(width - filled)
      }] ${done}/${steps} ${rate.toFixed(1)} steps/s ETA ${
        eta.toFixed(0)
      }s ${extra}`;
      if (done === steps) draw(line, true);
      else if (performance.now() - last >= 200) draw(line, false);
      else pending = line;
    },
    done() {
      if (quiet) return;
      if (pending !== null) draw(pending, true);
      else if (open) {
        Deno.stderr.writeSync(enc.encode("\n"));
        open = false;
      }
    },
  };
}

/** Ctrl-C (or an abort signal) asks runs to stop after the current step. */
export class Stopper {
  requested = false;
  #listener = () => {
    if (this.requested) Deno.exit(EXIT_INTERRUPTED); // a second Ctrl-C quits at once
    this.requested = true;
    console.error("\nvitrep: stopping after this step (Ctrl-C again to quit)");
  };
  #signal?: AbortSignal;
  #onAbort = () => {
    this.requested = true;
  };
  constructor(signal?: AbortSignal) {
    this.#signal = signal;
  }
  install(): void {
    try {
      Deno.addSignalListener("SIGINT", this.#listener);
    } catch {
      // no signals on this platform
    }
    if (this.#signal?.aborted) this.requested = true;
    this.#signal?.addEventListener("abort", this.#onAbort);
  }
  remove(): void {
    try {
      Deno.removeSignalListener("SIGINT", this.#listener);
    } catch {
      // no signals on this platform
    }
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

/** How a run is driven: where it writes, how often, and what it records. */
export interface Control {
  /** Output folder of this run. */
  out: string;
  quiet: boolean;
  saveEvery: number;
  stopAt: number | null;
  traceEvery: number;
  stopper: Stopper;
  /** Saved options for snapshot.json and metrics.json. */
  options: Raw;
  /** Model and run description for metrics.json. */
  about: Record<string, unknown>;
  /** Progress-bar label. */
  label: string;
  /** The model variant (ablations, swaps) for figure labels; "" for none. */
  tag?: string;
}

/** Why a run stopped early: Ctrl-C, --stop-at, or not at all. */
export type StopReason = null | "SIGINT" | "stop-at";

/** Whether the run stops before step `next` of `steps`, and why. */
export function stopReason(
  ctl: Control,
  next: number,
  steps: number,
): StopReason {
  if (next >= steps) return null;
  if (ctl.stopper.requested) return "SIGINT";
  if (ctl.stopAt !== null && next >= ctl.stopAt) return "stop-at";
  return null;
}

/** Fails like the library when a step's update made the image non-finite, keeping the image before it. */
export function checkFinite(
  step: number,
  image: Float32Array,
  before: Float32Array,
): void {
  for (let i = 0; i < image.length; i++) {
    if (!Number.isFinite(image[i])) {
      throw new DivergedError(
        step,
        before,
        `the update made pixel ${i} ${image[i]}`,
      );
    }
  }
}
