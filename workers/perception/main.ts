// Perception worker process: `tsx workers/perception/main.ts`. Configuration from the environment
// (lib/config.ts, lib/queue/settings.ts, and load-pipeline.ts: MODEL_DIR, ORT_PROVIDER, ORT_DEVICE_ID, ORT_PRECISION,
// BATCH_MAX, BATCH_WAIT_MS; PIPELINE_MODULE for tests).
// SIGTERM/SIGINT: stop taking jobs, let the running job finish, then exit.
import { loadConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { MetricsRecorder } from '../../lib/metrics.js';
import { loadQueueSettings, openQueueRuntime, queueOptions } from '../../lib/queue/index.js';
import { createRedis } from '../../lib/redis/index.js';
import { createBlobStore } from '../../lib/storage/index.js';
import { loadPipeline } from './load-pipeline.js';
import { startPerceptionWorker } from './worker.js';

const config = loadConfig();
const settings = loadQueueSettings();
const log = createLogger({ name: 'perception-worker', level: config.logLevel });

const redis = createRedis(config.redisUrl, 'worker', log);
const metrics = new MetricsRecorder(redis, settings.prefix);
const pipeline = await loadPipeline(process.env, {
  log,
  maxPixels: config.limits.maxPixels,
  onBatch: (stage, batch) => void metrics.batch(stage, batch.size, batch.waitMs / 1000).catch((err: Error) => log.warn({ err: err.message }, 'batch metric not recorded')),
});
const runtime = openQueueRuntime(redis, settings, queueOptions(config, log));
const worker = await startPerceptionWorker({ redis, settings, lifecycle: runtime.lifecycle, blobs: createBlobStore(config.storage), pipeline, log });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: waiting for the running job');
  await worker.close();
  await pipeline.close();
  await runtime.close();
  await redis.quit();
  log.info('perception worker stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
