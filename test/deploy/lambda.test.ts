// The gateway as a Lambda handler, invoked with API Gateway HTTP API (payload format 2.0) events against the
// real Redis and S3 servers: submit, poll, cancel, rejections, binary bodies both ways, idempotency across
// two Lambda instances (no process-local state), the env-wired entry point with API keys from the secrets
// extension, and the queue-depth publisher the ECS scaling policy reads.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LambdaContext, LambdaEvent } from 'hono/aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashApiKey } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { jobProblems as problems } from '../../contracts/problem.js';
import { loadQueueSettings, openQueueRuntime, queueOptions, startHeartbeat } from '../../lib/queue/index.js';
import { overlayKey } from '../../lib/storage/index.js';
import { openGatewayDeps } from '../../src/deps.js';
import { createLambdaGateway, handler as envHandler, type LambdaGateway } from '../../src/lambda.js';
import { collectQueueMetrics, toEmf, handler as metricsHandler } from '../../src/queue-metrics-lambda.js';
import { KEYS, openHarness, png, WORDS, type Harness } from '../gateway/harness.js';

type Result = { statusCode: number; headers?: Record<string, string>; body: string; isBase64Encoded: boolean };

/** An API Gateway HTTP API v2 event as AWS sends it to a `$default` route. */
function httpEvent(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer; query?: string } = {}): LambdaEvent {
  const binary = Buffer.isBuffer(opts.body);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: opts.query ?? '',
    headers: {
      accept: '*/*',
      host: 'abc123.execute-api.eu-west-1.amazonaws.com',
      'user-agent': 'vitest',
      'x-amzn-trace-id': `Root=1-${randomBytes(4).toString('hex')}-${randomBytes(12).toString('hex')}`,
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}),
      ...opts.headers,
    },
    ...(opts.query ? { queryStringParameters: Object.fromEntries(new URLSearchParams(opts.query)) } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'vitest' },
      requestId: `${randomBytes(6).toString('base64url')}=`,
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(opts.body !== undefined ? { body: binary ? (opts.body as Buffer).toString('base64') : (opts.body as string), isBase64Encoded: binary } : { isBase64Encoded: false }),
  } as unknown as LambdaEvent;
}

const context = { functionName: 'mvp-gateway', awsRequestId: randomUUID(), getRemainingTimeInMillis: () => 30_000 } as unknown as LambdaContext;
const bearer = (key = KEYS.alpha) => ({ authorization: `Bearer ${key}` });

let h: Harness;
let a: LambdaGateway;
let b: LambdaGateway;
let body: string;

const invoke = async (gw: LambdaGateway, ev: LambdaEvent): Promise<Result> => (await gw.handler(ev, context)) as Result;
const json = <T>(r: Result): T => JSON.parse(r.body) as T;

beforeAll(async () => {
  h = await openHarness();
  const settings = loadQueueSettings({ QUEUE_PREFIX: h.deps.keyPrefix });
  const log = createLogger({ level: 'silent' });
  // Two "Lambda instances" of the same function: separate processes' worth of clients, shared Redis/S3.
  a = createLambdaGateway({ config: h.config, settings, log, store: h.store });
  b = createLambdaGateway({ config: h.config, settings, log, store: h.store });
  body = JSON.stringify({ image: { base64: (await png()).toString('base64') }, tasks: WORDS });
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
  await h.close();
});

describe('gateway Lambda handler (API Gateway v2 events)', () => {
  it('submit → 202 with Location, poll, cancel, poll again', async () => {
    const submit = await invoke(a, httpEvent('POST', '/v1/perceive', { headers: { ...bearer(), 'content-type': 'application/json' }, body }));
    expect(submit.statusCode).toBe(202);
    const job = json<{ id: string; status: string }>(submit);
    expect(job.status).toBe('queued');
    expect(submit.headers?.location).toBe(`/v1/jobs/${job.id}`);
    expect(submit.headers?.['x-request-id']).toBeTruthy();
    expect(await h.queue.getJob(job.id)).toBeTruthy();

    const poll = await invoke(b, httpEvent('GET', `/v1/jobs/${job.id}`, { headers: bearer() }));
    expect(poll.statusCode).toBe(200);
    expect(json<{ id: string; status: string }>(poll)).toMatchObject({ id: job.id, status: 'queued' });

    const cancel = await invoke(a, httpEvent('POST', `/v1/jobs/${job.id}/cancel`, { headers: bearer() }));
    expect(cancel.statusCode).toBe(200);
    expect(json<{ status: string }>(cancel).status).toBe('canceled');
    expect(await h.queue.getJob(job.id)).toBeFalsy();

    const again = await invoke(b, httpEvent('GET', `/v1/jobs/${job.id}`, { headers: bearer() }));
    expect(json<{ status: string }>(again).status).toBe('canceled');
  });

  it('rejected requests are problem+json: no key, invalid body, wrong media type, another key\'s job', async () => {
    const anon = await invoke(a, httpEvent('POST', '/v1/perceive', { headers: { 'content-type': 'application/json' }, body }));
    expect(anon.statusCode).toBe(401);
    expect(anon.headers?.['content-type']).toBe('application/problem+json');
    expect(anon.headers?.['www-authenticate']).toBe('Bearer');

    const bad = await invoke(a, httpEvent('POST', '/v1/perceive', {
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify({ image: { s3: 'nope' }, tasks: [], colour: 'red' }),
    }));
    expect(bad.statusCode).toBe(422);
    const pointers = json<{ errors: { pointer: string }[] }>(bad).errors.map((e) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/image/s3', '/tasks', '/colour']));

    const text = await invoke(a, httpEvent('POST', '/v1/perceive', { headers: { ...bearer(), 'content-type': 'text/plain' }, body: 'hi' }));
    expect(text.statusCode).toBe(415);

    const mine = json<{ id: string }>(await invoke(a, httpEvent('POST', '/v1/perceive', { headers: { ...bearer(), 'content-type': 'application/json' }, body })));
    const theirs = await invoke(a, httpEvent('GET', `/v1/jobs/${mine.id}`, { headers: bearer(KEYS.beta) }));
    expect(theirs.statusCode).toBe(404);
  });

  it('binary bodies: a base64-encoded multipart upload in, a base64-encoded PNG out', async () => {
    const image = await png(32, 24);
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'a.png');
    form.set('request', JSON.stringify({ tasks: WORDS }));
    const req = new Request('http://x/', { method: 'POST', body: form });
    const multipart = Buffer.from(await req.arrayBuffer());
    const res = await invoke(a, httpEvent('POST', '/v1/perceive', {
      headers: { ...bearer(), 'content-type': req.headers.get('content-type')! },
      body: multipart,
    }));
    expect(res.statusCode).toBe(202);
    const { id } = json<{ id: string; }>(res);
    const stored = await h.deps.jobs.get(id);
    expect(stored?.status).toBe('queued');

    const overlay = await png(8, 8);
    await h.store.put(overlayKey(id), overlay, 'image/png');
    const o = await invoke(b, httpEvent('GET', `/v1/jobs/${id}/overlay.png`, { headers: bearer() }));
    expect(o.statusCode).toBe(200);
    expect(o.isBase64Encoded).toBe(true);
    expect(Buffer.from(o.body, 'base64')).toEqual(overlay);
  });

  it('large images: POST /v1/uploads through the Lambda answers a presigned PUT for the bucket', async () => {
    const res = await invoke(a, httpEvent('POST', '/v1/uploads', {
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify({ content_type: 'image/jpeg', size_bytes: 100_000 }),
    }));
    expect(res.statusCode).toBe(201);
    const up = json<{ method: string; url: string; s3: string }>(res);
    expect(up.method).toBe('PUT');
    expect(up.s3.startsWith(`s3://${h.bucket}/uploads/alpha/`)).toBe(true);
    expect(new URL(up.url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
  });

  it('Idempotency-Key holds across Lambda instances (state lives in Redis, not in the process)', async () => {
    const headers = { ...bearer(), 'content-type': 'application/json', 'idempotency-key': `k-${randomUUID()}` };
    const first = await invoke(a, httpEvent('POST', '/v1/perceive', { headers, body }));
    const second = await invoke(b, httpEvent('POST', '/v1/perceive', { headers, body }));
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.headers?.['idempotent-replayed']).toBe('true');
    expect(json<{ id: string }>(second).id).toBe(json<{ id: string }>(first).id);
  });
});

describe('Lambda entry point wired from the environment', () => {
  let extension: Server;
  const secretId = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:mvp/api-keys-AbCdEf';
  const sessionToken = 'session-token-for-test';
  const saved = { ...process.env };

  beforeAll(async () => {
    // Stand-in for the Parameters and Secrets extension's localhost API (its documented request shape).
    const keys = [{ id: 'lambda', key_sha256: hashApiKey('sk-lambda-0123456789'), webhook_secret: 'whsec_bGFtYmRhbGFtYmRhbGFtYmRhbGFtYmRh' }];
    extension = createServer((req, res) => {
      const url = new URL(req.url!, 'http://localhost');
      const ok = url.pathname === '/secretsmanager/get' && url.searchParams.get('secretId') === secretId
        && req.headers['x-aws-parameters-secrets-token'] === sessionToken;
      res.writeHead(ok ? 200 : 403, { 'content-type': 'application/json' });
      res.end(ok ? JSON.stringify({ Name: 'mvp/api-keys', SecretString: JSON.stringify(keys) }) : '{}');
    });
    await new Promise<void>((r) => extension.listen(0, '127.0.0.1', r));
    Object.assign(process.env, {
      REDIS_URL: process.env.TEST_REDIS_URL,
      STORAGE_DRIVER: 's3',
      S3_BUCKET: h.bucket,
      S3_ENDPOINT: process.env.TEST_S3_ENDPOINT,
      S3_FORCE_PATH_STYLE: 'true',
      QUEUE_PREFIX: h.deps.keyPrefix,
      LOG_LEVEL: 'silent',
      API_KEYS_SECRET_ID: secretId,
      AWS_SESSION_TOKEN: sessionToken,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String((extension.address() as AddressInfo).port),
    });
  });
  afterAll(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    extension.close();
  });

  it('loads API keys from Secrets Manager on the cold start and serves with them', async () => {
    const health = (await envHandler(httpEvent('GET', '/healthz'), context)) as Result;
    expect(health.statusCode).toBe(200);
    const authorized = (await envHandler(httpEvent('GET', `/v1/jobs/${randomUUID()}`, { headers: { authorization: 'Bearer sk-lambda-0123456789' } }), context)) as Result;
    expect(authorized.statusCode).toBe(404); // authenticated; the job just does not exist
    const other = (await envHandler(httpEvent('GET', `/v1/jobs/${randomUUID()}`, { headers: bearer() }), context)) as Result;
    expect(other.statusCode).toBe(401); // keys come from the secret only
  });
});

describe('queue-depth publisher (scheduled Lambda)', () => {
  it('reports backlog, oldest wait, live workers and failures since the last run as an EMF record', async () => {
    const settings = loadQueueSettings({ QUEUE_PREFIX: `qm${randomBytes(4).toString('hex')}` });
    const gw = openGatewayDeps({ config: h.config, settings, log: createLogger({ level: 'silent' }), store: h.store, defaultMetrics: false });
    const lambda = createLambdaGateway({ config: h.config, settings, log: createLogger({ level: 'silent' }), store: h.store });
    const { redis } = gw.deps;
    const perception = gw.queues.perception;
    const worker = openQueueRuntime(redis, settings, queueOptions(h.config));
    try {
      expect(await collectQueueMetrics(redis, perception, settings.prefix)).toEqual(
        { Backlog: 0, Waiting: 0, Active: 0, OldestWaitingAgeSeconds: 0, LiveWorkers: 0, FailedJobs: 0 });

      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await invoke(lambda, httpEvent('POST', '/v1/perceive', { headers: { ...bearer(), 'content-type': 'application/json' }, body }));
        ids.push(json<{ id: string }>(r).id);
      }
      const oldest = (await perception.getJob(ids[0]!))!.timestamp;
      const hb = startHeartbeat(redis, settings.prefix, { worker_id: 'w1', provider: 'cpu', model: { name: 'mvp-lm', version: 'test', variant: 'paper' } }, 60_000);
      const m1 = await collectQueueMetrics(redis, perception, settings.prefix, oldest + 42_000);
      expect(m1).toMatchObject({ Backlog: 3, Waiting: 3, Active: 0, LiveWorkers: 1, FailedJobs: 0 });
      expect(m1.OldestWaitingAgeSeconds).toBeCloseTo(42, 0);
      await hb.stop();

      const emf = JSON.parse(toEmf(m1, { namespace: 'MvpLm', queue: 'perception', timestamp: oldest })) as Record<string, unknown> & {
        _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
      };
      const spec = emf._aws.CloudWatchMetrics[0]!;
      expect(emf._aws.Timestamp).toBe(oldest);
      expect(spec).toMatchObject({ Namespace: 'MvpLm', Dimensions: [['Queue']] });
      expect(spec.Metrics.map((x) => x.Name).sort()).toEqual(Object.keys(m1).sort());
      for (const { Name } of spec.Metrics) expect(emf[Name], Name).toBe(m1[Name as keyof typeof m1]);
      expect(emf.Queue).toBe('perception');

      // Two jobs fail the way a worker fails them (job store transitions count outcomes in Redis):
      // reported once, then 0 on the next run.
      for (const id of ids.slice(0, 2)) {
        expect(await worker.lifecycle.markRunning(id, 'w1')).toBeTruthy();
        await worker.lifecycle.markFailed(id, problems.internal('test failure'));
      }
      expect((await collectQueueMetrics(redis, perception, settings.prefix)).FailedJobs).toBe(2);
      expect((await collectQueueMetrics(redis, perception, settings.prefix)).FailedJobs).toBe(0);
    } finally {
      await lambda.close();
      await worker.close();
      await gw.close();
    }
  });

  it('the handler prints one EMF line per run', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const saved = { REDIS_URL: process.env.REDIS_URL, QUEUE_PREFIX: process.env.QUEUE_PREFIX };
    Object.assign(process.env, { REDIS_URL: process.env.TEST_REDIS_URL, QUEUE_PREFIX: `qm${randomBytes(4).toString('hex')}` });
    try {
      const m = await metricsHandler();
      expect(log).toHaveBeenCalledTimes(1);
      const line = JSON.parse(log.mock.calls[0]![0] as string) as Record<string, unknown>;
      expect(line).toMatchObject({ Queue: 'perception', Backlog: m.Backlog, LiveWorkers: m.LiveWorkers });
    } finally {
      log.mockRestore();
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });
});
