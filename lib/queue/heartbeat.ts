// Worker heartbeats for readiness: each perception worker, once its model is loaded, refreshes an entry in
// one Redis hash; an entry older than 3 intervals counts as dead. A worker whose Redis connection or event
// loop is stuck stops refreshing, so /readyz notices it even if the process is still up.
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { PerceptionResult } from '../../contracts/result.js';
import { redisKeys } from './keys.js';

export interface WorkerHeartbeat {
  worker_id: string;
  pid: number;
  host: string;
  provider: PerceptionResult['provider'];
  model: PerceptionResult['model'];
  started_at: string;
  at: string;
  expires_at: string;
}

export interface Heartbeat {
  stop(): Promise<void>;
}

export function startHeartbeat(
  redis: Redis,
  prefix: string,
  info: Pick<WorkerHeartbeat, 'worker_id' | 'provider' | 'model'>,
  intervalMs: number,
  /** Beats only while this says the worker consumes: a worker that stopped (e.g. never resumed after a Redis
   *  outage) must drop out of readiness even though its process is alive. */
  consuming: () => boolean = () => true,
): Heartbeat {
  const key = redisKeys(prefix).workers;
  const startedAt = new Date().toISOString();
  const beat = async (): Promise<void> => {
    if (!consuming()) return;
    const now = Date.now();
    const hb: WorkerHeartbeat = {
      ...info,
      pid: process.pid,
      host: os.hostname(),
      started_at: startedAt,
      at: new Date(now).toISOString(),
      expires_at: new Date(now + 3 * intervalMs).toISOString(),
    };
    // A failed beat is not fatal: the entry simply ages out, which is what readiness should see.
    await redis.hset(key, info.worker_id, JSON.stringify(hb)).catch(() => undefined);
  };
  void beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await redis.hdel(key, info.worker_id).catch(() => undefined);
    },
  };
}

/** The heartbeat of `workerId` while it has not expired, else null. */
export async function liveHeartbeat(redis: Redis, prefix: string, workerId: string): Promise<WorkerHeartbeat | null> {
  const raw = await redis.hget(redisKeys(prefix).workers, workerId);
  const hb = raw ? (JSON.parse(raw) as WorkerHeartbeat) : null;
  return hb && Date.parse(hb.expires_at) > Date.now() ? hb : null;
}

/** Workers whose heartbeat has not expired; expired entries are removed. */
export async function listLiveWorkers(redis: Redis, prefix: string): Promise<WorkerHeartbeat[]> {
  const key = redisKeys(prefix).workers;
  const all = await redis.hgetall(key);
  const live: WorkerHeartbeat[] = [];
  const dead: string[] = [];
  for (const [id, raw] of Object.entries(all)) {
    const hb = JSON.parse(raw) as WorkerHeartbeat;
    if (Date.parse(hb.expires_at) > Date.now()) live.push(hb);
    else dead.push(id);
  }
  if (dead.length) await redis.hdel(key, ...dead);
  return live;
}
