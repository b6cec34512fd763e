// Batch-axis moves on host tensors for dynamic batching: stack single items ([1,...] each) into one batch, take
// rows of a batch back out. Data stays in the tensor's own type (float32, or float16 from an fp16 graph).
import * as ort from 'onnxruntime-node';

type Data = Float32Array | Uint16Array | BigInt64Array | Uint8Array;

function alloc(like: Data, length: number): Data {
  return new (like.constructor as new (n: number) => Data)(length);
}

function tensor(type: ort.Tensor.Type, data: Data, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(type as 'float32', data as Float32Array, dims);
}

/** The items (same type, same dims after the first) concatenated along the first axis. */
export function stack(items: readonly ort.Tensor[]): ort.Tensor {
  const first = items[0];
  if (!first) throw new Error('stack: no tensors');
  if (items.length === 1) return first;
  const tail = first.dims.slice(1);
  const rows = items.reduce((n, t) => n + t.dims[0]!, 0);
  const out = alloc(first.data as Data, items.reduce((n, t) => n + t.size, 0));
  let offset = 0;
  for (const t of items) {
    if (t.type !== first.type || t.dims.length !== first.dims.length || t.dims.some((d, i) => i > 0 && d !== first.dims[i])) {
      throw new Error(`stack: ${t.type} [${t.dims}] does not stack with ${first.type} [${first.dims}]`);
    }
    out.set(t.data as never, offset);
    offset += t.size;
  }
  return tensor(first.type, out, [rows, ...tail]);
}

/** Rows `indices` of a batch tensor (first axis), in that order, as one tensor. */
export function pickRows(t: ort.Tensor, indices: readonly number[]): ort.Tensor {
  const width = t.size / t.dims[0]!;
  const src = t.data as Data;
  const out = alloc(src, indices.length * width);
  indices.forEach((r, i) => out.set(src.subarray(r * width, (r + 1) * width) as never, i * width));
  return tensor(t.type, out, [indices.length, ...t.dims.slice(1)]);
}

/** Each row of a batch tensor as its own [1,...] tensor (copies, so that a row outlives the batch). */
export function splitRows(t: ort.Tensor): ort.Tensor[] {
  if (t.dims[0] === 1) return [t];
  return Array.from({ length: t.dims[0]! }, (_, r) => pickRows(t, [r]));
}

/** A [rows, cols] int64 tensor from a function of (row, col). */
export function int64Grid(rows: number, cols: number, value: (r: number, c: number) => number): ort.Tensor {
  const data = new BigInt64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = BigInt(value(r, c));
  return new ort.Tensor('int64', data, [rows, cols]);
}

/** Float32 arrays end to end (the only one itself when there is one). */
export function concatFloats(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
