// workers/pipeline/numerics.ts against Math.exp: the table-based exp and the float32 sigmoid built on it, the
// logit band that decides sigmoid thresholds without computing them, and softmax.
import { describe, expect, it } from 'vitest';
import { exp, logitBand, sigmoid, softmaxRows } from '../../workers/pipeline/numerics.js';

describe('exp', () => {
  it('is within 18 ulps of Math.exp, and is Math.exp beyond ±40', () => {
    let worst = 0;
    for (let x = -40; x < 40; x += 0.0001373) worst = Math.max(worst, Math.abs(exp(x) - Math.exp(x)) / Math.exp(x));
    expect(worst).toBeLessThan(4e-15);
    for (const x of [-1e6, -88.7, -40, 40, 88.7, 709, 1e6, Infinity, -Infinity, NaN]) expect(exp(x)).toBe(Math.exp(x));
  });
});

describe('sigmoid', () => {
  it('equals fround(1 / (1 + Math.exp(-x))) on float32 inputs', () => {
    const mismatches: number[] = [];
    const check = (x: number) => {
      if (sigmoid(x) !== Math.fround(1 / (1 + Math.exp(-x)))) mismatches.push(x);
    };
    // every float32 in [-2, 2] at a stride, a wide range, and values beyond the table range
    const bits = new Uint32Array(1);
    const f = new Float32Array(bits.buffer);
    for (let u = 0; u < 0x40000000 + 0x800000; u += 331) {
      bits[0] = u;
      check(f[0]!);
      check(-f[0]!);
    }
    for (let x = -120; x <= 120; x += 0.001953125) check(Math.fround(x));
    for (const x of [-1e6, -88.7, -40, -39.99999, 39.99999, 40, 88.7, 1e6, Infinity, -Infinity, 0, -0]) check(x);
    expect(mismatches).toEqual([]);
  });
});

describe('logitBand', () => {
  it('decides sigmoid(x) ≥ p from x alone outside the band', () => {
    const wrong: string[] = [];
    for (const p of [0.5, 0.3, 0.9, 1e-7, 1 - 1e-7, 0, 1, 1.5, -0.5]) {
      const [below, above] = logitBand(p);
      for (let x = -30; x <= 30; x += 0.0009765625) {
        const v = Math.fround(x);
        if ((v < below && sigmoid(v) >= p) || (v > above && sigmoid(v) < p)) wrong.push(`p ${p} x ${v}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('softmaxRows', () => {
  it('is the float32 softmax of each row from Math.exp, the sum taken before rounding', () => {
    let s = 3;
    const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const rows = 40, cols = 17;
    const x = Float32Array.from({ length: (rows + 1) * cols }, () => 30 * (rand() - 0.5));
    const out = softmaxRows(x, rows, cols);
    expect(out.length).toBe(rows * cols);
    const expected = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
      const max = Math.max(...row);
      const sum = row.reduce((a, v) => a + Math.exp(v - max), 0);
      row.forEach((v, c) => (expected[r * cols + c] = Math.fround(Math.exp(v - max)) / sum));
    }
    expect(Buffer.from(out.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });
});
