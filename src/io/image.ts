/**
 * RGB images as float32 tensors of shape [1, 3, H, W] (CHW, values in [0, 1]),
 * with PNG decoding/encoding, JPEG decoding and torchvision-style resizing and
 * cropping. The codecs are pure JavaScript (fast-png, fflate, jpeg-js), so
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
// Pure-JavaScript codecs, so the same module runs in Deno and in browsers.
import { encode as encodePngData } from "npm:fast-png@8.0.0";
import { Unzlib } from "npm:fflate@0.8.2";
import jpeg from "npm:jpeg-js@0.4.4";

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

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

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

/** Refuses a declared or requested size above the limits, before anything
 * of that size is allocated. */
function checkLimits(what: string, height: number, width: number): void {
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

/** The most chunks a PNG may have: real files have a few dozen (a 256 MiB
 * file in libpng's 8 KiB IDAT chunks has 32,768); millions of empty ones
 * would only cost time to walk. */
const MAX_PNG_CHUNKS = 1_000_000;
/** Chunk types as big-endian 32-bit numbers. */
const IEND = 0x49454e44, IDAT = 0x49444154, PLTE = 0x504c5445;

function chunkName(bytes: Uint8Array, pos: number): string {
  return String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
}

/** Checks the PNG signature and each chunk's length and CRC, so corrupt or
 * truncated files get a precise error, and that there are at most
 * {@linkcode MAX_PNG_CHUNKS}; returns the byte length up to IEND. */
function checkChunks(bytes: Uint8Array): number {
  if (!startsWith(bytes, PNG_SIGNATURE)) {
    throw new TypeError(
      `Invalid PNG signature "${
        hexHead(bytes, 8)
      }": expected 89 50 4e 47 0d 0a 1a 0a (is this a PNG file?)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 8, count = 1;; count++) {
    const size = pos + 8 <= bytes.length ? view.getUint32(pos) : -1;
    if (size < 0 || pos + 12 + size > bytes.length) {
      throw new TypeError(
        `Invalid PNG data (${bytes.length} bytes): it ends inside the ${
          size < 0 ? "chunk header" : `"${chunkName(bytes, pos)}" chunk`
        } at byte ${pos} (truncated file?)`,
      );
    }
    if (count > MAX_PNG_CHUNKS) {
      throw new RangeError(
        `Invalid PNG data (${bytes.length} bytes): more than ${MAX_PNG_CHUNKS} chunks before IEND: expected a few dozen (re-save the image)`,
      );
    }
    let crc = -1;
    for (let i = pos + 4; i < pos + 8 + size; i++) {
      crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    }
    if ((crc ^ -1) >>> 0 !== view.getUint32(pos + 8 + size)) {
      throw new TypeError(
        `Invalid PNG chunk "${
          chunkName(bytes, pos)
        }" at byte ${pos}: CRC mismatch (corrupt file)`,
      );
    }
    const type = view.getUint32(pos + 4);
    pos += 12 + size;
    if (type === IEND) return pos;
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

function image(data: Float32Array, height: number, width: number) {
  return { data, channels: 3 as const, height, width };
}

/** Each PNG colour type: samples per pixel, name, allowed bit depths. */
const PNG_TYPES: Record<
  number,
  { channels: number; name: string; depths: number[] }
> = {
  0: { channels: 1, name: "gray", depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, name: "RGB", depths: [8, 16] },
  3: { channels: 1, name: "palette", depths: [1, 2, 4, 8] },
  4: { channels: 2, name: "gray + alpha", depths: [8, 16] },
  6: { channels: 4, name: "RGBA", depths: [8, 16] },
};

/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** One pass of a PNG's pixel data (the whole image when not interlaced):
 * its pixels are at (x0 + k * dx, y0 + r * dy), `w` by `h` of them, in rows
 * of `rowBytes` bytes plus a filter byte. */
interface PngPass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  w: number;
  h: number;
  rowBytes: number;
}

/** What decoding needs from a PNG's header (IHDR). */
interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  channels: number;
  /** Bytes per complete pixel (at least 1), the filters' left neighbour. */
  bpp: number;
  /** The non-empty passes, in file order. */
  passes: PngPass[];
  /** The exact size of the inflated pixel data: every pass's rows, each
   * with its filter byte. */
  size: number;
  /** Size, colour type, depth and interlacing, for messages. */
  about: string;
}

function badPng(bytes: Uint8Array, problem: string): TypeError {
  return new TypeError(`Invalid PNG data (${bytes.length} bytes): ${problem}`);
}

/** The type (big-endian, as {@linkcode IDAT}) and data of each chunk of a
 * PNG that {@linkcode checkChunks} accepted, up to `end`. */
function* pngChunks(
  bytes: Uint8Array,
  end: number,
): Generator<[number, Uint8Array]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  for (let pos = 8; pos < end;) {
    const size = view.getUint32(pos);
    yield [view.getUint32(pos + 4), bytes.subarray(pos + 8, pos + 8 + size)];
    pos += 12 + size;
  }
}

/** Reads and checks a PNG's header (IHDR, the first chunk): size within the
 * limits, a valid colour type, bit depth and methods; computes its passes
 * and the exact size of its inflated pixel data. */
function readHeader(bytes: Uint8Array): PngHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = chunkName(bytes, 8);
  if (first !== "IHDR" || view.getUint32(8) !== 13) {
    throw badPng(
      bytes,
      `its first chunk is "${first}" of ${
        view.getUint32(8)
      } bytes: expected "IHDR" of 13 bytes (damaged file?)`,
    );
  }
  const width = view.getUint32(16), height = view.getUint32(20);
  const [depth, colorType, compression, filter, interlace] = bytes.subarray(
    24,
    29,
  );
  if (!(width > 0 && height > 0)) {
    throw new TypeError(
      `Invalid PNG size "${width}×${height}": expected a positive width and height`,
    );
  }
  checkLimits("PNG size", height, width);
  const type = PNG_TYPES[colorType];
  if (!type) {
    throw badPng(
      bytes,
      `colour type "${colorType}": expected 0 (gray), 2 (RGB), 3 (palette), 4 (gray + alpha) or 6 (RGBA)`,
    );
  }
  if (!type.depths.includes(depth)) {
    throw badPng(
      bytes,
      `bit depth "${depth}" for colour type ${colorType} (${type.name}): expected ${
        type.depths.join(", ")
      }`,
    );
  }
  if (compression !== 0 || filter !== 0 || interlace > 1) {
    throw badPng(
      bytes,
      `compression, filter and interlace methods "${compression}, ${filter}, ${interlace}": expected 0, 0 and 0 or 1`,
    );
  }
  const bits = type.channels * depth;
  const passes: PngPass[] = [];
  let size = 0;
  for (const [x0, y0, dx, dy] of interlace ? ADAM7 : [[0, 0, 1, 1]]) {
    const w = Math.ceil((width - x0) / dx), h = Math.ceil((height - y0) / dy);
    if (w < 1 || h < 1) continue;
    const rowBytes = Math.ceil(w * bits / 8);
    passes.push({ x0, y0, dx, dy, w, h, rowBytes });
    size += h * (1 + rowBytes);
  }
  const about = `${width}×${height}, ${type.name}, ${depth}-bit${
    interlace ? ", interlaced" : ""
  }`;
  const bpp = Math.max(1, bits >> 3);
  const { channels } = type;
  return {
    width,
    height,
    depth,
    colorType,
    channels,
    bpp,
    passes,
    size,
    about,
  };
}

/** The palette (PLTE) of a colour type 3 PNG, RGB triples; undefined for
 * the other colour types, which do not need one. */
function readPalette(
  bytes: Uint8Array,
  end: number,
  colorType: number,
): Uint8Array | undefined {
  if (colorType !== 3) return undefined;
  for (const [type, data] of pngChunks(bytes, end)) {
    if (type !== PLTE) continue;
    if (data.length === 0 || data.length > 768 || data.length % 3) {
      throw badPng(
        bytes,
        `a PLTE chunk of "${data.length}" bytes: expected 1 to 256 RGB entries of 3 bytes (damaged file?)`,
      );
    }
    return data;
  }
  throw badPng(
    bytes,
    "colour type 3 (palette) without a PLTE chunk: the file is damaged",
  );
}

/** Compressed bytes handed to the inflater at a time: 1 to 64 KiB, and no
 * more than the rest of the image needs at deflate's largest ratio (1032:1),
 * so a decompression bomb is stopped within about 1 MB past the declared
 * size, not after all of it. */
const INFLATE_SLICE = [1024, 65536];
/** Compressed bytes that may yield no output in a row (a stored block holds
 * at most 65,535 bytes); beyond, the data is garbage that would pile up in
 * the inflater's input buffer. */
const INFLATE_STALL = 262144;

/** Inflates zlib data given in pieces into `out`, streamed; throws
 * `tooMuch()` as soon as the output would exceed `out`, stops reading when
 * it is full, and returns the number of bytes written. */
function inflateInto(
  pieces: Iterable<Uint8Array>,
  out: Uint8Array,
  tooMuch: () => TypeError,
  stalled: (n: number) => TypeError,
): number {
  let got = 0, idle = 0;
  const inflater = new Unzlib((chunk) => {
    if (got + chunk.length > out.length) throw tooMuch();
    out.set(chunk, got);
    got += chunk.length;
    if (chunk.length) idle = 0;
  });
  const [min, max] = INFLATE_SLICE;
  const stage = new Uint8Array(max);
  const next = () => Math.min(max, min + Math.ceil((out.length - got) / 1032));
  let staged = 0, slice = next();
  const push = (final: boolean) => {
    idle += staged;
    inflater.push(stage.slice(0, staged), final);
    [staged, slice] = [0, next()];
    if (idle > INFLATE_STALL) throw stalled(idle);
  };
  for (const data of pieces) {
    for (let at = 0; at < data.length && got < out.length;) {
      const n = Math.min(slice - staged, data.length - at);
      stage.set(data.subarray(at, at + n), staged);
      [staged, at] = [staged + n, at + n];
      if (staged >= slice) push(false);
    }
  }
  if (got < out.length) push(true);
  return got;
}

/** The data of each IDAT chunk, in order. */
function* idatData(bytes: Uint8Array, end: number): Generator<Uint8Array> {
  for (const [type, data] of pngChunks(bytes, end)) {
    if (type === IDAT) yield data;
  }
}

/** Inflates a PNG's IDAT data, streamed and stopped as soon as it exceeds
 * the size the header declares; checks the zlib checksum and that every row
 * is there. Ancillary chunks (iCCP, zTXt, iTXt, …) are never inflated. */
function inflatePixels(
  bytes: Uint8Array,
  end: number,
  header: PngHeader,
): Uint8Array {
  const { size, width, height } = header;
  let compressed = 0, adler = 0;
  for (const data of idatData(bytes, end)) {
    compressed += data.length;
    for (const b of data.subarray(-4)) adler = ((adler << 8) | b) >>> 0;
  }
  // Deflate yields at most 1032 bytes per byte: a file with less data than
  // its header claims allocates no more than that.
  const out = new Uint8Array(Math.min(size, compressed * 1032 + 1024));
  const tooMuch = () =>
    badPng(
      bytes,
      `the pixel data inflates past "${size}" bytes, the exact size its header declares (${header.about}): decoding stopped there (a decompression bomb or a damaged file)`,
    );
  const stalled = (n: number) =>
    badPng(
      bytes,
      `"${n}" bytes of compressed pixel data in a row yield no pixels: expected at most ${INFLATE_STALL} (corrupt data?)`,
    );
  let got;
  try {
    got = inflateInto(idatData(bytes, end), out, tooMuch, stalled);
  } catch (e) {
    if (e instanceof TypeError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw badPng(bytes, `the compressed pixel data is corrupt (${message})`);
  }
  if (got < size) {
    throw badPng(
      bytes,
      `"${got}" bytes of pixel rows for ${width}×${height}: expected ${size} (truncated image data?)`,
    );
  }
  if (adler32(out) !== adler) {
    throw badPng(
      bytes,
      "the compressed pixel data is corrupt (zlib checksum mismatch)",
    );
  }
  return out;
}

function adler32(data: Uint8Array): number {
  let a = 1, b = 0;
  for (let i = 0; i < data.length;) {
    // 5552 bytes keep b below 2^53 before the modulo
    for (const stop = Math.min(i + 5552, data.length); i < stop; i++) {
      a += data[i];
      b += a;
    }
    [a, b] = [a % 65521, b % 65521];
  }
  return ((b << 16) | a) >>> 0;
}

/** Undoes the PNG row filters, in place, pass by pass (each pass's first
 * row has no row above). */
function unfilter(raw: Uint8Array, header: PngHeader, bytes: Uint8Array) {
  const { bpp } = header;
  let pos = 0;
  for (const { h, rowBytes: n } of header.passes) {
    for (let r = 0; r < h; r++, pos += 1 + n) {
      const cur = pos + 1, prev = r > 0 ? cur - 1 - n : -1;
      const up = (i: number) => prev < 0 ? 0 : raw[prev + i];
      const filter = raw[pos];
      if (filter === 0) continue;
      if (filter > 4) {
        throw badPng(
          bytes,
          `row filter "${filter}" at byte ${pos} of the pixel data: expected 0 to 4 (corrupt data?)`,
        );
      }
      for (let i = 0; i < n; i++) {
        const a = i < bpp ? 0 : raw[cur + i - bpp];
        const b = up(i);
        if (filter === 1) raw[cur + i] += a;
        else if (filter === 2) raw[cur + i] += b;
        else if (filter === 3) raw[cur + i] += (a + b) >> 1;
        else {
          const c = i < bpp ? 0 : up(i - bpp);
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          raw[cur + i] += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
      }
    }
  }
}

/** Reads sample `c` of pixel `k` of a row of unfiltered PNG samples starting
 * at `start`: 16-bit ones are big-endian, 1-, 2- and 4-bit ones packed. */
function sampleReader(
  data: Uint8Array,
  start: number,
  depth: number,
  channels: number,
): (k: number, c: number) => number {
  if (depth === 16) {
    return (k, c) => {
      const at = start + 2 * (k * channels + c);
      return (data[at] << 8) | data[at + 1];
    };
  }
  if (depth === 8) return (k, c) => data[start + k * channels + c];
  const mask = (1 << depth) - 1;
  return (k, c) => {
    const bit = (k * channels + c) * depth;
    return (data[start + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
  };
}

/** Places each pass's unfiltered pixels into RGB planes: palette entries
 * (indices past the palette are black), gray repeated, alpha dropped. */
function pngPixels(
  raw: Uint8Array,
  header: PngHeader,
  palette: Uint8Array | undefined,
): Float32Array {
  const { width, height, depth, channels } = header;
  const plane = width * height, max = 2 ** depth - 1;
  const out = new Float32Array(3 * plane);
  let pos = 0;
  for (const { x0, y0, dx, dy, w, h, rowBytes } of header.passes) {
    for (let r = 0; r < h; r++, pos += 1 + rowBytes) {
      const sample = sampleReader(raw, pos + 1, depth, channels);
      for (let k = 0, i = (y0 + r * dy) * width + x0; k < w; k++, i += dx) {
        if (palette) {
          const e = 3 * sample(k, 0), known = e < palette.length;
          for (let c = 0; c < 3; c++) {
            out[c * plane + i] = known ? palette[e + c] / 255 : 0;
          }
        } else {
          // gray (+ alpha) repeats channel 0; RGB(A) takes the first three
          for (let c = 0; c < 3; c++) {
            out[c * plane + i] = sample(k, channels < 3 ? 0 : c) / max;
          }
        }
      }
    }
  }
  return out;
}

/** Decodes a PNG (any color type and bit depth, interlaced or not) to an RGB
 * image; alpha is dropped, 16-bit samples keep their full precision.
 *
 * Only the critical chunks are read (IHDR, PLTE, IDAT, IEND); ancillary ones
 * (iCCP, zTXt, iTXt, …) are CRC-checked and skipped, never inflated. The
 * pixel data is inflated in a stream that stops as soon as it exceeds the
 * exact size the header implies, so a decompression bomb costs no more than
 * the image it declares.
 *
 * @param bytes The PNG file contents.
 * @returns The image, values in [0, 1].
 * @throws {TypeError} If the data is not a valid PNG (a palette image
 * without a PLTE chunk included), or its compressed pixel data holds fewer
 * or more bytes than its header declares.
 * @throws {RangeError} If the header declares more than
 * {@linkcode MAX_IMAGE_PIXELS} pixels or an aspect ratio above
 * {@linkcode MAX_IMAGE_ASPECT} (checked before decoding).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePng } from "./image.ts";
 *
 * const img = decodePng(await Deno.readFile(new URL("../../assets/chelsea.png", import.meta.url)));
 * assert.deepEqual([img.height, img.width], [300, 451]);
 * ```
 */
export function decodePng(bytes: Uint8Array): ImageTensor {
  const end = checkChunks(bytes);
  const header = readHeader(bytes);
  const palette = readPalette(bytes, end, header.colorType);
  const raw = inflatePixels(bytes, end, header);
  unfilter(raw, header, bytes);
  return image(pngPixels(raw, header, palette), header.height, header.width);
}

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
 * import { decodeJpeg } from "./image.ts";
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
 * import assert from "node:assert/strict";
 * import { decodePng, encodePng } from "./image.ts";
 *
 * const png = encodePng({ data: new Float32Array(3).fill(0.5), channels: 3, height: 1, width: 1 });
 * assert.deepEqual([...decodePng(png).data], [128 / 255, 128 / 255, 128 / 255].map(Math.fround));
 * ```
 */
export function encodePng(
  img: ImageTensor,
  opts: { clamp?: boolean } = {},
): Uint8Array {
  checkImage(img);
  const { width, height, data } = img;
  const clamp = opts.clamp ?? true;
  const rgb = new Uint8Array(3 * width * height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = data[c * plane + i];
      if (Number.isNaN(v) || (!clamp && (v < 0 || v > 1))) {
        throw new RangeError(
          `Invalid pixel value "${v}" at channel ${c}, index ${i}: expected a number in [0, 1]`,
        );
      }
      rgb[3 * i + c] = Math.round(Math.min(Math.max(v, 0), 1) * 255);
    }
  }
  return encodePngData({ width, height, data: rgb, channels: 3, depth: 8 });
}

/**
 * Encodes an RGB image as a baseline JPEG (pure JavaScript, jpeg-js), values
 * in [0, 1] clamped; `quality` 1–100 (default 85). For photographs and
 * montages where a PNG would be several times larger.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJpeg, encodeJpeg } from "./image.ts";
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
 * import { decodeImage, encodePng } from "./image.ts";
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
