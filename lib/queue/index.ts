// What the gateway and the workers import from the queue layer.
export { coalesceWrites, createRedis, redisAnswers, type RedisRole } from './connection.js';
export { createQueues, type Queues } from './queues.js';
export { loadQueueSettings, type QueueSettings } from './settings.js';
export { createJobStore, JobExistsError, type JobStore, type JobStoreOptions, type PreparedJob, type StopReason } from './job-store.js';
export { listLiveWorkers, startHeartbeat, type WorkerHeartbeat } from './heartbeat.js';
export { redisKeys } from './keys.js';
export { openQueueRuntime, type QueueRuntime } from './runtime.js';
export { CREATE_JOB_KEYS, CREATE_JOB_LUA, defineScript } from './scripts.js';
