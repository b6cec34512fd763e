// A request id for every request: the caller's X-Request-Id when it is a sane token, else a new UUID.
// It is echoed back, put on the request's child logger and copied onto jobs.
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../../lib/log.js';
import type { AppEnv } from '../context.js';

const SANE = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id');
    const id = given && SANE.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.set('log', log.child({ request_id: id }));
    c.header('x-request-id', id);
    await next();
  };
}
