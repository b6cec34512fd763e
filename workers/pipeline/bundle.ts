// Loads a model bundle directory: manifest.json validated against model/manifest.schema.json (ajv), every file
// listed in the manifest present and matching its sha256, and the four graphs + tokenizer of BUNDLE.md there (and
// the optional decoder_generate.onnx when the manifest names it), for each precision the manifest has.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { GRAPHS, OPTIONAL_GRAPHS, type GraphName, type Manifest, type OptionalGraphName } from './manifest.js';
import type { PrecisionName } from './precision.js';

export interface Bundle {
  dir: string;
  manifest: Manifest;
  /** Path of a graph of `precision` (default fp32; fp16 only where the manifest has it). */
  graph(name: GraphName, precision?: PrecisionName): string;
  /** Path of an optional graph, or null when the bundle has none. */
  optionalGraph(name: OptionalGraphName, precision?: PrecisionName): string | null;
  tokenizerFile: string;
}

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

/** model/manifest.schema.json, found from this module both in the source tree and in dist/. */
export function schemaPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'model', 'manifest.schema.json');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new BundleError('model/manifest.schema.json not found above ' + path.dirname(fileURLToPath(import.meta.url)));
}

function validator() {
  const schema = JSON.parse(readFileSync(schemaPath(), 'utf8'));
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(schema);
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Validates `manifest` (parsed JSON) against the schema; throws naming the first bad fields. */
export function validateManifest(manifest: unknown, where: string): Manifest {
  const validate = validator();
  if (!validate(manifest)) {
    const problems = (validate.errors ?? []).slice(0, 5).map((e) => {
      const field = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(root)';
      const extra = 'additionalProperty' in e.params ? ` '${e.params.additionalProperty}'` : '';
      return `${field}: ${e.message}${extra}`;
    });
    throw new BundleError(`${where} is not a valid bundle manifest: ${problems.join('; ')}`);
  }
  return manifest as Manifest;
}

function graphsOf(manifest: Manifest, precision: PrecisionName) {
  const p = manifest.precisions[precision];
  if (!p) throw new BundleError(`the bundle ${manifest.name} has no ${precision} graphs`);
  return p.graphs;
}

export async function loadBundle(dir: string, opts: { verifyHashes?: boolean } = {}): Promise<Bundle> {
  const root = path.resolve(dir);
  const manifestFile = path.join(root, 'manifest.json');
  if (!existsSync(manifestFile)) throw new BundleError(`${root}: no manifest.json (is this a model bundle directory?)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch (err) {
    throw new BundleError(`${manifestFile}: not valid JSON: ${(err as Error).message}`);
  }
  const manifest = validateManifest(parsed, manifestFile);

  const referenced: [string, string][] = [
    ...Object.entries(manifest.precisions).flatMap(([p, { graphs }]) => [
      ...GRAPHS.map((g): [string, string] => [`precisions.${p}.graphs.${g}`, graphs[g]]),
      ...OPTIONAL_GRAPHS.flatMap((g): [string, string][] => (graphs[g] ? [[`precisions.${p}.graphs.${g}`, graphs[g]]] : [])),
    ]),
    ['tokenizer.file', manifest.tokenizer.file],
  ];
  for (const [field, name] of referenced) {
    if (!(name in manifest.files)) throw new BundleError(`${manifestFile}: ${field} is ${name}, which files does not list`);
  }
  for (const [name, entry] of Object.entries(manifest.files)) {
    const file = path.resolve(root, name);
    if (!file.startsWith(root + path.sep)) throw new BundleError(`${manifestFile}: files.${name} points outside the bundle`);
    if (!existsSync(file)) throw new BundleError(`${root}: missing file ${name} (listed in manifest.json files)`);
    if (opts.verifyHashes !== false) {
      const actual = await sha256(file);
      if (actual !== entry.sha256) {
        throw new BundleError(`${file}: sha256 ${actual} does not match manifest files.${name}.sha256 ${entry.sha256}`);
      }
    }
  }
  return {
    dir: root,
    manifest,
    graph: (name, precision = 'fp32') => path.join(root, graphsOf(manifest, precision)[name]),
    optionalGraph: (name, precision = 'fp32') => {
      const file = graphsOf(manifest, precision)[name];
      return file ? path.join(root, file) : null;
    },
    tokenizerFile: path.join(root, manifest.tokenizer.file),
  };
}
