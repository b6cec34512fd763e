// Creates the storage bucket when it does not exist (local stacks: the compose file runs it once before the
// gateway starts). In AWS the bucket is created by infra/ instead. Same S3_* variables as lib/config.ts.
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';

const bucket = process.env.S3_BUCKET;
if (!bucket) {
  console.error('ensure-bucket: S3_BUCKET is not set');
  process.exit(2);
}
const s3 = new S3Client({
  region: process.env.S3_REGION ?? 'us-east-1',
  endpoint: process.env.S3_ENDPOINT || undefined,
  forcePathStyle: ['true', '1', 'yes'].includes(process.env.S3_FORCE_PATH_STYLE ?? ''),
});
try {
  await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  console.log(`ensure-bucket: ${bucket} exists`);
} catch (e) {
  if (e?.$metadata?.httpStatusCode !== 404) throw e;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`ensure-bucket: created ${bucket}`);
}
