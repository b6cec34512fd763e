// Gateway process: `tsx src/server.ts`. Configuration from the environment (lib/config.ts,
// lib/queue/settings.ts). SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish
// (bounded by SHUTDOWN_GRACE_MS), then close Redis and exit.
//
// Slow and broken clients (Node's HTTP server, read here from the environment):
//   REQUEST_TIMEOUT_MS (default 30000): the whole request, headers and body, must arrive within it. This is
//     the body-read deadline: a client announcing Content-Length: 100 and sending 4 bytes gets 408 then.
//     Waiting after the body (Prefer: wait) does not count. 0 turns it off.
//   HEADERS_TIMEOUT_MS (default 10000, at most REQUEST_TIMEOUT_MS): the headers must arrive within it.
//   MAX_HEADER_BYTES (default 16384): larger request headers are 431.
// Requests that never reach the app (timeouts, oversized headers, unparseable HTTP) are answered as
// problem+json from the 'clientError' event, like every other error; Node would send a bare status line.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { serve } from '@hono/node-server';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { loadQueueSettings } from '../lib/queue/index.js';
import { createApp } from './app.js';
import { openGatewayDeps } from './deps.js';
import { NOSNIFF } from './response-headers.js';

/** A non-negative integer from the environment, or `fallback` when unset. */
function envMs(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

const config = loadConfig();
const log = createLogger({ name: 'gateway', level: config.logLevel });
const graceMs = envMs('SHUTDOWN_GRACE_MS', 25_000);
const requestTimeoutMs = envMs('REQUEST_TIMEOUT_MS', 30_000);
// Node refuses a headers timeout longer than the request timeout.
const headersTimeoutMs = requestTimeoutMs > 0 ? Math.min(envMs('HEADERS_TIMEOUT_MS', 10_000), requestTimeoutMs) : envMs('HEADERS_TIMEOUT_MS', 10_000);
const maxHeaderBytes = envMs('MAX_HEADER_BYTES', 16 * 1024);
// Node checks both timeouts on this interval (its default, 30 s, would let a slow request run ~30 s over):
// a quarter of the shorter one, 50 ms to 1 s.
const shortestMs = Math.min(...[requestTimeoutMs, headersTimeoutMs].filter((t) => t > 0), 4000);
const checkEveryMs = Math.max(50, Math.floor(shortestMs / 4));

const gateway = openGatewayDeps({ config, settings: loadQueueSettings(), log });
const app = createApp(gateway.deps);

const server = serve(
  {
    fetch: app.fetch,
    port: config.port,
    hostname: config.host,
    serverOptions: {
      requestTimeout: requestTimeoutMs,
      headersTimeout: headersTimeoutMs,
      connectionsCheckingInterval: checkEveryMs,
      maxHeaderSize: maxHeaderBytes,
    },
  },
  (info) => {
    log.info({ port: info.port, host: config.host, storage: config.storage.driver, keys: config.apiKeys.length, requestTimeoutMs, headersTimeoutMs }, 'gateway listening');
  },
);

/** A complete HTTP/1.1 problem+json response, written straight to the socket, that closes the connection. */
function rawProblem(status: number, slug: string, title: string, detail: string): string {
  const body = JSON.stringify({ type: `/problems/${slug}`, title, status, detail });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/problem+json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-content-type-options: ${NOSNIFF['x-content-type-options']}\r\nconnection: close\r\n\r\n${body}`
  );
}

function clientErrorResponse(code: string | undefined): string {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT': // Node's code for both the headers and the request timeout
      return rawProblem(408, 'request-timeout', 'Request timeout',
        `the request was not received in time (headers within ${headersTimeoutMs} ms, the whole request within ${requestTimeoutMs} ms)`);
    case 'HPE_HEADER_OVERFLOW':
      return rawProblem(431, 'request-header-fields-too-large', 'Request header fields too large',
        `the request's headers are larger than ${maxHeaderBytes} bytes`);
    default:
      return rawProblem(400, 'malformed-http', 'Malformed HTTP request', 'the request is not valid HTTP/1.1');
  }
}

// With a 'clientError' listener Node writes nothing itself: the listener answers and closes the socket.
server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  // A reset connection has nobody to answer; a response already under way cannot be replaced.
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  log.info({ code: err.code }, 'client error: answered without reaching the app');
  socket.end(clientErrorResponse(err.code));
  // A client that never closes its side must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
});

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: draining in-flight requests');
  const force = setTimeout(() => {
    log.warn({ graceMs }, 'grace period over: closing remaining connections');
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  }, graceMs);
  force.unref();
  server.close(async () => {
    await gateway.close();
    log.info('gateway stopped');
    process.exit(0);
  });
  (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
