/**
 * Field checks for JSON read from a file: each names the file and the field
 * path (`graphs["stem.fwd"].file`) in its error.
 *
 * @module
 */

/** A JSON object as parsed. */
export type Json = Record<string, unknown>;

function show(v: unknown): string {
  const s = typeof v === "string" ? `"${v}"` : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "…" : s;
}

/** `a.b` or `a["b.c"]`: the path of a key under `path`. */
export function keyPath(path: string, key: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key);
  if (path === "") return plain ? key : `[${JSON.stringify(key)}]`;
  return plain ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Checks values of one file; every error starts with the file's name. */
export class Checker {
  /** The file (path or URL) the values come from. */
  readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  /** Throws `FILE: FIELD PROBLEM` as a TypeError. */
  fail(path: string, problem: string): never {
    const label = /[.[]/.test(path) ? path : `"${path}"`;
    throw new TypeError(`${this.file}: ${label} ${problem}`);
  }

  /** Throws "must be WHAT, got VALUE" (or "is missing"). */
  expect(path: string, what: string, got: unknown): never {
    if (got === undefined) this.fail(path, `is missing: expected ${what}`);
    this.fail(path, `must be ${what}, got ${show(got)}`);
  }

  object(v: unknown, path: string): Json {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.expect(path, "an object", v);
    }
    return v as Json;
  }

  array(v: unknown, path: string, what = "an array"): unknown[] {
    if (!Array.isArray(v)) this.expect(path, what, v);
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== "string" || v === "") {
      this.expect(path, "a non-empty string", v);
    }
    return v;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== "boolean") this.expect(path, "true or false", v);
    return v;
  }

  number(v: unknown, path: string): number {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.expect(path, "a finite number", v);
    }
    return v;
  }

  /** An integer ≥ min (0 or 1). */
  integer(v: unknown, path: string, min: 0 | 1): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      this.expect(
        path,
        min === 1 ? "a positive integer" : "a non-negative integer",
        v,
      );
    }
    return v;
  }

  /** One of the given strings. */
  oneOf<T extends string>(v: unknown, path: string, options: readonly T[]): T {
    if (!options.includes(v as T)) {
      this.expect(path, `one of ${options.join(", ")}`, v);
    }
    return v as T;
  }

  strings(v: unknown, path: string): string[] {
    const a = this.array(v, path, "an array of strings");
    a.forEach((s, i) => this.string(s, `${path}[${i}]`));
    return a as string[];
  }

  /** A tensor shape: non-negative integers. */
  shape(v: unknown, path: string): number[] {
    const a = this.array(v, path, "a shape (an array of integers)");
    a.forEach((d, i) => this.integer(d, `${path}[${i}]`, 0));
    return a as number[];
  }

  /** `count` finite numbers. */
  numbers(v: unknown, path: string, count: number): number[] {
    const a = this.array(v, path, `an array of ${count} numbers`);
    if (a.length !== count) {
      this.expect(path, `an array of ${count} numbers`, v);
    }
    a.forEach((d, i) => this.number(d, `${path}[${i}]`));
    return a as number[];
  }

  /** An object whose every value passes `each`. */
  record<T>(
    v: unknown,
    path: string,
    each: (value: unknown, path: string, key: string) => T,
  ): Record<string, T> {
    const o = this.object(v, path);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(o)) {
      out[k] = each(x, keyPath(path, k), k);
    }
    return out;
  }
}
