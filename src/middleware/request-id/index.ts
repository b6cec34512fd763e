// A request id for every request: the caller's X-Request-Id when it is a sane token, else a new UUID.
// It is echoed back, put on the request's child logger and copied onto jobs. One access-log line per
// request: info for refusals (4xx), debug otherwise (5xx are logged with their error by onError). The child
// logger is made on first use: a pino child serialises its bindings, and most requests log nothing.
// Every response also gets X-Content-Type-Options: nosniff here, being the first middleware.
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../../../lib/log.js';
import type { AppEnv } from '../../context.js';
import { applyPendingHeaders, NOSNIFF } from '../../response-headers.js';

const SANE = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id');
    const id = given && SANE.test(given) ? given : randomUUID();
    let reqLog: Logger | undefined;
    c.set('requestId', id);
    c.set('log', () => (reqLog ??= log.child({ request_id: id })));
    c.set('responseHeaders', { 'x-request-id': id, 'x-content-type-options': NOSNIFF['x-content-type-options'] });
    const start = performance.now();
    await next();
    applyPendingHeaders(c);
    const status = c.res.status;
    const level = status >= 400 && status < 500 ? 'info' : 'debug';
    if (log.isLevelEnabled(level)) {
      c.get('log')()[level]({ method: c.req.method, path: c.req.path, status, ms: Math.round(performance.now() - start) }, 'request');
    }
  };
}
