// Helpers the deployment tests share: a Dockerfile reader, compose-style variable interpolation, and the
// rules for what counts as a pinned image or a secret baked into configuration.

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile (continuations joined, comments dropped), grouped into build stages. */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) line = line.trimEnd().slice(0, -1) + ' ' + lines[++i]!.trim();
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot parse "${line}"`);
    instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      stages.push({ from: image!, ...(as?.toUpperCase() === 'AS' ? { name } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before the first FROM`);
      const [k, v] = ins.args.split('=');
      if (v !== undefined) args[k!] = v;
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { args, stages };
}

/** `${NAME}` / `${NAME:-default}` / `$NAME` resolved from vars; unresolvable references stay undefined. */
export function interpolate(value: string, vars: Record<string, string | undefined> = {}): string | undefined {
  let missing = false;
  const out = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a, def, b) => {
    const v = vars[a ?? b] ?? def;
    if (v === undefined) missing = true;
    return v ?? '';
  });
  return missing ? undefined : out;
}

/** An image reference with an exact version tag (at least major.minor) or a digest; never latest. */
export function isPinnedImage(ref: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return true;
  const tag = /:([^/:@]+)$/.exec(ref)?.[1];
  return tag !== undefined && tag !== 'latest' && /^v?\d+\.\d+(\.\d+)?([.-][\w.-]+)?$/.test(tag);
}

/** Name parts that mark a variable as holding a secret (AWS_SECRET_ACCESS_KEY, REDIS_PASSWORD, API_KEYS...). */
const SECRET_NAME = /(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIALS?)(_|$)|(^|_)API_KEYS?$|ACCESS_KEY/i;
const SECRET_VALUE = /(whsec_[A-Za-z0-9+/=]{8,}|sk-[A-Za-z0-9-]{8,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|"key_sha256")/;

/** Why a name/value pair looks like a secret written into configuration, or null. References to a file,
 *  a secret store or an interpolated variable are fine; so are names ending in _FILE / _SECRET_ID / _ARN. */
export function bakedSecret(name: string, value: string): string | null {
  if (SECRET_VALUE.test(value)) return `${name} holds a secret-looking value`;
  if (!SECRET_NAME.test(name) || /(_FILE|_SECRET_ID|_ARN|_SECRET_NAME)$/.test(name)) return null;
  const interpolatedOnly = /^\$\{[A-Za-z_][A-Za-z0-9_]*(:?-[A-Za-z0-9_.-]{0,16})?\}$/.test(value);
  return interpolatedOnly ? null : `${name} is set to a literal value`;
}
