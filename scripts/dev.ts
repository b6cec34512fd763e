// `npm run dev`: the whole service on this machine. Starts a loopback redis-server when none answers
// (data in .data/redis), then the gateway, a perception worker and a webhook worker with filesystem
// storage in .data/storage and a dev API key (kept in .data/dev-api-key.json, printed below).
// The model bundle comes from MODEL_DIR, else models/demo, else .data/bundles/tiny-paper.
// Ctrl-C stops the children (each finishes what it is doing) and the redis-server it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { hashApiKey } from '../lib/config.js';
import { ensureLocalRedis } from './local-redis.js';

const DATA = '.data';
const KEY_FILE = `${DATA}/dev-api-key.json`;
const EXPORT_HINT =
  '.venv/bin/python -m mvp_lm.export --preset tiny --variant paper --out .data/bundles/tiny-paper';

interface DevKey {
  id: string;
  key: string;
  webhook_secret: string;
}

function devKey(): DevKey {
  if (existsSync(KEY_FILE)) return JSON.parse(readFileSync(KEY_FILE, 'utf8')) as DevKey;
  const k: DevKey = {
    id: 'dev',
    key: `mvp_dev_${randomBytes(18).toString('base64url')}`,
    webhook_secret: `whsec_${randomBytes(24).toString('base64')}`,
  };
  writeFileSync(KEY_FILE, JSON.stringify(k, null, 2), { mode: 0o600 });
  return k;
}

function modelDir(): string | null {
  for (const dir of [process.env.MODEL_DIR, 'models/demo', `${DATA}/bundles/tiny-paper`]) {
    if (dir && existsSync(`${dir}/manifest.json`)) return dir;
  }
  return null;
}

mkdirSync(DATA, { recursive: true });
const redis = await ensureLocalRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', `${DATA}/redis`);
const key = devKey();
const bundle = modelDir();
const port = process.env.PORT ?? '8080';

const env: NodeJS.ProcessEnv = {
  ...process.env,
  REDIS_URL: redis.url,
  PORT: port,
  HOST: process.env.HOST ?? '127.0.0.1',
  STORAGE_DRIVER: process.env.STORAGE_DRIVER ?? 'fs',
  STORAGE_DIR: process.env.STORAGE_DIR ?? `${DATA}/storage`,
  API_KEYS: JSON.stringify([{ id: key.id, key_sha256: hashApiKey(key.key), webhook_secret: key.webhook_secret }]),
  // One port on this machine for local receivers (webhooks, image servers), in the local run only: a bare
  // host would open every local port, Redis included.
  URL_ALLOWLIST: process.env.URL_ALLOWLIST ?? 'localhost:9000,127.0.0.1:9000',
  ...(bundle ? { MODEL_DIR: bundle } : {}),
};

const children = new Map<string, ChildProcess>();
function start(name: string, entry: string): void {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
  }
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) {
      console.error(`[dev] ${name} exited (${signal ?? code}); stopping the rest`);
      void stop(1);
    }
  });
  children.set(name, child);
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('[dev] stopping: children finish what they are doing');
  await Promise.all(
    [...children.values()].map((c) => new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    })),
  );
  await redis.stop();
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

start('gateway', 'src/server.ts');
start('webhooks', 'workers/webhooks/main.ts');
if (bundle || process.env.PIPELINE_MODULE) start('perception', 'workers/perception/main.ts');

console.log(`
  MVP-LM Serve (local run)
  API          http://127.0.0.1:${port}/v1   docs: http://127.0.0.1:${port}/docs
  API key      ${key.key}   (id "${key.id}", kept in ${KEY_FILE})
  webhooks     signed with ${key.webhook_secret}
  local URLs   ${env.URL_ALLOWLIST} may be reached by image URLs and webhooks (set URL_ALLOWLIST to change)
  Redis        ${redis.url}${redis.child ? ` (started here, data in ${DATA}/redis)` : ' (already running)'}
  storage      ${env.STORAGE_DRIVER === 'fs' ? env.STORAGE_DIR : `s3://${env.S3_BUCKET}`}
  model        ${process.env.PIPELINE_MODULE ? `test pipeline ${process.env.PIPELINE_MODULE}` : (bundle ?? 'none')}

  try:  curl -s -H "Authorization: Bearer ${key.key}" -F image=@photo.jpg \\
          -F 'request={"tasks":[{"type":"words","phrases":["person","dog"]}]}' http://127.0.0.1:${port}/v1/perceive
`);
if (!bundle && !process.env.PIPELINE_MODULE) {
  console.warn(`  [dev] NO MODEL BUNDLE: no manifest.json in MODEL_DIR, models/demo or ${DATA}/bundles/tiny-paper.
  The gateway runs, but no perception worker: jobs stay queued and /readyz says not ready.
  Export the tiny demo bundle (random weights, a few minutes on CPU) and run npm run dev again:
      ${EXPORT_HINT}
`);
}
