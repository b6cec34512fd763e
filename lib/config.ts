// Service configuration, parsed once from the environment with zod. Every process (gateway, worker,
// webhook sender) calls loadConfig(); an invalid variable fails at start-up naming the variable.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** SHA-256 hex of an API key: the only form in which keys are configured and kept in memory. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export const ApiKeyConfig = z.strictObject({
  /** Non-secret id, safe to log and to store on jobs. */
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  key_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of the key'),
  webhook_secret: z.string().startsWith('whsec_'),
  /** Requests per rate_limit_window_s for this key. */
  rate_limit: z.number().int().positive().default(600),
  rate_limit_window_s: z.number().int().positive().default(60),
  /** Jobs of this key that may be queued or running at once. */
  max_concurrent_jobs: z.number().int().positive().default(16),
});
export type ApiKeyConfig = z.infer<typeof ApiKeyConfig>;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (def: number) => z.coerce.number().int().positive().default(def);
const list = z
  .string()
  .default('')
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  STORAGE_DRIVER: z.enum(['fs', 's3']).default('fs'),
  STORAGE_DIR: z.string().default('.data/storage'),
  S3_BUCKET: z.string().optional(),
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_FORCE_PATH_STYLE: bool.default(false),
  /** JSON array of ApiKeyConfig objects. */
  API_KEYS: z.string().optional(),
  /** Path of a JSON file holding the same array (preferred in production: a mounted secret). */
  API_KEYS_FILE: z.string().optional(),
  /** Hosts (exact name, "*.suffix"), IP addresses or CIDRs that image URLs and webhooks may reach even when
   *  private; http is allowed only for these. A bare entry ("127.0.0.1", "localhost") allows EVERY port of the
   *  host (Redis on 6379 included); "host:port" ("127.0.0.1:8443", "[::1]:9000", "localhost:3000",
   *  "*.svc.local:8080") allows that port only and is the safe form for loopback and internal hosts. Parsed by
   *  lib/net/ssrf.ts parseAllowlist (an invalid entry fails at start-up). */
  URL_ALLOWLIST: list,
  MAX_IMAGE_BYTES: int(20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: int(40_000_000),
  MAX_TASKS: int(8),
  MAX_PHRASES: int(1000),
  URL_FETCH_TIMEOUT_MS: int(10_000),
  /** PEM file of extra CAs trusted for outbound https (image URLs, webhooks), e.g. a private CA. */
  URL_CA_FILE: z.string().optional(),
  URL_MAX_REDIRECTS: z.coerce.number().int().min(0).max(10).default(3),
  JOB_DEADLINE_MS: int(10 * 60_000),
  /** Longest `Prefer: wait=N` honoured (the API allows up to 60 s; behind API Gateway + Lambda, 29 s at most). */
  MAX_PREFER_WAIT_S: z.coerce.number().int().min(0).max(60).default(60),
  /** Seconds that finished jobs, their inputs and results are kept. */
  JOB_RETENTION_S: int(7 * 24 * 3600),
  /** Results at most this size (bytes of JSON) are inlined in GET /v1/jobs/{id}. */
  RESULT_INLINE_MAX_BYTES: int(64 * 1024),
  WEBHOOK_TIMEOUT_MS: int(10_000),
  WEBHOOK_MAX_ATTEMPTS: int(12),
});

export interface Config {
  port: number;
  host: string;
  logLevel: z.infer<typeof Env>['LOG_LEVEL'];
  redisUrl: string;
  storage:
    /** bucket: the name `s3://` image references must use to address this store. */
    | { driver: 'fs'; dir: string; bucket: string }
    | { driver: 's3'; bucket: string; endpoint?: string; region: string; forcePathStyle: boolean };
  apiKeys: ApiKeyConfig[];
  urlAllowlist: string[];
  /** Extra CA certificates (PEM) for outbound https, from URL_CA_FILE. */
  urlCa?: string;
  limits: {
    maxImageBytes: number;
    maxPixels: number;
    maxTasks: number;
    maxPhrases: number;
    urlFetchTimeoutMs: number;
    urlMaxRedirects: number;
    resultInlineMaxBytes: number;
  };
  jobDeadlineMs: number;
  /** Cap on `Prefer: wait=N` in seconds (0: never hold a response). */
  maxPreferWaitS: number;
  jobRetentionS: number;
  webhook: { timeoutMs: number; maxAttempts: number };
}

export class ConfigError extends Error {}

function issuesText(err: z.ZodError, prefix: string): string {
  return err.issues.map((i) => `${prefix}${i.path.join('.')}: ${i.message}`).join('; ');
}

function parseApiKeys(json: string, source: string): ApiKeyConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new ConfigError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  const r = z.array(ApiKeyConfig).safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: ${issuesText(r.error, 'entry ')}`);
  return r.data;
}

/** Ids name keys on jobs and in logs, hashes find them: both must be unique across all sources. */
function assertUniqueKeys(keys: ApiKeyConfig[]): void {
  const ids = new Set<string>();
  const hashes = new Map<string, string>();
  for (const k of keys) {
    if (ids.has(k.id)) throw new ConfigError(`API keys: duplicate key id "${k.id}"`);
    const other = hashes.get(k.key_sha256);
    if (other) throw new ConfigError(`API keys: "${k.id}" and "${other}" have the same key_sha256`);
    ids.add(k.id);
    hashes.set(k.key_sha256, k.id);
  }
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const r = Env.safeParse(env);
  if (!r.success) throw new ConfigError(`invalid environment: ${issuesText(r.error, '')}`);
  const e = r.data;
  if (e.STORAGE_DRIVER === 's3' && !e.S3_BUCKET) throw new ConfigError('S3_BUCKET is required when STORAGE_DRIVER=s3');
  const apiKeys = [
    ...(e.API_KEYS ? parseApiKeys(e.API_KEYS, 'API_KEYS') : []),
    ...(e.API_KEYS_FILE ? parseApiKeys(readFileSync(e.API_KEYS_FILE, 'utf8'), `API_KEYS_FILE ${e.API_KEYS_FILE}`) : []),
  ];
  assertUniqueKeys(apiKeys);
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    redisUrl: e.REDIS_URL,
    storage:
      e.STORAGE_DRIVER === 's3'
        ? { driver: 's3', bucket: e.S3_BUCKET!, endpoint: e.S3_ENDPOINT, region: e.S3_REGION, forcePathStyle: e.S3_FORCE_PATH_STYLE }
        : { driver: 'fs', dir: e.STORAGE_DIR, bucket: e.S3_BUCKET ?? 'local' },
    apiKeys,
    urlAllowlist: e.URL_ALLOWLIST,
    ...(e.URL_CA_FILE ? { urlCa: readFileSync(e.URL_CA_FILE, 'utf8') } : {}),
    limits: {
      maxImageBytes: e.MAX_IMAGE_BYTES,
      maxPixels: e.MAX_IMAGE_PIXELS,
      maxTasks: e.MAX_TASKS,
      maxPhrases: e.MAX_PHRASES,
      urlFetchTimeoutMs: e.URL_FETCH_TIMEOUT_MS,
      urlMaxRedirects: e.URL_MAX_REDIRECTS,
      resultInlineMaxBytes: e.RESULT_INLINE_MAX_BYTES,
    },
    jobDeadlineMs: e.JOB_DEADLINE_MS,
    maxPreferWaitS: e.MAX_PREFER_WAIT_S,
    jobRetentionS: e.JOB_RETENTION_S,
    webhook: { timeoutMs: e.WEBHOOK_TIMEOUT_MS, maxAttempts: e.WEBHOOK_MAX_ATTEMPTS },
  };
}
