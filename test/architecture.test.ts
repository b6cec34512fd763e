// The layout's rules, read from the import statements: the gateway and the workers meet only in contracts/
// and lib/; contracts/ depends on nothing of ours; lib/ depends on neither side; lib/queue and lib/webhooks
// do not import each other both ways.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}

/** Each import of `file`: a repository path (relative imports resolved) or a package name. */
function imports(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/g)].map((m) => {
    const spec = (m[1] ?? m[2])!;
    return spec.startsWith('.') ? path.normalize(path.join(path.dirname(file), spec)) : spec;
  });
}

function violations(dirs: string[], forbidden: (target: string) => boolean): string[] {
  return dirs.flatMap(sources).flatMap((f) => imports(f).filter(forbidden).map((t) => `${f} -> ${t}`));
}

const under = (...prefixes: string[]) => (t: string) => prefixes.some((p) => t === p || t.startsWith(`${p}/`));

describe('import boundaries', () => {
  it('the scanner sees static, re-exported and dynamic imports', () => {
    expect(imports('src/app.ts')).toEqual(expect.arrayContaining(['hono', 'src/problem.js', 'lib/queue/index.js']));
    expect(imports('lib/queue/index.ts')).toContain('lib/queue/jobs.js');
  });

  it('the gateway imports neither the workers nor ONNX Runtime', () => {
    expect(violations(['src'], under('workers', 'onnxruntime-node'))).toEqual([]);
  });

  it('the workers import neither the gateway nor Hono', () => {
    expect(violations(['workers'], under('src', 'hono', '@hono/node-server'))).toEqual([]);
  });

  it('contracts import only zod and each other', () => {
    expect(violations(['contracts'], (t) => !t.startsWith('contracts/') && t !== 'zod')).toEqual([]);
  });

  it('lib imports neither side', () => {
    expect(violations(['lib'], under('src', 'workers', 'hono', 'onnxruntime-node'))).toEqual([]);
  });

  it('lib/webhooks does not import lib/queue (the queue layer reaches webhooks through its event hook)', () => {
    expect(violations(['lib/webhooks'], under('lib/queue'))).toEqual([]);
  });
});
