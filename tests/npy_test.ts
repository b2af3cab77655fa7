import { decodeNpy, encodeNpy } from "../src/io/mod.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";

const FIXTURES = new URL("./fixtures/npy/", import.meta.url);

/** A .npy file with the given header dict and payload (version 1.0). */
function npy(dict: string, payload: Uint8Array = new Uint8Array()) {
  const total = Math.ceil((11 + dict.length) / 64) * 64;
  const header = dict.padEnd(total - 11, " ") + "\n";
  const out = new Uint8Array(total + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(payload, total);
  return out;
}

Deno.test("encodeNpy() and decodeNpy() round-trip shapes", () => {
  for (
    const shape of [[2, 3], [7], [], [1, 1, 1], [0, 3], [2, 3, 4, 5]]
  ) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: size }, (_, i) => i * 0.1 - 1);
    const bytes = encodeNpy(data, shape);
    // The data starts at a multiple of 64, right after a newline.
    const headerEnd = 10 + new DataView(bytes.buffer).getUint16(8, true);
    assertEquals(headerEnd % 64, 0);
    assertEquals(bytes[headerEnd - 1], 0x0a);
    assertEquals(bytes.length, headerEnd + 4 * size);
    assertEquals(decodeNpy(bytes), { data, shape });
  }
  // Special values survive, and a subarray view is encoded from its offset.
  const special = new Float32Array([NaN, Infinity, -Infinity, -0, 1e-45]);
  const back = decodeNpy(encodeNpy(special.subarray(1), [4])).data;
  assertEquals([...back], [...special.subarray(1)]);
  assertEquals(back[2], -0);
  assert(Number.isNaN(decodeNpy(encodeNpy(special, [5])).data[0]));
});

Deno.test("encodeNpy() writes what np.save writes", async () => {
  // Generated with NumPy 1.24 (run in tests/fixtures/npy/):
  //   /usr/bin/python3 -c "import numpy as np; np.save('arange_2x3_f4.npy', np.arange(6, dtype=np.float32).reshape(2, 3))"
  const fixture = await Deno.readFile(new URL("arange_2x3_f4.npy", FIXTURES));
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  assertEquals(encodeNpy(data, [2, 3]), fixture);
  assertEquals(decodeNpy(fixture), { data, shape: [2, 3] });
});

Deno.test("decodeNpy() reads float64 from np.save, rounding to float32", async () => {
  // Generated with NumPy 1.24 (run in tests/fixtures/npy/):
  //   /usr/bin/python3 -c "import numpy as np; np.save('arange_f8.npy', np.arange(5, dtype=np.float64) / 4)"
  const fixture = await Deno.readFile(new URL("arange_f8.npy", FIXTURES));
  assertEquals(decodeNpy(fixture), {
    data: new Float32Array([0, 0.25, 0.5, 0.75, 1]),
    shape: [5],
  });
  // An odd byte offset (unaligned float64s) is fine.
  const shifted = new Uint8Array(fixture.length + 1);
  shifted.set(fixture, 1);
  assertEquals(decodeNpy(shifted.subarray(1)).data[1], 0.25);
});

Deno.test("decodeNpy() accepts version 2.0 headers and Python 2 longs", () => {
  const v1 = npy(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }",
    new Uint8Array(new Float32Array([1.5, -2]).buffer),
  );
  assertEquals(decodeNpy(v1), {
    data: new Float32Array([1.5, -2]),
    shape: [1, 2],
  });
  const v2 = new Uint8Array(v1.length + 2);
  v2.set(v1.subarray(0, 8));
  v2[6] = 2;
  const headerLength = new DataView(v1.buffer).getUint16(8, true);
  new DataView(v2.buffer).setUint32(8, headerLength, true);
  v2.set(v1.subarray(10), 12);
  assertEquals(decodeNpy(v2).shape, [1, 2]);
});

Deno.test("decodeNpy() rejects other dtypes, Fortran order and bad files", async () => {
  const f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const eight = new Uint8Array(8);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([1, 2, 3]), /Invalid \.npy signature "01 02 03"/],
    [
      npy(f4.replace("<f4", ">f4"), eight),
      /dtype ">f4": expected '<f4' or '<f8'/,
    ],
    [npy(f4.replace("<f4", "<i4"), eight), /dtype "<i4".*astype/],
    [npy(f4.replace("False", "True"), eight), /fortran_order: True.*C order/],
    [npy(f4, eight.subarray(0, 7)), /needs \d+ bytes \(truncated file\?\)/],
    [npy(f4, new Uint8Array(9)), /trailing garbage/],
    [npy(f4).subarray(0, 40), /ends inside the \d+-byte header/],
    [npy("{'descr': '<f4'}"), /expected a dict with 'descr'/],
    [npy(f4.replace("(2,)", "(2, -1)"), eight), /shape "\(2, -1\)"/],
  ];
  const v9 = npy(f4, eight);
  v9[6] = 9;
  cases.push([v9, /version "9\.0"/]);
  for (const [bytes, message] of cases) {
    const err = await assertRejects(() => decodeNpy(bytes), TypeError);
    assert(message.test(err.message), `${message} vs ${err.message}`);
  }
});

Deno.test("encodeNpy() rejects bad shapes and data", async () => {
  const data = new Float32Array(6);
  await assertRejects(
    () => encodeNpy(data, [4, 2]),
    RangeError,
    'Invalid shape "[4, 2]": it holds 8 values but the data has 6',
  );
  await assertRejects(
    () => encodeNpy(data, [2, 3.5]),
    RangeError,
    'dimension "3.5" is not a non-negative integer',
  );
  await assertRejects(() => encodeNpy(data, [-2, -3]), RangeError, '"-2"');
  await assertRejects(
    () => encodeNpy(new Float64Array(6) as unknown as Float32Array, [6]),
    TypeError,
    '"[object Float64Array]": expected a Float32Array',
  );
});
