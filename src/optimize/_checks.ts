// Private option checks shared by invert and generate (one wording for both).
import { firstBeyond, firstNonFinite } from "./_vector.ts";
import type { Schedule } from "./transform.ts";

/** The options both procedures share, after defaults. */
export interface RunSettings {
  steps: number;
  lr: Schedule;
  sigma: Schedule;
  runawayBound: number;
  resume?: { image: Float32Array; step: number };
  /** The first step, when there is no resume image. */
  start?: number;
}

/** Fails on bad steps, schedules, bound or resume point, naming the value and what is valid. */
export function checkRun(o: RunSettings): void {
  if (!Number.isInteger(o.steps) || o.steps < 1) {
    throw new RangeError(
      `Invalid steps "${o.steps}": expected a positive integer`,
    );
  }
  for (const [name, s] of [["lr", o.lr], ["sigma", o.sigma]] as const) {
    if (
      !(s?.start >= 0 && s.end >= 0 && Number.isFinite(s.start) &&
        Number.isFinite(s.end))
    ) {
      throw new RangeError(
        `Invalid ${name} "${s?.start}:${s?.end}": expected non-negative finite numbers`,
      );
    }
  }
  if (!(o.runawayBound > 0)) {
    throw new RangeError(
      `Invalid runawayBound "${o.runawayBound}": expected a positive number (Infinity turns the check off)`,
    );
  }
  if (o.start !== undefined) checkStart("start", o.start, o.steps);
  if (o.resume) checkResume(o.resume, o.steps, o.runawayBound);
}

function checkStart(name: string, step: number, steps: number): void {
  if (!Number.isInteger(step) || step < 0 || step > steps) {
    throw new RangeError(
      `Invalid ${name} "${step}": expected an integer in 0..${steps}`,
    );
  }
}

function checkResume(
  r: { image: Float32Array; step: number },
  steps: number,
  bound: number,
): void {
  checkStart("resume step", r.step, steps);
  if (!(r.image instanceof Float32Array)) {
    throw new TypeError(
      `Invalid resume image "${r.image}": expected a Float32Array`,
    );
  }
  const i = firstNonFinite(r.image);
  const j = i >= 0 ? i : firstBeyond(r.image, bound);
  if (j >= 0) {
    throw new RangeError(
      `Invalid resume image value "${
        r.image[j]
      }" at index ${j}: expected finite numbers within ±${bound}`,
    );
  }
}
