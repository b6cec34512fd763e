// Method calls to a worker_threads thread as promises: the host's RpcClient posts { id, method, args }, the
// thread's serve() runs the method and answers { id, ok, result | error }. Messages without an id are left
// to the caller (start-up and log messages, say).
import { fileURLToPath } from 'node:url';
import { parentPort, Worker, type WorkerOptions } from 'node:worker_threads';

/** An error as it crosses threads: name, message, stack and the error's own string fields (e.g. a pointer). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  [field: string]: string | undefined;
}

interface CallMessage {
  id: number;
  method: string;
  args: unknown[];
}
type ReplyMessage = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: SerializedError };
const CLOSE = { type: 'close' } as const;

type Args<F> = F extends (...a: infer A) => unknown ? A : never;
type Result<F> = F extends (...a: never[]) => infer R ? Awaited<R> : never;

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields = Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === 'string'));
  return { ...fields, name: e.name, message: e.message, stack: e.stack };
}

/**
 * A Worker running `entry`, a module URL ending in .js. Under tsx/vitest this module runs from TypeScript
 * source and so does the thread: a bootstrap registers tsx's loader in it before importing the .ts entry.
 */
export function startThread(entry: URL, options?: WorkerOptions): Worker {
  if (!fileURLToPath(import.meta.url).endsWith('.ts')) return new Worker(entry, options);
  const source = entry.href.replace(/\.js$/, '.ts');
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`, { ...options, eval: true });
}

/** Host side. Once the thread crashes or exits, pending and later calls reject. */
export class RpcClient<Api> {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;

  constructor(
    readonly worker: Worker,
    opts: { name: string; revive?: (e: SerializedError) => Error; onFail?: (err: Error) => void },
  ) {
    const revive = opts.revive ?? ((e) => Object.assign(new Error(e.message), { name: e.name, stack: e.stack }));
    worker.on('message', (msg: ReplyMessage | { id?: undefined }) => {
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.ok) p?.resolve(msg.result);
      else p?.reject(revive(msg.error));
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      opts.onFail?.(err);
    };
    worker.on('error', (err) => fail(new Error(`${opts.name} thread crashed: ${err.message}`)));
    worker.on('exit', (code) => fail(new Error(`${opts.name} thread exited (code ${code})`)));
  }

  call<K extends keyof Api & string>(method: K, ...args: Args<Api[K]>): Promise<Result<Api[K]>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args } satisfies CallMessage);
    });
  }

  /** Terminates the thread; with `graceMs`, first asks serve()'s `close` to finish and waits that long for the exit. */
  async close(graceMs = 0): Promise<void> {
    if (this.failure) return;
    if (graceMs > 0) {
      const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      this.worker.postMessage(CLOSE);
      await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
    }
    await this.worker.terminate();
  }
}

/**
 * Thread side: answers calls with `api`'s methods, each as its message arrives (async ones overlap). Typed
 * arrays in a result are moved, not copied, except for the methods in `copy` (whose results share buffers the
 * thread keeps). On the host's close(graceMs), runs `close` and closes the port.
 */
export function serve<Api extends object>(api: Api, opts: { copy?: readonly (keyof Api)[]; close?: () => Promise<void> } = {}): void {
  const port = parentPort!;
  port.on('message', async (msg: CallMessage | typeof CLOSE) => {
    if (!('id' in msg)) {
      await opts.close?.();
      port.close();
      return;
    }
    try {
      const fn = api[msg.method as keyof Api] as (...a: unknown[]) => unknown;
      const result = await fn.apply(api, msg.args);
      const moved = opts.copy?.includes(msg.method as keyof Api) ? [] : transferables(result);
      port.postMessage({ id: msg.id, ok: true, result } satisfies ReplyMessage, moved);
    } catch (err) {
      port.postMessage({ id: msg.id, ok: false, error: serializeError(err) } satisfies ReplyMessage);
    }
  });
}

/** Buffers of typed arrays in a value. */
function transferables(value: unknown): ArrayBuffer[] {
  if (!value || typeof value !== 'object') return [];
  if (ArrayBuffer.isView(value)) return [value.buffer as ArrayBuffer];
  return Object.values(value).flatMap(transferables);
}
