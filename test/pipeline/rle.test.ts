import { describe, expect, it } from 'vitest';
import { decodeRle, encodeRle, maskArea, type BinaryMask } from '../../workers/pipeline/rle.js';
import { runPython } from './python.js';

function fromRows(rows: number[][]): BinaryMask {
  const h = rows.length;
  const w = rows[0]!.length;
  return { data: Uint8Array.from(rows.flat()), height: h, width: w };
}

function rect(h: number, w: number, y0: number, y1: number, x0: number, x1: number): BinaryMask {
  const data = new Uint8Array(h * w);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { data, height: h, width: w };
}

/** Deterministic masks of several kinds: noise, blobs, stripes, empty, full, odd sizes. */
function randomMasks(): BinaryMask[] {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const masks: BinaryMask[] = [];
  const sizes: [number, number][] = [[1, 1], [1, 7], [7, 1], [3, 5], [9, 4], [50, 36], [17, 13], [64, 64], [97, 131], [240, 320], [480, 643], [33, 1028]];
  for (const [h, w] of sizes) {
    for (const kind of ['noise', 'blob', 'rows', 'empty', 'full'] as const) {
      const data = new Uint8Array(h * w);
      const cx = rand() * w, cy = rand() * h, r = (rand() * Math.max(h, w)) / 2;
      const density = rand();
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let v = 0;
          if (kind === 'noise') v = rand() < density ? 1 : 0;
          else if (kind === 'blob') v = (x - cx) ** 2 + (y - cy) ** 2 < r * r ? 1 : 0;
          else if (kind === 'rows') v = y % 3 === 0 ? 1 : 0;
          else if (kind === 'full') v = 1;
          data[y * w + x] = v;
        }
      }
      masks.push({ data, height: h, width: w });
    }
  }
  return masks;
}

describe('COCO RLE', () => {
  it('matches the golden vectors of the reference C implementation', () => {
    const small = fromRows([
      [0, 0, 0, 0, 0],
      [0, 1, 1, 1, 0],
      [0, 1, 1, 1, 0],
      [0, 0, 0, 0, 1],
    ]);
    expect(encodeRle(small)).toEqual({ size: [4, 5], counts: '5220002O' });
    const square = encodeRle(rect(100, 100, 20, 80, 20, 80));
    expect(square.counts).toBe('To1l1X1' + '0'.repeat(117) + 'lm1');
  });

  it('is byte-identical to pycocotools on random masks', () => {
    const masks = randomMasks();
    const payload = JSON.stringify(masks.map((m) => ({ h: m.height, w: m.width, b64: Buffer.from(m.data).toString('base64') })));
    const expected = JSON.parse(
      runPython(
        `import sys, json, base64, numpy as np
from pycocotools import mask as mu
out = []
for m in json.load(sys.stdin):
    a = np.frombuffer(base64.b64decode(m['b64']), dtype=np.uint8).reshape(m['h'], m['w'])
    r = mu.encode(np.asfortranarray(a))
    out.append({'size': [int(v) for v in r['size']], 'counts': r['counts'].decode('ascii'), 'area': int(mu.area(r))})
print(json.dumps(out))`,
        payload,
      ),
    ) as { size: [number, number]; counts: string; area: number }[];
    expect(expected).toHaveLength(masks.length);
    masks.forEach((m, i) => {
      const rle = encodeRle(m);
      expect(rle, `mask ${i} (${m.height}×${m.width})`).toEqual({ size: expected[i]!.size, counts: expected[i]!.counts });
      expect(maskArea(m)).toBe(expected[i]!.area);
    });
  });

  it('decodes what it encodes', () => {
    for (const m of randomMasks()) {
      const back = decodeRle(encodeRle(m));
      expect(back.height).toBe(m.height);
      expect(Buffer.from(back.data).equals(Buffer.from(m.data))).toBe(true);
    }
  });

  it('handles a mask that is not word-aligned in its buffer', () => {
    const base = rect(8, 8, 2, 6, 1, 5);
    const shifted = new Uint8Array(65);
    shifted.set(base.data, 1);
    expect(encodeRle({ data: shifted.subarray(1), height: 8, width: 8 })).toEqual(encodeRle(base));
  });
});
