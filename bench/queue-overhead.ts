// `npm run bench:queue`: queue overhead of a job, submit -> worker start, over ~1,000 jobs against a real
// Redis, with a perception worker process running the no-op pipeline (bench/noop-pipeline.ts).
//
//   submit      the gateway's submit (rate limit, quota, record + BullMQ add: what POST /v1/perceive waits for)
//   dequeue     create() called -> the worker's pipeline.run() entered: BullMQ delivery, markRunning,
//               stage bookkeeping, the cancel/deadline check and reading the input from storage
//
// Jobs go one at a time (the next is submitted when the previous finished) so the numbers are overhead,
// not queueing behind other jobs. Target: dequeue p50 <= 5 ms. REDIS_URL (default redis://127.0.0.1:6379;
// started on loopback if none answers), BENCH_JOBS (default 1000).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { listLiveWorkers } from '../lib/queue/index.js';
import { FsBlobStore, inputKey } from '../lib/storage/index.js';
import { JOB_SCHEMA_VERSION, type JobPayload } from '../contracts/job.js';
import { ensureLocalRedis } from '../scripts/local-redis.js';
import { openQueueEnv } from '../test/support/queue-env.js';
import { wallClockMs } from './noop-pipeline.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const WARMUP = 50;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const summary = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  const f = (v: number): string => `${v.toFixed(2)} ms`;
  return `p50 ${f(percentile(s, 50))}  p90 ${f(percentile(s, 90))}  p99 ${f(percentile(s, 99))}  max ${f(s[s.length - 1]!)}`;
};

const redisServer = await ensureLocalRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', '.data/redis');
const prefix = `bench${randomBytes(3).toString('hex')}`;
const storageDir = mkdtempSync(path.join(os.tmpdir(), 'mvp-bench-storage-'));
const env = { QUEUE_PREFIX: prefix, HEARTBEAT_MS: '500' };
// The jobs API and a test key's admission exactly as the gateway submits (test/support/queue-env.ts).
const q = openQueueEnv({ url: redisServer.url, env, retentionS: 3600 });
const { redis } = q;
const blobs = new FsBlobStore(storageDir);

const worker = spawn(process.execPath, ['--import', 'tsx', 'workers/perception/main.ts'], {
  env: {
    ...process.env,
    ...env,
    REDIS_URL: redisServer.url,
    STORAGE_DRIVER: 'fs',
    STORAGE_DIR: storageDir,
    PIPELINE_MODULE: 'bench/noop-pipeline.ts',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const started = new Map<string, (t: number) => void>();
createInterface({ input: worker.stdout! }).on('line', (line) => {
  const [tag, id, t] = line.split(' ');
  if (tag === 'pipeline-start') started.get(id!)?.(Number(t));
});

console.log(`queue overhead: ${JOBS} jobs (+${WARMUP} warm-up), Redis ${redisServer.url}, node ${process.version}, ${os.cpus().length} CPUs`);
const until = Date.now() + 60_000;
while (!(await listLiveWorkers(redis, prefix)).length) {
  if (Date.now() > until || worker.exitCode !== null) throw new Error('the benchmark worker did not start');
  await new Promise((r) => setTimeout(r, 100));
}

const image = Buffer.from('not decoded by the no-op pipeline');
const submitMs: number[] = [];
const dequeueMs: number[] = [];
for (let i = 0; i < WARMUP + JOBS; i++) {
  const id = `bench_${i}_${randomBytes(4).toString('hex')}`;
  await blobs.put(inputKey(id), image, 'image/png');
  const now = new Date();
  const payload: JobPayload = {
    v: JOB_SCHEMA_VERSION,
    job_id: id,
    key_id: 'bench',
    request_id: id,
    image: { storage_key: inputKey(id), content_type: 'image/png', width: 1, height: 1, bytes: image.length },
    tasks: [{ type: 'words', phrases: [{ text: 'thing', stuff: false }], mode: 'instance', outputs: ['boxes'], score_threshold: 0.3, top_k: 10 }],
    caption: false,
    created_at: now.toISOString(),
    deadline_at: new Date(now.getTime() + 60_000).toISOString(),
  };
  const startedAt = new Promise<number>((resolve) => started.set(id, resolve));
  const t0 = wallClockMs();
  await q.submit(payload);
  const t1 = wallClockMs();
  const tStart = await startedAt;
  started.delete(id);
  if (i >= WARMUP) {
    submitMs.push(t1 - t0);
    dequeueMs.push(tStart - t0);
  }
  const done = await q.jobs.waitForTerminal(id, 10_000);
  if (done?.status !== 'succeeded') throw new Error(`job ${id} ended ${done?.status}: ${JSON.stringify(done?.error)}`);
  if (i >= WARMUP && (i - WARMUP + 1) % 100 === 0) console.log(`  ${i - WARMUP + 1}/${JOBS}  dequeue so far: ${summary(dequeueMs)}`);
}

console.log(`submit  (the gateway's submit script)   ${summary(submitMs)}`);
console.log(`dequeue (submit -> pipeline.run starts)   ${summary(dequeueMs)}`);
const p50 = percentile([...dequeueMs].sort((a, b) => a - b), 50);
console.log(`target dequeue p50 <= 5 ms: ${p50 <= 5 ? 'met' : 'NOT met'} (${p50.toFixed(2)} ms)`);

worker.kill('SIGTERM');
await new Promise((r) => worker.once('exit', r));
// Remove the benchmark's keys (they would expire with retention anyway).
for (let cursor = '0'; ; ) {
  const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
  if (keys.length) await redis.del(...keys);
  cursor = next;
  if (cursor === '0') break;
}
await q.close();
rmSync(storageDir, { recursive: true, force: true });
await redisServer.stop();
