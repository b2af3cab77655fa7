// Private to src/io/: the image tensor type, the size limits and the checks
// that image.ts, png.ts and jpeg.ts share (image.ts exports the public ones).

/** An RGB image: `data` holds the three channel planes one after another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ImageTensor } from "./image.ts";
 *
 * const black: ImageTensor = { data: new Float32Array(3 * 2 * 2), channels: 3, height: 2, width: 2 };
 * assert.equal(black.data.length, 3 * black.height * black.width);
 * ```
 */
export interface ImageTensor {
  /** The pixel values, `3 * height * width` of them, in CHW order. */
  data: Float32Array;
  /** The number of channels, always 3 (RGB). */
  channels: 3;
  /** The height in pixels. */
  height: number;
  /** The width in pixels. */
  width: number;
}

/** The first bytes of every PNG file. */
export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The first bytes of every JPEG file. */
export const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

/** The largest image, in pixels, that is decoded or produced by a resize:
 * 40 megapixels (a 50-megapixel camera's 8688×5792 is refused; 7296×5472
 * passes). Its float32 tensor takes 480 MB, and decoding needs about as much
 * again, so one typo or a hostile header cannot exhaust memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_IMAGE_PIXELS } from "./image.ts";
 *
 * assert.ok(8000 * 5000 <= MAX_IMAGE_PIXELS);
 * ```
 */
export const MAX_IMAGE_PIXELS = 40_000_000;

/** The largest ratio of an image's long side to its short side: 100 (a
 * 360° panorama is about 8). Beyond it, resizing the short side to a
 * model's input size would make the long side enormous.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_IMAGE_ASPECT } from "./image.ts";
 *
 * assert.equal(MAX_IMAGE_ASPECT, 100);
 * ```
 */
export const MAX_IMAGE_ASPECT = 100;

/** Refuses a declared or requested size above the limits, before anything
 * of that size is allocated. */
export function checkLimits(what: string, height: number, width: number): void {
  const size = `${width}×${height}`;
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new RangeError(
      `Invalid ${what} "${size}": ${size} px exceeds the limit of ${
        MAX_IMAGE_PIXELS / 1e6
      } megapixels (downscale the image first)`,
    );
  }
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (aspect > MAX_IMAGE_ASPECT) {
    throw new RangeError(
      `Invalid ${what} "${size}": an aspect ratio of ${
        Math.round(aspect)
      }:1 exceeds the limit of ${MAX_IMAGE_ASPECT}:1 (crop the image first)`,
    );
  }
}

/** Whether `bytes` begins with `signature`. */
export function startsWith(bytes: Uint8Array, signature: number[]): boolean {
  return signature.every((b, i) => bytes[i] === b);
}

/** The first `n` bytes in hex, for messages. */
export function hexHead(bytes: Uint8Array, n: number): string {
  return [...bytes.subarray(0, n)]
    .map((b) => b.toString(16).padStart(2, "0")).join(" ");
}
/** Refuses a size that is not a positive safe integer. */
export function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Invalid ${name} "${value}": expected a positive integer`,
    );
  }
}

/** Refuses an image whose data does not hold 3 × height × width values. */
export function checkImage(img: ImageTensor): void {
  checkSize("height", img.height);
  checkSize("width", img.width);
  const n = 3 * img.height * img.width;
  if (img.channels !== 3 || img.data.length !== n) {
    throw new RangeError(
      `Invalid image data length "${img.data.length}" (channels ${img.channels}): expected 3 channels and ${n} values for ${img.height}x${img.width}`,
    );
  }
}

/** An RGB image of the given data and size. */
export function image(
  data: Float32Array,
  height: number,
  width: number,
): ImageTensor {
  return { data, channels: 3 as const, height, width };
}
