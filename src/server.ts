// Gateway process: `tsx src/server.ts`. Configuration from the environment (lib/config.ts,
// lib/queue/settings.ts). SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish
// (bounded by SHUTDOWN_GRACE_MS), then close Redis and exit.
import { serve } from '@hono/node-server';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { loadQueueSettings } from '../lib/queue/index.js';
import { createApp } from './app.js';
import { openGatewayDeps } from './deps.js';

const config = loadConfig();
const log = createLogger({ name: 'gateway', level: config.logLevel });
const gateway = openGatewayDeps({ config, settings: loadQueueSettings(), log });
const app = createApp(gateway.deps);
const graceMs = Number(process.env.SHUTDOWN_GRACE_MS ?? 25_000);

const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
  log.info({ port: info.port, host: config.host, storage: config.storage.driver, keys: config.apiKeys.length }, 'gateway listening');
});

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: draining in-flight requests');
  const force = setTimeout(() => {
    log.warn({ graceMs }, 'grace period over: closing remaining connections');
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  }, graceMs);
  force.unref();
  server.close(async () => {
    await gateway.close();
    log.info('gateway stopped');
    process.exit(0);
  });
  (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
