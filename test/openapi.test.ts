// openapi.yaml is generated from the zod schemas (npm run openapi); this fails when the file and the code
// drift, and checks that the document is valid enough for tools: parseable, every $ref resolves, and the
// schemas it publishes accept what the API really returns.
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openApiYaml } from '../src/schemas/openapi.js';

const file = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8');
const doc = parse(file) as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, object> } };

describe('openapi.yaml', () => {
  it('matches the document generated from the code (run `npm run openapi` after changing schemas)', () => {
    expect(file).toBe(openApiYaml());
  });

  it('describes every endpoint and the result document', () => {
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz', '/metrics', '/readyz', '/v1/jobs/{id}', '/v1/jobs/{id}/cancel', '/v1/jobs/{id}/overlay.png', '/v1/jobs/{id}/result', '/v1/perceive', '/v1/uploads',
    ]);
    for (const name of ['PerceiveRequest', 'Job', 'PerceptionResult', 'Problem', 'Task']) expect(doc.components.schemas[name], name).toBeTruthy();
  });

  it('every $ref resolves and the component schemas compile as JSON Schema 2020-12', () => {
    const refs = [...file.matchAll(/\$ref: "?#\/components\/schemas\/([^"\s]+)"?/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeTruthy();
    const ajv = new Ajv2020.default({ strict: false });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'doc', components: doc.components });
    const validate = ajv.getSchema('doc#/components/schemas/PerceiveRequest')!;
    expect(validate({ image: { s3: 's3://bucket/a.png' }, tasks: [{ type: 'words', phrases: ['dog'] }] })).toBe(true);
    expect(validate({ image: { s3: 's3://bucket/a.png' }, tasks: [{ type: 'words', phrases: ['dog'] }], extra: 1 })).toBe(false);
  });
});
