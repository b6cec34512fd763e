// Webhook targets under a `host:port` allowlist (issue 14, item 9), through the real webhook queue and worker:
// the named port is delivered to, another port of the same host is refused without a connection, and the
// attempt's `error` (shown to the key's owner on the job view) names nothing but the URL the owner configured:
// no address a name resolved to.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { parseAllowlist } from '../../lib/net/ssrf.js';
import { startWebhookWorker } from '../../workers/webhooks/worker.js';
import { emptyResult as result, makePayload } from '../support/payloads.js';
import { openQueueEnv, type QueueEnv } from '../support/queue-env.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { until } from '../support/wait.js';

const secret = `whsec_${randomBytes(24).toString('base64')}`;
let q: QueueEnv;
let allowed: WebhookReceiver; // on the allowlisted port
let other: WebhookReceiver; // same host, another port
let closedPort: number; // allowlisted, nothing listening
let worker: ReturnType<typeof startWebhookWorker>;

const portOf = (r: WebhookReceiver): number => Number(new URL(r.origin).port);

beforeAll(async () => {
  q = openQueueEnv();
  allowed = new WebhookReceiver();
  other = new WebhookReceiver();
  await Promise.all([allowed.listen(), other.listen()]);
  closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  worker = startWebhookWorker({
    redis: q.redis,
    settings: q.settings,
    lifecycle: q.lifecycle,
    secretFor: (keyId) => (keyId === 'test-key' ? secret : undefined),
    // [::1] too, so "localhost" gets through the same way where it resolves to both loopback addresses.
    allowlist: parseAllowlist([`127.0.0.1:${portOf(allowed)}`, `[::1]:${portOf(allowed)}`, `127.0.0.1:${closedPort}`]),
    timeoutMs: 300,
    log: createLogger({ level: 'silent' }),
  });
  await worker.waitUntilReady();
});
afterAll(async () => {
  await worker.close();
  await Promise.all([allowed.close(), other.close()]);
  await q.close();
});


/** The first recorded attempt of a job that succeeded with a job.succeeded webhook to `url`. */
async function firstAttempt(url: string) {
  const p = makePayload({ webhook: { url, events: ['job.succeeded'] } });
  await q.submit(p);
  await q.lifecycle.markRunning(p.job_id, 'w');
  await q.lifecycle.markSucceeded(p.job_id, { resultKey: `jobs/${p.job_id}/result.json`, result: result(p.job_id), timings: {} });
  return until(`a webhook attempt on ${p.job_id}`, async () => (await q.jobs.get(p.job_id))?.webhook?.attempts?.[0] ?? null);
}

/** Any IPv4 or IPv6 address in a text (enough to catch "connect ECONNREFUSED 127.0.0.1:…" or a "::1"). */
const ADDRESS = /\b\d{1,3}(\.\d{1,3}){3}\b|::1\b|\[[0-9a-f:]+\]/i;

describe('webhooks under a host:port allowlist', () => {
  it('delivers over http to the allowlisted port', async () => {
    const url = allowed.script('/ok', [{ status: 204 }]);
    expect(await firstAttempt(url)).toMatchObject({ outcome: 'delivered', status_code: 204 });
    expect(allowed.on('/ok')).toHaveLength(1);
  });

  it('refuses another port of the same host, and a localhost name for it, without connecting', async () => {
    const a = await firstAttempt(other.script('/hook', [{ status: 200 }]));
    expect(a).toMatchObject({ outcome: 'refused', status_code: null, error: '127.0.0.1 is a loopback address, which is not allowed' });
    const b = await firstAttempt(`https://localhost:${portOf(other)}/hook`);
    expect(b).toMatchObject({ outcome: 'refused', status_code: null, error: 'localhost is a loopback address, which is not allowed' });
    expect(other.received).toEqual([]);
  });

  it('records network failures with the configured host and an error code, never a resolved address', async () => {
    const refused = await firstAttempt(`http://127.0.0.1:${closedPort}/hook`);
    expect(refused).toMatchObject({ outcome: 'failed', status_code: null, error: `127.0.0.1:${closedPort}: ECONNREFUSED` });
    // localhost is let through (127.0.0.1 is allowlisted on this port) and speaks no TLS: a TLS error, named by code.
    const tls = await firstAttempt(`https://localhost:${portOf(allowed)}/tls`);
    expect(tls).toMatchObject({ outcome: 'failed', status_code: null });
    expect(tls.error).toMatch(new RegExp(`^localhost:${portOf(allowed)}: [A-Z_]+$`));
    expect(tls.error).not.toMatch(ADDRESS);
  });
});
