// Child processes for the crash and restart tests: real worker processes (tsx) and a private redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { listLiveWorkers } from '../../lib/queue/index.js';
import { redisAnswers } from '../../lib/redis/index.js';
import { until } from './wait.js';

export const TEST_PIPELINE = 'test/support/test-pipeline.ts';

/** Starts `tsx <entry>` with the given environment on top of this one; output goes to the test's stderr when DEBUG_CHILDREN is set. */
export function spawnTs(entry: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: process.env.DEBUG_CHILDREN ? 'inherit' : 'ignore',
  });
}

/** Waits until the perception worker in `child` has a heartbeat (pipeline loaded, consuming). */
export async function waitForWorker(redis: Redis, prefix: string, child: ChildProcess, ms = 30_000): Promise<void> {
  await until(`worker pid ${child.pid} heartbeat`, async () => {
    if (child.exitCode !== null) throw new Error(`worker pid ${child.pid} exited with ${child.exitCode}`);
    return (await listLiveWorkers(redis, prefix)).some((w) => w.pid === child.pid);
  }, ms);
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** A redis-server of our own (AOF with fsync on every write) that the test can kill and restart on the same port and data. */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
    /** AOF fsync policy: `everysec` is Redis's default and what production runs (docs/deploy.md). */
    private readonly fsync: 'always' | 'everysec',
  ) {}

  static async start(fsync: 'always' | 'everysec' = 'always'): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), mkdtempSync(path.join(os.tmpdir(), 'mvp-private-redis-')), fsync);
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    this.child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', this.fsync, '--maxmemory-policy', 'noeviction',
    ], { stdio: 'ignore' });
    await until(`redis-server on ${this.port}`, () => redisAnswers(this.url));
  }

  /** SIGKILL: no shutdown save; only what the AOF already holds survives. */
  async kill(): Promise<void> {
    if (this.child) await stopChild(this.child, 'SIGKILL');
    this.child = null;
  }
}
