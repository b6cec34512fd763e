// What the gateway is built from (injected: no module-level clients, so the same app can run under
// @hono/node-server or as a Lambda handler) and the per-request variables its middleware sets.
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { ApiKeyConfig, Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { BlobStore } from '../lib/storage/index.js';
import type { Jobs } from '../lib/queue/index.js';

export interface AppDeps {
  config: Config;
  redis: Redis;
  store: BlobStore;
  jobs: Jobs;
  log: Logger;
  /** Registry /metrics exposes; the gateway registers its HTTP metrics here. */
  registry: Registry;
  /** Prefix of every Redis key (lib/queue settings): the gateway's own keys go under `${keyPrefix}:gw:`. */
  keyPrefix: string;
}

export type AppEnv = {
  Variables: {
    requestId: string;
    /** The request's child logger (request_id bound), made on first call. */
    log: () => Logger;
    /** Response headers set before the response exists (middleware/response-headers.ts); undefined once a
     *  route built its response with them. */
    responseHeaders: Record<string, string> | undefined;
    apiKey: ApiKeyConfig;
  };
};
