// The webhook retry schedule: exponential, capped, jittered, and reproducible per webhook id and attempt
// (the worker tells users when the next attempt is due with the same function BullMQ uses).
import { describe, expect, it } from 'vitest';
import { loadQueueSettings } from '../../lib/queue/index.js';
import { webhookBackoffStrategy, webhookRetryDelay } from '../../workers/webhooks/backoff.js';

const { webhookBackoffBaseMs: base, webhookBackoffMaxMs: max } = loadQueueSettings({});
const HOUR = 3600_000;

describe('webhook backoff', () => {
  it('keeps every delay within 50–100% of its capped exponential ceiling', () => {
    for (const id of ['msg_a_job_succeeded', 'msg_b_job_started', 'msg_c_job_failed']) {
      for (let attempt = 1; attempt <= 11; attempt++) {
        const ceiling = Math.min(max, base * 2 ** (attempt - 1));
        const d = webhookRetryDelay(id, attempt, base, max);
        expect(d).toBeGreaterThanOrEqual(ceiling * 0.5);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('spreads the default 12 attempts over hours', () => {
    const totals = Array.from({ length: 50 }, (_, i) => {
      let t = 0;
      for (let attempt = 1; attempt <= 11; attempt++) t += webhookRetryDelay(`msg_${i}`, attempt, base, max);
      return t;
    });
    for (const t of totals) {
      expect(t).toBeGreaterThan(4 * HOUR);
      expect(t).toBeLessThanOrEqual(8.2 * HOUR);
    }
    expect(new Set(totals).size).toBeGreaterThan(45); // jitter: receivers are not hit in lockstep
  });

  it('is reproducible, and the BullMQ strategy computes the same delay from the job', () => {
    const strategy = webhookBackoffStrategy(base, max);
    const job = { id: 'x', data: { webhook_id: 'msg_z_job_succeeded' } };
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(strategy(attempt, 'webhook-jitter', undefined, job as never)).toBe(webhookRetryDelay('msg_z_job_succeeded', attempt, base, max));
    }
  });
});
