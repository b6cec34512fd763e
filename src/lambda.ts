// The gateway as an AWS Lambda handler behind an API Gateway HTTP API (payload format 2.0), built with the
// same wiring as src/server.ts (deps.ts + app.ts). The gateway keeps no state between requests in the
// process (rate limits, quotas, idempotency and jobs are in Redis; it only caches image probes), so any number of
// concurrent Lambda instances behave as one service. The Redis connection opened on a cold start is reused
// while the instance stays warm.
//
// Environment: as src/server.ts (lib/config.ts, lib/queue/settings.ts), plus API_KEYS_SECRET_ID: a Secrets
// Manager secret holding the API_KEYS JSON, read through the Parameters and Secrets extension layer.
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { loadConfig, type Config } from '../lib/config.js';
import { createLogger, type Logger } from '../lib/log.js';
import { loadQueueSettings, type QueueSettings } from '../lib/queue/index.js';
import type { BlobStore } from '../lib/storage/index.js';
import { createApp } from './app.js';
import { openGatewayDeps } from './deps.js';
import { secretsFromExtension } from './lambda-secrets.js';

export type LambdaHandler = ReturnType<typeof handle>;

export interface LambdaGateway {
  handler: LambdaHandler;
  close(): Promise<void>;
}

export function createLambdaGateway(opts: { config: Config; settings: QueueSettings; log: Logger; store?: BlobStore }): LambdaGateway {
  // Process metrics of one short-lived Lambda instance mean little; queue and job metrics stay on /metrics.
  const gateway = openGatewayDeps({ ...opts, defaultMetrics: false });
  return { handler: handle(createApp(gateway.deps)), close: gateway.close };
}

async function fromEnvironment(): Promise<LambdaHandler> {
  const env = { ...process.env, ...(await secretsFromExtension(process.env, ['API_KEYS'])) };
  const config = loadConfig(env);
  const log = createLogger({ name: 'gateway-lambda', level: config.logLevel });
  log.info({ storage: config.storage.driver, keys: config.apiKeys.length }, 'gateway lambda cold start');
  return createLambdaGateway({ config, settings: loadQueueSettings(env), log }).handler;
}

let wired: Promise<LambdaHandler> | null = null;

/** The Lambda entry point (handler name `lambda.handler`). */
export async function handler(event: LambdaEvent, context: LambdaContext): Promise<Awaited<ReturnType<LambdaHandler>>> {
  wired ??= fromEnvironment().catch((e: unknown) => {
    wired = null; // a failed cold start (e.g. the secret was unreadable) is retried on the next invocation
    throw e;
  });
  return (await wired)(event, context);
}
