/**
 * NumPy `.npy` files for float arrays, to hand tensors to and from Python
 * (`np.load` / `np.save`).
 *
 * @example Save an array for NumPy and read it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeNpy, encodeNpy } from "./npy.ts";
 *
 * const bytes = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const { data, shape } = decodeNpy(bytes);
 * assert.deepEqual(shape, [2, 3]);
 * assert.deepEqual([...data], [1, 2, 3, 4, 5, 6]);
 * ```
 *
 * @module
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkShape(shape: readonly number[]): number {
  if (!Array.isArray(shape)) {
    throw new TypeError(
      `Invalid shape "${shape}": expected an array of non-negative integers`,
    );
  }
  let size = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `Invalid shape "[${
          shape.join(", ")
        }]": dimension "${d}" is not a non-negative integer`,
      );
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) {
    throw new RangeError(
      `Invalid shape "[${shape.join(", ")}]": it has more than 2^53 elements`,
    );
  }
  return size;
}

/** Encodes a float32 array as a NumPy `.npy` file (format version 1.0, dtype
 * `'<f4'`, C order), byte for byte as `np.save` writes it: the header is
 * padded with spaces and a newline so the data starts at a multiple of 64.
 *
 * @param data The values, in C (row-major) order.
 * @param shape The dimensions; their product must equal `data.length`. An
 * empty shape is a scalar (one value).
 * @returns The file contents.
 * @throws {TypeError} If `data` is not a Float32Array or `shape` is not an
 * array.
 * @throws {RangeError} If a dimension is not a non-negative integer or the
 * shape does not match the data length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeNpy } from "./npy.ts";
 *
 * const bytes = encodeNpy(new Float32Array(6), [2, 3]);
 * assert.equal(bytes.length, 128 + 6 * 4); // np.load gives shape (2, 3)
 * ```
 */
export function encodeNpy(
  data: Float32Array,
  shape: readonly number[],
): Uint8Array {
  if (!(data instanceof Float32Array)) {
    throw new TypeError(
      `Invalid data "${
        Object.prototype.toString.call(data)
      }": expected a Float32Array`,
    );
  }
  const size = checkShape(shape);
  if (size !== data.length) {
    throw new RangeError(
      `Invalid shape "[${
        shape.join(", ")
      }]": it holds ${size} values but the data has ${data.length}`,
    );
  }
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, " ") + "\n";
  if (header.length > 0xffff) {
    throw new RangeError(
      `Invalid shape "[${
        shape.join(", ")
      }]": the header is longer than 65535 bytes (too many dimensions)`,
    );
  }
  const out = new Uint8Array(total + 4 * size);
  out.set(MAGIC);
  out[6] = 1; // Version 1.0.
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, 4 * size), total);
  } else {
    const view = new DataView(out.buffer, total);
    for (let i = 0; i < size; i++) view.setFloat32(4 * i, data[i], true);
  }
  return out;
}

/** Decodes a NumPy `.npy` file holding little-endian float32 (`'<f4'`) or
 * float64 (`'<f8'`) values in C order; float64 values are rounded to
 * float32. Format versions 1.0, 2.0 and 3.0 are accepted.
 *
 * @param bytes The file contents.
 * @returns The values in C (row-major) order, and the shape (`[]` for a
 * scalar).
 * @throws {TypeError} If the data is not a `.npy` file, is truncated, has
 * another dtype (convert with `arr.astype(np.float32)`), or is in Fortran
 * order (save `np.ascontiguousarray(arr)` instead).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeNpy, encodeNpy } from "./npy.ts";
 *
 * const { data, shape } = decodeNpy(encodeNpy(new Float32Array([0.5, 2]), [2, 1]));
 * assert.deepEqual([shape, [...data]], [[2, 1], [0.5, 2]]);
 * ```
 */
export function decodeNpy(
  bytes: Uint8Array,
): { data: Float32Array; shape: number[] } {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    const head = [...bytes.subarray(0, 6)]
      .map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new TypeError(
      `Invalid .npy signature "${head}": expected 93 4e 55 4d 50 59 ("\\x93NUMPY"; is this a .npy file?)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  if (major < 1 || major > 3) {
    throw new TypeError(
      `Unsupported .npy version "${major}.${
        bytes[7]
      }": expected 1.0, 2.0 or 3.0`,
    );
  }
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) {
    throw new TypeError(
      `Invalid .npy data (${bytes.length} bytes): it ends inside the header length (truncated file?)`,
    );
  }
  const headerLength = major === 1
    ? view.getUint16(8, true)
    : view.getUint32(8, true);
  const offset = start + headerLength;
  if (bytes.length < offset) {
    throw new TypeError(
      `Invalid .npy data (${bytes.length} bytes): it ends inside the ${headerLength}-byte header (truncated file?)`,
    );
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1")
    .decode(bytes.subarray(start, offset));
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)
    ?.[1];
  const dims = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || dims === undefined) {
    throw new TypeError(
      `Invalid .npy header "${header.trim()}": expected a dict with 'descr', 'fortran_order' and 'shape'`,
    );
  }
  if (descr !== "<f4" && descr !== "<f8") {
    throw new TypeError(
      `Unsupported .npy dtype "${descr}": expected '<f4' or '<f8' (little-endian float32 or float64; convert with arr.astype(np.float32))`,
    );
  }
  if (fortran === "True") {
    throw new TypeError(
      `Unsupported .npy layout "fortran_order: True": expected C order (save np.ascontiguousarray(arr) instead)`,
    );
  }
  const parts = dims.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.some((s) => !/^\d+L?$/.test(s))) {
    throw new TypeError(
      `Invalid .npy shape "(${dims})": expected a tuple of non-negative integers`,
    );
  }
  const shape = parts.map((s) => parseInt(s, 10));
  const size = checkShape(shape);
  const itemSize = descr === "<f4" ? 4 : 8;
  const expected = offset + itemSize * size;
  if (bytes.length !== expected) {
    throw new TypeError(
      `Invalid .npy data (${bytes.length} bytes): shape (${
        shape.join(", ")
      }) of ${descr} needs ${expected} bytes (${
        bytes.length < expected ? "truncated file?" : "trailing garbage?"
      })`,
    );
  }
  if (itemSize === 4 && LITTLE_ENDIAN) {
    const copy = bytes.slice(offset, expected);
    return { data: new Float32Array(copy.buffer), shape };
  }
  const data = new Float32Array(size);
  const at = bytes.byteOffset + offset;
  const values = new DataView(bytes.buffer, at, itemSize * size);
  for (let i = 0; i < size; i++) {
    data[i] = itemSize === 4
      ? values.getFloat32(4 * i, true)
      : values.getFloat64(8 * i, true);
  }
  return { data, shape };
}
