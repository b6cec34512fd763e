// COCO run-length encoding, byte-identical to pycocotools (maskApi.c rleEncode + rleToString).
// Runs are taken in column-major order (index = x·h + y), alternating and starting with zeros; each count is
// written in 5-bit groups (continuation bit 0x20, +48), from the 4th count on as the difference to the count two
// places earlier. Counts and characters go to reused module-level buffers: no per-pixel or per-run allocation.
import type { Rle } from '../../contracts/result.js';

/** A binary mask in row-major order (index = y·width + x), bytes 0 or 1 (other values are not allowed). */
export interface BinaryMask {
  data: Uint8Array;
  height: number;
  width: number;
}

let counts = new Uint32Array(1 << 12);
let chars = new Uint8Array(1 << 14);
let transX = new Uint32Array(1 << 12);
let transY = new Uint32Array(1 << 12);
let sortedIndex = new Uint32Array(1 << 12);
let perColumn = new Uint32Array(1 << 10);

function grow<T extends Uint8Array | Uint32Array>(buf: T, need: number): T {
  let n = buf.length;
  while (n < need) n *= 2;
  const grown = new (buf.constructor as new (n: number) => T)(n);
  grown.set(buf);
  return grown;
}

function pushTransition(k: number, x: number, y: number): void {
  if (k >= transX.length) {
    transX = grow(transX, k + 1);
    transY = grow(transY, k + 1);
  }
  transX[k] = x;
  transY[k] = y;
}

/**
 * Run lengths in column-major order, starting with a (possibly empty) run of zeros. Returns how many.
 * Strided column reads are slow, so transitions are found row by row (a pixel differs from the one above it,
 * or at the top of a column from the bottom of the previous column), comparing 16 pixels per branch where the
 * rows are word-aligned, then bucketed by column with a counting sort.
 */
function columnMajorRuns(data: Uint8Array, h: number, w: number): number {
  let k = 0;
  for (let x = 0; x < w; x++) {
    const above = x === 0 ? 0 : data[(h - 1) * w + x - 1];
    if (data[x] !== above) pushTransition(k++, x, 0);
  }
  const aligned = w % 4 === 0 && data.byteOffset % 4 === 0;
  // Int32 words (not Uint32: they stay small integers in optimised code); four words, 16 pixels, per branch
  const words = aligned ? new Int32Array(data.buffer, data.byteOffset, (h * w) >>> 2) : null;
  const wordsPerRow = w >>> 2;
  for (let y = 1; y < h; y++) {
    const row = y * w;
    if (!words) {
      for (let x = 0; x < w; x++) if (data[row + x] !== data[row - w + x]) pushTransition(k++, x, y);
      continue;
    }
    const a = row >>> 2;
    const b = a - wordsPerRow;
    for (let j = 0; j < wordsPerRow; j += 4) {
      if (j + 4 <= wordsPerRow) {
        const d = (words[a + j]! ^ words[b + j]!) | (words[a + j + 1]! ^ words[b + j + 1]!) |
          (words[a + j + 2]! ^ words[b + j + 2]!) | (words[a + j + 3]! ^ words[b + j + 3]!);
        if (d === 0) continue;
      }
      const x1 = Math.min(w, j * 4 + 16);
      for (let x = j * 4; x < x1; x++) if (data[row + x] !== data[row - w + x]) pushTransition(k++, x, y);
    }
  }
  // counting sort of the transitions by column (stable, so rows stay ascending within a column)
  if (perColumn.length < w + 1) perColumn = new Uint32Array(w + 1);
  perColumn.fill(0, 0, w + 1);
  for (let t = 0; t < k; t++) perColumn[transX[t]! + 1]!++;
  for (let x = 0; x < w; x++) perColumn[x + 1]! += perColumn[x]!;
  if (sortedIndex.length < k) sortedIndex = grow(sortedIndex, k);
  for (let t = 0; t < k; t++) sortedIndex[perColumn[transX[t]!]!++] = transX[t]! * h + transY[t]!;
  // after the sort pass perColumn is shifted; sortedIndex holds column-major indices in ascending order
  if (counts.length < k + 1) counts = grow(counts, k + 1);
  let prev = 0;
  for (let t = 0; t < k; t++) {
    counts[t] = sortedIndex[t]! - prev;
    prev = sortedIndex[t]!;
  }
  counts[k] = h * w - prev;
  return k + 1;
}

export function encodeRle(mask: BinaryMask): Rle {
  const { data, height: h, width: w } = mask;
  if (data.length !== h * w) throw new Error(`mask data has ${data.length} bytes, expected ${h}×${w}=${h * w}`);
  const m = columnMajorRuns(data, h, w);
  if (chars.length < m * 7) chars = grow(chars, m * 7); // ≤ 7 five-bit groups per 32-bit count
  let p = 0;
  for (let i = 0; i < m; i++) {
    let x = i > 2 ? counts[i]! - counts[i - 2]! : counts[i]!;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars[p++] = c + 48;
    }
  }
  return { size: [h, w], counts: Buffer.from(chars.buffer, chars.byteOffset, p).toString('latin1') };
}

/** Inverse of encodeRle (used by the overlay renderer and by tests). Returns a row-major 0/1 mask. */
export function decodeRle(rle: Rle): BinaryMask {
  const [h, w] = rle.size;
  const s = rle.counts;
  const data = new Uint8Array(h * w);
  const runs: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (runs.length > 2) x += runs[runs.length - 2]!;
    runs.push(x);
  }
  let pos = 0;
  for (let j = 0; j < runs.length; j++) {
    const n = runs[j]!;
    if (j % 2 === 1) {
      for (let q = pos; q < pos + n; q++) data[(q % h) * w + Math.floor(q / h)] = 1;
    }
    pos += n;
  }
  if (pos !== h * w) throw new Error(`RLE counts sum to ${pos}, expected ${h}×${w}=${h * w}`);
  return { data, height: h, width: w };
}

/** Number of foreground pixels. */
export function maskArea(mask: BinaryMask): number {
  let n = 0;
  const d = mask.data;
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) n++;
  return n;
}
