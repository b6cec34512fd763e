// Idempotency-Key (IETF draft httpapi-idempotency-key-header): per API key, the first request with a key
// claims it together with a fingerprint of its (validated) body. A repeat with the same fingerprint gets
// the same job; with a different one 422; while the first is still being created 409.
import type { Redis } from 'ioredis';
import { ProblemError } from './problem.js';

/** A finished request's key is remembered this long. */
const TTL_S = 24 * 3600;
/** An in-flight claim expires after this, so a gateway that died mid-request does not block the key for a day. */
const PENDING_TTL_S = 60;
const SANE_KEY = /^[\x21-\x7e]{1,255}$/;

export type Claim = { kind: 'new' } | { kind: 'replay'; jobId: string };

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
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(keyId: string, idemKey: string): string {
    return `${this.prefix}:idem:${keyId}:${idemKey}`;
  }

  /** Claims the key for a new job, or says which job an identical earlier request created. */
  async claim(keyId: string, idemKey: string, fingerprint: string, jobId: string): Promise<Claim> {
    const k = this.key(keyId, idemKey);
    const set = await this.redis.set(k, JSON.stringify({ fp: fingerprint, job: jobId, done: false }), 'EX', PENDING_TTL_S, 'NX');
    if (set === 'OK') return { kind: 'new' };
    const raw = await this.redis.get(k);
    if (raw === null) return this.claim(keyId, idemKey, fingerprint, jobId); // released in between: try again
    const prior = JSON.parse(raw) as { fp: string; job: string; done: boolean };
    if (prior.fp !== fingerprint) {
      throw new ProblemError(422, 'idempotency-key-reused', 'Idempotency-Key reused',
        'this Idempotency-Key was used with a different request body');
    }
    if (!prior.done) {
      throw new ProblemError(409, 'idempotency-key-in-flight', 'Request in progress',
        'a request with this Idempotency-Key is still being processed; retry shortly', undefined, { 'retry-after': '1' });
    }
    return { kind: 'replay', jobId: prior.job };
  }

  async complete(keyId: string, idemKey: string, fingerprint: string, jobId: string): Promise<void> {
    await this.redis.set(this.key(keyId, idemKey), JSON.stringify({ fp: fingerprint, job: jobId, done: true }), 'EX', TTL_S);
  }

  /** Frees the key after a failed create so the client's retry is processed afresh. */
  async release(keyId: string, idemKey: string): Promise<void> {
    await this.redis.del(this.key(keyId, idemKey));
  }
}
