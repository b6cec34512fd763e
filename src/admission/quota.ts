// Concurrent-job quota per API key: a sorted set of the key's unfinished job ids scored by deadline, reserved
// in the submit script (lib/redis/lua/includes/reserveSlot.lua), which prunes finished and expired members
// first, so concurrent submits cannot overshoot and nothing has to remember to release a slot.
import type { ApiKeyConfig } from '../../lib/config.js';
import type { Admission } from '../../lib/queue/index.js';
import { ProblemError } from '../problem.js';

export class Quota {
  constructor(
    private readonly prefix: string,
    /** Prefix of job record hashes (lib/queue/keys.ts `job('')`). */
    private readonly jobRecordPrefix: string,
  ) {}

  of(key: ApiKeyConfig): Admission['quota'] {
    return { setKey: `${this.prefix}:quota:${key.id}`, maxJobs: key.max_concurrent_jobs, jobRecordPrefix: this.jobRecordPrefix };
  }
}

/** The 429 for a key that has `active` unfinished jobs of the `max` it may have. */
export const quotaExceeded = (keyId: string, active: number, max: number): ProblemError =>
  new ProblemError(429, 'job-quota-exceeded', 'Too many unfinished jobs',
    `key ${keyId} has ${active} queued or running jobs, the most it may have at once is ${max}; retry when one finishes`,
    undefined, { 'retry-after': '1' });
