/**
 * RGB images as float32 tensors of shape [1, 3, H, W] (CHW, values in [0, 1]):
 * torchvision-style resizing, cropping and normalization, and images read
 * from files or URLs and written as PNG, the format told from the first
 * bytes. The codecs are in png.ts and jpeg.ts (pure JavaScript), so
 * everything but file access also runs in a browser.
 *
 * @example Load, preprocess and normalize a photo
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitToSize, normalize, readImage } from "./image.ts";
 *
 * const img = await readImage(new URL("../../assets/chelsea.png", import.meta.url).pathname);
 * const x = normalize(fitToSize(img, 224), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
 * assert.equal(x.data.length, 3 * 224 * 224);
 * ```
 *
 * @module
 */

import { writeAtomic } from "./files.ts";
import {
  checkImage,
  checkSize,
  hexHead,
  image,
  type ImageTensor,
  JPEG_SIGNATURE,
  MAX_IMAGE_PIXELS,
  PNG_SIGNATURE,
  startsWith,
} from "./_image_base.ts";
import { decodePng, encodePng } from "./png.ts";
import { decodeJpeg } from "./jpeg.ts";

export {
  type ImageTensor,
  MAX_IMAGE_ASPECT,
  MAX_IMAGE_PIXELS,
} from "./_image_base.ts";

/** The largest image file {@linkcode readImage} reads: 256 MiB (an
 * uncompressed 40-megapixel RGB PNG is 120 MB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_IMAGE_BYTES } from "./image.ts";
 *
 * assert.equal(MAX_IMAGE_BYTES, 256 * 1024 * 1024);
 * ```
 */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;

/** Checks an image and an output size (positive, within the limits). */
function checkTarget(
  img: ImageTensor,
  height: number,
  width: number,
): ImageTensor {
  checkImage(img);
  checkSize("height", height);
  checkSize("width", width);
  if (height * width > MAX_IMAGE_PIXELS) {
    throw new RangeError(
      `Invalid output size "${width}×${height}": ${width}×${height} px exceeds the limit of ${
        MAX_IMAGE_PIXELS / 1e6
      } megapixels (MAX_IMAGE_PIXELS)`,
    );
  }
  return img;
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
 * import assert from "node:assert/strict";
 * import { resizeBilinear } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 4 * 4), channels: 3 as const, height: 4, width: 4 };
 * assert.equal(resizeBilinear(img, 2, 2).height, 2);
 * ```
 */
export function resizeBilinear(
  img: ImageTensor,
  height: number,
  width: number,
): ImageTensor {
  const { height: h, width: w, data } = checkTarget(img, height, width);
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
 * import assert from "node:assert/strict";
 * import { centerCrop } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 4 * 6), channels: 3 as const, height: 4, width: 6 };
 * assert.equal(centerCrop(img, 2, 2).width, 2);
 * ```
 */
export function centerCrop(
  img: ImageTensor,
  height: number,
  width: number,
): ImageTensor {
  const { height: h, width: w, data } = checkTarget(img, height, width);
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
 * import assert from "node:assert/strict";
 * import { resizeShorterSide } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 4 * 8), channels: 3 as const, height: 4, width: 8 };
 * assert.equal(resizeShorterSide(img, 2).width, 4);
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
 * import assert from "node:assert/strict";
 * import { fitToSize } from "./image.ts";
 *
 * const img = { data: new Float32Array(3 * 6 * 9), channels: 3 as const, height: 6, width: 9 };
 * assert.deepEqual([fitToSize(img, 4).height, fitToSize(img, 4).width], [4, 4]);
 * ```
 */
export function fitToSize(img: ImageTensor, size: number): ImageTensor {
  return centerCrop(resizeShorterSide(img, size), size, size);
}

/** One value per RGB channel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PerChannel } from "./image.ts";
 *
 * const imagenetMean: PerChannel = [0.485, 0.456, 0.406];
 * assert.equal(imagenetMean.length, 3);
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
 * import assert from "node:assert/strict";
 * import { normalize } from "./image.ts";
 *
 * const img = { data: new Float32Array(3).fill(0.5), channels: 3 as const, height: 1, width: 1 };
 * assert.deepEqual([...normalize(img, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).data], [0, 0, 0]);
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
 * import assert from "node:assert/strict";
 * import { denormalize } from "./image.ts";
 *
 * const img = { data: new Float32Array(3), channels: 3 as const, height: 1, width: 1 };
 * assert.deepEqual([...denormalize(img, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).data], [0.5, 0.5, 0.5]);
 * ```
 */
export function denormalize(
  img: ImageTensor,
  mean: PerChannel,
  std: PerChannel,
): ImageTensor {
  return affine(img, mean, std, true);
}

/** Describes what a non-regular file is, for the error. */
function kindOf(info: Deno.FileInfo): string {
  return info.isDirectory
    ? "a folder"
    : info.isFifo
    ? "a fifo"
    : info.isCharDevice || info.isBlockDevice
    ? "a device"
    : info.isSocket
    ? "a socket"
    : "not a regular file";
}

/** Refuses a non-regular file or one larger than the limit. */
function checkFile(path: string, info: Deno.FileInfo): void {
  if (!info.isFile) {
    throw new TypeError(
      `Invalid image file "${path}": it is ${
        kindOf(info)
      }: expected a regular PNG or JPEG file`,
    );
  }
  if (info.size > MAX_IMAGE_BYTES) {
    throw new RangeError(
      `Invalid image file "${path}": ${info.size} bytes exceeds the limit of ${MAX_IMAGE_BYTES} bytes (MAX_IMAGE_BYTES, 256 MiB)`,
    );
  }
}

/** Reads a regular file of at most {@linkcode MAX_IMAGE_BYTES}: the kind
 * and size are checked by stat before opening (opening a fifo would block;
 * reading `/dev/zero` would never end), again on the open file, and the read
 * stops one byte past the limit should the file grow meanwhile. */
async function readLimited(path: string): Promise<Uint8Array> {
  checkFile(path, await Deno.stat(path));
  using file = await Deno.open(path);
  const info = await file.stat();
  checkFile(path, info);
  const bytes = new Uint8Array(Math.min(info.size, MAX_IMAGE_BYTES) + 1);
  let n = 0;
  while (n < bytes.length) {
    const got = await file.read(bytes.subarray(n));
    if (got === null) break;
    n += got;
  }
  if (n > MAX_IMAGE_BYTES) checkFile(path, { ...info, size: n });
  return bytes.subarray(0, n);
}

/** Options of {@linkcode readImage}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReadImageOptions } from "./image.ts";
 *
 * const opts: ReadImageOptions = { timeoutMs: 5000 };
 * assert.equal(opts.timeoutMs, 5000);
 * ```
 */
export interface ReadImageOptions {
  /** For http(s) URLs: give up when the whole download takes longer
   * (milliseconds, default 30 000). */
  timeoutMs?: number;
}

/** One download of at most {@linkcode MAX_IMAGE_BYTES}: a larger declared
 * Content-Length is refused before reading, and a body that runs past the
 * limit is cancelled (a RangeError). An HTTP error gives the response back. */
async function fetchImageOnce(
  url: URL,
  signal: AbortSignal,
): Promise<Uint8Array | Response> {
  const response = await fetch(url, { signal });
  if (!response.ok) {
    await response.body?.cancel();
    return response;
  }
  const tooBig = (n: number) =>
    new RangeError(
      `Invalid image file "${url.href}": ${n} bytes exceeds the limit of ${MAX_IMAGE_BYTES} bytes (MAX_IMAGE_BYTES, 256 MiB)`,
    );
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > MAX_IMAGE_BYTES) {
    await response.body?.cancel();
    throw tooBig(declared);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const part of response.body ?? []) {
    n += part.length;
    if (n > MAX_IMAGE_BYTES) throw tooBig(n);
    parts.push(part);
  }
  const bytes = new Uint8Array(n);
  parts.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
  return bytes;
}

/** Extra attempts at an image URL after a connection error or an HTTP 5xx,
 * 408 or 429, 200 ms then 400 ms later. */
const IMAGE_RETRIES = 2;

/** Downloads at most {@linkcode MAX_IMAGE_BYTES} over http(s), trying again
 * after a connection error or an HTTP 5xx, 408 or 429 (not after another 4xx)
 * up to {@linkcode IMAGE_RETRIES} times; `timeoutMs` bounds all attempts
 * together. Errors name the URL. */
async function fetchLimited(url: URL, timeoutMs: number): Promise<Uint8Array> {
  const fail = (what: string, cause?: unknown) =>
    new TypeError(`Cannot fetch image "${url.href}": ${what}`, { cause });
  const signal = AbortSignal.timeout(timeoutMs);
  const late = (cause: unknown) =>
    fail(
      `not done within ${timeoutMs} ms (timeoutMs): check the server, or raise timeoutMs`,
      cause,
    );
  for (let i = 1;; i++) {
    const tries = i > 1 ? ` (after ${i} attempts)` : "";
    let failure: TypeError;
    let retry = true;
    try {
      const r = await fetchImageOnce(url, signal);
      if (r instanceof Uint8Array) return r;
      failure = fail(`HTTP ${r.status} ${r.statusText}`.trim() + tries);
      retry = r.status >= 500 || r.status === 408 || r.status === 429;
    } catch (e) {
      if (e instanceof RangeError) throw e;
      if (signal.aborted) throw late(e);
      failure = fail((e instanceof Error ? e.message : String(e)) + tries, e);
    }
    if (!retry || i > IMAGE_RETRIES) throw failure;
    await new Promise((r) => setTimeout(r, 200 * 2 ** (i - 1)));
    if (signal.aborted) throw late(failure);
  }
}

/** Reads the bytes of a path, a `file:` URL or an http(s) URL. In a browser
 * (no `Deno`) a path is a URL relative to the page. */
function readSource(
  source: string | URL,
  timeoutMs: number,
): Promise<Uint8Array> {
  const page = typeof Deno === "undefined"
    ? (globalThis as { location?: { href: string } }).location?.href
    : undefined;
  const url = source instanceof URL
    ? source
    : /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || page
    ? new URL(source, page)
    : undefined;
  if (!url) return readLimited(source as string);
  if (url.protocol === "file:") {
    return readLimited(decodeURIComponent(url.pathname));
  }
  if (url.protocol === "http:" || url.protocol === "https:") {
    return fetchLimited(url, timeoutMs);
  }
  throw new TypeError(
    `Invalid image URL "${url.href}": expected a file path, or a file:, http: or https: URL`,
  );
}

/** Reads a PNG or JPEG image from a file path, a `file:` URL or an http(s)
 * URL. The format is detected from the first bytes, not the extension, so a
 * mislabelled file still decodes. A file must be a regular file; any source
 * may hold at most {@linkcode MAX_IMAGE_BYTES}, and its header must declare
 * at most {@linkcode MAX_IMAGE_PIXELS} pixels and an aspect ratio of at most
 * {@linkcode MAX_IMAGE_ASPECT}: all checked before decoding.
 *
 * @param source The file path, or a `file:`, `http:` or `https:` URL (as a
 * `URL` or a string starting with the scheme). In a browser a path is a URL
 * relative to the page.
 * @param options A download timeout for http(s).
 * @returns The decoded image.
 * @throws {TypeError} If the path is not a regular file, the download fails
 * (HTTP error, timeout), or the bytes are neither PNG nor JPEG or are
 * corrupt; the message names the path or URL.
 * @throws {RangeError} If the file or the image it declares exceeds a limit;
 * the message names the path or URL and the limit.
 * @throws {Deno.errors.NotFound} If the file does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readImage } from "./image.ts";
 *
 * const img = await readImage(new URL("../../assets/chelsea.png", import.meta.url));
 * assert.deepEqual([img.height, img.width], [300, 451]);
 * ```
 */
export async function readImage(
  source: string | URL,
  options: ReadImageOptions = {},
): Promise<ImageTensor> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new RangeError(
      `Invalid timeoutMs "${timeoutMs}": expected a positive number of milliseconds`,
    );
  }
  const bytes = await readSource(source, timeoutMs);
  return decodeImage(bytes, source instanceof URL ? source.href : source);
}

/** Decodes PNG or JPEG bytes, detecting the format from the first bytes (as
 * {@linkcode readImage} does, for bytes already in memory: a dropped file in
 * a browser, a download).
 *
 * @param bytes The file contents.
 * @param name What to call the bytes in errors (a file name or URL).
 * @returns The decoded image.
 * @throws {TypeError} If the bytes are neither PNG nor JPEG or are corrupt;
 * the message names `name`.
 * @throws {RangeError} If the image the header declares exceeds a limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeImage } from "./image.ts";
 * import { encodePng } from "./png.ts";
 *
 * const png = encodePng({ data: new Float32Array(3).fill(1), channels: 3, height: 1, width: 1 });
 * assert.deepEqual([...decodeImage(png, "white.png").data], [1, 1, 1]);
 * assert.throws(() => decodeImage(new Uint8Array([1, 2]), "x.gif"), TypeError);
 * ```
 */
export function decodeImage(bytes: Uint8Array, name: string): ImageTensor {
  const decode = startsWith(bytes, PNG_SIGNATURE)
    ? decodePng
    : startsWith(bytes, JPEG_SIGNATURE)
    ? decodeJpeg
    : undefined;
  if (!decode) {
    throw new TypeError(
      `Unsupported image file "${name}" (starts with "${
        hexHead(bytes, 8)
      }"): expected a PNG or JPEG file`,
    );
  }
  try {
    return decode(bytes);
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
    const Err = e instanceof TypeError ? TypeError : RangeError;
    throw new Err(`Cannot decode "${name}": ${e.message}`, { cause: e });
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
 * ```ts
 * import assert from "node:assert/strict";
 * import { readImage, writePng } from "./image.ts";
 *
 * const path = `${await Deno.makeTempDir()}/out.png`;
 * await writePng(path, { data: new Float32Array(3), channels: 3, height: 1, width: 1 });
 * assert.deepEqual([...(await readImage(path)).data], [0, 0, 0]);
 * await Deno.remove(path);
 * ```
 */
export async function writePng(path: string, img: ImageTensor): Promise<void> {
  await writeAtomic(path, encodePng(img));
}
