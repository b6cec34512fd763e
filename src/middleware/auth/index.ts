// Bearer API keys. Keys are configured as SHA-256 hashes; the presented key is hashed and looked up, so
// the plain key is never stored or compared byte by byte.
import type { MiddlewareHandler } from 'hono';
import { hashApiKey, type ApiKeyConfig } from '../../../lib/config.js';
import type { AppEnv } from '../../context.js';
import { ProblemError } from '../../problem.js';

export function auth(keys: readonly ApiKeyConfig[]): MiddlewareHandler<AppEnv> {
  const byHash = new Map(keys.map((k) => [k.key_sha256, k]));
  const unauthorized = (detail: string): ProblemError =>
    new ProblemError(401, 'unauthorized', 'Unauthorized', detail, undefined, { 'www-authenticate': 'Bearer' });
  return async (c, next) => {
    const header = c.req.header('authorization');
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) throw unauthorized('send the API key as "Authorization: Bearer <key>"');
    const key = byHash.get(hashApiKey(m[1]!));
    if (!key) throw unauthorized('the API key is not valid');
    c.set('apiKey', key);
    await next();
  };
}
