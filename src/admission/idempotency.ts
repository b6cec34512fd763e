// Idempotency-Key (IETF draft httpapi-idempotency-key-header): per API key, the request that creates a job
// remembers the key with a fingerprint of its (validated) body, in the same script run that creates the job
// (submitJob-13.lua). A repeat with the same fingerprint gets the same job, with a different one 422. Creation
// is atomic, so there is no "still being created" state in which a repeat would get 409.
import type { Admission } from '../../lib/queue/index.js';
import { ProblemError } from '../problem.js';

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_S = 24 * 3600;
const SANE_KEY = /^[\x21-\x7e]{1,255}$/;

export function parseIdempotencyKey(header: string | undefined): string | null {
  if (header === undefined) return null;
  // Structured-field string form ("abc") or a bare token.
  const key = header.startsWith('"') && header.endsWith('"') && header.length >= 2 ? header.slice(1, -1) : header;
  if (!SANE_KEY.test(key)) {
    throw new ProblemError(400, 'invalid-idempotency-key', 'Invalid Idempotency-Key',
      'Idempotency-Key must be 1-255 visible ASCII characters');
  }
  return key;
}

export class Idempotency {
  constructor(private readonly prefix: string) {}

  private redisKey(keyId: string, idemKey: string): string {
    return `${this.prefix}:idem:${keyId}:${idemKey}`;
  }

  /** What the submit script remembers for a job created with `idemKey`. */
  admission(keyId: string, idemKey: string, fingerprint: string, jobId: string): NonNullable<Admission['idempotency']> {
    return { key: this.redisKey(keyId, idemKey), value: JSON.stringify({ fp: fingerprint, job: jobId }), ttlS: IDEMPOTENCY_TTL_S };
  }

  /** The job to replay for a repeat whose key holds `stored`; 422 when the body differs. */
  replayOf(stored: string, fingerprint: string): string {
    const prior = JSON.parse(stored) as { fp: string; job: string };
    if (prior.fp !== fingerprint) {
      throw new ProblemError(422, 'idempotency-key-reused', 'Idempotency-Key reused',
        'this Idempotency-Key was used with a different request body');
    }
    return prior.job;
  }
}
