// Concurrent-job quota per API key. A sorted set holds the key's unfinished job ids scored by their
// deadline. Reserving prunes members whose deadline passed or whose job record (lib/queue/job-record.ts,
// `${prefix}:job:${id}`, field `status`) is terminal, then adds the new id if there is room — in one script
// (admission.ts, which creates the job in the same run), so concurrent submits cannot overshoot, and nothing
// has to remember to release a slot.
import { TERMINAL_STATUSES } from '../../contracts/job-view.js';
import { ProblemError } from './problem.js';

/** Lua: reserves a slot for `id` until `deadline` (ms) in the set `key`; -1 when reserved, else the count
 *  of unfinished jobs that left no room. */
export const RESERVE_SLOT_LUA = `
local terminalStatus = { ${TERMINAL_STATUSES.map((s) => `['${s}'] = true`).join(', ')} }
local function reserveSlot(key, now, max, id, deadline, jobPrefix)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local n = redis.call('ZCARD', key)
  if n >= max then
    for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local s = redis.call('HGET', jobPrefix .. member, 'status')
      if s and terminalStatus[s] then
        redis.call('ZREM', key, member)
        n = n - 1
      end
    end
  end
  if n >= max then return n end
  redis.call('ZADD', key, deadline, id)
  redis.call('PEXPIREAT', key, redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  return -1
end
`;

export interface QuotaKeys {
  quota: (keyId: string) => string;
  /** Prefix of job record hashes: `${prefix}:job:`. */
  jobRecordPrefix: string;
}

/** The 429 for a key that has `active` unfinished jobs of the `max` it may have. */
export const quotaExceeded = (keyId: string, active: number, max: number): ProblemError =>
  new ProblemError(429, 'job-quota-exceeded', 'Too many unfinished jobs',
    `key ${keyId} has ${active} queued or running jobs, the most it may have at once is ${max}; retry when one finishes`,
    undefined, { 'retry-after': '1' });
