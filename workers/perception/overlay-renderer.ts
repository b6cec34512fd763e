// Renders overlays in one long-lived worker thread (overlay-thread.ts), started by warmUp() or on first use.
import type { PerceptionResult } from '../../contracts/result.js';
import { RpcClient, startThread } from '../threads/rpc.js';
import type { OverlayApi } from './overlay-thread.js';

export class OverlayRenderer {
  private thread: RpcClient<OverlayApi> | null = null;

  private start(): RpcClient<OverlayApi> {
    const worker = startThread(new URL('./overlay-thread.js', import.meta.url));
    worker.unref();
    return new RpcClient<OverlayApi>(worker, {
      name: 'overlay',
      revive: (e) => new Error(`overlay: ${e.message}`),
      onFail: () => {
        this.thread = null; // the next render starts a fresh thread
      },
    });
  }

  /** Starts the thread now, so the first job does not wait for it to load. */
  warmUp(): void {
    this.thread ??= this.start();
  }

  render(image: Uint8Array, result: PerceptionResult): Promise<Buffer> {
    return (this.thread ??= this.start()).call('render', image, result).then((png) => Buffer.from(png));
  }

  async close(): Promise<void> {
    const t = this.thread;
    this.thread = null;
    if (t) await t.close();
  }
}
