// Assertions for the tests, from Deno's built-in node:assert (JSR's @std/assert is unreachable here).
import nodeAssert from "node:assert/strict";

/** Asserts a condition. */
export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg ?? "assertion failed");
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg ?? "values differ");
}

/** Asserts |actual − expected| ≤ tol. */
export function assertClose(
  actual: number,
  expected: number,
  tol: number,
  msg?: string,
): void {
  nodeAssert.ok(
    Math.abs(actual - expected) <= tol,
    `${msg ?? ""} expected ${expected} ± ${tol}, got ${actual}`,
  );
}

/** Asserts that fn throws (or rejects) an error of the class, whose message includes `includes`. */
export async function assertRejects(
  fn: () => unknown,
  cls: new (...a: never[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    nodeAssert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (includes) {
      nodeAssert.ok(
        (err as Error).message.includes(includes),
        `message "${(err as Error).message}" lacks "${includes}"`,
      );
    }
    return err as Error;
  }
  throw new nodeAssert.AssertionError({
    message: `expected ${cls.name} to be thrown`,
  });
}
