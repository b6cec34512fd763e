// Lua scripts that change job records atomically (see job-record.ts for why).
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BULLMQ_ADD_LUA } from './bullmq-add.js';

class Script {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
  /** EVALSHA, loading the script on NOSCRIPT (first use, or after a Redis restart flushed the cache). */
  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Registers `lua` on `redis` as the ioredis command `name` (once per client) and returns it bound. ioredis
 * sends it as EVAL the first time on each connection and as EVALSHA after, so unlike Script it never needs a
 * NOSCRIPT retry: it costs one command, and what is sent after it on the same connection runs after it.
 */
export function defineScript(redis: Redis, name: string, numberOfKeys: number, lua: string): (...args: (string | number)[]) => Promise<unknown> {
  const r = redis as Redis & Record<string, unknown>;
  if (typeof r[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
  const command = r[name] as (...args: (string | number)[]) => Promise<unknown>;
  return (...args) => command.apply(redis, args);
}

/**
 * Lua: `createJob(k, a)` writes a job record and adds its BullMQ queue entry in the same script run, so a worker
 * never sees one without the other. Inputs (job-store.ts prepareCreate lays them out): KEYS[k] the record,
 * KEYS[k+1..k+9] BullMQ's keys; ARGV[a] the record's ttl in seconds, ARGV[a+1] the count n of field/value
 * entries that follow, then BullMQ's 3 arguments. The caller checks `jobRecordExists(k)` first.
 */
export const CREATE_JOB_LUA = `${BULLMQ_ADD_LUA}
local function jobRecordExists(k)
  return redis.call('EXISTS', KEYS[k]) == 1
end
local function createJob(k, a)
  local n = tonumber(ARGV[a + 1])
  redis.call('HSET', KEYS[k], unpack(ARGV, a + 2, a + 1 + n))
  redis.call('EXPIRE', KEYS[k], tonumber(ARGV[a]))
  local b = a + 2 + n
  -- Negative codes are parent-job failures; these jobs have no parent.
  local added = bullmqAddStandardJob({unpack(KEYS, k + 1, k + 9)}, {ARGV[b], ARGV[b + 1], ARGV[b + 2]})
  if type(added) == 'number' and added < 0 then return redis.error_reply('BullMQ addStandardJob: ' .. added) end
  return 1
end
`;

/** How many KEYS a job's creation takes (PreparedJob.keys): the record and BullMQ's 9. */
export const CREATE_JOB_KEYS = 10;

/** KEYS and ARGV as CREATE_JOB_LUA reads them from KEYS[1] and ARGV[1]. 1 = created, 0 = the id exists. */
export const CREATE_JOB = `${CREATE_JOB_LUA}
if jobRecordExists(1) then return 0 end
return createJob(1, 1)
`;

/**
 * KEYS: job hash, webhook-attempts list, job-outcome counters. ARGV[1]: a TransitionSpec as JSON, ARGV[2]: the job id.
 * Applies the spec only when the current status is in spec.from. Returns {applied 1|0, previous status,
 * HGETALL of the record, the attempts list}, or {-1} when there is no record.
 */
export const transition = new Script(`
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1} end
local spec = cjson.decode(ARGV[1])
local allowed = 0
for _, s in ipairs(spec.from) do if s == cur then allowed = 1 end end
if allowed == 1 then
  if spec.to then redis.call('HSET', KEYS[1], 'status', spec.to) end
  if spec.set then for f, v in pairs(spec.set) do redis.call('HSET', KEYS[1], f, v) end end
  if spec.setnx then for f, v in pairs(spec.setnx) do redis.call('HSETNX', KEYS[1], f, v) end end
  if spec.incr then for _, f in ipairs(spec.incr) do redis.call('HINCRBY', KEYS[1], f, 1) end end
  if spec.ttl then
    redis.call('EXPIRE', KEYS[1], spec.ttl)
    redis.call('EXPIRE', KEYS[2], spec.ttl)
  end
  if spec.publish then redis.call('PUBLISH', spec.publish, ARGV[2]) end
  if spec.count then redis.call('HINCRBY', KEYS[3], spec.count, 1) end
end
return {allowed, cur, redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
`);

export interface TransitionSpec {
  from: string[];
  to?: string;
  set?: Record<string, string>;
  setnx?: Record<string, string>;
  incr?: string[];
  ttl?: number;
  /** Channel to publish the job id on (terminal transitions). */
  publish?: string;
  /** Field of the job-outcome counters to increment (metrics.ts). */
  count?: string;
}

/** KEYS: job hash, attempts list. ARGV: attempt JSON. Appends and gives the list the record's expiry. */
export const appendAttempt = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`);
