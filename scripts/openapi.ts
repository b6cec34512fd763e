// `npm run openapi`: writes openapi.yaml from the zod schemas (src/schemas/openapi.ts).
import { writeFileSync } from 'node:fs';
import { openApiYaml } from '../src/schemas/openapi.js';

writeFileSync('openapi.yaml', openApiYaml());
console.log('wrote openapi.yaml');
