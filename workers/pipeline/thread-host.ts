// Host side of the pipeline thread: starts thread.ts in a worker_threads Worker (from compiled JS, or from the
// TypeScript source through tsx's loader under tsx/vitest) and proxies engine calls to it as promises.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EngineConfig, EngineInfo, PipelineEngine } from './engine.js';
import type { CallMessage, EngineMethod, ReplyMessage, SerializedError } from './thread.js';
import { PipelineInputError, type PipelineLogger } from './types.js';

type Method<K extends EngineMethod> = PipelineEngine[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never;

function revive(e: SerializedError): Error {
  const err = e.name === 'PipelineInputError' ? new PipelineInputError(e.message, e.pointer) : new Error(e.message);
  if (err.name !== e.name) err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

export class EngineThread {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exitError: Error | null = null;

  private constructor(private readonly worker: Worker, readonly info: EngineInfo) {
    worker.on('message', (msg: ReplyMessage) => {
      if (!('id' in msg)) return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.ok) p?.resolve(msg.result);
      else p?.reject(revive(msg.error));
    });
    const fail = (err: Error) => {
      this.exitError = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new Error(`pipeline thread crashed: ${err.message}`)));
    worker.on('exit', (code) => fail(new Error(`pipeline thread exited (code ${code})`)));
  }

  /** Starts the thread; resolves once the bundle is loaded, the sessions exist and the warm-up ran. */
  static start(cfg: Omit<EngineConfig, 'logger'>, logger?: PipelineLogger): Promise<EngineThread> {
    const here = fileURLToPath(import.meta.url);
    const fromSource = here.endsWith('.ts');
    const entry = path.join(path.dirname(here), fromSource ? 'thread.ts' : 'thread.js');
    // Under tsx/vitest the entry is TypeScript: a small bootstrap registers tsx's loader in the thread first.
    const worker = fromSource
      ? new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(pathToFileURL(entry).href)}); });`,
          { eval: true, workerData: cfg },
        )
      : new Worker(entry, { workerData: cfg });
    return new Promise((resolve, reject) => {
      const onMessage = (msg: ReplyMessage) => {
        if (!('type' in msg)) return;
        if (msg.type === 'log') logger?.[msg.level](msg.obj, msg.msg);
        else if (msg.type === 'fatal') {
          void worker.terminate();
          reject(revive(msg.error));
        } else if (msg.type === 'ready') resolve(new EngineThread(worker, msg.info));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`pipeline thread exited during start (code ${code})`)));
    });
  }

  call<K extends EngineMethod>(method: K, ...args: Parameters<Method<K>>): ReturnType<Method<K>> {
    if (this.exitError) return Promise.reject(this.exitError) as ReturnType<Method<K>>;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args } satisfies CallMessage);
    }) as ReturnType<Method<K>>;
  }

  async close(): Promise<void> {
    if (this.exitError) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    await this.worker.terminate();
  }
}
