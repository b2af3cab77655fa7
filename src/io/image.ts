/**
 * RGB images as float32 tensors of shape [1, 3, H, W] (CHW, values in [0, 1]),
 * with PNG decoding/encoding, JPEG decoding and torchvision-style resizing and
 * cropping.
 *
 * @example Load, preprocess and normalize a photo
 * ```ts ignore
 * import { fitToSize, normalize, readImage } from "./image.ts";
 *
 * const img = await readImage("photo.png");
 * const x = normalize(fitToSize(img, 224), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { writeAtomic } from "./files.ts";
// @ts-types="npm:@types/pngjs@6.0.5"
import { PNG } from "npm:pngjs@7.0.0";
import jpeg from "npm:jpeg-js@0.4.4";

/** An RGB image: `data` holds the three channel planes one after another.
 *
 * @example
 * ```ts
 * import type { ImageTensor } from "./image.ts";
 *
 * const black: ImageTensor = { data: new Float32Array(3 * 2 * 2), channels: 3, height: 2, width: 2 };
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

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, signature: number[]): boolean {
  return signature.every((b, i) => bytes[i] === b);
}

function hexHead(bytes: Uint8Array, n: number): string {
  return [...bytes.subarray(0, n)]
    .map((b) => b.toString(16).padStart(2, "0")).join(" ");
}
const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n;
});

/** Checks the PNG signature and each chunk's length and CRC, so corrupt or
 * truncated files get a precise error; returns the byte length up to IEND. */
function checkChunks(bytes: Uint8Array): number {
  if (!startsWith(bytes, PNG_SIGNATURE)) {
    throw new TypeError(
      `Invalid PNG signature "${
        hexHead(bytes, 8)
      }": expected 89 50 4e 47 0d 0a 1a 0a (is this a PNG file?)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 8;;) {
    const type = pos + 8 <= bytes.length
      ? String.fromCharCode(...bytes.subarray(pos + 4, pos + 8))
      : "";
    const size = type ? view.getUint32(pos) : 0;
    if (!type || pos + 12 + size > bytes.length) {
      throw new TypeError(
        `Invalid PNG data (${bytes.length} bytes): it ends inside the ${
          type ? `"${type}" chunk` : "chunk header"
        } at byte ${pos} (truncated file?)`,
      );
    }
    let crc = -1;
    for (let i = pos + 4; i < pos + 8 + size; i++) {
      crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    }
    if ((crc ^ -1) >>> 0 !== view.getUint32(pos + 8 + size)) {
      throw new TypeError(
        `Invalid PNG chunk "${type}" at byte ${pos}: CRC mismatch (corrupt file)`,
      );
    }
    pos += 12 + size;
    if (type === "IEND") return pos;
  }
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Invalid ${name} "${value}": expected a positive integer`,
    );
  }
}

function checkImage(img: ImageTensor): void {
  checkSize("height", img.height);
  checkSize("width", img.width);
  const n = 3 * img.height * img.width;
  if (img.channels !== 3 || img.data.length !== n) {
    throw new RangeError(
      `Invalid image data length "${img.data.length}" (channels ${img.channels}): expected 3 channels and ${n} values for ${img.height}x${img.width}`,
    );
  }
}

function image(data: Float32Array, height: number, width: number) {
  return { data, channels: 3 as const, height, width };
}

/** Decodes a PNG (any color type and bit depth) to an RGB image; alpha is
 * dropped, 16-bit samples keep their full precision.
 *
 * @param bytes The PNG file contents.
 * @returns The image, values in [0, 1].
 * @throws {TypeError} If the data is not a valid PNG.
 *
 * @example
 * ```ts ignore
 * import { decodePng } from "./image.ts";
 *
 * const img = decodePng(await Deno.readFile("photo.png"));
 * ```
 */
export function decodePng(bytes: Uint8Array): ImageTensor {
  const end = checkChunks(bytes);
  let png;
  try {
    png = PNG.sync.read(
      Buffer.from(bytes.buffer, bytes.byteOffset, end),
      { skipRescale: true, checkCRC: false },
    );
  } catch (e) {
    // pngjs's sync reader reports a chunk it rejected as leftover content.
    const message = e instanceof Error ? e.message : String(e);
    throw new TypeError(
      `Invalid PNG data (${bytes.length} bytes): ${
        /unrecognised content/.test(message)
          ? "a chunk is malformed or unsupported"
          : message
      }`,
    );
  }
  const { width, height, data } = png;
  const max = png.palette ? 255 : 2 ** png.depth - 1;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = data[4 * i + c] / max;
  }
  return image(out, height, width);
}

/** Decodes a baseline or progressive JPEG (grayscale, YCbCr or RGB) to an
 * RGB image with the pure-JavaScript decoder jpeg-js. The EXIF orientation
 * tag is not applied: pixels come in stored order.
 *
 * @param bytes The JPEG file contents.
 * @returns The image, values in [0, 1] (multiples of 1/255).
 * @throws {TypeError} If the data is not a valid JPEG (wrong signature,
 * truncated or corrupt stream, unsupported color mode such as CMYK).
 * @throws {RangeError} If the image exceeds the decoder's limits (100
 * megapixels, 1 GiB of working memory).
 *
 * @example
 * ```ts ignore
 * import { decodeJpeg } from "./image.ts";
 *
 * const img = decodeJpeg(await Deno.readFile("photo.jpg"));
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
  let decoded;
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxMemoryUsageInMB: 1024,
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

/** Encodes an image as an 8-bit RGB PNG, rounding to the nearest level.
 *
 * @param img The image.
 * @param opts `clamp` (default `true`) clamps values to [0, 1]; when `false`,
 * out-of-range values throw instead.
 * @returns The PNG file contents.
 * @throws {RangeError} If the image is malformed, has a NaN value, or has an
 * out-of-range value while `clamp` is `false`.
 *
 * @example
 * ```ts
 * import { encodePng } from "./image.ts";
 *
 * const png = encodePng({ data: new Float32Array(3).fill(0.5), channels: 3, height: 1, width: 1 });
 * ```
 */
export function encodePng(
  img: ImageTensor,
  opts: { clamp?: boolean } = {},
): Uint8Array {
  checkImage(img);
  const { width, height, data } = img;
  const clamp = opts.clamp ?? true;
  const png = new PNG({ width, height });
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = data[c * plane + i];
      if (Number.isNaN(v) || (!clamp && (v < 0 || v > 1))) {
        throw new RangeError(
          `Invalid pixel value "${v}" at channel ${c}, index ${i}: expected a number in [0, 1]`,
        );
      }
      png.data[4 * i + c] = Math.round(Math.min(Math.max(v, 0), 1) * 255);
    }
    png.data[4 * i + 3] = 255;
  }
  const buf = PNG.sync.write(png, { colorType: 2 });
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Per output index: the first input index and the normalized weights. */
function coefficients(inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const starts = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.floor(center - support + 0.5), 0);
    const hi = Math.min(Math.floor(center + support + 0.5), inSize);
    const w = new Float64Array(hi - lo);
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const x = Math.abs((j + 0.5 - center) / support);
      sum += w[j - lo] = Math.max(1 - x, 0);
    }
    for (let k = 0; k < w.length; k++) w[k] /= sum;
    starts[i] = lo;
    weights.push(w);
  }
  return { starts, weights };
}

/** Resizes with a bilinear (triangle) filter. When shrinking, the filter
 * support grows with the scale factor, so the result is antialiased as in
 * PIL and torchvision's `antialias=True`; pixel centers are aligned
 * (`align_corners=False`).
 *
 * @param img The image.
 * @param height The output height.
 * @param width The output width.
 * @returns A new image.
 * @throws {RangeError} If the image or a size is invalid.
 *
 * @example
 * ```ts
 * import { resizeBilinear } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 4 * 4), channels: 3 as const, height: 4, width: 4 };
 * resizeBilinear(img, 2, 2).height; // 2
 * ```
 */
export function resizeBilinear(
  img: ImageTensor,
  height: number,
  width: number,
): ImageTensor {
  checkImage(img);
  checkSize("height", height);
  checkSize("width", width);
  const { height: h, width: w, data } = img;
  if (h === height && w === width) return image(data.slice(), h, w);
  const cx = coefficients(w, width), cy = coefficients(h, height);
  const tmp = new Float32Array(3 * h * width);
  for (let r = 0; r < 3 * h; r++) {
    for (let x = 0; x < width; x++) {
      const ws = cx.weights[x], base = r * w + cx.starts[x];
      let acc = 0;
      for (let k = 0; k < ws.length; k++) acc += ws[k] * data[base + k];
      tmp[r * width + x] = acc;
    }
  }
  const out = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      const ws = cy.weights[y], row0 = c * h + cy.starts[y];
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let k = 0; k < ws.length; k++) {
          acc += ws[k] * tmp[(row0 + k) * width + x];
        }
        out[(c * height + y) * width + x] = acc;
      }
    }
  }
  return image(out, height, width);
}

/** Python's `round` (half to even), as torchvision uses for crop offsets. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Crops the central `height` × `width` region, placing the top-left corner
 * at `round((H - height) / 2), round((W - width) / 2)` (half to even), as
 * torchvision's `CenterCrop` does.
 *
 * @param img The image.
 * @param height The crop height, at most the image height.
 * @param width The crop width, at most the image width.
 * @returns A new image.
 * @throws {RangeError} If the crop is larger than the image or a size is
 * invalid.
 *
 * @example
 * ```ts
 * import { centerCrop } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 4 * 6), channels: 3 as const, height: 4, width: 6 };
 * centerCrop(img, 2, 2).width; // 2
 * ```
 */
export function centerCrop(
  img: ImageTensor,
  height: number,
  width: number,
): ImageTensor {
  checkImage(img);
  checkSize("height", height);
  checkSize("width", width);
  const { height: h, width: w, data } = img;
  if (height > h || width > w) {
    throw new RangeError(
      `Invalid crop size "${height}x${width}": expected at most the image size ${h}x${w}`,
    );
  }
  const top = roundHalfEven((h - height) / 2);
  const left = roundHalfEven((w - width) / 2);
  const out = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      const src = (c * h + top + y) * w + left;
      out.set(data.subarray(src, src + width), (c * height + y) * width);
    }
  }
  return image(out, height, width);
}

/** Resizes so the shorter side equals `size`, keeping the aspect ratio; the
 * longer side is `floor(size * long / short)`, as torchvision's `Resize(int)`.
 *
 * @param img The image.
 * @param size The new length of the shorter side.
 * @returns A new image.
 * @throws {RangeError} If the image or `size` is invalid.
 *
 * @example
 * ```ts
 * import { resizeShorterSide } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 4 * 8), channels: 3 as const, height: 4, width: 8 };
 * resizeShorterSide(img, 2).width; // 4
 * ```
 */
export function resizeShorterSide(img: ImageTensor, size: number): ImageTensor {
  checkImage(img);
  checkSize("size", size);
  const { height: h, width: w } = img;
  return h <= w
    ? resizeBilinear(img, size, Math.trunc(size * w / h))
    : resizeBilinear(img, Math.trunc(size * h / w), size);
}

/** Resizes the shorter side to `size`, then center-crops `size` × `size`
 * (torchvision's `Resize(size)` followed by `CenterCrop(size)`).
 *
 * @param img The image.
 * @param size The output side length.
 * @returns A new square image.
 * @throws {RangeError} If the image or `size` is invalid.
 *
 * @example
 * ```ts
 * import { fitToSize } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 6 * 9), channels: 3 as const, height: 6, width: 9 };
 * fitToSize(img, 4).width; // 4
 * ```
 */
export function fitToSize(img: ImageTensor, size: number): ImageTensor {
  return centerCrop(resizeShorterSide(img, size), size, size);
}

/** One value per RGB channel.
 *
 * @example
 * ```ts
 * import type { PerChannel } from "./image.ts";
 *
 * const imagenetMean: PerChannel = [0.485, 0.456, 0.406];
 * ```
 */
export type PerChannel = [number, number, number];

function affine(
  img: ImageTensor,
  mean: PerChannel,
  std: PerChannel,
  inverse: boolean,
): ImageTensor {
  checkImage(img);
  for (const [name, v] of [["mean", mean], ["std", std]] as const) {
    if (!Array.isArray(v) || v.length !== 3 || !v.every(Number.isFinite)) {
      throw new RangeError(
        `Invalid ${name} "${v}": expected 3 finite numbers`,
      );
    }
  }
  if (std.includes(0)) {
    throw new RangeError(`Invalid std "${std}": expected non-zero values`);
  }
  const plane = img.height * img.width;
  const out = new Float32Array(img.data.length);
  for (let c = 0; c < 3; c++) {
    for (let i = c * plane; i < (c + 1) * plane; i++) {
      out[i] = inverse
        ? img.data[i] * std[c] + mean[c]
        : (img.data[i] - mean[c]) / std[c];
    }
  }
  return image(out, img.height, img.width);
}

/** Normalizes each channel: `(x - mean[c]) / std[c]`.
 *
 * @param img The image.
 * @param mean The per-channel means.
 * @param std The per-channel standard deviations (non-zero).
 * @returns A new image.
 * @throws {RangeError} If `mean` or `std` is not 3 finite numbers, or a std
 * is zero.
 *
 * @example
 * ```ts
 * import { normalize } from "./image.ts";
 *
 * const img = { data: new Float32Array(3).fill(0.5), channels: 3 as const, height: 1, width: 1 };
 * normalize(img, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).data; // [0, 0, 0]
 * ```
 */
export function normalize(
  img: ImageTensor,
  mean: PerChannel,
  std: PerChannel,
): ImageTensor {
  return affine(img, mean, std, false);
}

/** Inverts {@linkcode normalize}: `x * std[c] + mean[c]`.
 *
 * @param img The normalized image.
 * @param mean The per-channel means.
 * @param std The per-channel standard deviations (non-zero).
 * @returns A new image.
 * @throws {RangeError} If `mean` or `std` is not 3 finite numbers, or a std
 * is zero.
 *
 * @example
 * ```ts
 * import { denormalize } from "./image.ts";
 *
 * const img = { data: new Float32Array(3), channels: 3 as const, height: 1, width: 1 };
 * denormalize(img, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).data; // [0.5, 0.5, 0.5]
 * ```
 */
export function denormalize(
  img: ImageTensor,
  mean: PerChannel,
  std: PerChannel,
): ImageTensor {
  return affine(img, mean, std, true);
}

/** Reads a PNG or JPEG file. The format is detected from the first bytes,
 * not the extension, so a mislabelled file still decodes.
 *
 * @param path The file path.
 * @returns The decoded image.
 * @throws {TypeError} If the file is neither PNG nor JPEG, or is corrupt; the
 * message names the path.
 * @throws {Deno.errors.NotFound} If the file does not exist.
 *
 * @example
 * ```ts ignore
 * import { readImage } from "./image.ts";
 *
 * const img = await readImage("photo.jpg");
 * ```
 */
export async function readImage(path: string): Promise<ImageTensor> {
  const bytes = await Deno.readFile(path);
  const decode = startsWith(bytes, PNG_SIGNATURE)
    ? decodePng
    : startsWith(bytes, JPEG_SIGNATURE)
    ? decodeJpeg
    : undefined;
  if (!decode) {
    throw new TypeError(
      `Unsupported image file "${path}" (starts with "${
        hexHead(bytes, 8)
      }"): expected a PNG or JPEG file`,
    );
  }
  try {
    return decode(bytes);
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
    const Err = e instanceof TypeError ? TypeError : RangeError;
    throw new Err(`Cannot decode "${path}": ${e.message}`, { cause: e });
  }
}

/** Writes an image as PNG atomically: to a temporary file in the same folder,
 * then renamed over `path`, so a failure leaves no partial file.
 *
 * @param path The destination file.
 * @param img The image; values are clamped to [0, 1].
 * @returns A promise that resolves once the file is in place.
 * @throws {RangeError} If the image is malformed.
 *
 * @example
 * ```ts ignore
 * import { writePng } from "./image.ts";
 *
 * await writePng("out.png", { data: new Float32Array(3), channels: 3, height: 1, width: 1 });
 * ```
 */
export async function writePng(path: string, img: ImageTensor): Promise<void> {
  await writeAtomic(path, encodePng(img));
}
