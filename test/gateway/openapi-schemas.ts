// Validators for the component schemas published in openapi.yaml, to check real responses against the
// document clients generate code from.
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

const doc = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as { components: object };
const ajv = new Ajv2020.default({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: 'doc', components: doc.components });

/** Throws with ajv's errors unless `value` matches components.schemas[name]. */
export function assertMatchesSchema(name: string, value: unknown): void {
  const validate = ajv.getSchema(`doc#/components/schemas/${name}`);
  if (!validate) throw new Error(`openapi.yaml has no schema ${name}`);
  if (!validate(value)) throw new Error(`${name} does not match openapi.yaml: ${ajv.errorsText(validate.errors)}`);
}
