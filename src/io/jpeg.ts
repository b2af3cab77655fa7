/**
 * JPEG files: a decoder for baseline and progressive JPEGs (grayscale, YCbCr
 * or RGB) that checks the size the frame header declares before decoding,
 * and a baseline encoder. Pure JavaScript (jpeg-js), so it also runs in a
 * browser.
 *
 * @example Encode an image and decode it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJpeg, encodeJpeg } from "./jpeg.ts";
 *
 * const img = { data: new Float32Array(3 * 8 * 8).fill(0.25), channels: 3 as const, height: 8, width: 8 };
 * assert.deepEqual([decodeJpeg(encodeJpeg(img)).height, decodeJpeg(encodeJpeg(img)).width], [8, 8]);
 * ```
 *
 * @module
 */

import jpeg from "npm:jpeg-js@0.4.4";
import {
  checkImage,
  checkLimits,
  hexHead,
  image,
  type ImageTensor,
  JPEG_SIGNATURE,
  MAX_IMAGE_PIXELS,
  startsWith,
} from "./_image_base.ts";

/** The height and width a JPEG's frame header (SOFn) declares, read by
 * walking the marker segments up to the first scan; undefined when there is
 * none before it (the decoder then reports the file as corrupt). */
function jpegSize(bytes: Uint8Array): [number, number] | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 2; pos + 4 <= bytes.length;) {
    if (bytes[pos] !== 0xff) return undefined;
    const marker = bytes[pos + 1];
    if (marker === 0xff) {
      pos++; // Fill byte.
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // No length.
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    const sof = marker >= 0xc0 && marker <= 0xcf &&
      marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (sof && pos + 9 <= bytes.length) {
      return [view.getUint16(pos + 5), view.getUint16(pos + 7)];
    }
    pos += 2 + view.getUint16(pos + 2);
  }
  return undefined;
}

/** Decodes a baseline or progressive JPEG (grayscale, YCbCr or RGB) to an
 * RGB image with the pure-JavaScript decoder jpeg-js. The EXIF orientation
 * tag is not applied: pixels come in stored order.
 *
 * @param bytes The JPEG file contents.
 * @returns The image, values in [0, 1] (multiples of 1/255).
 * @throws {TypeError} If the data is not a valid JPEG (wrong signature,
 * truncated or corrupt stream, unsupported color mode such as CMYK).
 * @throws {RangeError} If the frame header declares more than
 * {@linkcode MAX_IMAGE_PIXELS} pixels or an aspect ratio above
 * {@linkcode MAX_IMAGE_ASPECT} (checked before decoding), or decoding needs
 * more than 1 GiB of working memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJpeg } from "./jpeg.ts";
 *
 * // Not a JPEG: the error names the first bytes.
 * assert.throws(() => decodeJpeg(new Uint8Array([0x89, 0x50, 0x4e])), TypeError);
 * ```
 */
export function decodeJpeg(bytes: Uint8Array): ImageTensor {
  if (!startsWith(bytes, JPEG_SIGNATURE)) {
    throw new TypeError(
      `Invalid JPEG signature "${
        hexHead(bytes, 3)
      }": expected ff d8 ff (is this a JPEG file?)`,
    );
  }
  const size = jpegSize(bytes);
  if (size && size[0] > 0 && size[1] > 0) checkLimits("JPEG size", ...size);
  let decoded;
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxMemoryUsageInMB: 1024,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
    });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/limit exceeded/.test(message)) {
      throw new RangeError(
        `Invalid JPEG size (${bytes.length} bytes): ${message}`,
      );
    }
    throw new TypeError(
      `Invalid JPEG data (${bytes.length} bytes): ${message} (truncated or corrupt file?)`,
    );
  }
  const { width, height, data } = decoded;
  if (!(width > 0 && height > 0) || data.length < 4 * width * height) {
    throw new TypeError(
      `Invalid JPEG data (${bytes.length} bytes): decoded size "${height}x${width}" has no pixels (truncated or corrupt file?)`,
    );
  }
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = data[4 * i + c] / 255;
  }
  return image(out, height, width);
}

/**
 * Encodes an RGB image as a baseline JPEG (pure JavaScript, jpeg-js), values
 * in [0, 1] clamped; `quality` 1–100 (default 85). For photographs and
 * montages where a PNG would be several times larger.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJpeg, encodeJpeg } from "./jpeg.ts";
 *
 * const img = { data: new Float32Array(3 * 8 * 8).fill(0.5), channels: 3 as const, height: 8, width: 8 };
 * const back = decodeJpeg(encodeJpeg(img, 90));
 * assert.equal(back.width, 8);
 * assert.ok(back.data.every((v) => Math.abs(v - 0.5) < 0.02));
 * ```
 */
export function encodeJpeg(img: ImageTensor, quality = 85): Uint8Array {
  checkImage(img);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new RangeError(
      `Invalid JPEG quality "${quality}": expected an integer in 1..100`,
    );
  }
  const { width, height, data } = img;
  const plane = width * height;
  const rgba = new Uint8Array(4 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = data[c * plane + i];
      rgba[4 * i + c] = Math.round(
        Math.min(Math.max(Number.isNaN(v) ? 0 : v, 0), 1) * 255,
      );
    }
    rgba[4 * i + 3] = 255;
  }
  const out = jpeg.encode({ data: rgba, width, height }, quality).data;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
