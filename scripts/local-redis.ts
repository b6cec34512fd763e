// Makes sure a Redis answers at a loopback URL for local runs (npm run dev, benchmarks): if none does, starts
// redis-server there with the production settings (AOF, noeviction) and its data under `dataDir`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { redisAnswers } from '../lib/redis/index.js';


export interface LocalRedis {
  url: string;
  /** The redis-server we started, or null when one was already running. */
  child: ChildProcess | null;
  stop(): Promise<void>;
}

export async function ensureLocalRedis(url: string, dataDir: string): Promise<LocalRedis> {
  if (await redisAnswers(url)) return { url, child: null, stop: async () => {} };
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
    throw new Error(`no Redis answers at ${url}, and it is not a loopback address this script could start one on`);
  }
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', u.port || '6379', '--bind', '127.0.0.1', '--dir', path.resolve(dataDir), '--save', '',
      '--appendonly', 'yes', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new Error(`could not start redis-server (is it installed? apt-get install redis-server): ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} (port ${u.port || 6379} in use?)`)));
  });
  const ready = (async () => {
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      if (await redisAnswers(url)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`redis-server did not answer at ${url} within 15 s`);
  })();
  await Promise.race([ready, failed]);
  failed.catch(() => undefined);
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
