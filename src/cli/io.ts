/**
 * Internal to the command line: images in and out of runs (the target, square
 * images, labelled rows), and re-exports of the run pieces (harness,
 * snapshots, progress) under the names `grid` has imported from here.
 *
 * @module
 */
import { fitToSize, type ImageTensor, readImage } from "../io/mod.ts";
import {
  encodeNpy,
  readCsv,
  type Row,
  toCsv,
  writeAtomic,
  writeJson,
} from "../io/mod.ts";
import { montage } from "../figures/mod.ts";
import {
  readSnapshotData,
  readSnapshotState,
  type Snapshot,
  SNAPSHOT_FORMAT,
} from "./snapshot.ts";

export { readCsv, type Row, toCsv, writeAtomic, writeJson };
export { EXIT_INTERRUPTED, progress, Stopper } from "./progress.ts";
export type { Bar } from "./progress.ts";
export { type Control, type StopReason, stopReason, thin } from "./harness.ts";
export { cleanEmpty } from "./outdir.ts";
export { mergeResume } from "./run.ts";
export { type Snapshot, SNAPSHOT_FORMAT };

/** Writes an npy file atomically: by default a square [1, 3, S, S] image. */
export function writeNpy(
  path: string,
  data: Float32Array,
  shape?: readonly number[],
): Promise<void> {
  const side = Math.round(Math.sqrt(data.length / 3));
  return writeAtomic(path, encodeNpy(data, shape ?? [1, 3, side, side]));
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

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads and validates `dir`'s snapshot state of a `command` run (see
 * snapshot.ts; kept for grid, which reads the state and the image apart).
 */
export function readSnapshotJson(
  dir: string,
  command: string,
): Promise<Snapshot> {
  return readSnapshotState(dir, command);
}

/** Reads `dir`'s snapshot image, checked against its state: [1, 3, S, S] with S one of `sides`. */
export async function readSnapshotImage(
  dir: string,
  sides: readonly number[],
): Promise<Float32Array> {
  const { command } = JSON.parse(
    await Deno.readTextFile(`${dir}/snapshot/state.json`),
  );
  return readSnapshotData(
    dir,
    await readSnapshotState(dir, String(command)),
    sides,
  );
}
