// Loads the Redis Lua scripts in lib/redis/lua/ (one file per script, named `<name>-<key count>.lua` as BullMQ
// names its own) and resolves their `--- @include "<name>"` lines: `includes/<name>` is a file under lua/, and
// `<source>:<name>` a fragment built from code (BullMQ's add script, our job statuses). Each include goes in
// once, before the line that asked for it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TERMINAL_STATUSES } from '../../contracts/job-view.js';
import { BULLMQ_ADD_LUA } from './bullmq-add.js';

const FRAGMENTS: Record<string, string> = {
  'bullmq:addStandardJob': BULLMQ_ADD_LUA,
  'contracts:terminalStatus': `local terminalStatus = { ${TERMINAL_STATUSES.map((s) => `['${s}'] = true`).join(', ')} }\n`,
};

/** lib/redis/lua, found from this module both in the source tree and above dist/ (the images copy it there). */
function luaDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'lib', 'redis', 'lua');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`lib/redis/lua not found above ${here}`);
  }
}

const INCLUDE = /^--- @include "([^"]+)"\s*$/;

function resolve(name: string, dir: string, seen: Set<string>): string {
  const source = name.endsWith('.lua') ? readFileSync(path.join(dir, name), 'utf8') : (FRAGMENTS[name] ?? readFileSync(path.join(dir, `${name}.lua`), 'utf8'));
  return source
    .split('\n')
    .map((line) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      if (seen.has(m[1]!)) return '';
      seen.add(m[1]!);
      return resolve(m[1]!, dir, seen);
    })
    .join('\n');
}

export interface LuaSource {
  /** The file name without its key count: `submitJob`. */
  name: string;
  numberOfKeys: number;
  lua: string;
}

/** The script in `lua/<file>` with its includes resolved. */
export function loadLua(file: string): LuaSource {
  const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
  if (!m) throw new Error(`Lua script ${file}: expected a name of the form <name>-<key count>.lua`);
  return { name: m[1]!, numberOfKeys: Number(m[2]), lua: resolve(file, luaDir(), new Set()) };
}
