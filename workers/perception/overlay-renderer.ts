// Renders overlays in one long-lived worker thread (overlay-thread.ts), started by warmUp() or on first use.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PerceptionResult } from '../../contracts/result.js';
import type { RenderReply, RenderRequest } from './overlay-thread.js';

export class OverlayRenderer {
  private thread: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (png: Buffer) => void; reject: (e: Error) => void }>();

  private start(): Worker {
    const here = fileURLToPath(import.meta.url);
    const fromSource = here.endsWith('.ts');
    const entry = path.join(path.dirname(here), fromSource ? 'overlay-thread.ts' : 'overlay-thread.js');
    // From TypeScript source (tsx, vitest) the thread registers tsx's loader before importing its entry.
    const thread = fromSource
      ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(pathToFileURL(entry).href)}); });`, { eval: true })
      : new Worker(entry);
    thread.on('message', (r: RenderReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (r.ok) p?.resolve(Buffer.from(r.png));
      else p?.reject(new Error(`overlay: ${r.error}`));
    });
    const fail = (err: Error): void => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.thread = null; // the next render starts a fresh thread
    };
    thread.on('error', (e) => fail(new Error(`overlay thread crashed: ${e.message}`)));
    thread.on('exit', (code) => fail(new Error(`overlay thread exited (code ${code})`)));
    thread.unref();
    return thread;
  }

  /** Starts the thread now, so the first job does not wait for it to load. */
  warmUp(): void {
    this.thread ??= this.start();
  }

  render(image: Uint8Array, result: PerceptionResult): Promise<Buffer> {
    const thread = (this.thread ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      thread.postMessage({ id, image, result } satisfies RenderRequest);
    });
  }

  async close(): Promise<void> {
    const t = this.thread;
    this.thread = null;
    if (t) await t.terminate();
  }
}
