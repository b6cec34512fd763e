// docs/deploy.md's configuration reference names every environment variable the processes read: the keys
// of the zod environment schemas (lib/config.ts, lib/queue/settings.ts, workers/perception/load-pipeline.ts)
// and every process.env.X read in the service code. Fails when a variable is added without documenting it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const doc = readFileSync('docs/deploy.md', 'utf8');
const documented = new Set([...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));

/** Keys of the `const Env = z.object({ … })` schema in a source file. */
function envSchemaKeys(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const start = src.indexOf('const Env = z.object({');
  if (start < 0) throw new Error(`${file}: no "const Env = z.object({" schema`);
  const body = src.slice(start, src.indexOf('\n});', start));
  return [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('docs/deploy.md configuration reference', () => {
  it('documents every key of the environment schemas', () => {
    const keys = ['lib/config.ts', 'lib/queue/settings.ts', 'workers/perception/load-pipeline.ts'].flatMap(envSchemaKeys);
    expect(keys.length).toBeGreaterThan(30);
    expect(keys.filter((k) => !documented.has(k))).toEqual([]);
  });

  it('documents every process.env variable the service code reads', () => {
    const read = new Set(['src', 'lib', 'workers'].flatMap(sourceFiles).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/process\.env\.([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!)));
    for (const f of ['docker/worker-entrypoint.sh']) for (const m of readFileSync(f, 'utf8').matchAll(/\$\{([A-Z][A-Z0-9_]+)/g)) read.add(m[1]!);
    read.delete('AWS_SESSION_TOKEN'); // set by Lambda itself
    expect([...read].filter((k) => !documented.has(k))).toEqual([]);
  });
});
