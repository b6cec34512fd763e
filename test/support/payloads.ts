// Valid job payloads for the lifecycle tests (what the gateway would enqueue after validation).
import { randomUUID } from 'node:crypto';
import { JOB_SCHEMA_VERSION, JobPayload } from '../../contracts/job.js';
import type { PerceptionResult } from '../../contracts/result.js';
import type { WebhookEvent } from '../../contracts/webhook.js';
import type { z } from 'zod';

export function newJobId(): string {
  return `job_${randomUUID().replaceAll('-', '')}`;
}

export function makePayload(
  over: {
    job_id?: string;
    deadlineMs?: number;
    webhook?: { url: string; events: WebhookEvent[] };
    metadata?: Record<string, string>;
    phrases?: string[];
  } = {},
): JobPayload {
  const id = over.job_id ?? newJobId();
  const now = Date.now();
  return JobPayload.parse({
    v: JOB_SCHEMA_VERSION,
    job_id: id,
    key_id: 'test-key',
    request_id: `req_${id}`,
    image: { storage_key: `jobs/${id}/input`, content_type: 'image/png', width: 64, height: 48, bytes: 1234 },
    tasks: [{ type: 'words', phrases: over.phrases ?? ['person', 'dog'], mode: 'instance' }],
    caption: true,
    created_at: new Date(now).toISOString(),
    deadline_at: new Date(now + (over.deadlineMs ?? 60_000)).toISOString(),
    webhook: over.webhook,
    metadata: over.metadata,
  });
}

/** Puts a test image where the gateway would and creates the job, as POST /v1/perceive does. */
export async function submit(
  queue: { submit(p: JobPayload): Promise<unknown> },
  blobs: { put(key: string, body: Buffer, contentType: string): Promise<void> },
  image: Buffer,
  over: Parameters<typeof makePayload>[0] = {},
): Promise<JobPayload> {
  const p = makePayload(over);
  await blobs.put(p.image.storage_key, image, 'image/png');
  await queue.submit(p);
  return p;
}

/** A schema-valid result with no tasks, for tests that finish a job the way a worker does. */
export const emptyResult = (jobId: string): PerceptionResult => ({
  schema_version: '1',
  job_id: jobId,
  model: { name: 'm', version: '1', variant: 'paper' },
  provider: 'cpu',
  image: { width: 4, height: 4 },
  caption: null,
  tasks: [],
  timings_ms: {},
});
