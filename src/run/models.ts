/**
 * Where a named model is found: `weights/NAME` under the repository root, a
 * model folder, or an http(s) URL — and the one spelling of a model that runs
 * record (`modelKey`), so that the same folder reached from two working
 * folders is the same model.
 *
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { didYouMean } from "../model/mod.ts";
import { ROOT, usage } from "./settings.ts";

/**
 * Whether `path` is a folder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDir } from "./models.ts";
 * assert.ok(isDir("tests/fixtures/tiny_vit") && !isDir("README.md"));
 * ```
 */
export function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The model folders under `weights/` of the repository (none when it is
 * served from a URL), sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { localModels } from "./models.ts";
 * const names = localModels();
 * assert.deepEqual(names, [...names].sort());
 * ```
 */
export function localModels(): string[] {
  if (ROOT.protocol !== "file:") return [];
  try {
    return [...Deno.readDirSync(fileURLToPath(new URL("weights/", ROOT)))]
      .filter((e) => e.isDirectory).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/**
 * A model as runs record it: a URL or a name as given, a folder made
 * absolute.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolve } from "node:path";
 * import { modelKey } from "./models.ts";
 * assert.ok(modelKey("vit_b_32") === "vit_b_32");
 * assert.ok(modelKey("./tests/fixtures/tiny_vit") === resolve("tests/fixtures/tiny_vit"));
 * assert.ok(modelKey("https://example.org/m") === "https://example.org/m");
 * ```
 */
export function modelKey(name: string): string {
  if (/^https?:\/\//.test(name)) return name;
  if (/[/\\]/.test(name) || name.startsWith(".") || isDir(name)) {
    return resolvePath(name);
  }
  return name;
}

/**
 * Where the model `name` is: an http(s) URL, a folder (made absolute), or a
 * name under weights/ (a TypeError suggesting the nearest names when there is
 * none; an empty name is a usage error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolve } from "node:path";
 * import { modelSource } from "./models.ts";
 * assert.ok(modelSource("tests/fixtures/tiny_vit") === resolve("tests/fixtures/tiny_vit"));
 * assert.throws(() => modelSource("no_such_model"), /Unknown model "no_such_model"/);
 * ```
 */
export function modelSource(name: string): string {
  if (name === "") {
    throw usage(
      new TypeError(`Invalid --model "": expected a name, a folder or a URL`),
    );
  }
  const key = modelKey(name);
  if (key !== name || /^https?:\/\//.test(name) || /[/\\]/.test(name)) {
    return key;
  }
  const url = new URL(`weights/${name}`, ROOT);
  if (url.protocol !== "file:") return url.href;
  const path = fileURLToPath(url);
  if (!isDir(path)) {
    const near = didYouMean(name, localModels());
    throw new TypeError(
      `Unknown model "${name}": ${
        near.length ? `did you mean ${near.join(", ")}? ` : ""
      }expected one of ${
        localModels().join(", ")
      } (folders under weights/), a model folder or an http(s) URL`,
    );
  }
  return path;
}
