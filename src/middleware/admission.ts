// Admission and creation of a POST /v1/perceive job in one script run, so one Redis command per accepted job:
// the request is counted against its key's rate limit; within it the Idempotency-Key, when sent, is looked up;
// then a job slot is reserved (quota.ts), the key remembered and the job created (record and BullMQ entry,
// CREATE_JOB_LUA). A refusal keeps the count and changes nothing after it, so no refusal leaves a slot, a key
// or a job behind, and no accepted job exists half-made.
import type { Redis } from 'ioredis';
import type { ApiKeyConfig } from '../../lib/config.js';
import { CREATE_JOB_KEYS, CREATE_JOB_LUA, defineScript, type PreparedJob } from '../../lib/queue/index.js';
import { IDEMPOTENCY_TTL_S } from './idempotency.js';
import { RESERVE_SLOT_LUA, type QuotaKeys } from './quota.js';
import { RATE_HIT_LUA, type RateLimiter, type RateState } from './rate-limit.js';

/** KEYS: rate counter, quota set, idempotency key (the quota set again when there is none: a script names
 *  every key it touches, in one hash slot on a cluster), then the job's (PreparedJob). ARGV: window ms, rate
 *  limit, now ms, max jobs, job id, deadline ms, job record prefix, idempotency value ('' for none), its ttl,
 *  then the job's. Returns {count, -1 created | -2 over the rate limit | -3 key taken, with its value |
 *  -4 the job id exists | unfinished jobs of a full quota}. */
const SUBMIT = `${RATE_HIT_LUA}${RESERVE_SLOT_LUA}${CREATE_JOB_LUA}
local n = rateHit(KEYS[1], ARGV[1])
if n > tonumber(ARGV[2]) then return {n, -2} end
if ARGV[8] ~= '' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {n, -3, prior} end
end
if jobRecordExists(4) then return {n, -4} end
local active = reserveSlot(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7])
if active ~= -1 then return {n, active} end
if ARGV[8] ~= '' then redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9]) end
local created = createJob(4, 10)
if created ~= 1 then return created end
return {n, -1}
`;

export type Submitted = { rate: RateState } & (
  | { outcome: 'created' }
  | { outcome: 'rate-limited' }
  | { outcome: 'idempotency-key-taken'; prior: string }
  | { outcome: 'job-exists' }
  | { outcome: 'quota-full'; active: number }
);

export class Admission {
  private readonly run: (...args: (string | number)[]) => Promise<unknown>;

  constructor(
    redis: Redis,
    private readonly limiter: RateLimiter,
    private readonly quota: QuotaKeys,
  ) {
    this.run = defineScript(redis, 'mvpSubmitJob', 3 + CREATE_JOB_KEYS, SUBMIT);
  }

  /** Counts the request of `key` and, when the rate limit, the quota and the Idempotency-Key allow, creates
   *  `job` and remembers `idempotency.value` under `idempotency.redisKey`. */
  async submit(key: ApiKeyConfig, jobId: string, deadlineMs: number, job: PreparedJob, idempotency?: { redisKey: string; value: string }): Promise<Submitted> {
    const w = this.limiter.window(key);
    const { quota, jobRecordPrefix } = this.quota;
    const quotaKey = quota(key.id);
    const [count, code, prior] = (await this.run(
      w.redisKey, quotaKey, idempotency?.redisKey ?? quotaKey, ...job.keys,
      w.windowMs, key.rate_limit, Date.now(), key.max_concurrent_jobs, jobId, deadlineMs, jobRecordPrefix, idempotency?.value ?? '', IDEMPOTENCY_TTL_S,
      ...job.argv,
    )) as [number, number, string?];
    const rate = { key, count, resetS: w.resetS };
    switch (code) {
      case -1: return { rate, outcome: 'created' };
      case -2: return { rate, outcome: 'rate-limited' };
      case -3: return { rate, outcome: 'idempotency-key-taken', prior: prior! };
      case -4: return { rate, outcome: 'job-exists' };
      default: return { rate, outcome: 'quota-full', active: code };
    }
  }
}
