// Container health check (Docker HEALTHCHECK, compose, ECS). Plain JS so it runs in every image without a
// build step or curl.
//   node docker/healthcheck.mjs gateway   GET http://127.0.0.1:$PORT/healthz answers 200
//   node docker/healthcheck.mjs worker    a perception worker on this host has a fresh heartbeat in Redis
//                                         (written only once its model is loaded; it stops when the event
//                                         loop or the Redis connection is stuck: lib/queue/heartbeat.ts)
//   node docker/healthcheck.mjs redis     Redis answers PING (webhook sender: it has no heartbeat)
// Exit 0 healthy, 1 unhealthy, with one line saying why.
import os from 'node:os';

const TIMEOUT_MS = 4_000;
const mode = process.argv[2];

function done(ok, why) {
  (ok ? console.log : console.error)(`${mode}: ${why}`);
  process.exit(ok ? 0 : 1);
}

async function withRedis(fn) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
    lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: TIMEOUT_MS, retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

async function check() {
  switch (mode) {
    case 'gateway': {
      const port = process.env.PORT ?? '8080';
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      return done(res.status === 200, `/healthz answered ${res.status}`);
    }
    case 'worker': {
      const prefix = process.env.QUEUE_PREFIX ?? 'mvp';
      const host = os.hostname();
      const beats = await withRedis((r) => r.hgetall(`${prefix}:workers`));
      const mine = Object.values(beats).map((v) => JSON.parse(v)).filter((b) => b.host === host);
      const fresh = mine.filter((b) => Date.parse(b.expires_at) > Date.now());
      return done(fresh.length > 0, fresh.length ? `${fresh.length} live worker(s) on ${host} (${fresh.map((b) => b.provider).join(', ')})` : `no fresh heartbeat from ${host}`);
    }
    case 'redis':
      return done((await withRedis((r) => r.ping())) === 'PONG', 'redis answered PING');
    default:
      return done(false, 'usage: healthcheck.mjs gateway|worker|redis');
  }
}

check().catch((e) => done(false, e.message));
