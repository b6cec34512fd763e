// A gateway wired exactly like src/server.ts (src/deps.ts) against the real test Redis and the real S3
// server, with its own bucket and key prefix, driven in-process through app.request().
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import sharp from 'sharp';
import { hashApiKey, loadConfig, type Config } from '../../lib/config.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { loadQueueSettings, openQueueRuntime, queueOptions, type JobLifecycle } from '../../lib/queue/index.js';
import { S3BlobStore } from '../../lib/storage/index.js';
import { createApp } from '../../src/app.js';
import type { AppDeps } from '../../src/context.js';
import { openGatewayDeps } from '../../src/deps.js';

// The S3 SDK's default credential chain reads these; moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

export const KEYS = { alpha: 'sk-alpha-0123456789', beta: 'sk-beta-0123456789', tight: 'sk-tight-0123456789', few: 'sk-few-0123456789' };

const apiKeys = [
  { id: 'alpha', key_sha256: hashApiKey(KEYS.alpha), webhook_secret: 'whsec_YWxwaGFhbHBoYWFscGhhYWxwaGE=', rate_limit: 1_000_000, max_concurrent_jobs: 100_000 },
  { id: 'beta', key_sha256: hashApiKey(KEYS.beta), webhook_secret: 'whsec_YmV0YWJldGFiZXRhYmV0YWJldGE=', rate_limit: 1_000_000, max_concurrent_jobs: 100_000 },
  { id: 'tight', key_sha256: hashApiKey(KEYS.tight), webhook_secret: 'whsec_dGlnaHR0aWdodHRpZ2h0dGlnaHQ=', rate_limit: 3, rate_limit_window_s: 60 },
  { id: 'few', key_sha256: hashApiKey(KEYS.few), webhook_secret: 'whsec_ZmV3ZmV3ZmV3ZmV3ZmV3ZmV3ZmV3', rate_limit: 1_000_000, max_concurrent_jobs: 2 },
];

export interface Harness {
  app: ReturnType<typeof createApp>;
  deps: AppDeps;
  config: Config;
  store: S3BlobStore;
  bucket: string;
  queue: Queue;
  /** The workers' side of the same queue, for tests that play a worker. */
  lifecycle: JobLifecycle;
  post(body: unknown, opts?: { key?: string; headers?: Record<string, string> }): Promise<Response>;
  get(path: string, key?: string): Promise<Response>;
  close(): Promise<void>;
}

/** `opts.log`: the gateway's logger (silent unless given; tests that read the log pass one writing to a stream). */
export async function openHarness(env: Record<string, string> = {}, opts: { log?: Logger } = {}): Promise<Harness> {
  const bucket = `gw-${randomBytes(5).toString('hex')}`;
  const config = loadConfig({
    REDIS_URL: process.env.TEST_REDIS_URL,
    STORAGE_DRIVER: 's3',
    S3_BUCKET: bucket,
    S3_ENDPOINT: process.env.TEST_S3_ENDPOINT,
    S3_FORCE_PATH_STYLE: 'true',
    API_KEYS: JSON.stringify(apiKeys),
    MAX_IMAGE_BYTES: String(256 * 1024),
    MAX_IMAGE_PIXELS: String(4_000_000),
    URL_FETCH_TIMEOUT_MS: '1500',
    ...env,
  });
  if (config.storage.driver !== 's3') throw new Error('harness expects the s3 driver');
  const store = new S3BlobStore(config.storage);
  await store.ensureBucket();
  const settings = loadQueueSettings({ QUEUE_PREFIX: `gw${randomBytes(4).toString('hex')}` });
  const gw = openGatewayDeps({ config, settings, log: opts.log ?? createLogger({ level: 'silent' }), store, defaultMetrics: false });
  const app = createApp(gw.deps);
  const worker = openQueueRuntime(gw.deps.redis, settings, queueOptions(config));
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });
  return {
    app,
    deps: gw.deps,
    config,
    store,
    bucket,
    queue: gw.queues.perception,
    lifecycle: worker.lifecycle,
    post: async (body, opts = {}) =>
      app.request('/v1/perceive', {
        method: 'POST',
        headers: { ...auth(opts.key ?? KEYS.alpha), ...(body instanceof FormData ? {} : { 'content-type': 'application/json' }), ...opts.headers },
        body: body instanceof FormData ? body : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    get: async (path, key = KEYS.alpha) => app.request(path, { headers: auth(key) }),
    async close() {
      await worker.close();
      await gw.close();
    },
  };
}

export async function png(width = 64, height = 48): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#c04020' } }).png().toBuffer();
}

export const WORDS = [{ type: 'words', phrases: ['dog', 'frisbee'] }];

export async function problemOf(res: Response): Promise<{ type: string; status: number; errors?: { pointer: string; detail: string }[]; detail?: string }> {
  if (!res.headers.get('content-type')?.startsWith('application/problem+json')) {
    throw new Error(`expected problem+json, got ${res.status} ${res.headers.get('content-type')}: ${await res.text()}`);
  }
  return res.json() as never;
}
