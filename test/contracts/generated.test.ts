// The generated contract files (contracts/schema/*.json, workers/pipeline/manifest.generated.ts) are what
// scripts/contracts.ts writes now, and the JSON Schemas say what the zod contracts say on real documents.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobView } from '../../contracts/job-view.js';
import { PerceptionResult, RESULT_SCHEMA_VERSION } from '../../contracts/result.js';
import { Task } from '../../contracts/task.js';
import { encodeRle } from '../../workers/pipeline/rle.js';
import { generateContracts, ROOT, SCHEMA_DIR, SCHEMAS, schemaFile } from '../../scripts/contracts.js';
import { makePayload } from '../support/payloads.js';

const readSchema = (name: string): Record<string, unknown> => {
  const spec = SCHEMAS.find((s) => s.name === name)!;
  return JSON.parse(readFileSync(path.join(ROOT, schemaFile(spec)), 'utf8'));
};

function validator(name: string) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(readSchema(name));
}

describe('generated contract files', () => {
  let generated: Record<string, string>;
  beforeAll(async () => {
    generated = await generateContracts();
  });

  it('are current (run npm run contracts after changing contracts/ or model/manifest.schema.json)', () => {
    expect(Object.keys(generated).length).toBe(SCHEMAS.length + 1);
    for (const [rel, content] of Object.entries(generated)) {
      const file = path.join(ROOT, rel);
      expect(existsSync(file), `${rel} is missing: run npm run contracts`).toBe(true);
      expect(readFileSync(file, 'utf8'), `${rel} differs from what scripts/contracts.ts generates: run npm run contracts`)
        .toBe(content);
    }
  });

  it('are deterministic', async () => {
    expect(await generateContracts()).toEqual(generated);
  });

  it('keep only current schemas and earlier versions of them in contracts/schema', () => {
    for (const file of readdirSync(path.join(ROOT, SCHEMA_DIR))) {
      const rel = `${SCHEMA_DIR}/${file}`;
      if (rel in generated) continue;
      const m = /^(.+)\.v(\d+)\.json$/.exec(file);
      const spec = m && SCHEMAS.find((s) => s.name === m[1]);
      expect(spec && Number(m[2]) < Number(spec.version), `${rel} is neither generated nor an earlier version of a contract`)
        .toBe(true);
    }
  });

  it('are valid draft 2020-12 schemas that ajv compiles in strict mode', () => {
    for (const spec of SCHEMAS) expect(() => validator(spec.name), spec.name).not.toThrow();
  });
});

/** A result document as a worker writes it: one words task with a detection carrying a box and an RLE mask. */
function realResult(): Record<string, unknown> {
  const mask = { height: 4, width: 6, data: new Uint8Array(24) };
  for (const [x, y] of [[1, 1], [2, 1], [1, 2], [2, 2]] as const) mask.data[y * 6 + x] = 1;
  return {
    schema_version: RESULT_SCHEMA_VERSION,
    job_id: 'job_0123456789abcdef',
    model: { name: 'mvp-lm-tiny', version: '0.1.0', variant: 'paper' },
    provider: 'cpu',
    image: { width: 6, height: 4 },
    caption: 'a red square',
    tasks: [
      {
        task_index: 0,
        type: 'words',
        mode: 'instance',
        detections: [
          { phrase_index: 0, phrase: 'red square', score: 0.91, box: [1, 1, 3, 3], mask: encodeRle(mask), area: 4 },
        ],
      },
      { task_index: 1, type: 'sentence', mode: 'multi', detections: [], no_target: true },
    ],
    timings_ms: { preprocess: 1.5, vision: 12.25, postprocess: 0.5 },
  };
}

describe('result.v1.json', () => {
  const validate = validator('result');

  it('accepts a real result document (and zod agrees)', () => {
    const doc = realResult();
    expect(PerceptionResult.parse(doc)).toEqual(doc);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
  });

  it('refuses unknown fields, at the top and inside a detection, as zod does', () => {
    const top = { ...realResult(), extra: 1 };
    const doc = realResult();
    const task = (doc.tasks as { detections: Record<string, unknown>[] }[])[0]!;
    task.detections[0]!.label = 'cat';
    for (const bad of [top, doc]) {
      expect(validate(bad)).toBe(false);
      expect(validate.errors?.[0]?.keyword).toBe('additionalProperties');
      expect(PerceptionResult.safeParse(bad).success).toBe(false);
    }
  });

  it('refuses a box that is not four numbers and another schema version', () => {
    const doc = realResult();
    (doc.tasks as { detections: Record<string, unknown>[] }[])[0]!.detections[0]!.box = [1, 1, 3];
    expect(validate(doc)).toBe(false);
    expect(validate({ ...realResult(), schema_version: '2' })).toBe(false);
  });
});

describe('task.v1.json', () => {
  it('lists the defaults zod applies', () => {
    const schema = readSchema('task') as { oneOf: { properties: Record<string, { const?: string; default?: unknown }> }[] };
    const defaults = (type: string) => {
      const branch = schema.oneOf.find((b) => b.properties.type?.const === type)!;
      return Object.fromEntries(
        Object.entries(branch.properties).filter(([, p]) => 'default' in p).map(([k, p]) => [k, p.default]),
      );
    };
    const words = Task.parse({ type: 'words', phrases: ['dog'] });
    const sentence = Task.parse({ type: 'sentence', sentence: 'the dog' });
    expect(defaults('words')).toEqual({ mode: words.mode, outputs: words.outputs, score_threshold: 0.3, top_k: 100 });
    expect(words).toMatchObject(defaults('words'));
    expect(defaults('sentence')).toEqual({ mode: 'single', outputs: ['boxes', 'masks'] });
    expect(sentence).toMatchObject(defaults('sentence'));
  });

  it('accepts what the gateway accepts and refuses unknown fields', () => {
    const validate = validator('task');
    expect(validate({ type: 'words', phrases: ['dog', { text: 'sky', stuff: true }] })).toBe(true);
    expect(validate({ type: 'sentence', sentence: 'the dog', mode: 'multi', score_threshold: 0.2 })).toBe(true);
    expect(validate({ type: 'sentence', sentence: 'the dog', top_k: 3 })).toBe(false);
  });
});

describe('job-payload.v1.json and job-view.v1.json', () => {
  it('accept a payload as the gateway enqueues it (phrases normalised, defaults applied)', () => {
    const payload = makePayload({ webhook: { url: 'https://example.com/hook', events: ['job.succeeded'] } });
    const validate = validator('job-payload');
    expect(validate(JSON.parse(JSON.stringify(payload))), JSON.stringify(validate.errors)).toBe(true);
    // The output form: a bare string phrase is what a producer sends, not what the queue carries.
    const raw = { ...payload, tasks: [{ type: 'words', phrases: ['dog'] }] };
    expect(validate(raw)).toBe(false);
  });

  it('accept a job view with an inlined result', () => {
    const payload = makePayload();
    const view = {
      id: payload.job_id, key_id: payload.key_id, request_id: payload.request_id, status: 'succeeded',
      stage: 'store', progress: 1, created_at: payload.created_at, started_at: payload.created_at,
      finished_at: payload.created_at, deadline_at: payload.deadline_at, cancel_requested: false, attempts: 1, retry: null,
      timings_ms: { vision: 3 }, error: null, result_key: `results/${payload.job_id}.json`, result: realResult(),
      model: { name: 'mvp-lm-tiny', version: '0.1.0', variant: 'paper' }, provider: 'cpu',
      input: {
        image: { content_type: 'image/png', width: 64, height: 48, bytes: 1234 },
        tasks: payload.tasks, caption: true,
      },
      webhook: null, metadata: null,
    };
    expect(JobView.parse(view)).toEqual(view);
    const validate = validator('job-view');
    expect(validate(JSON.parse(JSON.stringify(view))), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...view, status: 'lost' })).toBe(false);
  });
});
