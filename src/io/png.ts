/**
 * PNG files: a decoder for every colour type and bit depth, interlaced or
 * not, that checks each chunk's CRC and inflates the pixel data in a stream
 * bounded by the size the header declares (so a decompression bomb costs no
 * more than the image it declares), and an 8-bit RGB encoder. Pure
 * JavaScript (fflate, fast-png), so it also runs in a browser.
 *
 * @example Encode an image and decode it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePng, encodePng } from "./png.ts";
 *
 * const img = { data: new Float32Array(3 * 2 * 2).fill(1), channels: 3 as const, height: 2, width: 2 };
 * assert.deepEqual(decodePng(encodePng(img)).data, img.data);
 * ```
 *
 * @module
 */

import { encode as encodePngData } from "npm:fast-png@8.0.0";
import { Unzlib } from "npm:fflate@0.8.2";
import {
  checkImage,
  checkLimits,
  hexHead,
  image,
  type ImageTensor,
  PNG_SIGNATURE,
  startsWith,
} from "./_image_base.ts";

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
 * import { decodePng } from "./png.ts";
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
 * import { decodePng, encodePng } from "./png.ts";
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
