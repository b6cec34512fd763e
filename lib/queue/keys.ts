// Redis keys outside BullMQ's own, all under the configured prefix.
export const redisKeys = (prefix: string) => ({
  /** Hash: the job record (job-record.ts). */
  job: (id: string) => `${prefix}:job:${id}`,
  /** List of JSON webhook attempts of a job; expires with the record. */
  webhookAttempts: (id: string) => `${prefix}:job:${id}:webhook-attempts`,
  /** Pub/sub channel: a job id is published when its record reaches a terminal status. */
  terminalChannel: `${prefix}:job-terminal`,
  /** Hash: worker id -> heartbeat JSON (heartbeat.ts). */
  workers: `${prefix}:workers`,
  /** Hashes of cluster-wide metric counters (metrics.ts). */
  metricStageDuration: (stage: string) => `${prefix}:metrics:stage-duration:${stage}`,
  metricBatchSize: (stage: string) => `${prefix}:metrics:batch-size:${stage}`,
  metricBatchWait: (stage: string) => `${prefix}:metrics:batch-wait:${stage}`,
  metricWebhookOutcomes: `${prefix}:metrics:webhook-outcomes`,
  metricJobOutcomes: `${prefix}:metrics:job-outcomes`,
});
export type RedisKeys = ReturnType<typeof redisKeys>;
