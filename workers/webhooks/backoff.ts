// Retry schedule of webhook deliveries: exponential from `baseMs`, capped at `maxMs`, with jitter in
// [50%, 100%] of that. The jitter is derived from the webhook id and the attempt number rather than
// Math.random, so the worker can tell the receiver's owner (on the job) when the next attempt is due and
// BullMQ computes the same delay. Defaults (30 s base, 2 h cap, 12 attempts) spread the 11 retries over 4–8 hours (ceilings sum to 8.1 h).
import { createHash } from 'node:crypto';
import type { BackoffStrategy } from 'bullmq';

export function webhookRetryDelay(webhookId: string, attemptsMade: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  const h = createHash('sha256').update(`${webhookId}:${attemptsMade}`).digest();
  const fraction = h.readUInt32BE(0) / 0xffffffff;
  return Math.round(ceiling * (0.5 + 0.5 * fraction));
}

export function webhookBackoffStrategy(baseMs: number, maxMs: number): BackoffStrategy {
  return (attemptsMade, _type, _err, job) => {
    const id = (job?.data as { webhook_id?: string } | undefined)?.webhook_id ?? String(job?.id);
    return webhookRetryDelay(id, attemptsMade, baseMs, maxMs);
  };
}
