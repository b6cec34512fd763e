// Admission of a POST /v1/perceive: the request is counted against its key's rate limit and, when within
// it, a job slot is reserved (quota.ts), in one script: one command on the hot path instead of two. A
// rate-limited request reserves nothing.
import type { Redis } from 'ioredis';
import type { ApiKeyConfig } from '../../lib/config.js';
import { defineScript } from '../../lib/queue/index.js';
import type { ProblemError } from './problem.js';
import { quotaExceeded, RESERVE_SLOT_LUA, type JobQuota } from './quota.js';
import { RATE_HIT_LUA, type RateLimiter, type RateState } from './rate-limit.js';

/** KEYS: rate counter, quota set. ARGV: window ms, rate limit, now ms, max jobs, job id, deadline ms, job
 *  record prefix. Returns {count, -1 reserved | -2 not tried (over the rate limit) | unfinished jobs}. */
const ADMIT = `${RATE_HIT_LUA}${RESERVE_SLOT_LUA}
local n = rateHit(KEYS[1], ARGV[1])
if n > tonumber(ARGV[2]) then return {n, -2} end
return {n, reserveSlot(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7])}
`;

export interface Admitted {
  rate: RateState;
  /** reserved; skipped because the request is over its rate limit; or the 429 of a full quota. */
  slot: 'reserved' | 'skipped' | ProblemError;
}

export class Admission {
  private readonly run: (...args: (string | number)[]) => Promise<unknown>;

  constructor(
    redis: Redis,
    private readonly limiter: RateLimiter,
    private readonly quota: JobQuota,
  ) {
    this.run = defineScript(redis, 'mvpAdmitJob', 2, ADMIT);
  }

  /** Counts the request of `key` and takes a slot for `jobId` until its deadline when the count allows. */
  async admit(key: ApiKeyConfig, jobId: string, deadlineMs: number): Promise<Admitted> {
    const w = this.limiter.window(key);
    const { quota, jobRecordPrefix } = this.quota.keys;
    const max = key.max_concurrent_jobs;
    const [count, active] = (await this.run(w.redisKey, quota(key.id), w.windowMs, key.rate_limit, Date.now(), max, jobId, deadlineMs, jobRecordPrefix)) as [number, number];
    return { rate: { key, count, resetS: w.resetS }, slot: active === -1 ? 'reserved' : active === -2 ? 'skipped' : quotaExceeded(key.id, active, max) };
  }
}
