// Copies a model bundle (model/BUNDLE.md) from an S3 prefix into a local directory before the worker starts:
//   node docker/fetch-bundle.mjs s3://bucket/bundles/mvp-lm-1.2.0/ /models/current
// The copy lands in a sibling temporary directory and is renamed into place, so a worker never sees half a
// bundle; an existing directory whose manifest.json is byte-identical to the one on S3 is kept as it is.
// The worker verifies every file against the manifest's hashes when it loads the bundle.
// S3 endpoint, region and path style come from S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE (as lib/config.ts);
// credentials from the SDK's default chain (task role, instance profile, environment).
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

const [uri, dest] = process.argv.slice(2);
const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri ?? '');
if (!m || !dest) {
  console.error('usage: fetch-bundle.mjs s3://bucket/prefix/ <directory>');
  process.exit(2);
}
const [, bucket, rawPrefix] = m;
const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
const s3 = new S3Client({
  region: process.env.S3_REGION ?? 'us-east-1',
  endpoint: process.env.S3_ENDPOINT || undefined,
  forcePathStyle: ['true', '1', 'yes'].includes(process.env.S3_FORCE_PATH_STYLE ?? ''),
});

async function list() {
  const keys = [];
  let token;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of out.Contents ?? []) if (!o.Key.endsWith('/')) keys.push({ key: o.Key, size: o.Size ?? 0 });
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

async function download(key, file) {
  mkdirSync(path.dirname(file), { recursive: true });
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await pipeline(out.Body, createWriteStream(file));
}

const objects = await list();
const rel = (key) => key.slice(prefix.length);
if (!objects.some((o) => rel(o.key) === 'manifest.json')) {
  console.error(`fetch-bundle: s3://${bucket}/${prefix} has no manifest.json (${objects.length} objects): not a model bundle`);
  process.exit(1);
}
for (const o of objects) {
  const r = rel(o.key);
  if (r.split('/').some((seg) => seg === '..' || seg === '.' || seg === '') || path.isAbsolute(r)) {
    console.error(`fetch-bundle: refusing object key ${o.key}`);
    process.exit(1);
  }
}

const manifestFile = path.join(dest, 'manifest.json');
if (existsSync(manifestFile)) {
  const remote = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}manifest.json` }));
  if (Buffer.from(await remote.Body.transformToByteArray()).equals(readFileSync(manifestFile))) {
    console.log(`fetch-bundle: ${dest} already holds this bundle`);
    process.exit(0);
  }
}

const tmp = `${dest.replace(/\/+$/, '')}.partial-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
let bytes = 0;
for (const [i, o] of objects.entries()) {
  await download(o.key, path.join(tmp, rel(o.key)));
  bytes += o.size;
  console.log(`fetch-bundle: [${i + 1}/${objects.length}] ${rel(o.key)} (${(bytes / 1e6).toFixed(1)} MB so far)`);
}
rmSync(dest, { recursive: true, force: true });
mkdirSync(path.dirname(path.resolve(dest)), { recursive: true });
renameSync(tmp, dest);
console.log(`fetch-bundle: ${objects.length} files, ${(bytes / 1e6).toFixed(1)} MB from s3://${bucket}/${prefix} into ${dest}`);
