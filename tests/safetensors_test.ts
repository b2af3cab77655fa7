import assert from "node:assert/strict";
import {
  f16ToNumber,
  parseSafetensors,
  type SafetensorsTensor,
  serializeSafetensors,
  tensorToFloat32,
} from "../src/io/mod.ts";

/** Builds a file from a raw header object and data buffer. */
function build(header: unknown, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(
    JSON.stringify(header) + " ".repeat(pad),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("serializeSafetensors() round-trips through parseSafetensors()", () => {
  const a = new Float32Array([1, -2.5, 3.25, 1e-8, -0, Infinity]);
  const b = new Float32Array([0.1]);
  const bytes = serializeSafetensors({
    "layer.weight": { shape: [2, 3], data: a },
    b: { shape: [], data: b },
    empty: { shape: [0, 4], data: new Float32Array(0) },
  }, { format: "pt", note: "héllo" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const file = parseSafetensors(bytes);
  assert.deepEqual(file.metadata, { format: "pt", note: "héllo" });
  assert.deepEqual([...file.tensors.keys()], ["layer.weight", "b", "empty"]);
  const w = file.tensors.get("layer.weight")!;
  assert.equal(w.dtype, "F32");
  assert.deepEqual(w.shape, [2, 3]);
  assert.deepEqual(tensorToFloat32(w), a);
  assert.deepEqual(tensorToFloat32(file.tensors.get("b")!), b);
  assert.equal(tensorToFloat32(file.tensors.get("empty")!).length, 0);
});

Deno.test("serializeSafetensors() writes the reference header layout", () => {
  const bytes = serializeSafetensors({
    x: { shape: [1], data: new Float32Array([2]) },
  });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.equal(
    header.trimEnd(),
    '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
  );
  assert.equal(bytes.length, 8 + n + 4);
  assert.deepEqual(parseSafetensors(bytes).metadata, {});
});

Deno.test("serializeSafetensors() rejects bad input", () => {
  assert.throws(
    () =>
      serializeSafetensors({ x: { shape: [3], data: new Float32Array(2) } }),
    RangeError,
  );
  assert.throws(
    () =>
      serializeSafetensors({ x: { shape: [-1], data: new Float32Array(0) } }),
    TypeError,
  );
  assert.throws(
    () =>
      serializeSafetensors({
        __metadata__: { shape: [0], data: new Float32Array(0) },
      }),
    TypeError,
  );
});

Deno.test("tensorToFloat32() decodes F16, BF16 and F64", () => {
  const f16 = new Uint8Array(
    new Uint16Array([
      0x3c00, // 1
      0xc000, // -2
      0x3555, // 0.333251953125
      0x7bff, // 65504
      0x0001, // 2^-24
      0x7c00, // Infinity
      0xfc00, // -Infinity
      0x8000, // -0
    ]).buffer,
  );
  assert.deepEqual(
    tensorToFloat32({ dtype: "F16", shape: [8], bytes: f16 }),
    new Float32Array([
      1,
      -2,
      0.333251953125,
      65504,
      2 ** -24,
      Infinity,
      -Infinity,
      -0,
    ]),
  );
  assert.ok(Number.isNaN(f16ToNumber(0x7e00)));
  const bf16 = new Uint8Array(
    new Uint16Array([0x3f80, 0xc040, 0x3e80, 0x7f80]).buffer,
  );
  assert.deepEqual(
    tensorToFloat32({ dtype: "BF16", shape: [4], bytes: bf16 }),
    new Float32Array([1, -3, 0.25, Infinity]),
  );
  // An unaligned view is copied to an aligned result.
  const f64 = new Uint8Array(17);
  new DataView(f64.buffer).setFloat64(1, 0.1, true);
  new DataView(f64.buffer).setFloat64(9, -1e300, true);
  const out = tensorToFloat32({
    dtype: "F64",
    shape: [2],
    bytes: f64.subarray(1),
  });
  assert.deepEqual(out, new Float32Array([0.1, -Infinity]));
  assert.throws(
    () =>
      tensorToFloat32({ dtype: "I32", shape: [0], bytes: new Uint8Array() }),
    TypeError,
  );
});

Deno.test("parseSafetensors() reads other dtypes as raw views", () => {
  const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const file = parseSafetensors(build(
    {
      __metadata__: { k: "v" },
      a: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
      b: { dtype: "U8", shape: [2, 1], data_offsets: [4, 6] },
    },
    data,
    3,
  ));
  const b: SafetensorsTensor = file.tensors.get("b")!;
  assert.deepEqual([...b.bytes], [5, 6]);
  assert.equal(b.bytes.buffer, file.tensors.get("a")!.bytes.buffer);
});

Deno.test("parseSafetensors() rejects corrupt files", () => {
  const good = serializeSafetensors({
    x: { shape: [2], data: new Float32Array([1, 2]) },
  });
  assert.throws(() => parseSafetensors(good.subarray(0, 5)), RangeError);
  assert.throws(() => parseSafetensors(good.subarray(0, 20)), {
    name: "RangeError",
    message: /header length/,
  });
  assert.throws(() => parseSafetensors(good.subarray(0, good.length - 1)), {
    name: "RangeError",
    message: /tensor "x"/,
  });
  const data = new Uint8Array(8);
  const cases: [unknown, RegExp][] = [
    [{ x: { dtype: "F32", shape: [2], data_offsets: [0, 12] } }, /"x"/],
    [{ x: { dtype: "F32", shape: [2], data_offsets: [4, 0] } }, /"x"/],
    [{ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, /12 bytes/],
    [{ x: { dtype: "F32", shape: [2], data_offsets: [0] } }, /data_offsets/],
    [{ y: { dtype: "X9", shape: [2], data_offsets: [0, 8] } }, /"X9".*"y"/],
    [{ y: { dtype: "F32", shape: [1.5], data_offsets: [0, 8] } }, /shape/],
    [{ __metadata__: { a: 1 } }, /"a"/],
    [[1, 2], /object/],
  ];
  for (const [header, message] of cases) {
    assert.throws(() => parseSafetensors(build(header, data)), { message });
  }
  const bad = build({}, data);
  bad[8] = 0x5b; // "[" makes the JSON invalid.
  assert.throws(() => parseSafetensors(bad), {
    name: "TypeError",
    message: /JSON/,
  });
});

Deno.test("parseSafetensors() refuses overlapping, shifted and gapped data_offsets", () => {
  const data = new Uint8Array(16);
  const f32 = (a: number, b: number) => ({
    dtype: "F32",
    shape: [(b - a) / 4],
    data_offsets: [a, b],
  });
  const cases: [Record<string, unknown>, RegExp][] = [
    // b starts inside a: the two share bytes 4..8
    [
      { a: f32(0, 8), b: f32(4, 12), c: f32(12, 16) },
      /"b".*begin at 8.*overlap/,
    ],
    // every tensor shifted by 4: the first leaves a gap at the start
    [{ a: f32(4, 12), b: f32(12, 16) }, /"a".*begin at 0.*gap/],
    // a hole between a and b
    [{ a: f32(0, 4), b: f32(8, 16) }, /"b".*begin at 4.*gap/],
    // both tensors read the same bytes
    [{ a: f32(0, 8), b: f32(0, 8) }, /"b".*overlap/],
    // the tensors stop short of the data buffer's end
    [{ a: f32(0, 8), b: f32(8, 12) }, /16 bytes.*end at 12/],
  ];
  for (const [header, message] of cases) {
    assert.throws(() => parseSafetensors(build(header, data)), {
      name: "RangeError",
      message,
    });
  }
  // the same tensors tiling the buffer in any header order parse
  const ok = parseSafetensors(build({ b: f32(8, 16), a: f32(0, 8) }, data));
  assert.deepEqual([...ok.tensors.keys()], ["b", "a"]);
});
