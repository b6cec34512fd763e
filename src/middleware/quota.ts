// Concurrent-job quota per API key. A sorted set holds the key's unfinished job ids scored by their
// deadline. Reserving prunes members whose deadline passed or whose job record (lib/queue/job-record.ts,
// `${prefix}:job:${id}`, field `status`) is terminal, then adds the new id if there is room — one script,
// so concurrent submits cannot overshoot, and nothing has to remember to release a slot. A member without
// a record is a reservation whose job is still being created (or whose create failed and released it; a
// gateway that died in between leaves it until its deadline), so it still counts.
import type { Redis } from 'ioredis';
import { defineScript, TERMINAL_STATUSES } from '../../lib/queue/index.js';
import { ProblemError } from './problem.js';

const RESERVE = `
local key, now, max, id, deadline, jobPrefix = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local terminal = { ${TERMINAL_STATUSES.map((s) => `['${s}'] = true`).join(', ')} }
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local n = redis.call('ZCARD', key)
if n >= max then
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local s = redis.call('HGET', jobPrefix .. member, 'status')
    if s and terminal[s] then
      redis.call('ZREM', key, member)
      n = n - 1
    end
  end
end
if n >= max then return n end
redis.call('ZADD', key, deadline, id)
redis.call('PEXPIREAT', key, redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
return -1
`;

export interface QuotaKeys {
  quota: (keyId: string) => string;
  /** Prefix of job record hashes: `${prefix}:job:`. */
  jobRecordPrefix: string;
}

export class JobQuota {
  private readonly run: (...args: (string | number)[]) => Promise<unknown>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: QuotaKeys,
  ) {
    // Defined when the app is built: a command defined while an auto-pipeline is open would miss it.
    this.run = defineScript(redis, 'mvpReserveJobSlot', 1, RESERVE);
  }

  /** Takes a slot for `jobId` until its deadline, or throws 429 when the key has `max` unfinished jobs. */
  async reserve(keyId: string, jobId: string, max: number, deadlineMs: number): Promise<void> {
    const active = (await this.run(this.keys.quota(keyId), Date.now(), max, jobId, deadlineMs, this.keys.jobRecordPrefix)) as number;
    if (active >= 0) {
      throw new ProblemError(429, 'job-quota-exceeded', 'Too many unfinished jobs',
        `key ${keyId} has ${active} queued or running jobs, the most it may have at once is ${max}; retry when one finishes`,
        undefined, { 'retry-after': '1' });
    }
  }

  /** Gives a slot back when its job was never created (a failure after the reservation). */
  async release(keyId: string, jobId: string): Promise<void> {
    await this.redis.zrem(this.keys.quota(keyId), jobId);
  }
}
