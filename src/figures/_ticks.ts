/**
 * Internal axis scaling and tick placement of {@linkcode linePlot}: linear
 * and log10 ranges, "nice" tick values and their labels.
 *
 * @module
 */

export interface Scale {
  log: boolean;
  lo: number; // In log10 units when log.
  hi: number;
}

export function toUnits(v: number, log: boolean): number {
  return log ? Math.log10(v) : v;
}

export function validPoint(x: number, y: number, log: boolean): boolean {
  return Number.isFinite(x) && Number.isFinite(y) && (!log || y > 0);
}

/** Picks the range of the values (in axis units), padded by `pad` of it. */
export function autoScale(
  values: number[],
  log: boolean,
  pad: number,
  fixed?: readonly [number, number],
  name = "range",
): Scale {
  if (fixed) {
    const [a, b] = fixed;
    if (
      !Number.isFinite(a) || !Number.isFinite(b) || !(a < b) ||
      (log && !(a > 0))
    ) {
      throw new RangeError(
        `Invalid ${name} "[${fixed}]": expected finite [min, max] with min < max${
          log ? " and min > 0 (log axis)" : ""
        }`,
      );
    }
    return { log, lo: toUnits(a, log), hi: toUnits(b, log) };
  }
  const us = values.map((v) => toUnits(v, log));
  if (us.length === 0) return { log, lo: 0, hi: 1 };
  let lo = Infinity, hi = -Infinity;
  for (const u of us) [lo, hi] = [Math.min(lo, u), Math.max(hi, u)];
  if (hi - lo < 1e-12 * Math.max(Math.abs(lo), Math.abs(hi), 1e-300)) {
    const d = log ? 0.5 : Math.max(Math.abs(lo) * 0.1, 0.5);
    return { log, lo: lo - d, hi: hi + d };
  }
  const d = (hi - lo) * pad;
  return { log, lo: lo - d, hi: hi + d };
}

/** Formats a number with `decimals` digits after the point, or in
 * exponential notation for very large or small magnitudes. */
export function formatNumber(
  v: number,
  decimals: number,
  exponential: boolean,
) {
  let s: string;
  if (v === 0) s = exponential ? "0" : (0).toFixed(Math.max(decimals, 0));
  else if (exponential) {
    const [m, e] = v.toExponential(Math.max(decimals, 0)).split("e");
    s = `${m.replace(/\.?0+$/, "")}e${e.replace("+", "")}`;
  } else s = v.toFixed(Math.max(decimals, 0));
  return s.replaceAll("-", "−");
}

export interface Tick {
  value: number; // In axis units.
  label: string; // Empty for a minor tick.
}

export function linearTicks(lo: number, hi: number, target: number): Tick[] {
  const raw = (hi - lo) / Math.max(target, 1);
  const e = Math.floor(Math.log10(raw));
  const f = raw / 10 ** e;
  const m = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  const step = m * 10 ** e;
  const decimals = -Math.floor(Math.log10(step) + 1e-9);
  const big = Math.max(Math.abs(lo), Math.abs(hi));
  const exponential = big >= 1e6 || big < 1e-3;
  const digits = exponential
    ? Math.max(Math.floor(Math.log10(big)) - Math.floor(Math.log10(step)), 0)
    : decimals;
  const ticks: Tick[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    const value = k * step;
    ticks.push({ value, label: formatNumber(value, digits, exponential) });
  }
  return ticks;
}

export function formatPower(mantissa: number, e: number): string {
  if (e >= -4 && e <= 5) {
    return formatNumber(mantissa * 10 ** e, Math.max(-e, 0), false);
  }
  return `${mantissa}e${e}`.replaceAll("-", "−");
}

/** Ticks of a log axis: labelled powers of ten (every `stride`-th decade
 * when there are many), labelled 2× and 5× when under ~2.5 decades, and
 * unlabelled 2×–9× minor ticks when under ~8 decades. */
export function logTicks(lo: number, hi: number, target: number): Tick[] {
  const decades = hi - lo;
  const stride = Math.max(Math.ceil(decades / Math.max(target, 1)), 1);
  const ticks: Tick[] = [];
  const inside = (u: number) => u >= lo - 1e-9 && u <= hi + 1e-9;
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    if (e % stride === 0 && inside(e)) {
      ticks.push({ value: e, label: formatPower(1, e) });
    }
    if (decades > 8) continue;
    for (let m = 2; m <= 9; m++) {
      const u = e + Math.log10(m);
      if (!inside(u)) continue;
      const labelled = decades <= 2.5 && (m === 2 || m === 5);
      ticks.push({ value: u, label: labelled ? formatPower(m, e) : "" });
    }
  }
  // Too few labels (less than a decade): fall back to linear ticks.
  if (ticks.filter((t) => t.label).length < 2) {
    return linearTicks(10 ** lo, 10 ** hi, target).filter((t) => t.value > 0)
      .map((t) => ({ value: Math.log10(t.value), label: t.label }));
  }
  return ticks;
}

export function ticksFor(
  scale: Scale,
  pixels: number,
  spacing: number,
): Tick[] {
  const target = Math.max(Math.floor(pixels / spacing), 2);
  return scale.log
    ? logTicks(scale.lo, scale.hi, target)
    : linearTicks(scale.lo, scale.hi, target);
}

/** Makes sure a log axis labels at least one tick inside the data: a short
 * run whose values stay between two labelled ticks (2.05 to 4.9, say, with
 * labels at 2 and 5) would otherwise show no number for its own values. Then
 * the value nearest the data's geometric middle with the fewest significant
 * digits is added as a labelled tick. "Inside" allows 1% of the axis span
 * either side, so a single value (or a label a hair outside) counts. Linear
 * axes and axes that already label a value inside the data are returned
 * unchanged.
 *
 * @param ticks The axis' ticks (values in axis units).
 * @param data The data values on this axis (not in axis units).
 * @param scale The axis scale.
 * @returns `ticks`, or a copy with one more labelled tick.
 */
export function labelInside(
  ticks: Tick[],
  data: readonly number[],
  scale: Scale,
): Tick[] {
  if (!scale.log) return ticks;
  let lo = Infinity, hi = -Infinity;
  for (const v of data) {
    const u = toUnits(v, true);
    if (u >= scale.lo && u <= scale.hi) {
      [lo, hi] = [Math.min(lo, u), Math.max(hi, u)];
    }
  }
  if (!(lo <= hi)) return ticks;
  const tol = 0.01 * (scale.hi - scale.lo);
  const inside = (u: number) => u >= lo - tol && u <= hi + tol;
  if (ticks.some((t) => t.label && inside(t.value))) return ticks;
  const mid = 10 ** ((lo + hi) / 2);
  for (let digits = 1; digits <= 17; digits++) {
    const v = Number(mid.toPrecision(digits));
    if (!inside(Math.log10(v))) continue;
    const e = Math.floor(Math.log10(v));
    const exponential = e < -4 || e > 5;
    const decimals = exponential ? digits - 1 : Math.max(digits - 1 - e, 0);
    const label = formatNumber(v, decimals, exponential);
    return [...ticks, { value: Math.log10(v), label }];
  }
  return ticks;
}
