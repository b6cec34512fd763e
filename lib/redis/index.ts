// Redis connections and the scripts the service runs (one .lua file each under lua/).
export { coalesceWrites, createRedis, redisAnswers, type RedisRole } from './connection.js';
export { rateLimitHit, runScript } from './scripts.js';
