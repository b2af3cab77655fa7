/**
 * Reading and writing the
 * {@link https://github.com/huggingface/safetensors | safetensors} format.
 *
 * A file is an 8-byte little-endian header length `N`, then `N` bytes of JSON
 * header, then the data buffer. The header maps each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the start
 * of the data buffer) and may hold a `"__metadata__"` string-to-string map.
 *
 * @example Round-trip a tensor
 * ```ts
 * import { parseSafetensors, serializeSafetensors, tensorToFloat32 } from "./safetensors.ts";
 *
 * const bytes = serializeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
 * const file = parseSafetensors(bytes);
 * tensorToFloat32(file.tensors.get("w")!); // Float32Array [1, 2]
 * ```
 *
 * @module
 */

/** The dtype and shape of a tensor stored in a safetensors file.
 *
 * @example
 * ```ts
 * import type { TensorInfo } from "./safetensors.ts";
 *
 * const info: TensorInfo = { dtype: "F32", shape: [3, 4] };
 * ```
 */
export interface TensorInfo {
  /** The safetensors dtype name, such as `"F32"`, `"F16"` or `"BF16"`. */
  dtype: string;
  /** The tensor dimensions; `[]` for a scalar. */
  shape: number[];
}

/** A tensor of a parsed safetensors file.
 *
 * @example
 * ```ts
 * import type { SafetensorsTensor } from "./safetensors.ts";
 *
 * const t: SafetensorsTensor = { dtype: "U8", shape: [2], bytes: new Uint8Array([1, 2]) };
 * ```
 */
export interface SafetensorsTensor extends TensorInfo {
  /** The raw little-endian bytes: a view into the parsed file, not a copy. */
  bytes: Uint8Array;
}

/** A parsed safetensors file.
 *
 * @example
 * ```ts
 * import { parseSafetensors, type SafetensorsFile, serializeSafetensors } from "./safetensors.ts";
 *
 * const file: SafetensorsFile = parseSafetensors(serializeSafetensors({}, { a: "b" }));
 * file.metadata.a; // "b"
 * ```
 */
export interface SafetensorsFile {
  /** The `"__metadata__"` entry of the header, or `{}` if absent. */
  metadata: Record<string, string>;
  /** The tensors, in header order (integer-like names first, as in
   * `JSON.parse`). */
  tensors: Map<string, SafetensorsTensor>;
}

/** A float32 tensor to serialize.
 *
 * @example
 * ```ts
 * import type { Float32Tensor } from "./safetensors.ts";
 *
 * const t: Float32Tensor = { shape: [2, 2], data: new Float32Array(4) };
 * ```
 */
export interface Float32Tensor {
  /** The tensor dimensions; their product must equal `data.length`. */
  shape: number[];
  /** The values, in row-major order. */
  data: Float32Array;
}

const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkShape(name: string, shape: unknown): number {
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new TypeError(
      `Invalid shape ${
        JSON.stringify(shape)
      } for tensor "${name}": expected an array of non-negative integers`,
    );
  }
  return shape.reduce((a: number, b: number) => a * b, 1);
}

/** The dtype, shape and data offsets of one header entry, checked. */
function checkEntry(
  name: string,
  entry: unknown,
  dataLength: number,
): { dtype: string; shape: number[]; begin: number; end: number } {
  const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<
    string,
    unknown
  >;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_SIZES, dtype)) {
    throw new TypeError(
      `Invalid dtype "${dtype}" for tensor "${name}": expected one of ${
        Object.keys(DTYPE_SIZES).join(", ")
      }`,
    );
  }
  const size = DTYPE_SIZES[dtype];
  const numel = checkShape(name, shape);
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new TypeError(
      `Invalid data_offsets ${
        JSON.stringify(offsets)
      } for tensor "${name}": expected [begin, end] non-negative integers`,
    );
  }
  const [begin, end] = offsets;
  if (begin > end || end > dataLength) {
    throw new RangeError(
      `Invalid data_offsets [${begin}, ${end}] for tensor "${name}": expected 0 <= begin <= end <= ${dataLength} (data buffer size)`,
    );
  }
  if (end - begin !== numel * size) {
    throw new RangeError(
      `Invalid data_offsets [${begin}, ${end}] for tensor "${name}": expected ${
        numel * size
      } bytes for ${dtype} of shape [${shape}]`,
    );
  }
  return { dtype, shape: shape as number[], begin, end };
}

/** Parses a safetensors file. Tensor bytes are views into `bytes`.
 *
 * @param bytes The whole file.
 * @returns The metadata and the tensors, in header order.
 * @throws {RangeError} If the header or a tensor's data lies outside the file,
 * a tensor's byte size disagrees with its dtype and shape, or the tensors do
 * not tile the data buffer (overlapping, shifted or with gaps).
 * @throws {TypeError} If the header is not valid JSON or has a bad entry.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 *
 * const file = parseSafetensors(serializeSafetensors({ b: { shape: [1], data: new Float32Array([0.5]) } }));
 * file.tensors.get("b")?.shape; // [1]
 * ```
 */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) {
    throw new RangeError(
      `Invalid safetensors file of ${bytes.length} bytes: expected at least 8 bytes for the header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(bytes.length - 8, MAX_HEADER_BYTES))) {
    throw new RangeError(
      `Invalid safetensors header length "${n}": expected at most ${
        Math.min(bytes.length - 8, MAX_HEADER_BYTES)
      } (file has ${bytes.length} bytes)`,
    );
  }
  const dataStart = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(8, dataStart),
      ),
    );
  } catch (e) {
    throw new TypeError(
      `Invalid safetensors header: expected UTF-8 JSON (${
        e instanceof Error ? e.message : e
      })`,
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new TypeError(
      `Invalid safetensors header ${
        JSON.stringify(header)
      }: expected a JSON object`,
    );
  }
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        throw new TypeError(
          `Invalid "__metadata__" ${
            JSON.stringify(entry)
          }: expected an object of strings`,
        );
      }
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") {
          throw new TypeError(
            `Invalid metadata value ${
              JSON.stringify(v)
            } for key "${k}": expected a string`,
          );
        }
        metadata[k] = v;
      }
      continue;
    }
    const { dtype, shape, begin, end } = checkEntry(name, entry, dataLength);
    tensors.set(name, {
      dtype,
      shape: [...shape],
      bytes: bytes.subarray(dataStart + begin, dataStart + end),
    });
    spans.push({ name, begin, end });
  }
  checkLayout(spans, dataLength);
  return { metadata, tensors };
}

/**
 * The tensors must tile the data buffer: sorted by offset, each begins where
 * the previous ends, from 0 to the buffer's end (as the reference
 * implementation requires), so no two overlap and none is shifted.
 */
function checkLayout(
  spans: { name: string; begin: number; end: number }[],
  dataLength: number,
): void {
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = "";
  for (const { name, begin, end } of spans) {
    if (begin !== at) {
      throw new RangeError(
        `Invalid data_offsets [${begin}, ${end}] for tensor "${name}": expected it to begin at ${at}, ${
          prev ? `where tensor "${prev}" ends` : "the start of the data buffer"
        } (${begin < at ? "the tensors overlap" : "a gap before it"})`,
      );
    }
    at = end;
    prev = name;
  }
  if (at !== dataLength) {
    throw new RangeError(
      `Invalid safetensors data buffer of ${dataLength} bytes: the tensors end at ${at}: expected them to cover it exactly`,
    );
  }
}

/** Converts an IEEE 754 half-precision bit pattern to a number.
 *
 * @param h The 16-bit pattern.
 * @returns The value it encodes.
 *
 * @example
 * ```ts
 * import { f16ToNumber } from "./safetensors.ts";
 *
 * f16ToNumber(0x3c00); // 1
 * ```
 */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes a floating-point tensor to a new (aligned) `Float32Array`.
 *
 * @param entry A tensor of dtype F32, F16, BF16 or F64.
 * @returns The values, converted to float32.
 * @throws {TypeError} If the dtype is not a supported float type.
 * @throws {RangeError} If the byte length is not a multiple of the dtype size.
 *
 * @example
 * ```ts
 * import { tensorToFloat32 } from "./safetensors.ts";
 *
 * tensorToFloat32({ dtype: "BF16", shape: [1], bytes: new Uint8Array([0x80, 0x3f]) }); // [1]
 * ```
 */
export function tensorToFloat32(entry: SafetensorsTensor): Float32Array {
  const { dtype, bytes } = entry;
  const size = dtype === "F64" ? 8 : dtype === "F32" ? 4 : 2;
  if (!["F32", "F16", "BF16", "F64"].includes(dtype)) {
    throw new TypeError(
      `Unsupported dtype "${dtype}": expected one of F32, F16, BF16, F64`,
    );
  }
  if (bytes.length % size !== 0) {
    throw new RangeError(
      `Invalid byte length "${bytes.length}" for ${dtype}: expected a multiple of ${size}`,
    );
  }
  const n = bytes.length / size;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F32") {
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
    else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === "F64") {
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
  } else if (dtype === "F16") {
    for (let i = 0; i < n; i++) {
      out[i] = f16ToNumber(view.getUint16(2 * i, true));
    }
  } else {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  }
  return out;
}

/** Serializes float32 tensors to the safetensors format.
 *
 * Tensors are stored as F32 in the given key order; the JSON header is padded
 * with spaces to a multiple of 8 bytes, as the reference implementation does.
 *
 * @param tensors The tensors, by name.
 * @param metadata Optional string-to-string metadata (`"__metadata__"`).
 * @returns The file bytes.
 * @throws {TypeError} If a name is `"__metadata__"` or a shape is malformed.
 * @throws {RangeError} If a shape does not match its data length.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors.ts";
 *
 * const bytes = serializeSafetensors({ w: { shape: [2, 1], data: new Float32Array([1, 2]) } }, { format: "pt" });
 * ```
 */
export function serializeSafetensors(
  tensors: Record<string, Float32Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(
          `Invalid metadata value ${
            JSON.stringify(v)
          } for key "${k}": expected a string`,
        );
      }
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, { shape, data }] of entries) {
    if (name === "__metadata__") {
      throw new TypeError(
        `Invalid tensor name "${name}": it is reserved for metadata`,
      );
    }
    const numel = checkShape(name, shape);
    if (numel !== data.length) {
      throw new RangeError(
        `Invalid shape [${shape}] for tensor "${name}": expected ${data.length} elements to match the data`,
      );
    }
    header[name] = {
      dtype: "F32",
      shape,
      data_offsets: [offset, offset + 4 * numel],
    };
    offset += 4 * numel;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const [, { data }] of entries) {
    if (LITTLE_ENDIAN) {
      out.set(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        pos,
      );
    } else {
      for (let i = 0; i < data.length; i++) {
        view.setFloat32(pos + 4 * i, data[i], true);
      }
    }
    pos += data.byteLength;
  }
  return out;
}
