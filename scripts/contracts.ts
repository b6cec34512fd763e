// `npm run contracts`: writes the generated contract files (contracts/README.md).
//  - contracts/schema/<name>.v<version>.json: JSON Schema (draft 2020-12) of each zod contract, by z.toJSONSchema;
//  - workers/pipeline/manifest.generated.ts: the TypeScript type of a bundle manifest, by json-schema-to-typescript
//    from model/manifest.schema.json (the authority; workers/pipeline/bundle.ts validates against it).
// `generateContracts()` returns the files in memory; test/contracts/generated.test.ts compares them with the
// checked-in ones, so a contract change without `npm run contracts` fails the suite.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compile } from 'json-schema-to-typescript';
import { z } from 'zod';
import { JOB_SCHEMA_VERSION, JobPayload } from '../contracts/job.js';
import { JOB_VIEW_SCHEMA_VERSION, JobView, WebhookBody } from '../contracts/job-view.js';
import { Problem } from '../contracts/problem.js';
import { PerceptionResult, RESULT_SCHEMA_VERSION } from '../contracts/result.js';
import { Task, WordsTask } from '../contracts/task.js';
import { WEBHOOK_SCHEMA_VERSION } from '../contracts/webhook.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCHEMA_DIR = 'contracts/schema';
export const MANIFEST_SCHEMA = 'model/manifest.schema.json';
export const MANIFEST_TYPES = 'workers/pipeline/manifest.generated.ts';
const ID_BASE = 'https://mvp-lm.invalid/';

interface SchemaSpec {
  name: string;
  version: string | number;
  schema: z.ZodType;
  /** input: what a producer may send (defaults optional and listed); output: what a consumer receives. */
  io: 'input' | 'output';
  source: string;
  title: string;
}

/** Task and Problem have no version constant of their own: both are part of the public API document, so they
 *  carry the job view's version (a breaking change to either is a breaking change to the job view). */
export const SCHEMAS: readonly SchemaSpec[] = [
  { name: 'task', version: JOB_VIEW_SCHEMA_VERSION, schema: Task, io: 'input', source: 'contracts/task.ts',
    title: 'One perception task of a request (defaults listed as `default`)' },
  { name: 'result', version: RESULT_SCHEMA_VERSION, schema: PerceptionResult, io: 'output',
    source: 'contracts/result.ts', title: 'The result document a worker stores and the API serves' },
  { name: 'job-payload', version: JOB_SCHEMA_VERSION, schema: JobPayload, io: 'output', source: 'contracts/job.ts',
    title: 'The perception queue payload (tasks with their defaults applied)' },
  { name: 'job-view', version: JOB_VIEW_SCHEMA_VERSION, schema: JobView, io: 'output',
    source: 'contracts/job-view.ts', title: 'The job as the API shows it' },
  { name: 'webhook-body', version: WEBHOOK_SCHEMA_VERSION, schema: WebhookBody, io: 'output',
    source: 'contracts/job-view.ts', title: 'The body of a webhook delivery' },
  { name: 'problem', version: JOB_VIEW_SCHEMA_VERSION, schema: Problem, io: 'output',
    source: 'contracts/problem.ts', title: 'Problem details (RFC 9457)' },
];

export const schemaFile = (s: Pick<SchemaSpec, 'name' | 'version'>): string => `${SCHEMA_DIR}/${s.name}.v${s.version}.json`;

type Json = Record<string, unknown>;

/** The output of the phrases transform (strings become { text, stuff }): the input array's schema with only its
 *  object branch left, in output form (so `stuff` is required). Any other transform is an error to decide on. */
function phrasesOutput(): Json {
  const input = z.toJSONSchema(WordsTask.shape.phrases.in, { io: 'output' }) as Json;
  const branches = ((input.items as Json | undefined)?.anyOf ?? []) as Json[];
  const object = branches.find((b) => b.type === 'object');
  if (!object) throw new Error('contracts: WordsTask.phrases no longer has an object branch; update scripts/contracts.ts');
  const { $schema: _, ...rest } = input;
  return { ...rest, items: object };
}

export function jsonSchema(spec: SchemaSpec): Json {
  const phrasesTransform = WordsTask.shape.phrases.out;
  const generated = z.toJSONSchema(spec.schema, {
    target: 'draft-2020-12',
    io: spec.io,
    unrepresentable: ({ zodSchema, path: at }) => {
      if (zodSchema === phrasesTransform) return phrasesOutput();
      throw new Error(`contracts: ${spec.source} has a schema JSON Schema cannot express at /${at.join('/')}`);
    },
  }) as Json;
  const { $schema, ...body } = generated;
  return {
    $schema,
    $id: `${ID_BASE}${schemaFile(spec)}`,
    title: `${spec.title}, schema version ${spec.version}`,
    description: `Generated from ${spec.source} (zod, ${spec.io} form) by \`npm run contracts\`; do not edit.`,
    ...body,
  };
}

const BANNER = `// GENERATED FILE, DO NOT EDIT. Written by \`npm run contracts\` (scripts/contracts.ts) with
// json-schema-to-typescript from ${MANIFEST_SCHEMA}, the authority: change the schema, then regenerate.
// workers/pipeline/manifest.ts re-exports these types under the names the worker uses.`;

export async function manifestTypes(root = ROOT): Promise<string> {
  const schema = JSON.parse(readFileSync(path.join(root, MANIFEST_SCHEMA), 'utf8')) as Json;
  const ts = await compile(structuredClone(schema) as Parameters<typeof compile>[0], 'Manifest', {
    bannerComment: BANNER,
    cwd: path.join(root, 'model'),
    customName: (s) => (s.$id === schema.$id ? 'Manifest' : undefined),
    style: { singleQuote: true, printWidth: 120, trailingComma: 'all' },
  });
  const graphs = (((schema.$defs as Json).precision as Json).properties as Json).graphs as Json;
  const names = graphs.required as string[];
  const optional = Object.keys(graphs.properties as Json).filter((n) => !names.includes(n));
  return `${ts.trimEnd()}

/** The graphs of a precision, in the order \`$defs.precision.properties.graphs.required\` lists them. */
export const GRAPH_NAMES = [${names.map((n) => `'${n}'`).join(', ')}] as const;
/** The graphs a precision may have (\`$defs.precision.properties.graphs.properties\` not in \`required\`). */
export const OPTIONAL_GRAPH_NAMES = [${optional.map((n) => `'${n}'`).join(', ')}] as const;
`;
}

/** Every generated file, by path relative to the repository root, with its exact content. */
export async function generateContracts(root = ROOT): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const spec of SCHEMAS) files[schemaFile(spec)] = `${JSON.stringify(jsonSchema(spec), null, 2)}\n`;
  files[MANIFEST_TYPES] = await manifestTypes(root);
  return files;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const files = await generateContracts();
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(ROOT, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    console.log(`wrote ${rel}`);
  }
}
