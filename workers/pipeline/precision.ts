// Which of a bundle's precisions the worker runs, and feeding fp16 graphs.
//
// fp16 graphs (model/BUNDLE.md, "precisions") take and return float16 where the graph declares float16 (its
// session metadata says which: the step graph's present.*.key stays float32). The pipeline builds its feeds in
// float32, so a graph with float16 inputs is wrapped to convert float32 feeds to float16 where it wants them.
// Outputs stay as the graph returns them: a tensor that goes from one graph to the next (the KV cache, the vision
// features) passes untouched, and code that reads values reads them through `floats` (float16 → float32 is exact).
import { Float16Array, getFloat16 } from '@petamoriken/float16';
import * as ort from 'onnxruntime-node';
import type { Manifest } from './manifest.js';
import type { Provider } from './sessions.js';

export type PrecisionName = 'fp32' | 'fp16';
/** `auto`: fp16 on CUDA when the bundle has fp16 graphs, else fp32. */
export type PrecisionChoice = 'auto' | PrecisionName;
export const PRECISION_CHOICES: readonly PrecisionChoice[] = ['auto', 'fp32', 'fp16'];

export function choosePrecision(manifest: Manifest, provider: Provider, choice: PrecisionChoice): PrecisionName {
  if (choice === 'auto') return provider === 'cuda' && manifest.precisions.fp16 ? 'fp16' : 'fp32';
  if (choice === 'fp16' && !manifest.precisions.fp16) {
    throw new Error(`the bundle ${manifest.name} has no fp16 graphs (export it with --fp16), but fp16 was asked for`);
  }
  return choice;
}

/** What the pipeline calls on a graph's session. */
export interface GraphSession {
  run(feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
}

/** float32 → float16 bits, round to nearest even (the library's conversion; ~10 ns per value here). */
export function toFloat16(values: Float32Array): Uint16Array {
  const half = new Float16Array(values);
  return new Uint16Array(half.buffer, half.byteOffset, half.length);
}

// float16 → float32 through a table of all 65,536 bit patterns, filled by the library's own conversion. For 2.7 M
// values on this project's 2-core CPU, reading through the library's Float16Array took 370-470 ms, the table 9-10 ms
// (57 ms on the first call, which builds it).
let table: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!table) {
    const view = new DataView(new ArrayBuffer(2));
    table = Float32Array.from({ length: 65536 }, (_, bits) => (view.setUint16(0, bits, true), getFloat16(view, 0, true)));
  }
  return table;
}

export function fromFloat16(bits: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/**
 * A tensor's values [from, to) as float32: a view of its own data when float32, converted (exactly) when
 * float16. Copy a float32 view before keeping it past the tensor's life.
 */
export function floats(t: ort.Tensor, from = 0, to = t.size): Float32Array {
  return t.type === 'float16' ? fromFloat16((t.data as Uint16Array).subarray(from, to)) : (t.data as Float32Array).subarray(from, to);
}

/** `session`, with float32 feeds converted to float16 where it declares float16 inputs (itself when it has none). */
export function feedingDeclaredTypes(session: ort.InferenceSession): GraphSession {
  const halfInputs = new Set(session.inputMetadata.filter((m) => m.isTensor && m.type === 'float16').map((m) => m.name));
  if (!halfInputs.size) return session;
  return {
    async run(feeds) {
      const converted: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        converted[name] = halfInputs.has(name) && t.type === 'float32' ? new ort.Tensor('float16', toFloat16(t.data as Float32Array), t.dims) : t;
      }
      return session.run(converted);
    },
    release: () => session.release(),
  };
}
