// src/server.ts as a process, on a free loopback port, against the test Redis and the test S3 server (a new
// bucket, created here): the real HTTP server with its timeouts and client-error answers, for tests that need a
// real socket (slow or broken clients) or an outside tool (schemathesis).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { hashApiKey } from '../../lib/config.js';
import { freePort } from './processes.js';
import { openTestBucket, s3Env } from './s3.js';

export interface GatewayProcess {
  port: number;
  base: string;
  /** A key the gateway accepts (id `p`). */
  apiKey: string;
  /** The environment it runs with (Redis, queue prefix, bucket, keys): a worker started with it serves its jobs. */
  env: Record<string, string>;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function startGateway(env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const apiKey = `sk-p-${randomBytes(8).toString('hex')}`;
  const bucket = `gwp-${randomBytes(5).toString('hex')}`;
  await openTestBucket(bucket);
  const shared: Record<string, string> = {
    ...s3Env(bucket),
    REDIS_URL: process.env.TEST_REDIS_URL!,
    QUEUE_PREFIX: `gwp${port}`,
    API_KEYS: JSON.stringify([{ id: 'p', key_sha256: hashApiKey(apiKey), webhook_secret: 'whsec_cHBwcHBwcHBwcHBwcHBwcA==', rate_limit: 1_000_000, max_concurrent_jobs: 100_000 }]),
    LOG_LEVEL: 'info',
    ...env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, ...shared, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Up once /healthz answers (whatever LOG_LEVEL says).
  const answers = (): Promise<boolean> => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
  let up = false;
  for (let i = 0; i < 600 && !up && child.exitCode === null; i++) {
    up = await answers();
    if (!up) await new Promise((r) => setTimeout(r, 100));
  }
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`the gateway did not start:\n${out}`);
  }
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    apiKey,
    env: shared,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Writes `request` (raw bytes) on a new connection and resolves with everything the server sent until it
 *  closed the connection, and how long that took. */
export function rawExchange(port: number, request: string | Buffer, ms = 20_000): Promise<{ response: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let response = '';
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${ms} ms; got ${JSON.stringify(response)}`));
    }, ms);
    s.on('data', (d) => (response += d.toString('latin1')));
    s.on('error', () => undefined); // a reset after the answer still resolves on close
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ response, ms: Date.now() - t0 });
    });
  });
}

/** The status, lower-cased headers and body of a raw HTTP/1.1 response. */
export function parseRaw(response: string): { status: number; headers: Record<string, string>; body: string } {
  const at = response.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = response.slice(0, at).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: response.slice(at + 4) };
}
