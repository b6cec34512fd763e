// Waits for jobs to reach a terminal status without polling: one subscriber connection per process
// listens on the terminal channel and wakes the local waiters of the published job id.
import type { Redis } from 'ioredis';

export class TerminalWaiter {
  private sub: Redis | null = null;
  private subscribed: Promise<unknown> | null = null;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
  ) {}

  private subscribe(): Promise<unknown> {
    if (!this.subscribed) {
      const sub = this.redis.duplicate();
      // Reconnects are automatic (and re-subscribe); the command connection already logs outages.
      sub.on('error', () => undefined);
      sub.on('message', (_channel: string, id: string) => {
        for (const wake of this.waiters.get(id) ?? []) wake();
      });
      this.sub = sub;
      this.subscribed = sub.subscribe(this.channel).catch((e: unknown) => {
        // Redis was unreachable: forget this attempt so the next wait subscribes again.
        sub.disconnect();
        this.sub = null;
        this.subscribed = null;
        throw e;
      });
    }
    return this.subscribed;
  }

  /**
   * Resolves when `id` is published or `ms` passed. `isDone` runs after the waiter is registered, so a
   * publish between the caller's last read and the subscription cannot be missed.
   */
  async wait(id: string, ms: number, isDone: () => Promise<boolean>): Promise<void> {
    await this.subscribe();
    await new Promise<void>((resolve) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const wake = (): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
      isDone().then((done) => done && wake(), wake);
    });
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    if (this.sub) this.sub.disconnect();
  }
}
