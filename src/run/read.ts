/**
 * Reading a run's options record ({@linkcode RunOptions}: option names to
 * their text as given) into typed values, one option at a time: each bad
 * value is a usage error naming the option and quoting it, with what was
 * expected (`Invalid --steps "x": expected a positive integer …`).
 *
 * @module
 */
import { BACKEND_NAMES, type BackendName } from "../model/mod.ts";
import { parseSchedule, type Schedule } from "../optimize/mod.ts";
import { asUsage, LIMITS, type RunOptions, usage } from "./settings.ts";

type Raw = RunOptions;

/**
 * An option as a string (a repeated one joined by commas).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { str } from "./read.ts";
 * assert.equal(str({ class: ["1", "2"] }, "class"), "1,2");
 * ```
 */
export function str(raw: Raw, name: string): string {
  const v = raw[name];
  return Array.isArray(v) ? v.join(",") : String(v);
}

/**
 * A repeatable option's values (none when not given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { list } from "./read.ts";
 * assert.deepEqual(list({ swap: "a=b" }, "swap"), ["a=b"]);
 * assert.deepEqual(list({}, "swap"), []);
 * ```
 */
export function list(raw: Raw, name: string): string[] {
  const v = raw[name];
  if (v === undefined || v === false) return [];
  return Array.isArray(v) ? v : [String(v)];
}

/**
 * An integer option in `min`..`max` (a usage error naming the value and the range otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { intOpt } from "./read.ts";
 * assert.equal(intOpt({ seed: "3" }, "seed", 0), 3);
 * assert.throws(() => intOpt({ seed: "-1" }, "seed", 0), /Invalid --seed "-1"/);
 * ```
 */
export function intOpt(
  raw: Raw,
  name: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  const text = str(raw, name).trim();
  const v = Number(text);
  if (!/^\+?\d+$/.test(text) || !Number.isSafeInteger(v) || v < min) {
    throw usage(
      new RangeError(
        `Invalid --${name} "${str(raw, name)}": expected ${
          min === 0
            ? "a non-negative"
            : min === 1
            ? "a positive"
            : `an ≥ ${min}`
        } integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ""}`,
      ),
    );
  }
  if (v > max) {
    throw usage(
      new RangeError(
        `Invalid --${name} "${str(raw, name)}": expected at most ${max}`,
      ),
    );
  }
  return v;
}

/**
 * A step count option (`--steps`, `--save-every`, …) in `min`..{@linkcode LIMITS}.steps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stepsOpt } from "./read.ts";
 * assert.equal(stepsOpt({ steps: "300" }, "steps", 1), 300);
 * assert.throws(() => stepsOpt({ steps: "x" }, "steps", 1), /Invalid --steps "x"/);
 * ```
 */
export function stepsOpt(raw: Raw, name: string, min: number): number {
  return intOpt(raw, name, min, LIMITS.steps);
}

/**
 * `--threads` (undefined when not given): 1..{@linkcode LIMITS}.threads, four per logical core.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { threadsOpt } from "./read.ts";
 * assert.equal(threadsOpt({}), undefined);
 * assert.equal(threadsOpt({ threads: "2" }), 2);
 * ```
 */
export function threadsOpt(raw: Raw): number | undefined {
  if (raw.threads === undefined) return undefined;
  const text = str(raw, "threads").trim();
  if (/^\+?\d+$/.test(text) && Number(text) > LIMITS.threads) {
    throw usage(
      new RangeError(
        `Invalid --threads "${text}": expected at most ${LIMITS.threads} (four per logical core of this machine)`,
      ),
    );
  }
  return intOpt(raw, "threads", 1);
}

/**
 * A finite number option (a usage error naming the value otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numOpt } from "./read.ts";
 * assert.equal(numOpt({ constant: "-2.5" }, "constant"), -2.5);
 * assert.throws(() => numOpt({ constant: "x" }, "constant"), /finite number/);
 * ```
 */
export function numOpt(raw: Raw, name: string): number {
  const text = str(raw, name).trim();
  const v = Number(text);
  if (text === "" || !Number.isFinite(v)) {
    throw usage(
      new RangeError(
        `Invalid --${name} "${str(raw, name)}": expected a finite number`,
      ),
    );
  }
  return v;
}

/**
 * A START:END schedule option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { schedOpt } from "./read.ts";
 * assert.deepEqual(schedOpt({ lr: "2:0" }, "lr"), { start: 2, end: 0 });
 * ```
 */
export function schedOpt(raw: Raw, name: string): Schedule {
  return asUsage(() => parseSchedule(str(raw, name), name));
}

/**
 * `--loss`: l1 or l2.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossOpt } from "./read.ts";
 * assert.equal(lossOpt({ loss: "l1" }), "l1");
 * assert.throws(() => lossOpt({ loss: "l3" }), /Invalid --loss "l3"/);
 * ```
 */
export function lossOpt(raw: Raw): "l1" | "l2" {
  const loss = str(raw, "loss");
  if (loss !== "l1" && loss !== "l2") {
    throw usage(
      new TypeError(`Invalid --loss "${loss}": expected l1 or l2`),
    );
  }
  return loss;
}

/**
 * `--kernel-size`: an odd positive integer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelOpt } from "./read.ts";
 * assert.equal(kernelOpt({ "kernel-size": "3" }), 3);
 * assert.throws(() => kernelOpt({ "kernel-size": "4" }), /odd positive/);
 * ```
 */
export function kernelOpt(raw: Raw): number {
  const k = intOpt(raw, "kernel-size", 1);
  if (k % 2 === 0) {
    throw usage(
      new RangeError(
        `Invalid --kernel-size "${k}": expected an odd positive integer`,
      ),
    );
  }
  return k;
}

/**
 * The settings invert and generate share: schedules, blur kernel, normalization, seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scheduleSettings } from "./read.ts";
 * const s = scheduleSettings({ lr: "2:0", sigma: "1:0", "kernel-size": "1", seed: "0" });
 * assert.equal(s.kernelSize, 1);
 * assert.equal(s.normalize, true);
 * ```
 */
export function scheduleSettings(raw: Raw): {
  lr: Schedule;
  sigma: Schedule;
  kernelSize: number;
  normalize: boolean;
  seed: number;
} {
  return {
    lr: schedOpt(raw, "lr"),
    sigma: schedOpt(raw, "sigma"),
    kernelSize: kernelOpt(raw),
    normalize: raw.normalize !== false,
    seed: intOpt(raw, "seed", 0),
  };
}

/**
 * `--backend`: one of the backend names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backendOpt } from "./read.ts";
 * assert.equal(backendOpt({ backend: "native" }), "native");
 * assert.throws(() => backendOpt({ backend: "x" }), /Invalid --backend "x"/);
 * ```
 */
export function backendOpt(raw: Raw): BackendName {
  const b = str(raw, "backend") as BackendName;
  if (!BACKEND_NAMES.includes(b)) {
    throw usage(
      new TypeError(
        `Invalid --backend "${b}": expected one of ${BACKEND_NAMES.join(", ")}`,
      ),
    );
  }
  return b;
}

/**
 * Control options shared by invert and generate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { controlOpts } from "./read.ts";
 * const c = controlOpts({ "trace-every": "5", "save-every": "0" });
 * assert.deepEqual(c, { traceEvery: 5, saveEvery: 0, stopAt: null, quiet: false });
 * ```
 */
export function controlOpts(raw: Raw): {
  traceEvery: number;
  saveEvery: number;
  stopAt: number | null;
  quiet: boolean;
} {
  return {
    traceEvery: stepsOpt(raw, "trace-every", 1),
    saveEvery: stepsOpt(raw, "save-every", 0),
    stopAt: raw["stop-at"] === undefined ? null : stepsOpt(raw, "stop-at", 1),
    quiet: raw.quiet === true,
  };
}
