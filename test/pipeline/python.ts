// Runs snippets with the project's Python (.venv) so tests compare against the real reference implementations.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export const PYTHON = path.resolve('.venv/bin/python');

/** Runs `code` with the model package importable; stdin is passed through; returns stdout. */
export function runPython(code: string, input?: string | Buffer, timeoutMs = 600_000): string {
  return execFileSync(PYTHON, ['-c', code], {
    input,
    cwd: path.resolve('model'),
    maxBuffer: 1 << 30,
    timeout: timeoutMs,
    encoding: 'utf8',
  });
}
