// The CDK app synthesised offline (once for this file) and checked on its CloudFormation template.
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_RANGES } from '../../infra/lib/network.js';
import { CLUSTER_QUEUE_PREFIX, ECS_MAX_STOP_TIMEOUT_S, LAMBDA_MAX_IMAGE_BYTES, LAMBDA_MAX_PREFER_WAIT_S, MvpLmStack, type MvpLmStackProps } from '../../infra/lib/stack.js';
import { bakedSecret } from './invariants.js';

type Resource = { Type: string; Properties: Record<string, any> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Principal?: unknown; Condition?: unknown; Sid?: string };

const SLOWEST_JOB_S = 90;
const props = (over: Partial<MvpLmStackProps> = {}): MvpLmStackProps => ({
  lambdaCode: lambda.Code.fromInline('export const handler = async () => ({ statusCode: 200 });'),
  gpuWorkerImage: ecs.ContainerImage.fromRegistry('registry.example.com/mvp-lm-worker-gpu:1.0.0'),
  gatewayImage: ecs.ContainerImage.fromRegistry('registry.example.com/mvp-lm-gateway:1.0.0'),
  modelPrefix: 'bundles/mvp-lm-1.0.0/',
  slowestJobSeconds: SLOWEST_JOB_S,
  maxGpuWorkers: 4,
  retentionDays: 7,
  ...over,
});

let t: Template;
let resources: Record<string, Resource>;
const ofType = (type: string): [string, Resource][] => Object.entries(resources).filter(([, r]) => r.Type === type);
const actions = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement): unknown[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);
const json = (v: unknown): string => JSON.stringify(v);

function policyStatementsOf(roleLogicalIdPrefix: string): Statement[] {
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref.startsWith(roleLogicalIdPrefix)))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
}

function lambdaNamed(handler: string): Resource {
  const found = ofType('AWS::Lambda::Function').find(([, f]) => f.Properties.Handler === handler);
  expect(found, handler).toBeDefined();
  return found![1];
}

beforeAll(() => {
  // CDK's built-in CloudFormation validation costs ~25 s here; `cdk synth` runs it (clean for this stack).
  const app = new App({ builtinCloudFormationValidation: false });
  const stack = new MvpLmStack(app, 'MvpLmTest', props());
  t = Template.fromStack(stack);
  resources = t.toJSON().Resources as Record<string, Resource>;
});

describe('gateway: Lambda behind an HTTP API', () => {
  it('runs src/lambda.ts in the VPC with the service configuration, Lambda-sized images and keys from Secrets Manager', () => {
    const fn = lambdaNamed('dist/src/lambda.handler');
    expect(fn.Properties.Runtime).toBe('nodejs22.x');
    expect(fn.Properties.VpcConfig.SubnetIds.length).toBe(2);
    const env = fn.Properties.Environment.Variables;
    expect(env).toMatchObject({ STORAGE_DRIVER: 's3', QUEUE_PREFIX: CLUSTER_QUEUE_PREFIX, MAX_IMAGE_BYTES: String(LAMBDA_MAX_IMAGE_BYTES) });
    expect(Number(env.MAX_PREFER_WAIT_S)).toBe(LAMBDA_MAX_PREFER_WAIT_S);
    expect(Number(env.MAX_PREFER_WAIT_S)).toBeLessThan(fn.Properties.Timeout); // a wait ends before the Lambda (and API Gateway) gives up
    expect(json(env.API_KEYS_SECRET_ID)).toMatch(/ApiKeys/);
    expect(env.API_KEYS).toBeUndefined();
    expect(json(env.REDIS_URL)).toMatch(/rediss:\/\//);
    expect(json(fn.Properties.Layers)).toMatch(/AWS-Parameters-and-Secrets-Lambda-Extension|ParamsAndSecrets|parameters/i);
    expect(fn.Properties.Timeout).toBeLessThanOrEqual(30);
  });

  it('an HTTP API with a $default route proxying payload format 2.0 to it', () => {
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$default' });
  });
});

describe('Redis for BullMQ', () => {
  it('MemoryDB (durable), TLS, noeviction, reachable only from the service security groups', () => {
    t.hasResourceProperties('AWS::MemoryDB::ParameterGroup', { Family: 'memorydb_redis7', Parameters: { 'maxmemory-policy': 'noeviction' } });
    t.hasResourceProperties('AWS::MemoryDB::Cluster', { TLSEnabled: true, NumShards: 1 });
    const [, cluster] = ofType('AWS::MemoryDB::Cluster')[0]!;
    const sgId = (cluster.Properties.SecurityGroupIds[0] as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    const sg = resources[sgId]!;
    expect(sg.Properties.SecurityGroupIngress ?? []).toEqual([]);
    const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter(([, r]) => json(r.Properties.GroupId).includes(sgId));
    expect(ingress.length).toBe(3);
    for (const [, r] of ingress) {
      expect(r.Properties).toMatchObject({ FromPort: 6379, ToPort: 6379, IpProtocol: 'tcp' });
      expect(r.Properties.SourceSecurityGroupId).toBeDefined();
      expect(r.Properties.CidrIp).toBeUndefined();
    }
  });
});

describe('S3 bucket', () => {
  it('encrypted, public access blocked, TLS only, lifecycle matching the job retention', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'jobs/', ExpirationInDays: 8, Status: 'Enabled' }),
          Match.objectLike({ Prefix: 'uploads/', ExpirationInDays: 8, Status: 'Enabled' }),
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
        ]),
      },
    });
    const [, policy] = ofType('AWS::S3::BucketPolicy')[0]!;
    const statements = policy.Properties.PolicyDocument.Statement as Statement[];
    expect(statements.some((s) => s.Effect === 'Deny' && json(s.Condition).includes('aws:SecureTransport'))).toBe(true);
    // No statement opens the bucket to anyone.
    for (const s of statements) if (s.Effect === 'Allow') expect(json(s.Principal)).not.toMatch(/"\*"/);
  });
});

describe('least-privilege IAM', () => {
  const allStatements = (): Statement[] => ofType('AWS::IAM::Policy').flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);

  it('no wildcard actions; every S3 and Secrets Manager statement names the bucket, a prefix of it or the secret', () => {
    for (const s of allStatements()) {
      for (const a of actions(s)) expect(a === '*' || a === 's3:*' || a === 'secretsmanager:*', a).toBe(false);
      if (actions(s).some((a) => a.startsWith('s3:') || a.startsWith('secretsmanager:'))) {
        for (const r of resourcesOf(s)) expect(r, `${s.Sid ?? actions(s).join(',')}`).not.toBe('*');
      }
    }
  });

  it('the gateway reads and writes jobs/ and uploads/ only; workers write jobs/ and read the model prefix; the webhook sender has no S3', () => {
    const fnRole = (handler: string) => (lambdaNamed(handler).Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    const gw = policyStatementsOf(fnRole('dist/src/lambda.handler'));
    const put = gw.find((s) => actions(s).includes('s3:PutObject'))!;
    expect(resourcesOf(put).map(json).join(' ')).toMatch(/\/jobs\/\*.*\/uploads\/\*/);
    expect(resourcesOf(put)).toHaveLength(2);
    expect(gw.some((s) => actions(s).includes('s3:DeleteObject'))).toBe(false);
    expect(gw.some((s) => actions(s).some((a) => a.startsWith('secretsmanager:GetSecretValue')))).toBe(true);

    const [taskId, task] = ofType('AWS::ECS::TaskDefinition').find(([, r]) => json(r.Properties.ContainerDefinitions).includes('"GPU"'))!;
    void taskId;
    const workerRole = (task.Properties.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    const ws = policyStatementsOf(workerRole);
    expect(resourcesOf(ws.find((s) => actions(s).includes('s3:PutObject'))!).map(json).join(' ')).toMatch(/\/jobs\/\*"/);
    expect(resourcesOf(ws.find((s) => actions(s).includes('s3:PutObject'))!)).toHaveLength(1);
    expect(resourcesOf(ws.find((s) => actions(s).includes('s3:GetObject'))!).map(json).join(' ')).toContain('/bundles/mvp-lm-1.0.0/*');
    expect(ws.some((s) => actions(s).some((a) => a.startsWith('secretsmanager:')))).toBe(false);
    expect(json(ws.find((s) => actions(s).includes('s3:ListBucket'))!.Condition)).toContain('bundles/mvp-lm-1.0.0/*');

    const [, hook] = ofType('AWS::ECS::TaskDefinition').find(([, r]) => json(r.Properties.ContainerDefinitions).includes('webhooks/main.js'))!;
    const hookRole = (hook.Properties.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    expect(policyStatementsOf(hookRole).filter((s) => actions(s).some((a) => a.startsWith('s3:')))).toEqual([]);
  });
});

describe('secrets', () => {
  it('API keys and webhook secrets live in Secrets Manager: injected into the webhook sender, read by the Lambda, never literal', () => {
    const [, secret] = ofType('AWS::SecretsManager::Secret')[0]!;
    expect(secret.Properties.SecretString).toBe('[]'); // a placeholder: no key until operators write one
    const [, hook] = ofType('AWS::ECS::TaskDefinition').find(([, r]) => json(r.Properties.ContainerDefinitions).includes('webhooks/main.js'))!;
    const container = hook.Properties.ContainerDefinitions[0];
    expect(container.Secrets.map((s: { Name: string }) => s.Name)).toEqual(['API_KEYS']);
    // Nothing secret-looking in any environment of any function or container.
    const envs: [string, unknown][] = [
      ...ofType('AWS::Lambda::Function').flatMap(([, f]) => Object.entries(f.Properties.Environment?.Variables ?? {})),
      ...ofType('AWS::ECS::TaskDefinition').flatMap(([, d]) => (d.Properties.ContainerDefinitions as { Environment?: { Name: string; Value: unknown }[] }[])
        .flatMap((c) => (c.Environment ?? []).map((e) => [e.Name, e.Value] as [string, unknown]))),
    ];
    expect(envs.length).toBeGreaterThan(10);
    for (const [k, v] of envs) expect(bakedSecret(k, typeof v === 'string' ? v : json(v)), k).toBeNull();
  });
});

describe('GPU workers on ECS', () => {
  it('one GPU per task on GPU instances that scale to zero; stop timeout longer than the slowest job', () => {
    const [, task] = ofType('AWS::ECS::TaskDefinition').find(([, r]) => json(r.Properties.ContainerDefinitions).includes('"GPU"'))!;
    const c = task.Properties.ContainerDefinitions[0];
    expect(c.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
    expect(c.StopTimeout).toBe(ECS_MAX_STOP_TIMEOUT_S);
    expect(c.StopTimeout).toBeGreaterThan(SLOWEST_JOB_S);
    expect(c.HealthCheck.Command).toEqual(['CMD', 'node', 'docker/healthcheck.mjs', 'worker']);
    const env = Object.fromEntries((c.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
    expect(env).toMatchObject({ ORT_PROVIDER: 'cuda', MODEL_DIR: '/models/current', QUEUE_PREFIX: CLUSTER_QUEUE_PREFIX });
    expect(json(env.MODEL_S3_URI)).toContain('/bundles/mvp-lm-1.0.0/');

    t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0', MaxSize: '4' });
    t.hasResourceProperties('AWS::AutoScaling::LaunchConfiguration', { InstanceType: 'g5.xlarge' });
    t.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: { ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 }, ManagedTerminationProtection: 'ENABLED' },
    });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 0, CapacityProviderStrategy: Match.anyValue() });
    const launch = ofType('AWS::AutoScaling::LaunchConfiguration').map(([, l]) => json(l.Properties.UserData)).join(' ');
    expect(launch).toContain('ECS_AWSVPC_BLOCK_IMDS=true'); // tasks cannot borrow the instance role
  });

  it('scales on the published backlog (waiting + active): 0 tasks at 0, min(backlog, max) above', () => {
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 0, MaxCapacity: 4, ScalableDimension: 'ecs:service:DesiredCount' });
    const policies = ofType('AWS::ApplicationAutoScaling::ScalingPolicy');
    const adjustments = policies.flatMap(([, p]) => {
      const cfg = p.Properties.StepScalingPolicyConfiguration;
      expect(cfg.AdjustmentType).toBe('ExactCapacity');
      return cfg.StepAdjustments as { MetricIntervalLowerBound?: number; MetricIntervalUpperBound?: number; ScalingAdjustment: number }[];
    });
    expect(adjustments.some((a) => a.ScalingAdjustment === 0)).toBe(true);
    expect(Math.max(...adjustments.map((a) => a.ScalingAdjustment))).toBe(4);
    const alarms = ofType('AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.MetricName === 'Backlog');
    expect(alarms.length).toBe(policies.length);
    for (const [, a] of alarms) expect(a.Properties).toMatchObject({ Namespace: 'MvpLm', Dimensions: [{ Name: 'Queue', Value: 'perception' }] });
  });

  it('the backlog is published every minute by the queue-metrics Lambda', () => {
    const fn = ofType('AWS::Lambda::Function').find(([, f]) => f.Properties.Handler === 'dist/src/queue-metrics-lambda.handler')!;
    expect(fn).toBeDefined();
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fn[0], 'Arn'] } })],
    });
  });

  it('refuses a slowest job the ECS stop timeout cannot cover', () => {
    expect(() => new MvpLmStack(new App({ builtinCloudFormationValidation: false }), 'TooSlow', props({ slowestJobSeconds: ECS_MAX_STOP_TIMEOUT_S }))).toThrow(/stop timeout/);
  });
});

describe('network: user-URL egress cannot reach internal addresses', () => {
  it('the egress subnets\' ACL allows Redis to the data subnets, then denies every internal range, then allows the internet', () => {
    const entries = ofType('AWS::EC2::NetworkAclEntry').map(([, e]) => e.Properties).filter((e) => e.Egress === true);
    const redis = entries.filter((e) => e.RuleAction === 'allow' && e.PortRange?.From === 6379);
    const denies = entries.filter((e) => e.RuleAction === 'deny');
    const publicAllow = entries.find((e) => e.RuleAction === 'allow' && e.CidrBlock === '0.0.0.0/0')!;
    expect(redis.length).toBe(2);
    expect(denies.map((e) => e.CidrBlock).sort()).toEqual([...INTERNAL_RANGES].sort());
    for (const r of redis) {
      expect(r.CidrBlock).toMatch(/^10\.40\./);
      for (const d of denies) expect(r.RuleNumber).toBeLessThan(d.RuleNumber);
    }
    for (const d of denies) expect(d.RuleNumber).toBeLessThan(publicAllow.RuleNumber);
    // Bound to the gateway/webhook subnets only (2 AZs).
    expect(ofType('AWS::EC2::SubnetNetworkAclAssociation')).toHaveLength(2);
  });

  it('the gateway Lambda and the webhook sender sit in those subnets; GPU workers only reach HTTPS and Redis', () => {
    const acl = ofType('AWS::EC2::SubnetNetworkAclAssociation').map(([, a]) => json(a.Properties.SubnetId));
    const gwSubnets = lambdaNamed('dist/src/lambda.handler').Properties.VpcConfig.SubnetIds.map(json);
    expect(gwSubnets.sort()).toEqual(acl.sort());
    const hookSvc = ofType('AWS::ECS::Service').find(([, s]) => s.Properties.LaunchType === 'FARGATE')!;
    expect(hookSvc[1].Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets.map(json).sort()).toEqual(acl.sort());

    const [, workerSg] = ofType('AWS::EC2::SecurityGroup').find(([, g]) => String(g.Properties.GroupDescription).startsWith('GPU workers'))!;
    const egress = [
      ...(workerSg.Properties.SecurityGroupEgress ?? []),
      ...ofType('AWS::EC2::SecurityGroupEgress').map(([, e]) => e.Properties).filter((e) => json(e.GroupId).includes('WorkerSg')),
    ];
    expect(egress.map((e: { FromPort: number }) => e.FromPort).sort()).toEqual([443, 6379]);
  });
});

describe('alarms', () => {
  it('queue age, failed jobs, and "jobs waiting while nothing runs" (missing data breaches)', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'OldestWaitingAgeSeconds', Namespace: 'MvpLm', ComparisonOperator: 'GreaterThanThreshold' });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'FailedJobs', Statistic: 'Sum', Threshold: 0 });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      TreatMissingData: 'breaching',
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'IF(waiting > 0 AND active == 0, 1, 0)' })]),
    });
    for (const [, a] of ofType('AWS::CloudWatch::Alarm').filter(([, x]) => x.Properties.MetricName !== 'Backlog')) {
      expect(a.Properties.AlarmActions?.length).toBe(1);
    }
  });
});
