// Entry point of the pipeline thread: owns the ORT sessions (onnxruntime-node's run() blocks its thread, so it
// must not be the main event loop) and answers the host's calls (thread-host.ts) one message at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError, serve, type SerializedError } from '../threads/rpc.js';
import { PipelineEngine, type EngineConfig, type EngineInfo } from './engine.js';
import type { PipelineLogger } from './types.js';

/** The engine methods the host calls. */
export type EngineApi = Pick<PipelineEngine, 'preprocess' | 'vision' | 'language' | 'perception' | 'postprocessInput' | 'rawOutputs' | 'release' | 'activeJobs'>;
/** Messages outside the calls: start-up and log lines. */
export type ThreadEvent =
  | { type: 'ready'; info: EngineInfo }
  | { type: 'fatal'; error: SerializedError }
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg?: string };

const port = parentPort!;

/** Log lines go to the host's logger (loggers do not cross threads). */
const logger: PipelineLogger = {
  info: (obj, msg) => port.postMessage({ type: 'log', level: 'info', obj, msg } satisfies ThreadEvent),
  warn: (obj, msg) => port.postMessage({ type: 'log', level: 'warn', obj, msg } satisfies ThreadEvent),
};

async function main(): Promise<void> {
  let engine: PipelineEngine;
  try {
    engine = await PipelineEngine.create({ ...(workerData as Omit<EngineConfig, 'logger'>), logger });
  } catch (err) {
    port.postMessage({ type: 'fatal', error: serializeError(err) } satisfies ThreadEvent);
    return;
  }
  // rawOutputs and postprocessInput share their buffers with the job state, so they are copied; the rest is moved
  serve<EngineApi>(engine, { copy: ['rawOutputs', 'postprocessInput'], close: () => engine.close() });
  port.postMessage({ type: 'ready', info: engine.info() } satisfies ThreadEvent);
}

void main();
