// RFC 9457 problem details: every error the gateway answers is application/problem+json, with one JSON
// pointer per invalid field in `errors`. Handlers throw ProblemError; onError turns anything else into 500.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import type { Problem } from '../contracts/problem.js';
import { isDependencyOutage } from '../lib/outage.js';
import type { AppEnv } from './context.js';

export type FieldError = { pointer: string; detail: string };

export class ProblemError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly slug: string,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? title);
  }

  toProblem(instance?: string): Problem {
    return {
      type: `/problems/${this.slug}`,
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...(instance ? { instance } : {}),
      ...(this.errors?.length ? { errors: this.errors } : {}),
    };
  }
}

/** Shorthand for the common 422 with one pointer. */
export const invalidField = (pointer: string, detail: string, slug = 'invalid-request'): ProblemError =>
  new ProblemError(422, slug, 'Invalid request', detail, [{ pointer, detail }]);

const escapeToken = (t: string | number | symbol): string => String(t).replace(/~/g, '~0').replace(/\//g, '~1');

export function jsonPointer(path: readonly PropertyKey[]): string {
  return path.map((p) => `/${escapeToken(p)}`).join('');
}

/** One pointer per zod issue; unknown keys get one pointer each. `base` prefixes them (e.g. a multipart field). */
export function zodFieldErrors(error: z.ZodError, base = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const at = base + jsonPointer(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ pointer: `${at}/${escapeToken(k)}`, detail: 'unknown field' });
    } else {
      out.push({ pointer: at, detail: issue.message });
    }
  }
  return out;
}

/** The top-level `detail` of a problem with field errors: as specific as the pointers' (one error: its pointer
 *  and detail; several: each of them, the first few in full). */
export function summarizeFieldErrors(errors: readonly FieldError[], max = 3): string {
  const shown = errors.slice(0, max).map((e) => (e.pointer ? `${e.pointer}: ${e.detail}` : e.detail));
  const more = errors.length > max ? `; and ${errors.length - max} more (see errors)` : '';
  return `${shown.join('; ')}${more}`;
}

export const validationProblem = (error: z.ZodError, base = ''): ProblemError => {
  const errors = zodFieldErrors(error, base);
  return new ProblemError(422, 'invalid-request', 'Invalid request', errors.length ? summarizeFieldErrors(errors) : 'the request body does not match the schema', errors);
};

export function problemResponse(c: Context<AppEnv>, p: ProblemError): Response {
  const body = JSON.stringify(p.toProblem(c.var.requestId ? `urn:request:${c.var.requestId}` : undefined));
  return c.body(body, p.status, { ...p.headers, 'content-type': 'application/problem+json' });
}

export function onError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof ProblemError) return problemResponse(c, err);
  if (isDependencyOutage(err)) {
    (c.var.log?.() ?? console).warn({ err }, 'dependency unavailable');
    return problemResponse(c, new ProblemError(503, 'unavailable', 'Service unavailable',
      'a backing service (Redis or storage) did not answer; retry shortly', undefined, { 'retry-after': '2' }));
  }
  // Hono's own HTTP errors (e.g. a malformed body) carry a status; anything else is a bug or an outage.
  const status = (err as { status?: number }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return problemResponse(c, new ProblemError(status as ContentfulStatusCode, 'bad-request', 'Bad request', err.message));
  }
  (c.var.log?.() ?? console).error({ err }, 'unhandled error');
  return problemResponse(c, new ProblemError(500, 'internal', 'Internal server error', 'the request could not be completed'));
}

export const notFound = (c: Context<AppEnv>): Response =>
  problemResponse(c, new ProblemError(404, 'not-found', 'Not found', `no route for ${c.req.method} ${c.req.path}`));
