/**
 * Images in and out of runs (the target, square
 * images, labelled rows).
 *
 * @module
 */
import { fitToSize, type ImageTensor, readImage } from "../io/mod.ts";
import { montage } from "../figures/mod.ts";

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
