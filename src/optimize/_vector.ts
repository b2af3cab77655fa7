// Private numeric helpers of src/optimize/: distances, softmax, and the scans the guard uses.

/** ‖a − b‖₂. */
export function norm2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** softmax(logits)[i], computed stably. */
export function softmaxAt(logits: Float32Array, i: number): number {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let s = 0;
  for (const v of logits) s += Math.exp(v - m);
  return Math.exp(logits[i] - m) / s;
}

/** Index of the first NaN or ±Inf in `a`, or −1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/** Index of the first value with |v| > bound in `a`, or −1. */
export function firstBeyond(a: ArrayLike<number>, bound: number): number {
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]) > bound) return i;
  return -1;
}
