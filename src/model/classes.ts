/**
 * Class lookup by index or name: exact names first (case-insensitive), then a
 * unique substring; anything else fails listing the closest names.
 *
 * @module
 */

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(
        prev[j] + 1,
        prev[j - 1] + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = tmp;
    }
  }
  return prev[b.length];
}

/**
 * The names closest to `query` (by edit distance to the name or any word of it).
 *
 * @example
 * ```ts
 * import { closestClasses } from "./classes.ts";
 * console.log(closestClasses("dalmation", ["dalmatian", "tabby", "tiger cat"], 1)); // ["dalmatian"]
 * ```
 */
export function closestClasses(
  query: string,
  names: readonly string[],
  count = 5,
): string[] {
  const q = query.toLowerCase();
  const score = (name: string) => {
    const n = name.toLowerCase();
    return Math.min(
      distance(q, n),
      ...n.split(/[\s,-]+/).map((w) => distance(q, w) + 0.5),
    );
  };
  return names.map((n) => [score(n), n] as const).sort((a, b) => a[0] - b[0])
    .slice(0, count).map((x) => x[1]);
}

/**
 * The names a mistyped `query` most likely meant: those within a small edit
 * distance (a third of the query's length, at least 2; case-insensitive),
 * closest first — for "did you mean" hints. Empty when nothing is close.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { didYouMean } from "./classes.ts";
 * assert.deepEqual(didYouMean("--stpes", ["--steps", "--seed", "--lr"]), ["--steps"]);
 * assert.deepEqual(didYouMean("vit_b32", ["vit_b_16", "vit_b_32", "resnet50"]), ["vit_b_32"]);
 * assert.deepEqual(didYouMean("zzzz", ["vit_b_32"]), []);
 * ```
 */
export function didYouMean(
  query: string,
  names: readonly string[],
  count = 3,
): string[] {
  const q = query.toLowerCase();
  const limit = Math.max(2, Math.floor(q.length / 3));
  return names.map((n) => [distance(q, n.toLowerCase()), n] as const)
    .filter(([d]) => d <= limit).sort((a, b) => a[0] - b[0])
    .slice(0, count).map((x) => x[1]);
}

/**
 * Resolves a class given as an index ("207") or a name ("Dalmatian", "golden
 * retr"): exact name (case-insensitive), else a unique substring.
 *
 * @example
 * ```ts
 * import { resolveClass } from "./classes.ts";
 * const names = ["tench", "goldfish", "great white shark"];
 * console.log(resolveClass("GOLDFISH", names)); // 1
 * console.log(resolveClass("white", names)); // 2
 * console.log(resolveClass("0", names)); // 0
 * ```
 */
export function resolveClass(
  query: string | number,
  names: readonly string[] | null,
  count?: number,
): number {
  const total = names?.length ?? count ?? 0;
  const text = String(query).trim();
  if (/^\d+$/.test(text)) {
    const i = Number(text);
    if (i >= total) {
      throw new RangeError(
        `Invalid class index "${text}": expected 0..${total - 1}`,
      );
    }
    return i;
  }
  if (!names) {
    throw new TypeError(
      `Invalid class "${text}": this model has no class names; give an index 0..${
        total - 1
      }`,
    );
  }
  const q = text.toLowerCase();
  if (q === "") {
    throw new TypeError(`Invalid class "": expected an index or a name`);
  }
  const exact = names.findIndex((n) => n.toLowerCase() === q);
  if (exact >= 0) return exact;
  const matches = names.flatMap((
    n,
    i,
  ) => (n.toLowerCase().includes(q) ? [i] : []));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    const listed = matches.slice(0, 8).map((i) => `${i} "${names[i]}"`).join(
      ", ",
    );
    throw new TypeError(
      `Ambiguous class "${text}": matches ${matches.length} classes: ${listed}${
        matches.length > 8 ? ", …" : ""
      }`,
    );
  }
  const close = closestClasses(text, names).map((n) =>
    `${names.indexOf(n)} "${n}"`
  );
  throw new TypeError(
    `Unknown class "${text}": did you mean ${close.join(", ")}?`,
  );
}
