// Entry point of the pipeline thread: owns the ORT sessions (onnxruntime-node's run() blocks its thread, so it
// must not be the main event loop) and answers the host's calls (thread-host.ts) one message at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { PipelineEngine, type EngineConfig } from './engine.js';
import { PipelineInputError, type PipelineLogger } from './types.js';

export type EngineMethod = 'preprocess' | 'vision' | 'language' | 'perception' | 'postprocess' | 'rawOutputs' | 'release' | 'activeJobs';
export interface CallMessage {
  id: number;
  method: EngineMethod;
  args: unknown[];
}
export type ReplyMessage =
  | { type: 'ready'; info: ReturnType<PipelineEngine['info']> }
  | { type: 'fatal'; error: SerializedError }
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg?: string }
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: SerializedError };
export interface SerializedError {
  name: string;
  message: string;
  pointer?: string;
  stack?: string;
}

const port = parentPort!;

function serialize(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, pointer: e instanceof PipelineInputError ? e.pointer : undefined, stack: e.stack };
}

/** Log lines go to the host's logger (loggers do not cross threads). */
const logger: PipelineLogger = {
  info: (obj, msg) => port.postMessage({ type: 'log', level: 'info', obj, msg } satisfies ReplyMessage),
  warn: (obj, msg) => port.postMessage({ type: 'log', level: 'warn', obj, msg } satisfies ReplyMessage),
};

/** Buffers of typed arrays in a result, moved instead of copied. */
function transferables(value: unknown): ArrayBuffer[] {
  if (!value || typeof value !== 'object') return [];
  if (ArrayBuffer.isView(value)) return [value.buffer as ArrayBuffer];
  return Object.values(value).flatMap(transferables);
}

async function main(): Promise<void> {
  let engine: PipelineEngine;
  try {
    engine = await PipelineEngine.create({ ...(workerData as Omit<EngineConfig, 'logger'>), logger });
  } catch (err) {
    port.postMessage({ type: 'fatal', error: serialize(err) } satisfies ReplyMessage);
    return;
  }
  port.on('message', async (msg: CallMessage | { type: 'close' }) => {
    if ('type' in msg) {
      await engine.close();
      port.close();
      return;
    }
    try {
      const fn = engine[msg.method] as (...a: unknown[]) => unknown;
      const result = await fn.apply(engine, msg.args);
      // rawOutputs shares its buffers with the job state, so it is copied; everything else is moved
      port.postMessage({ id: msg.id, ok: true, result } satisfies ReplyMessage, msg.method === 'rawOutputs' ? [] : transferables(result));
    } catch (err) {
      port.postMessage({ id: msg.id, ok: false, error: serialize(err) } satisfies ReplyMessage);
    }
  });
  port.postMessage({ type: 'ready', info: engine.info() } satisfies ReplyMessage);
}

void main();
