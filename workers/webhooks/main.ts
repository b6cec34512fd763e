// Webhook delivery process: `tsx workers/webhooks/main.ts`. Secrets come from the API key configuration
// (lib/config.ts), the URL policy from URL_ALLOWLIST — the same SSRF guard as image URLs.
import { loadConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { parseAllowlist } from '../../lib/net/ssrf.js';
import { loadQueueSettings, openQueueRuntime, queueOptions } from '../../lib/queue/index.js';
import { createRedis } from '../../lib/redis/index.js';
import { startWebhookWorker } from './worker.js';

const config = loadConfig();
const settings = loadQueueSettings();
const log = createLogger({ name: 'webhook-worker', level: config.logLevel });
const secrets = new Map(config.apiKeys.map((k) => [k.id, k.webhook_secret]));

const redis = createRedis(config.redisUrl, 'worker', log);
const runtime = openQueueRuntime(redis, settings, queueOptions(config, log));
const worker = startWebhookWorker({
  redis,
  settings,
  lifecycle: runtime.lifecycle,
  secretFor: (keyId) => secrets.get(keyId),
  allowlist: parseAllowlist(config.urlAllowlist),
  timeoutMs: config.webhook.timeoutMs,
  log,
});
await worker.waitUntilReady();
log.info({ keys: secrets.size }, 'webhook worker consuming');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: waiting for deliveries in flight');
  await worker.close();
  await runtime.close();
  await redis.quit();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
