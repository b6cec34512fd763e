// Reads a request body with a size cap: 413 from Content-Length before reading, or as soon as the
// streamed bytes pass the cap (chunked uploads). Under @hono/node-server the Node request stream is read
// directly: going through the web Request first builds a web-streams wrapper around it, a measurable
// share of the CPU an accepted job costs. Elsewhere (app.request in tests, a Lambda adapter) the web
// stream is read.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { AppEnv } from '../context.js';
import { ProblemError } from '../problem.js';

const tooLarge = (maxBytes: number): ProblemError =>
  new ProblemError(413, 'request-too-large', 'Request too large', `the request body is larger than ${maxBytes} bytes`);

const aborted = (e: Error): ProblemError =>
  // The client went away mid-body: nobody reads the answer, but it must not count as a server error.
  new ProblemError(400, 'request-aborted', 'Request aborted', `the request body was not received completely (${e.message})`);

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
    throw aborted(e as Error);
  }
  return Buffer.concat(parts, size);
}

/** The Node stream read with its events: an async iterator costs a generator, stream-finished listeners and a
 *  promise per chunk, measurable on a hot path whose bodies are one chunk. Same outcomes as collect(). */
function collectNode(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const settle = (err: ProblemError | null): void => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(parts, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) return void parts.push(chunk);
      settle(tooLarge(maxBytes));
      incoming.resume(); // the rest is read and dropped, so the 413 still reaches the client
    };
    const onEnd = (): void => settle(null);
    const onError = (e: Error): void => settle(aborted(e));
    const onClose = (): void => settle(aborted(new Error('the connection closed')));
    incoming.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

export async function readBody(c: Context<AppEnv>, maxBytes: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && !incoming.readableDidRead) return collectNode(incoming, maxBytes);
  const body = c.req.raw.body;
  if (!body) return Buffer.alloc(0);
  return collect(body as unknown as AsyncIterable<Uint8Array>, maxBytes);
}
