import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { deflateSync } from "node:zlib";
// @ts-types="npm:@types/pngjs@6.0.5"
import { PNG } from "pngjs";
import {
  centerCrop,
  decodeJpeg,
  decodePng,
  denormalize,
  encodePng,
  fitToSize,
  type ImageTensor,
  MAX_IMAGE_ASPECT,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_PIXELS,
  normalize,
  readImage,
  resizeBilinear,
  resizeShorterSide,
  writePng,
} from "../src/io/mod.ts";

// Test photographs, in the repo (licences in their folders' SOURCES.md).
const CHELSEA = new URL("../assets/chelsea.png", import.meta.url).pathname;
const ROCKET =
  new URL("./fixtures/images/rocket.jpg", import.meta.url).pathname;

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** Builds a PNG by hand (for color types and depths pngjs cannot write). */
function makePng(
  width: number,
  height: number,
  depth: number,
  colorType: number,
  rows: number[][],
  extra: [string, number[]][] = [],
): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, 0], 8);
  const raw = Uint8Array.from(rows.flatMap((r) => [0, ...r]));
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    ...extra.map(([t, d]) => chunk(t, Uint8Array.from(d))),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", new Uint8Array()),
  ];
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

function fromHwc(pixels: number[][][]): ImageTensor {
  const height = pixels.length, width = pixels[0].length;
  const data = new Float32Array(3 * height * width);
  pixels.forEach((row, y) =>
    row.forEach((px, x) =>
      px.forEach((v, c) => data[(c * height + y) * width + x] = v)
    )
  );
  return { data, channels: 3, height, width };
}

function constant(height: number, width: number, rgb: number[]): ImageTensor {
  const data = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    data.fill(rgb[c], c * height * width, (c + 1) * height * width);
  }
  return { data, channels: 3, height, width };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) < 1e-6,
      `index ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

Deno.test("encodePng() and decodePng() round-trip 8-bit levels", () => {
  const img = constant(5, 7, [0, 0, 0]);
  img.data.forEach((_, i) => img.data[i] = ((i * 37) % 256) / 255);
  const png = encodePng(img);
  const meta = PNG.sync.read(Buffer.from(png));
  assert.equal(meta.colorType, 2);
  assert.deepEqual(decodePng(png), img);
});

Deno.test("encodePng() clamps, or rejects out-of-range values", () => {
  const img = fromHwc([[[-0.5, 1.5, 0.5]]]);
  assertClose(decodePng(encodePng(img)).data, [0, 1, 128 / 255]);
  assert.throws(() => encodePng(img, { clamp: false }), RangeError);
  assert.throws(() => encodePng(fromHwc([[[NaN, 0, 0]]])), RangeError);
  assert.throws(
    () => encodePng({ ...img, data: new Float32Array(2) }),
    RangeError,
  );
});

Deno.test("decodePng() handles RGBA, gray, palette and 16-bit PNGs", () => {
  // RGBA written by pngjs: alpha is dropped, not composited.
  const rgba = new PNG({ width: 2, height: 1 });
  rgba.data.set([255, 0, 51, 0, 0, 102, 255, 128]);
  assert.deepEqual(
    decodePng(PNG.sync.write(rgba)),
    fromHwc([[[1, 0, 0.2], [0, 0.4, 1]]]),
  );
  // 8-bit and 4-bit gray.
  assertClose(
    decodePng(makePng(2, 1, 8, 0, [[0, 51]])).data,
    [0, 0.2, 0, 0.2, 0, 0.2],
  );
  assertClose(decodePng(makePng(2, 1, 4, 0, [[0x0f]])).data, [
    0,
    1,
    0,
    1,
    0,
    1,
  ]);
  // 2-bit palette: indices 2, 0, 1 in one byte.
  const plte: [string, number[]] = ["PLTE", [255, 0, 0, 0, 255, 0, 0, 0, 255]];
  assert.deepEqual(
    decodePng(makePng(3, 1, 2, 3, [[0b10000100]], [plte])),
    fromHwc([[[0, 0, 1], [1, 0, 0], [0, 1, 0]]]),
  );
  // 16-bit RGB keeps full precision.
  const img16 = decodePng(makePng(1, 1, 16, 2, [[0x80, 0x00, 0, 1, 255, 255]]));
  assertClose(img16.data, [32768 / 65535, 1 / 65535, 1]);
});

Deno.test("decodePng() rejects corrupt data", () => {
  const png = encodePng(constant(4, 4, [0.1, 0.2, 0.3]));
  assert.throws(() => decodePng(new Uint8Array([1, 2, 3])), {
    name: "TypeError",
    message: /Invalid PNG signature "01 02 03"/,
  });
  for (const end of [8, 40, png.length - 5]) {
    assert.throws(() => decodePng(png.subarray(0, end)), {
      name: "TypeError",
      message: /truncated/,
    });
  }
  for (const i of [20, 45, png.length - 13]) {
    const flipped = png.slice();
    flipped[i] ^= 0xff; // In IHDR, IDAT, then IEND's CRC.
    assert.throws(() => decodePng(flipped), {
      name: "TypeError",
      message: /Invalid PNG chunk "(IHDR|IDAT|IEND)" at byte \d+: CRC mismatch/,
    });
  }
  // Valid chunks with bad content: a 3-bit depth is not allowed.
  assert.throws(() => decodePng(makePng(1, 1, 3, 0, [[0]])), {
    name: "TypeError",
    message: /Invalid PNG data/,
  });
  // Trailing bytes after IEND are ignored, as most decoders do.
  const padded = new Uint8Array([...png, 0, 0, 0]);
  assert.deepEqual(decodePng(padded), decodePng(png));
});

Deno.test("resizeBilinear() keeps a constant image constant", () => {
  const img = constant(13, 17, [0.25, 0.5, 1]);
  for (const [h, w] of [[5, 6], [40, 9], [13, 1], [1, 30]]) {
    const out = resizeBilinear(img, h, w);
    assert.deepEqual([out.height, out.width], [h, w]);
    const plane = h * w;
    out.data.forEach((v, i) =>
      assert.ok(Math.abs(v - [0.25, 0.5, 1][Math.floor(i / plane)]) < 1e-6)
    );
  }
});

Deno.test("resizeBilinear() to the same size is the identity", () => {
  const img = constant(6, 5, [0, 0, 0]);
  img.data.forEach((_, i) => img.data[i] = Math.sin(i));
  const out = resizeBilinear(img, 6, 5);
  assert.deepEqual(out, img);
  assert.notEqual(out.data, img.data);
});

Deno.test("resizeBilinear() antialiases when shrinking", () => {
  // Checkerboard halved: interior pixels average to 0.5; at the borders the
  // triangle filter is cut off and renormalized, as in PIL.
  const board = constant(8, 8, [0, 0, 0]);
  board.data.forEach((_, i) => board.data[i] = ((i >> 3) + i) % 2);
  const half = resizeBilinear(board, 4, 4);
  for (let c = 0; c < 3; c++) {
    for (let y = 1; y < 3; y++) {
      for (let x = 1; x < 3; x++) {
        assert.ok(Math.abs(half.data[(c * 4 + y) * 4 + x] - 0.5) < 1e-6);
      }
    }
  }
  // A single bright pixel is not missed when shrinking by 4 (plain bilinear
  // sampling would read only pixels 1-2 and 5-6 and give zeros).
  const impulse = constant(1, 8, [0, 0, 0]);
  impulse.data[3] = 1;
  assertClose(resizeBilinear(impulse, 1, 2).data.subarray(0, 2), [
    5 / 28,
    3 / 28,
  ]);
  // Upscaling by 2 interpolates between pixel centers (align_corners=False).
  const ramp = fromHwc([[[0, 0, 0], [1, 1, 1]]]);
  assertClose(resizeBilinear(ramp, 1, 4).data.subarray(0, 4), [
    0,
    0.25,
    0.75,
    1,
  ]);
});

Deno.test("centerCrop() uses torchvision's offsets", () => {
  const img = constant(5, 6, [0, 0, 0]);
  img.data.forEach((_, i) => img.data[i] = i);
  // top = round(3 / 2) = 2 (half to even), left = round(3 / 2) = 2.
  const out = centerCrop(img, 2, 3);
  assert.deepEqual([...out.data.subarray(0, 6)], [14, 15, 16, 20, 21, 22]);
  assert.deepEqual([...out.data.subarray(6, 9)], [44, 45, 46]);
  // top = round(1 / 2) = 0, left = round(5 / 2) = 2.
  assert.deepEqual([...centerCrop(img, 4, 1).data.subarray(0, 4)], [
    2,
    8,
    14,
    20,
  ]);
  assert.deepEqual(centerCrop(img, 5, 6), img);
  assert.throws(() => centerCrop(img, 6, 6), RangeError);
  assert.throws(() => centerCrop(img, 0, 2), RangeError);
});

Deno.test("resizeShorterSide() and fitToSize() follow torchvision", () => {
  const img = constant(300, 451, [0.5, 0.5, 0.5]);
  const r = resizeShorterSide(img, 224);
  assert.deepEqual([r.height, r.width], [224, 336]); // floor(224 * 451 / 300)
  const tall = resizeShorterSide(constant(10, 3, [0, 0, 0]), 4);
  assert.deepEqual([tall.height, tall.width], [13, 4]);
  const sq = fitToSize(img, 32);
  assert.deepEqual([sq.height, sq.width, sq.data.length], [32, 32, 3 * 1024]);
});

Deno.test("normalize() and denormalize() are inverses", () => {
  const img = fromHwc([[[0.5, 0.25, 1], [0, 1, 0.75]]]);
  const mean: [number, number, number] = [0.485, 0.456, 0.406];
  const std: [number, number, number] = [0.229, 0.224, 0.225];
  const n = normalize(img, mean, std);
  assertClose(n.data.subarray(0, 2), [(0.5 - 0.485) / 0.229, -0.485 / 0.229]);
  assertClose(denormalize(n, mean, std).data, img.data);
  assert.throws(() => normalize(img, mean, [1, 0, 1]), RangeError);
  assert.throws(
    () => normalize(img, [0, 0] as unknown as typeof mean, std),
    RangeError,
  );
});

Deno.test("readImage() decodes the chelsea photo", async () => {
  const img = await readImage(CHELSEA);
  assert.deepEqual([img.channels, img.height, img.width], [3, 300, 451]);
  assert.equal(img.data.length, 3 * 300 * 451);
  let min = Infinity, max = -Infinity;
  for (const v of img.data) [min, max] = [Math.min(min, v), Math.max(max, v)];
  assert.ok(min >= 0 && max <= 1 && max - min > 0.5, `range ${min}..${max}`);
  await assert.rejects(
    () => readImage("/nonexistent/photo.png"),
    Deno.errors.NotFound,
  );
});

Deno.test("readImage() decodes the rocket JPEG", async () => {
  const img = await readImage(ROCKET);
  assert.deepEqual([img.channels, img.height, img.width], [3, 427, 640]);
  assert.equal(img.data.length, 3 * 427 * 640);
  let sum = 0, min = Infinity, max = -Infinity;
  for (const v of img.data) {
    sum += v;
    [min, max] = [Math.min(min, v), Math.max(max, v)];
  }
  const mean = sum / img.data.length;
  assert.ok(mean > 0.05 && mean < 0.95, `mean ${mean}`);
  assert.ok(min >= 0 && max <= 1 && max - min > 0.5, `range ${min}..${max}`);
  // The three channels differ: it is decoded as color, not grayscale.
  const plane = 427 * 640;
  assert.ok(
    img.data.subarray(0, plane).some((v, i) => v !== img.data[plane + i]),
  );
  assert.deepEqual(decodeJpeg(await Deno.readFile(ROCKET)), img);
});

Deno.test("readImage() detects the format from the bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A JPEG named .png and a PNG named .jpg both decode.
    await Deno.copyFile(ROCKET, `${dir}/rocket.png`);
    assert.equal((await readImage(`${dir}/rocket.png`)).width, 640);
    const png = encodePng(constant(2, 3, [0.2, 0.4, 0.6]));
    await Deno.writeFile(`${dir}/small.jpg`, png);
    assert.deepEqual(await readImage(`${dir}/small.jpg`), decodePng(png));
    // Neither format: the error names the path and the expected formats.
    await Deno.writeTextFile(`${dir}/notes.png`, "hello");
    await assert.rejects(() => readImage(`${dir}/notes.png`), {
      name: "TypeError",
      message:
        /"[^"]*notes\.png" \(starts with "68 65 6c 6c 6f"\): expected a PNG or JPEG file/,
    });
    await Deno.writeFile(`${dir}/empty.jpg`, new Uint8Array());
    await assert.rejects(() => readImage(`${dir}/empty.jpg`), {
      name: "TypeError",
      message: /empty\.jpg.*PNG or JPEG/,
    });
    // A corrupt file's error names the path too.
    await Deno.writeFile(`${dir}/cut.png`, png.subarray(0, 30));
    await assert.rejects(() => readImage(`${dir}/cut.png`), {
      name: "TypeError",
      message: /Cannot decode "[^"]*cut\.png": Invalid PNG data.*truncated/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodeJpeg() rejects truncated and corrupt data", async () => {
  const bytes = await Deno.readFile(ROCKET);
  assert.throws(() => decodeJpeg(new Uint8Array([1, 2, 3, 4])), {
    name: "TypeError",
    message: /Invalid JPEG signature "01 02 03": expected ff d8 ff/,
  });
  for (
    const end of [3, 100, 5000, Math.floor(bytes.length / 2), bytes.length - 2]
  ) {
    assert.throws(() => decodeJpeg(bytes.subarray(0, end)), {
      name: "TypeError",
      message: new RegExp(
        `Invalid JPEG data \\(${end} bytes\\): .*truncated or corrupt`,
      ),
    });
  }
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/cut.jpg`, bytes.subarray(0, 5000));
    await assert.rejects(() => readImage(`${dir}/cut.jpg`), {
      name: "TypeError",
      message:
        /Cannot decode "[^"]*cut\.jpg": Invalid JPEG data \(5000 bytes\)/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writePng() writes atomically and leaves nothing on error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const img = fromHwc([[[0, 0.5, 1]]]);
    const path = `${dir}/out.png`;
    await writePng(path, img);
    assert.deepEqual(await readImage(path), decodePng(encodePng(img)));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "out.png",
    ]);
    await assert.rejects(() => writePng(`${dir}/missing/x.png`, img));
    await assert.rejects(
      () => writePng(`${dir}/bad.png`, { ...img, height: 2 }),
      RangeError,
    );
    // Renaming over a directory fails after the temporary file is written.
    await Deno.mkdir(`${dir}/taken.png`);
    await assert.rejects(() => writePng(`${dir}/taken.png`, img));
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["out.png", "taken.png"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodePng() checks the declared size before decoding", () => {
  // A 100-byte file that declares 10^10 pixels: refused from IHDR, before
  // pngjs allocates anything.
  const huge = makePng(100000, 100000, 8, 2, [[0, 0, 0]]);
  assert.throws(() => decodePng(huge), {
    name: "RangeError",
    message:
      /Invalid PNG size "100000×100000": 100000×100000 px exceeds the limit of 40 megapixels/,
  });
  // Just above the pixel limit.
  const side = Math.floor(Math.sqrt(MAX_IMAGE_PIXELS)) + 1;
  assert.throws(() => decodePng(makePng(side, side, 8, 0, [[0]])), {
    name: "RangeError",
    message: /exceeds the limit of 40 megapixels/,
  });
  // Few pixels, but an aspect ratio the resize would blow up.
  const w = MAX_IMAGE_ASPECT + 1;
  const thin = makePng(w, 1, 8, 0, [Array(w).fill(128)]);
  assert.throws(() => decodePng(thin), {
    name: "RangeError",
    message: /"101×1": an aspect ratio of 101:1 exceeds the limit of 100:1/,
  });
  // At the limit it decodes.
  const ok = makePng(MAX_IMAGE_ASPECT, 1, 8, 0, [Array(100).fill(51)]);
  assert.equal(decodePng(ok).width, 100);
});

Deno.test("decodePng() refuses too little pixel data instead of zero-filling", () => {
  // 4 rows declared, 1 row of data: pngjs alone would return 3 black rows.
  const short = makePng(2, 4, 8, 2, [[10, 20, 30, 40, 50, 60]]);
  assert.throws(() => decodePng(short), {
    name: "TypeError",
    message:
      /Invalid PNG data \(\d+ bytes\): "7" bytes of pixel rows for 2×4: expected 28 \(truncated image data\?\)/,
  });
  // Interlaced (Adam7) images count their passes' rows: 1x1 needs 2 bytes.
  const ihdrInterlaced = makePng(1, 1, 8, 0, [[7]]);
  ihdrInterlaced[28] = 1; // IHDR interlace byte; fix its CRC.
  const crc = crc32(ihdrInterlaced.subarray(12, 29));
  new DataView(ihdrInterlaced.buffer).setUint32(29, crc);
  assertClose(decodePng(ihdrInterlaced).data, [7 / 255, 7 / 255, 7 / 255]);
});

/** The rocket JPEG with its frame header's size replaced. */
async function rocketDeclaring(height: number, width: number) {
  const bytes = await Deno.readFile(ROCKET);
  const view = new DataView(bytes.buffer);
  for (let pos = 2;;) {
    const marker = bytes[pos + 1];
    if (marker === 0xc0 || marker === 0xc2) {
      assert.deepEqual([view.getUint16(pos + 5), view.getUint16(pos + 7)], [
        427,
        640,
      ]);
      view.setUint16(pos + 5, height);
      view.setUint16(pos + 7, width);
      return bytes;
    }
    pos += 2 + view.getUint16(pos + 2);
  }
}

Deno.test("decodeJpeg() checks the declared size before decoding", async () => {
  assert.throws(() => decodeJpeg(Uint8Array.of(0)), TypeError);
  const big = await rocketDeclaring(65000, 65000);
  assert.throws(() => decodeJpeg(big), {
    name: "RangeError",
    message:
      /Invalid JPEG size "65000×65000": 65000×65000 px exceeds the limit of 40 megapixels/,
  });
  const thin = await rocketDeclaring(8, 6400);
  assert.throws(() => decodeJpeg(thin), {
    name: "RangeError",
    message: /"6400×8": an aspect ratio of 800:1 exceeds the limit of 100:1/,
  });
});

Deno.test("resizeBilinear() and resizeShorterSide() refuse huge outputs", () => {
  // A 1×100 strip is fine in memory, but its shorter side at 224 px makes a
  // 224×22400 image; at 2000 px it would be 2000×200000 (400 megapixels).
  const strip = constant(1, 100, [0.5, 0.5, 0.5]);
  assert.equal(resizeShorterSide(strip, 224).width, 22400);
  assert.throws(() => resizeShorterSide(strip, 2000), {
    name: "RangeError",
    message:
      /Invalid output size "200000×2000": 200000×2000 px exceeds the limit of 40 megapixels/,
  });
  assert.throws(() => resizeBilinear(strip, 10000, 10000), RangeError);
});

/** Rejects unless `promise` settles within `ms` (today's unbounded reads
 * would hang the test instead of failing it). */
function within<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

Deno.test("readImage() refuses non-regular and oversized files by stat", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(() => within(readImage("/dev/zero")), {
      name: "TypeError",
      message:
        /Invalid image file "\/dev\/zero": it is a device: expected a regular PNG or JPEG file/,
    });
    await assert.rejects(() => within(readImage(dir)), {
      name: "TypeError",
      message: /it is a folder/,
    });
    const fifo = `${dir}/pipe.png`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    await assert.rejects(() => within(readImage(fifo)), {
      name: "TypeError",
      message: /pipe\.png": it is a fifo/,
    });
    // A sparse file one byte over the cap: refused without reading it.
    const big = `${dir}/big.png`;
    await Deno.writeFile(big, encodePng(constant(2, 2, [0, 0, 0])));
    await Deno.truncate(big, MAX_IMAGE_BYTES + 1);
    await assert.rejects(() => within(readImage(big)), {
      name: "RangeError",
      message: new RegExp(
        `big\\.png": ${
          MAX_IMAGE_BYTES + 1
        } bytes exceeds the limit of ${MAX_IMAGE_BYTES} bytes`,
      ),
    });
    // A symlink to a regular file is followed.
    await Deno.symlink(CHELSEA, `${dir}/link.png`);
    assert.equal((await readImage(`${dir}/link.png`)).width, 451);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readImage() reads file: and http(s) URLs with the same limits", async () => {
  const cat = await Deno.readFile(CHELSEA);
  const expected = decodePng(cat);
  assert.deepEqual(await readImage(new URL(`file://${CHELSEA}`)), expected);
  assert.deepEqual(await readImage(`file://${CHELSEA}`), expected);
  const big = MAX_IMAGE_BYTES + 1;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/cat.png") return new Response(cat);
    if (path === "/endless.png") {
      // No Content-Length: a stream of zeros that never ends.
      const chunk = new Uint8Array(1 << 20);
      return new Response(
        new ReadableStream({ pull: (c) => c.enqueue(chunk) }),
      );
    }
    if (path === "/slow.png") {
      return new Response(
        new ReadableStream({ pull: () => new Promise(() => {}) }),
      );
    }
    return new Response("no such image", { status: 404 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    assert.deepEqual(await readImage(`${base}/cat.png`), expected);
    await assert.rejects(() => readImage(`${base}/nope.png`), {
      name: "TypeError",
      message: new RegExp(`Cannot fetch image "${base}/nope\\.png": HTTP 404`),
    });
    // A raw server, since Deno.serve sets Content-Length from the body.
    const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const answer = (async () => {
      const conn = await raw.accept();
      await conn.read(new Uint8Array(4096));
      const head = `HTTP/1.1 200 OK\r\nContent-Length: ${big}\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head)).catch(() => {});
      conn.close();
    })();
    const rawUrl = `http://127.0.0.1:${(raw.addr as Deno.NetAddr).port}/x.png`;
    await assert.rejects(() => within(readImage(rawUrl)), {
      name: "RangeError",
      message: new RegExp(`x\\.png": ${big} bytes exceeds the limit`),
    });
    await answer;
    raw.close();
    await assert.rejects(() => within(readImage(`${base}/endless.png`)), {
      name: "RangeError",
      message: /endless\.png": \d+ bytes exceeds the limit of 268435456 bytes/,
    });
    await assert.rejects(
      () => within(readImage(`${base}/slow.png`, { timeoutMs: 200 })),
      { name: "TypeError", message: /Cannot fetch image ".*slow\.png"/ },
    );
    await assert.rejects(() => readImage("ftp://example.com/x.png"), {
      name: "TypeError",
      message: /expected a file path, or a file:, http: or https: URL/,
    });
  } finally {
    await server.shutdown();
  }
});
