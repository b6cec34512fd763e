// infra/ runs Redis as MemoryDB, which is always cluster-mode Redis: multi-key commands and scripts must
// keep their keys in one hash slot. The stack therefore sets QUEUE_PREFIX={mvp} (one hash tag for every
// key) on a single-shard cluster whose one node owns all slots, reached by the standalone ioredis client.
// This runs that setup for real: a cluster-enabled redis-server owning every slot, the gateway (as a Lambda)
// accepting a job, an in-process perception worker finishing it, and the queue-depth publisher reading it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { loadQueueSettings, type QueueSettings } from '../../lib/queue/index.js';
import { CLUSTER_QUEUE_PREFIX } from '../../infra/lib/stack.js';
import { createLambdaGateway } from '../../src/lambda.js';
import { collectQueueMetrics } from '../../src/queue-metrics-lambda.js';
import { startPerceptionWorker } from '../../workers/perception/worker.js';
import { openHarness, png, KEYS, WORDS, type Harness } from '../gateway/harness.js';
import { createPipeline } from '../support/test-pipeline.js';
import { until } from '../support/wait.js';
import { makePayload } from '../support/payloads.js';
import { openQueueEnv } from '../support/queue-env.js';

let server: ChildProcess;
let dir: string;
let url: string;
let h: Harness;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
}

beforeAll(async () => {
  const port = await freePort();
  dir = mkdtempSync(path.join(os.tmpdir(), 'mvp-cluster-'));
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
    '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '', '--dir', dir], { stdio: 'ignore' });
  url = `redis://127.0.0.1:${port}`;
  for (let i = 0; !(await reachable(port)); i++) {
    if (i > 100) throw new Error(`cluster-mode redis-server did not start on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = new Redis(url);
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  for (let i = 0; (await admin.call('CLUSTER', 'INFO') as string).includes('cluster_state:fail'); i++) {
    if (i > 100) throw new Error('the one-node cluster did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  await admin.quit();
  h = await openHarness({ REDIS_URL: url });
});

afterAll(async () => {
  await h?.close();
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

async function submitEvent(prefer?: string) {
  return {
    version: '2.0', routeKey: '$default', rawPath: '/v1/perceive', rawQueryString: '',
    headers: { host: 'api.example.com', authorization: `Bearer ${KEYS.alpha}`, 'content-type': 'application/json', ...(prefer ? { prefer } : {}) },
    requestContext: { http: { method: 'POST', path: '/v1/perceive', protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 't' }, requestId: 'r1', routeKey: '$default', stage: '$default', timeEpoch: Date.now(), domainName: 'api.example.com', accountId: '1', apiId: 'a' },
    body: JSON.stringify({ image: { base64: (await png()).toString('base64') }, tasks: WORDS }),
    isBase64Encoded: false,
  };
}

describe('BullMQ and the job store on cluster-mode Redis (MemoryDB)', () => {
  it('the server really is in cluster mode: keys in different slots cannot meet in one command', async () => {
    const r = new Redis(url);
    try {
      await expect(r.mget('a', 'b')).rejects.toThrow(/CROSSSLOT/);
      expect(await r.mget(`${CLUSTER_QUEUE_PREFIX}:a`, `${CLUSTER_QUEUE_PREFIX}:b`)).toEqual([null, null]);
    } finally {
      await r.quit();
    }
  });

  it('with the hash-tagged prefix a job is accepted, processed and counted', async () => {
    const settings: QueueSettings = { ...loadQueueSettings({ HEARTBEAT_MS: '500' }), prefix: `{mvp${randomBytes(3).toString('hex')}}` };
    const log = createLogger({ level: 'silent' });
    const gw = createLambdaGateway({ config: h.config, settings, log, store: h.store });
    const q = openQueueEnv({ url, env: { QUEUE_PREFIX: settings.prefix, HEARTBEAT_MS: '500' } });
    const worker = await startPerceptionWorker({ redis: q.redis, settings, lifecycle: q.lifecycle, blobs: h.store, pipeline: await createPipeline(), log });
    try {
      const event = await submitEvent('wait=20');
      const res = (await gw.handler(event as never, {} as never)) as { statusCode: number; body: string };
      expect(res.statusCode, res.body).toBe(200);
      const job = JSON.parse(res.body) as { id: string; status: string };
      expect(job.status).toBe('succeeded');
      // The job record turns terminal just before BullMQ moves its entry out of active.
      const m = await until('the BullMQ entry to leave active', async () => {
        const x = await collectQueueMetrics(q.redis, q.queues.perception, settings.prefix);
        return x.Active === 0 ? x : null;
      });
      expect(m).toMatchObject({ Backlog: 0, Waiting: 0, Active: 0, LiveWorkers: 1 });
    } finally {
      await worker.close();
      await q.close();
      await gw.close();
    }
  });

  it('without the hash tag the queue layer fails on CROSSSLOT (which is why infra/ sets QUEUE_PREFIX={mvp})', async () => {
    const q = openQueueEnv({ url, env: { QUEUE_PREFIX: `mvp${randomBytes(3).toString('hex')}` } });
    try {
      await expect(q.submit(makePayload())).rejects.toThrow(/CROSSSLOT|same slot/i);
    } finally {
      await q.close();
    }
  });
});
