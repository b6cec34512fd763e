// Every Redis script the service runs, each with the one function that lays out its KEYS and ARGV from named
// fields (the .lua file's header documents the same positions). One runner: each script is an ioredis
// command, defined once per client, sent as EVALSHA after its first use on a connection (ioredis falls back
// to EVAL by itself when Redis lost its script cache, e.g. after a restart).
import type { Redis } from 'ioredis';
import type { BullmqAdd } from './bullmq-add.js';
import { loadLua, type LuaSource } from './lua.js';

type Args = (string | number)[];

export interface ScriptCall {
  keys: string[];
  argv: Args;
}

export interface RedisScript<I> {
  source: LuaSource;
  call(input: I): ScriptCall;
}

const script = <I>(file: string, call: (input: I) => ScriptCall): RedisScript<I> => {
  const source = loadLua(file);
  return {
    source,
    call(input) {
      const c = call(input);
      if (c.keys.length !== source.numberOfKeys) throw new Error(`${file}: ${c.keys.length} keys given, the script takes ${source.numberOfKeys}`);
      return c;
    },
  };
};

/** Runs `s` with `input` on `redis`. */
export function runScript<I>(redis: Redis, s: RedisScript<I>, input: I): Promise<unknown> {
  const { name, numberOfKeys, lua } = s.source;
  const command = `mvp_${name}`;
  const r = redis as Redis & Record<string, (...args: Args) => Promise<unknown>>;
  if (typeof r[command] !== 'function') redis.defineCommand(command, { numberOfKeys, lua });
  const { keys, argv } = s.call(input);
  return r[command]!(...keys, ...argv);
}

/** A job ready to be created: its record and its BullMQ entry (createJob.lua). */
export interface JobCreation {
  recordKey: string;
  /** Seconds the record lives: until the deadline plus retention. */
  ttlS: number;
  /** The record's fields and values, flat. */
  fields: string[];
  bullmq: BullmqAdd;
}

const createJobArgs = (j: JobCreation): ScriptCall => ({
  keys: [j.recordKey, ...j.bullmq.keys],
  argv: [j.ttlS, j.fields.length, ...j.fields, ...j.bullmq.argv],
});

export interface SubmitJobInput {
  rate: { counterKey: string; windowMs: number; limit: number };
  quota: { setKey: string; maxJobs: number; jobRecordPrefix: string };
  /** An Idempotency-Key sent with the request: `value` is remembered under `key` for `ttlS`. */
  idempotency?: { key: string; value: string; ttlS: number };
  jobId: string;
  deadlineMs: number;
  nowMs: number;
  job: JobCreation;
}

export const submitJob = script<SubmitJobInput>('submitJob-13.lua', (i) => {
  const job = createJobArgs(i.job);
  return {
    keys: [i.rate.counterKey, i.quota.setKey, i.idempotency?.key ?? i.quota.setKey, ...job.keys],
    argv: [i.rate.windowMs, i.rate.limit, i.nowMs, i.quota.maxJobs, i.jobId, i.deadlineMs, i.quota.jobRecordPrefix,
      i.idempotency?.value ?? '', i.idempotency?.ttlS ?? 0, ...job.argv],
  };
});

export const rateLimitHit = script<{ counterKey: string; windowMs: number }>('rateLimitHit-1.lua', (i) => ({
  keys: [i.counterKey],
  argv: [i.windowMs],
}));

/** A status change of a job record (transitionJob-3.lua applies it only from one of `from`). */
export interface TransitionSpec {
  from: string[];
  to?: string;
  set?: Record<string, string>;
  setnx?: Record<string, string>;
  incr?: string[];
  ttl?: number;
  /** Channel to publish the job id on (terminal transitions). */
  publish?: string;
  /** Field of the job-outcome counters to increment (metrics.ts). */
  count?: string;
}

export const transitionJob = script<{ recordKey: string; attemptsKey: string; outcomesKey: string; jobId: string; spec: TransitionSpec }>(
  'transitionJob-3.lua',
  (i) => ({ keys: [i.recordKey, i.attemptsKey, i.outcomesKey], argv: [JSON.stringify(i.spec), i.jobId] }),
);

export const appendWebhookAttempt = script<{ recordKey: string; attemptsKey: string; attemptJson: string }>(
  'appendWebhookAttempt-2.lua',
  (i) => ({ keys: [i.recordKey, i.attemptsKey], argv: [i.attemptJson] }),
);
