// What the gateway and the workers import from the queue layer.
export { createQueues, type Queues } from './queues.js';
export { loadQueueSettings, type QueueSettings } from './settings.js';
export { JobExistsError, type Admission, type Jobs, type Submitted } from './jobs.js';
export type { JobLifecycle, StopReason, SucceededOutcome } from './lifecycle.js';
export type { JobEventHook, Transitioned } from './transitions.js';
export { listLiveWorkers, startHeartbeat, type WorkerHeartbeat } from './heartbeat.js';
export { redisKeys } from './keys.js';
export { openQueueRuntime, queueOptions, type QueueRuntime } from './runtime.js';
