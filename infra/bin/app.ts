// CDK app: `cd infra && npx cdk deploy` (docs/deploy.md). Build the Lambda folder first (infra/build-lambda.sh);
// the container images are built from docker/ and pushed by `cdk deploy` unless image URIs are given:
//   -c gpuWorkerImage=<ecr uri:tag> -c gatewayImage=<ecr uri:tag> -c modelPrefix=bundles/mvp-lm-1.0.0/
//   -c alarmEmail=ops@example.com -c maxGpuWorkers=4 -c gpuInstanceType=g5.xlarge -c slowestJobSeconds=90
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { MvpLmStack } from '../lib/stack.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const app = new App();
const ctx = (k: string): string | undefined => app.node.tryGetContext(k) as string | undefined;
const image = (key: string, dockerfile: string): ecs.ContainerImage => {
  const uri = ctx(key);
  return uri ? ecs.ContainerImage.fromRegistry(uri) : ecs.ContainerImage.fromAsset(root, { file: dockerfile });
};
const num = (k: string): number | undefined => (ctx(k) === undefined ? undefined : Number(ctx(k)));

new MvpLmStack(app, ctx('stackName') ?? 'MvpLmServe', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  lambdaCode: lambda.Code.fromAsset(path.join(root, '.data/lambda-asset')),
  gpuWorkerImage: image('gpuWorkerImage', 'docker/worker-gpu.Dockerfile'),
  gatewayImage: image('gatewayImage', 'docker/gateway.Dockerfile'),
  modelPrefix: ctx('modelPrefix') ?? 'bundles/current/',
  slowestJobSeconds: num('slowestJobSeconds'),
  maxGpuWorkers: num('maxGpuWorkers'),
  gpuInstanceType: ctx('gpuInstanceType'),
  retentionDays: num('retentionDays'),
  alarmEmail: ctx('alarmEmail'),
});
