// Starts the real services the integration tests need when they are not already running:
// a Redis server (noeviction + AOF, as in production) and an S3-protocol server (moto) on loopback.
// .ci/run starts them itself; this lets `npm test` work on a developer machine too.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const REDIS_PORT = Number(process.env.TEST_REDIS_PORT ?? 6390);
const S3_PORT = Number(process.env.TEST_S3_PORT ?? 9010);
const children: ChildProcess[] = [];

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function waitFor(port: number, what: string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await reachable(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start on 127.0.0.1:${port} within ${ms} ms`);
}

function motoServer(): string {
  const venv = path.resolve('.venv/bin/moto_server');
  return existsSync(venv) ? venv : 'moto_server';
}

export async function setup(): Promise<void> {
  if (!(await reachable(REDIS_PORT))) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mvp-redis-'));
    children.push(spawn('redis-server', [
      '--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--maxmemory-policy', 'noeviction', '--dir', dir,
    ], { stdio: 'ignore' }));
    await waitFor(REDIS_PORT, 'redis-server');
  }
  if (!(await reachable(S3_PORT))) {
    children.push(spawn(motoServer(), ['-H', '127.0.0.1', '-p', String(S3_PORT)], { stdio: 'ignore' }));
    await waitFor(S3_PORT, 'moto_server (S3)');
  }
  process.env.TEST_REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;
  process.env.TEST_S3_ENDPOINT = `http://127.0.0.1:${S3_PORT}`;
}

export async function teardown(): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
}
