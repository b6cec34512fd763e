// Headers decided before the response exists (the request id, the rate-limit state) are kept as a plain
// object instead of Hono's c.header(): that makes a Web Headers object, and every set on it, the response
// built from it and @hono/node-server's conversion back to a Node header record cost CPU on every request.
// A route on the hot path builds its response with them (jsonWithHeaders: @hono/node-server writes a plain
// header record as it is); for any other response request-id.ts adds them once the response exists.
import type { Context } from 'hono';
import type { AppEnv } from './context.js';

/** On every response (the raw ones server.ts writes for unparseable requests too): browsers must not guess a
 *  content type other than the one sent, e.g. run a problem+json or a PNG as a script or page. */
export const NOSNIFF = { 'x-content-type-options': 'nosniff' } as const;

export function setResponseHeader(c: Context<AppEnv>, name: string, value: string): void {
  c.get('responseHeaders')![name] = value;
}

/** A JSON response carrying the pending headers and `headers`; nothing is left for request-id.ts to add. */
export function jsonWithHeaders(c: Context<AppEnv>, body: unknown, status: number, headers: Record<string, string>): Response {
  const pending = c.get('responseHeaders');
  c.set('responseHeaders', undefined);
  return new Response(JSON.stringify(body), { status, headers: { ...pending, ...headers, 'content-type': 'application/json' } });
}

/** Adds the headers no route took onto the finished response. */
export function applyPendingHeaders(c: Context<AppEnv>): void {
  const pending = c.get('responseHeaders');
  if (!pending) return;
  const headers = c.res.headers;
  for (const name in pending) headers.set(name, pending[name]!);
}
