// Reads a request body with a size cap: 413 from Content-Length before reading, or as soon as the
// streamed bytes pass the cap (chunked uploads). Under @hono/node-server the Node request stream is read
// directly: going through the web Request first builds a web-streams wrapper around it, a measurable
// share of the CPU an accepted job costs. Elsewhere (app.request in tests, a Lambda adapter) the web
// stream is read.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { AppEnv } from '../context.js';
import { ProblemError } from '../middleware/problem.js';

const tooLarge = (maxBytes: number): ProblemError =>
  new ProblemError(413, 'request-too-large', 'Request too large', `the request body is larger than ${maxBytes} bytes`);

async function collect(chunks: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of chunks) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(maxBytes);
      parts.push(chunk);
    }
  } catch (e) {
    if (e instanceof ProblemError) throw e;
    // The client went away mid-body: nobody reads the answer, but it must not count as a server error.
    throw new ProblemError(400, 'request-aborted', 'Request aborted', `the request body was not received completely (${(e as Error).message})`);
  }
  return Buffer.concat(parts, size);
}

export async function readBody(c: Context<AppEnv>, maxBytes: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && !incoming.readableDidRead) return collect(incoming, maxBytes);
  const body = c.req.raw.body;
  if (!body) return Buffer.alloc(0);
  return collect(body as unknown as AsyncIterable<Uint8Array>, maxBytes);
}
