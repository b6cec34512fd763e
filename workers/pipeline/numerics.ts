// exp, sigmoid and softmax of post-processing, float32 where the PyTorch reference is float32 (rankings depend
// on it). test/pipeline/numerics.test.ts holds them to Math.exp.

// exp(x) = 2^(k/256) · e^r with k = round(256·x/ln 2) (by the 1.5·2^52 trick; Math.round is slow) and
// |r| ≤ ln 2/512: a table of 2^(j/256), 2^(k>>8) from a second table, e^r by a degree-4 polynomial (relative
// error < 1e-16, the order of Math.exp's own) — about twice as fast as Math.exp in V8. Beyond ±40, Math.exp.
const ROUND = 6755399441055744;
const LN2_256_HI = Math.fround(Math.LN2 / 256); // 24 bits: k·hi is exact for |k| < 2^29
const LN2_256_LO = Math.LN2 / 256 - LN2_256_HI;
const EXP2_FRACTION = Float64Array.from({ length: 256 }, (_, j) => 2 ** (j / 256));
const EXP2_INTEGER = Float64Array.from({ length: 129 }, (_, i) => 2 ** (i - 64));

export function exp(x: number): number {
  if (!(x > -40 && x < 40)) return Math.exp(x);
  const kd = (x * (256 / Math.LN2) + ROUND) - ROUND;
  const k = kd | 0;
  const r = (x - kd * LN2_256_HI) - kd * LN2_256_LO;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24))));
  return EXP2_FRACTION[k & 255]! * p * EXP2_INTEGER[(k >> 8) + 64]!;
}

/** float32 sigmoid, as torch.sigmoid on float32 (the same value as fround(1 / (1 + Math.exp(-x))), see exp). */
export function sigmoid(x: number): number {
  return Math.fround(1 / (1 + exp(-x)));
}

/**
 * [below, above]: a float32 sigmoid of a logit under `below` is < p, over `above` it is > p (a margin of 1e-6 in
 * probability, far more than float32 rounding); in between, or where p is out of (0, 1), compute it (NaN bounds
 * decide nothing).
 */
export function logitBand(p: number): [number, number] {
  const logit = (u: number) => Math.log(u / (1 - u));
  return [p - 1e-6 > 0 ? logit(p - 1e-6) : -Infinity, p + 1e-6 < 1 ? logit(p + 1e-6) : Infinity];
}

/** Row-wise softmax of the first `rows` rows of a [*, cols] matrix, in float32 (with Math.exp, unlike sigmoid). */
export function softmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[o + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += (out[o + c] = Math.exp(x[o + c]! - max));
    for (let c = 0; c < cols; c++) out[o + c]! /= sum;
  }
  return out;
}
