// Host side of the pipeline thread: starts thread.ts (workers/threads/rpc.ts) and proxies engine calls to it as
// promises once the bundle is loaded.
import type { Worker } from 'node:worker_threads';
import { RpcClient, startThread, type SerializedError } from '../threads/rpc.js';
import type { EngineConfig, EngineInfo } from './engine.js';
import type { EngineApi, ThreadEvent } from './thread.js';
import { PipelineInputError, type PipelineLogger } from './types.js';

function revive(e: SerializedError): Error {
  const err = e.name === 'PipelineInputError' ? new PipelineInputError(e.message, e.pointer) : new Error(e.message);
  if (err.name !== e.name) err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

export class EngineThread extends RpcClient<EngineApi> {
  private constructor(worker: Worker, readonly info: EngineInfo) {
    super(worker, { name: 'pipeline', revive });
  }

  /** Starts the thread; resolves once the bundle is loaded, the sessions exist and the warm-up ran. */
  static start(cfg: Omit<EngineConfig, 'logger'>, logger?: PipelineLogger): Promise<EngineThread> {
    const worker = startThread(new URL('./thread.js', import.meta.url), { workerData: cfg });
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: ThreadEvent | { id: number }) => {
        if (!('type' in msg)) return;
        if (msg.type === 'log') logger?.[msg.level](msg.obj, msg.msg);
        else if (msg.type === 'fatal') {
          void worker.terminate();
          reject(revive(msg.error));
        } else if (msg.type === 'ready') resolve(new EngineThread(worker, msg.info));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`pipeline thread exited during start (code ${code})`)));
    });
  }

  override close(): Promise<void> {
    return super.close(10_000);
  }
}
