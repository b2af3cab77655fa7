// Hostile and unusual PNGs against decodePng (which the CLI and the browser
// page both use, through decodeImage): decompression bombs stop at the size
// the header declares, ancillary chunks (iCCP, zTXt, iTXt) are never
// inflated, a palette image needs its PLTE, and every valid file decodes to
// the same pixels as the fast-png decoder the project used before (all
// colour types, depths, row filters, Adam7 interlacing).
import assert from "node:assert/strict";
import { decode as fastPngDecode } from "npm:fast-png@8.0.0";
import { zlibSync } from "npm:fflate@0.8.2";
import { decodeImage, decodePng } from "../src/io/mod.ts";

const CHELSEA = new URL("../assets/chelsea.png", import.meta.url).pathname;
const WEB = new URL("../web/", import.meta.url).pathname;

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) [out.set(p, at), at += p.length];
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

interface Layout {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace?: number;
}

/** A PNG of the given header, chunks before the pixel data, and zlib pixel
 * data split into IDAT chunks of `idatSize` bytes. */
function png(
  h: Layout,
  zdata: Uint8Array,
  before: Uint8Array[] = [],
  idatSize = zdata.length || 1,
): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, h.width);
  new DataView(ihdr.buffer).setUint32(4, h.height);
  ihdr.set([h.depth, h.colorType, 0, 0, h.interlace ?? 0], 8);
  const idat: Uint8Array[] = [];
  for (let at = 0; at < zdata.length; at += idatSize) {
    idat.push(chunk("IDAT", zdata.subarray(at, at + idatSize)));
  }
  return concat([
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk("IHDR", ihdr),
    ...before,
    ...idat,
    chunk("IEND", new Uint8Array()),
  ]);
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** The filtered rows (pass by pass when interlaced) of an image whose sample
 * c of pixel (x, y) is `value(x, y, c)`; row filters cycle through all five
 * types, so every one of them is decoded. */
function filteredRows(
  h: Layout,
  value: (x: number, y: number, c: number) => number,
): Uint8Array {
  const ch = CHANNELS[h.colorType], bits = ch * h.depth;
  const bpp = Math.max(1, bits >> 3);
  const rows: number[] = [];
  let filter = 0;
  for (const [x0, y0, dx, dy] of h.interlace ? ADAM7 : [[0, 0, 1, 1]]) {
    const w = Math.ceil((h.width - x0) / dx);
    const ph = Math.ceil((h.height - y0) / dy);
    if (w < 1 || ph < 1) continue;
    let prev = new Uint8Array(Math.ceil(w * bits / 8));
    for (let r = 0; r < ph; r++, filter = (filter + 1) % 5) {
      const raw = new Uint8Array(prev.length);
      for (let k = 0; k < w; k++) {
        for (let c = 0; c < ch; c++) {
          const v = value(x0 + k * dx, y0 + r * dy, c);
          const s = k * ch + c;
          if (h.depth === 16) raw.set([v >> 8, v & 255], 2 * s);
          else if (h.depth === 8) raw[s] = v;
          else {raw[(s * h.depth) >> 3] |= v <<
              (8 - h.depth - (s * h.depth & 7));}
        }
      }
      rows.push(filter);
      for (let i = 0; i < raw.length; i++) {
        const a = i < bpp ? 0 : raw[i - bpp], b = r ? prev[i] : 0;
        const c = i < bpp || !r ? 0 : prev[i - bpp];
        const p = a + b - c;
        const [pa, pb, pc] = [
          Math.abs(p - a),
          Math.abs(p - b),
          Math.abs(p - c),
        ];
        const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        const pred = [0, a, b, (a + b) >> 1, paeth][filter];
        rows.push((raw[i] - pred) & 255);
      }
      prev = raw;
    }
  }
  return Uint8Array.from(rows);
}

/** Deterministic sample values in range for the depth. */
function pattern(depth: number, seed: number) {
  return (x: number, y: number, c: number) => {
    const n = Math.imul(x * 7919 + y * 104729 + c * 1299709 + seed, 2654435761);
    return ((n >>> 7) ^ (n >>> 19)) & ((1 << depth) - 1);
  };
}

/** The pixels fast-png 8.0.0 gives, mapped as decodePng did before it had
 * its own decoder: the reference a valid file must still decode to. */
function fastPngPixels(bytes: Uint8Array): Float32Array {
  const { width, height, channels, depth, palette, data } = fastPngDecode(
    bytes,
  );
  const rowBytes = Math.ceil(depth * channels * width / 8);
  const sample = (y: number, x: number, c: number) => {
    if (depth >= 8) return data[(y * width + x) * channels + c];
    const bit = (x * channels + c) * depth;
    return (data[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) &
      ((1 << depth) - 1);
  };
  const max = palette ? 255 : 2 ** depth - 1, plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const rgb = palette ? palette[sample(y, x, 0)] ?? [0, 0, 0] : undefined;
      for (let c = 0; c < 3; c++) {
        out[c * plane + i] = rgb
          ? rgb[c] / max
          : sample(y, x, channels < 3 ? 0 : c) / max;
      }
    }
  }
  return out;
}

/** A zlib stream of 1 + 258 * copies zero bytes, written bit by bit: one
 * fixed-Huffman block of a literal 0 and `copies` copies of 258 bytes at
 * distance 1, 13 bits each. A gigabyte costs 6 MB, and nothing near its
 * inflated size is ever allocated here. */
function zeroBomb(copies: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((18 + 13 * copies) / 8) + 2 + 4);
  out.set([0x78, 0x01]);
  let bit = 16;
  const put = (v: number, n: number, msbFirst = true) => {
    for (let i = 0; i < n; i++, bit++) {
      if ((v >> (msbFirst ? n - 1 - i : i)) & 1) {
        out[bit >> 3] |= 1 << (bit & 7);
      }
    }
  };
  put(0b011, 3, false); // BFINAL 1, BTYPE 01 (fixed Huffman)
  put(0x30, 8); // literal 0
  for (let i = 0; i < copies; i++) [put(0xc5, 8), put(0, 5)]; // 258, dist 1
  put(0, 7); // end of block
  const n = 1 + 258 * copies, at = Math.ceil(bit / 8);
  new DataView(out.buffer).setUint32(at, ((n % 65521) << 16 | 1) >>> 0);
  return out.subarray(0, at + 4);
}

/** Decodes, returning the error thrown, the milliseconds taken and the
 * growth of the process's resident memory. */
function attempt(bytes: Uint8Array) {
  const rss = Deno.memoryUsage().rss, t = performance.now();
  let error: unknown;
  try {
    decodePng(bytes);
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - t;
  return { error, ms, grewMB: (Deno.memoryUsage().rss - rss) / 1e6 };
}

const RGB32: Layout = { width: 32, height: 32, depth: 8, colorType: 2 };

Deno.test("decodePng() stops a decompression bomb at the size its header declares", () => {
  // 32×32 RGB needs 32 * (1 + 96) = 3104 bytes; this inflates to 200 MB.
  const bomb = png(RGB32, zeroBomb(775_000));
  assert.ok(bomb.length < 1_300_000);
  const { error, ms, grewMB } = attempt(bomb);
  assert.ok(error instanceof TypeError, String(error));
  assert.match(
    error.message,
    /Invalid PNG data \(\d+ bytes\): the pixel data inflates past "3104" bytes, the exact size its header declares \(32×32, RGB, 8-bit\): decoding stopped there \(a decompression bomb/,
  );
  // Stopped after the first slice, not after 200 MB.
  assert.ok(ms < 1000, `${ms} ms`);
  assert.ok(grewMB < 100, `${grewMB} MB`);
  // The same through decodeImage (what the browser page and the CLI call),
  // with the bomb split over many IDAT chunks, and interlaced.
  assert.throws(
    () => decodeImage(png(RGB32, zeroBomb(100_000), [], 999), "b.png"),
    {
      name: "TypeError",
      message:
        /Cannot decode "b\.png": Invalid PNG data .*inflates past "3104" bytes/,
    },
  );
  const adam7 = { ...RGB32, interlace: 1 };
  assert.throws(() => decodePng(png(adam7, zeroBomb(100_000))), {
    name: "TypeError",
    message: /inflates past "3132" bytes.*\(32×32, RGB, 8-bit, interlaced\)/,
  });
});

Deno.test("decodePng() wants exactly the declared pixel data: one byte more or less is refused", () => {
  for (const interlace of [0, 1]) {
    const h: Layout = {
      width: 5,
      height: 3,
      depth: 8,
      colorType: 0,
      interlace,
    };
    const rows = filteredRows(h, pattern(8, 1));
    // Adam7 at 5×3: passes of 1×1, 1×1, none, 1×1, 3×1, 2×2 and 5×1 pixels,
    // each row with a filter byte.
    assert.equal(rows.length, interlace ? 2 + 2 + 2 + 4 + 2 * 3 + 6 : 3 * 6);
    const ok = decodePng(png(h, zlibSync(rows)));
    assert.deepEqual(ok.data, fastPngPixels(png(h, zlibSync(rows))));
    const more = concat([rows, Uint8Array.of(0)]);
    assert.throws(() => decodePng(png(h, zlibSync(more))), {
      name: "TypeError",
      message: new RegExp(`inflates past "${rows.length}" bytes`),
    });
    const less = rows.subarray(0, -1);
    assert.throws(() => decodePng(png(h, zlibSync(less))), {
      name: "TypeError",
      message: new RegExp(
        `"${less.length}" bytes of pixel rows for 5×3: expected ${rows.length} \\(truncated`,
      ),
    });
  }
});

Deno.test("decodePng() never inflates ancillary chunks: a 500 MB iCCP profile and broken zTXt/iTXt are skipped", () => {
  const rows = filteredRows(RGB32, pattern(8, 2));
  const plain = png(RGB32, zlibSync(rows));
  const expected = decodePng(plain);
  const text = (s: string) => new TextEncoder().encode(s);
  // "icc\0", compression method 0, then a zlib profile of 500 MB of zeros.
  const iccp = chunk("iCCP", concat([text("icc\0\0"), zeroBomb(1_938_000)]));
  const ztxt = chunk(
    "zTXt",
    concat([text("Comment\0\0"), zeroBomb(1_000_000)]),
  );
  // Corrupt compressed text: fine to skip, would throw if inflated.
  const itxt = chunk(
    "iTXt",
    concat([text("Title\0\x01\0en\0\0"), text("not zlib")]),
  );
  const gama = chunk("gAMA", Uint8Array.of(0, 0, 0xb1, 0x8f));
  const hostile = png(RGB32, zlibSync(rows), [iccp, ztxt, gama, itxt]);
  assert.ok(hostile.length > 3_000_000);
  const rss = Deno.memoryUsage().rss, t = performance.now();
  assert.deepEqual(decodePng(hostile), expected);
  const ms = performance.now() - t;
  const grewMB = (Deno.memoryUsage().rss - rss) / 1e6;
  assert.ok(ms < 1000, `${ms} ms`);
  assert.ok(grewMB < 100, `${grewMB} MB`);
  // A damaged ancillary chunk is still caught by its CRC.
  const flipped = hostile.slice();
  flipped[33 + 20] ^= 1; // inside iCCP's data, right after IHDR
  assert.throws(() => decodePng(flipped), {
    name: "TypeError",
    message: /Invalid PNG chunk "iCCP" at byte 33: CRC mismatch/,
  });
});

Deno.test("decodePng() refuses a palette image without a PLTE chunk, or with a broken one", () => {
  const h: Layout = { width: 4, height: 2, depth: 2, colorType: 3 };
  const rows = zlibSync(filteredRows(h, pattern(2, 3)));
  assert.throws(() => decodePng(png(h, rows)), {
    name: "TypeError",
    message:
      /Invalid PNG data \(\d+ bytes\): colour type 3 \(palette\) without a PLTE chunk: the file is damaged/,
  });
  for (const size of [0, 4, 771]) {
    assert.throws(
      () => decodePng(png(h, rows, [chunk("PLTE", new Uint8Array(size))])),
      {
        name: "TypeError",
        message: new RegExp(
          `a PLTE chunk of "${size}" bytes: expected 1 to 256 RGB entries`,
        ),
      },
    );
  }
  // Gray and RGB images need no PLTE (a suggested palette is ignored).
  const gray: Layout = { ...h, colorType: 0 };
  const plte = chunk("PLTE", Uint8Array.of(9, 9, 9));
  assert.deepEqual(
    decodePng(png(gray, rows, [plte])),
    decodePng(png(gray, rows)),
  );
});

Deno.test("decodePng() decodes every colour type, depth, row filter and Adam7 as fast-png did", () => {
  const palette = chunk(
    "PLTE",
    Uint8Array.from({ length: 3 * 200 }, (_, i) => (i * 37) & 255),
  );
  let cases = 0;
  for (
    const [colorType, depths] of [
      [0, [1, 2, 4, 8, 16]],
      [2, [8, 16]],
      [3, [1, 2, 4, 8]],
      [4, [8, 16]],
      [6, [8, 16]],
    ] as const
  ) {
    for (const depth of depths) {
      for (const [width, height] of [[1, 1], [3, 5], [13, 9], [17, 16]]) {
        const h: Layout = { width, height, depth, colorType };
        const before = colorType === 3 ? [palette] : [];
        const rows = filteredRows(h, pattern(depth, width + depth));
        const plain = png(h, zlibSync(rows), before);
        const img = decodePng(plain);
        assert.deepEqual([img.height, img.width], [height, width]);
        assert.deepEqual(img.data, fastPngPixels(plain), JSON.stringify(h));
        // The same pixels interlaced decode the same (fast-png cannot
        // deinterlace samples under 8 bits, so the plain file is the
        // reference), also from 7-byte IDAT chunks.
        const adam7 = { ...h, interlace: 1 };
        const rows7 = filteredRows(adam7, pattern(depth, width + depth));
        const interlaced = png(adam7, zlibSync(rows7), before, 7);
        assert.deepEqual(decodePng(interlaced), img, JSON.stringify(adam7));
        if (depth >= 8) assert.deepEqual(img.data, fastPngPixels(interlaced));
        cases++;
      }
    }
  }
  assert.equal(cases, 4 * 15);
  // A palette index past the palette's 200 entries is black, as before.
  const h: Layout = { width: 2, height: 1, depth: 8, colorType: 3 };
  const img = decodePng(png(h, zlibSync(Uint8Array.of(0, 1, 250)), [palette]));
  // Entry 1 is bytes 3 to 5: (3 * 37) & 255 = 111, then 148 and 185.
  assert.deepEqual(
    img.data,
    Float32Array.of(111, 0, 148, 0, 185, 0).map((v) => v / 255),
  );
  // A real photograph.
  const chelsea = Deno.readFileSync(CHELSEA);
  assert.deepEqual(decodePng(chelsea).data, fastPngPixels(chelsea));
});

Deno.test("decodePng() refuses corrupt pixel data: bad filter, checksum, zlib header, garbage", () => {
  const h: Layout = { width: 4, height: 2, depth: 8, colorType: 0 };
  const rows = filteredRows(h, pattern(8, 4));
  const badFilter = rows.slice();
  badFilter[5] = 5; // the second row's filter byte
  assert.throws(() => decodePng(png(h, zlibSync(badFilter))), {
    name: "TypeError",
    message: /row filter "5" at byte 5 of the pixel data: expected 0 to 4/,
  });
  const z = zlibSync(rows);
  const badSum = z.slice();
  badSum[badSum.length - 1] ^= 1;
  assert.throws(() => decodePng(png(h, badSum)), {
    name: "TypeError",
    message: /the compressed pixel data is corrupt \(zlib checksum mismatch\)/,
  });
  assert.throws(() => decodePng(png(h, Uint8Array.of(1, 2, 3, 4, 5, 6, 7))), {
    name: "TypeError",
    message: /the compressed pixel data is corrupt \(invalid zlib data\)/,
  });
  // Short valid data, then a megabyte of garbage after its zlib stream:
  // refused quickly, not piled up in the inflater.
  const cut = zlibSync(rows.subarray(0, 5));
  const padded = concat([cut, new Uint8Array(1 << 20).fill(0xff)]);
  const t = performance.now();
  assert.throws(() => decodePng(png(h, padded, [], 4096)), {
    name: "TypeError",
    message: /bytes of compressed pixel data in a row yield no pixels/,
  });
  assert.ok(performance.now() - t < 1000);
  // Header checks: IHDR first, valid methods.
  const wrongFirst = png(h, z, []);
  wrongFirst.set(new TextEncoder().encode("IHDX"), 12);
  new DataView(wrongFirst.buffer).setUint32(
    29,
    crc32(wrongFirst.subarray(12, 29)),
  );
  assert.throws(() => decodePng(wrongFirst), {
    name: "TypeError",
    message: /its first chunk is "IHDX" of 13 bytes: expected "IHDR"/,
  });
  assert.throws(() => decodePng(png({ ...h, interlace: 2 }, z)), {
    name: "TypeError",
    message: /interlace methods "0, 0, 2": expected 0, 0 and 0 or 1/,
  });
});

Deno.test("decodePng() walks at most 1,000,000 chunks, and takes IDAT data in any pieces", () => {
  const h: Layout = { width: 8, height: 8, depth: 8, colorType: 2 };
  const z = zlibSync(filteredRows(h, pattern(8, 5)));
  const expected = decodePng(png(h, z));
  // 1-byte IDAT chunks after 900,000 empty ancillary ones: still decodes.
  const empty = chunk("teXt", new Uint8Array());
  const many = (n: number) => png(h, z, Array(n).fill(empty), 1);
  const t = performance.now();
  assert.deepEqual(decodePng(many(900_000)), expected);
  const ms = performance.now() - t;
  // IHDR, 1,000,000 empty chunks and IDAT: one too many, refused before
  // the walk reaches IEND.
  assert.throws(() => decodePng(many(1_000_000)), {
    name: "RangeError",
    message:
      /Invalid PNG data \(\d+ bytes\): more than 1000000 chunks before IEND: expected a few dozen/,
  });
  assert.ok(ms < 5000, `${ms} ms`);
});

Deno.test("the browser page decodes dropped images with the same decodeImage", () => {
  // web/ has no PNG decoder of its own: it imports decodeImage from the core.
  for (const entry of Deno.readDirSync(WEB)) {
    if (!entry.name.endsWith(".ts")) continue;
    const source = Deno.readTextFileSync(`${WEB}${entry.name}`);
    assert.doesNotMatch(
      source,
      /fast-png|fflate|pngjs|unzlib|inflate/i,
      entry.name,
    );
  }
  assert.match(
    Deno.readTextFileSync(`${WEB}engine.ts`), // the worker's side: web/worker.ts runs it
    /decodeImage\(new Uint8Array\(await file\.arrayBuffer\(\)\), file\.name\)/,
  );
});
