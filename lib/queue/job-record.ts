// The job record: one Redis hash per job, the single source of the job's user-visible state.
// Scalars are stored as strings, structured fields as JSON. Status changes go through the Lua scripts in
// scripts.ts, which check the current status first, so concurrent writers (gateway cancel, a worker, a
// second worker after a stall) cannot move a job backwards or finish it twice.
import type { JobPayload, Stage } from '../../contracts/job.js';
import type { JobStatus, JobView } from '../../contracts/job-view.js';
import { WebhookAttempt } from '../../contracts/webhook.js';

export type RecordFields = Record<string, string>;

/** What a job was asked to do, as its view shows it. */
function jobInput(payload: JobPayload): JobView['input'] {
  const { content_type, width, height, bytes } = payload.image;
  return { image: { content_type, width, height, bytes }, tasks: payload.tasks, caption: payload.caption };
}

export function newRecordFields(payload: JobPayload): RecordFields {
  const fields: RecordFields = {
    id: payload.job_id,
    key_id: payload.key_id,
    request_id: payload.request_id,
    status: 'queued',
    progress: '0',
    attempts: '0',
    created_at: payload.created_at,
    deadline_at: payload.deadline_at,
    input: JSON.stringify(jobInput(payload)),
  };
  if (payload.webhook) fields.webhook = JSON.stringify(payload.webhook);
  if (payload.metadata) fields.metadata = JSON.stringify(payload.metadata);
  return fields;
}

/** The view of the record newRecordFields(payload) writes, built without reading it back. */
export function newJobView(payload: JobPayload): JobView {
  return {
    id: payload.job_id,
    key_id: payload.key_id,
    request_id: payload.request_id,
    status: 'queued',
    stage: null,
    progress: 0,
    created_at: payload.created_at,
    started_at: null,
    finished_at: null,
    deadline_at: payload.deadline_at,
    cancel_requested: false,
    attempts: 0,
    retry: null,
    timings_ms: {},
    error: null,
    result_key: null,
    result: null,
    model: null,
    provider: null,
    input: jobInput(payload),
    webhook: payload.webhook ? { url: payload.webhook.url, events: payload.webhook.events, attempts: [] } : null,
    metadata: payload.metadata ?? null,
  };
}

function json<T>(fields: RecordFields, name: string): T | null {
  const raw = fields[name];
  if (raw === undefined || raw === '') return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new Error(`job record ${fields.id ?? '?'}: field "${name}" is not valid JSON`);
  }
}

/** Redis replies HGETALL as a flat [field, value, ...] array inside Lua results. */
export function pairsToFields(flat: string[]): RecordFields {
  const fields: RecordFields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

export function recordToView(fields: RecordFields, attemptsJson: string[]): JobView {
  const webhook = json<{ url: string; events: NonNullable<JobView['webhook']>['events'] }>(fields, 'webhook');
  return {
    id: fields.id!,
    key_id: fields.key_id!,
    request_id: fields.request_id ?? '',
    status: fields.status as JobStatus,
    stage: (fields.stage as Stage | undefined) ?? null,
    progress: Number(fields.progress ?? 0),
    created_at: fields.created_at!,
    started_at: fields.started_at ?? null,
    finished_at: fields.finished_at ?? null,
    deadline_at: fields.deadline_at!,
    cancel_requested: fields.cancel_requested === '1',
    attempts: Number(fields.attempts ?? 0),
    retry: json(fields, 'retry'),
    timings_ms: json(fields, 'timings_ms') ?? {},
    error: json(fields, 'error'),
    result_key: fields.result_key ?? null,
    result: json(fields, 'result'),
    model: json(fields, 'model'),
    provider: (fields.provider as JobView['provider'] | undefined) ?? null,
    input: json(fields, 'input')!,
    webhook: webhook
      ? {
          url: webhook.url,
          events: webhook.events,
          attempts: attemptsJson.map((a) => WebhookAttempt.parse(JSON.parse(a))),
        }
      : null,
    metadata: json(fields, 'metadata'),
  };
}
