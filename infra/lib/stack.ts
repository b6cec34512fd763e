// One stack: the serverless gateway (Lambda + HTTP API), MemoryDB for BullMQ, the S3 bucket, GPU perception
// workers on ECS scaling on queue depth down to zero, the webhook sender on Fargate, secrets, alarms.
// docs/deploy.md explains how to deploy it; test/deploy/cdk.test.ts checks the synthesised template.
import { CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as memorydb from 'aws-cdk-lib/aws-memorydb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE, queueMetric, QueueAlarms } from './alarms.js';
import { Network, REDIS_PORT } from './network.js';

/** ECS's ceiling for a container's stop timeout (SIGTERM → SIGKILL). */
export const ECS_MAX_STOP_TIMEOUT_S = 120;
/** API Gateway HTTP APIs end an integration after 30 s. */
export const HTTP_API_TIMEOUT_S = 30;
/** `Prefer: wait=N` cap of the Lambda gateway: a wait must end, and the answer go out, before API Gateway gives up. */
export const LAMBDA_MAX_PREFER_WAIT_S = HTTP_API_TIMEOUT_S - 5;
/** Lambda's request payload limit is 6 MB; base64 grows images by 4/3 and the JSON around them needs room. */
export const LAMBDA_MAX_IMAGE_BYTES = 4 * 1024 * 1024;
/** BullMQ on a cluster-mode Redis (MemoryDB is one) needs every key of a queue in one hash slot. */
export const CLUSTER_QUEUE_PREFIX = '{mvp}';

export interface MvpLmStackProps extends StackProps {
  /** The gateway/publisher Lambda code: the folder infra/build-lambda.sh writes (handlers under dist/src/). */
  lambdaCode: lambda.Code;
  /** docker/worker-gpu.Dockerfile */
  gpuWorkerImage: ecs.ContainerImage;
  /** docker/gateway.Dockerfile (it also holds the webhook sender) */
  gatewayImage: ecs.ContainerImage;
  /** Where the model bundle lies in the bucket, e.g. "bundles/mvp-lm-1.0.0/". */
  modelPrefix: string;
  /** Longest a single job takes on one GPU worker (measure it; docs/deploy.md). Must stay under the ECS stop timeout. */
  slowestJobSeconds?: number;
  maxGpuWorkers?: number;
  gpuInstanceType?: string;
  /** Days jobs, their inputs, uploads and results are kept (JOB_RETENTION_S). */
  retentionDays?: number;
  memoryDbNodeType?: string;
  alarmEmail?: string;
}

export class MvpLmStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly api: apigw.HttpApi;

  constructor(scope: Construct, id: string, props: MvpLmStackProps) {
    super(scope, id, props);
    const slowestJobS = props.slowestJobSeconds ?? 90;
    if (slowestJobS >= ECS_MAX_STOP_TIMEOUT_S) {
      throw new Error(`slowestJobSeconds ${slowestJobS} must be below ECS's ${ECS_MAX_STOP_TIMEOUT_S} s stop timeout, or a scaled-in worker is killed mid-job`);
    }
    const maxWorkers = props.maxGpuWorkers ?? 4;
    const retentionDays = props.retentionDays ?? 7;
    const modelPrefix = props.modelPrefix.endsWith('/') ? props.modelPrefix : `${props.modelPrefix}/`;

    const net = new Network(this, 'Network', { cidr: '10.40.0.0/16', maxAzs: 2, natGateways: 1 });
    const { vpc } = net;
    const gatewaySg = net.securityGroup('GatewaySg', 'Gateway Lambda and queue metrics: Redis + public egress (NACL blocks internal ranges)', true);
    const webhookSg = net.securityGroup('WebhookSg', 'Webhook sender: Redis + public egress (NACL blocks internal ranges)', true);
    const workerSg = net.securityGroup('WorkerSg', 'GPU workers: Redis and HTTPS (S3, ECR, logs) only', false);
    workerSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'S3 gateway endpoint, ECR, CloudWatch');
    const redisSg = net.securityGroup('RedisSg', 'MemoryDB: only the service processes', false);
    for (const [sg, who] of [[gatewaySg, 'gateway'], [webhookSg, 'webhook sender'], [workerSg, 'workers']] as const) {
      redisSg.addIngressRule(sg, ec2.Port.tcp(REDIS_PORT), `Redis from the ${who}`);
    }
    workerSg.addEgressRule(redisSg, ec2.Port.tcp(REDIS_PORT), 'Redis');

    // --- Redis: MemoryDB (multi-AZ transaction log: acknowledged writes survive a node loss), noeviction.
    const params = new memorydb.CfnParameterGroup(this, 'RedisParams', {
      parameterGroupName: `${this.stackName.toLowerCase()}-bullmq`,
      family: 'memorydb_redis7',
      parameters: { 'maxmemory-policy': 'noeviction' },
    });
    const redisSubnets = new memorydb.CfnSubnetGroup(this, 'RedisSubnets', {
      subnetGroupName: `${this.stackName.toLowerCase()}-redis`,
      subnetIds: vpc.selectSubnets(net.dataSubnets).subnetIds,
    });
    const redis = new memorydb.CfnCluster(this, 'Redis', {
      clusterName: `${this.stackName.toLowerCase()}-queue`,
      nodeType: props.memoryDbNodeType ?? 'db.r7g.large',
      engine: 'redis',
      engineVersion: '7.1',
      // One shard, no replica: the single node serves every slot, so the gateway's and workers' standalone
      // ioredis clients work; durability comes from MemoryDB's transaction log, not from replicas.
      numShards: 1,
      numReplicasPerShard: 0,
      aclName: 'open-access',
      tlsEnabled: true,
      parameterGroupName: params.ref,
      subnetGroupName: redisSubnets.ref,
      securityGroupIds: [redisSg.securityGroupId],
      snapshotRetentionLimit: 7,
    });
    redis.addResourceDependency(params);
    redis.addResourceDependency(redisSubnets);
    const redisUrl = `rediss://${redis.attrClusterEndpointAddress}:${redis.attrClusterEndpointPort}`;

    // --- Storage
    this.bucket = new s3.Bucket(this, 'Storage', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        // Inputs, results and overlays live as long as the job record (JOB_RETENTION_S), plus a day of slack.
        { id: 'jobs-retention', prefix: 'jobs/', expiration: Duration.days(retentionDays + 1) },
        // An upload is a job's input in place (s3:// reference): same retention.
        { id: 'uploads-retention', prefix: 'uploads/', expiration: Duration.days(retentionDays + 1) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    const objects = (...prefixes: string[]) => prefixes.map((p) => this.bucket.arnForObjects(p));

    // --- Secrets: the API key list (lib/config.ts ApiKeyConfig JSON, including each key's webhook secret).
    // Created as an empty list (every request 401); operators write the real keys (docs/deploy.md), which
    // therefore never appear in the template, an image or an environment variable of the Lambda.
    const apiKeys = new secretsmanager.Secret(this, 'ApiKeys', {
      description: 'API_KEYS JSON: [{id, key_sha256, webhook_secret, ...}] (lib/config.ts)',
      secretStringValue: SecretValue.unsafePlainText('[]'),
    });

    const serviceEnv: Record<string, string> = {
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: CLUSTER_QUEUE_PREFIX,
      STORAGE_DRIVER: 's3',
      S3_BUCKET: this.bucket.bucketName,
      S3_REGION: this.region,
      JOB_RETENTION_S: String(retentionDays * 86400),
      LOG_LEVEL: 'info',
    };

    // --- Gateway: Lambda behind an HTTP API.
    const gatewayFn = new lambda.Function(this, 'Gateway', {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.X86_64,
      code: props.lambdaCode,
      handler: 'dist/src/lambda.handler',
      memorySize: 1024,
      timeout: Duration.seconds(HTTP_API_TIMEOUT_S),
      vpc,
      vpcSubnets: net.egressSubnets,
      securityGroups: [gatewaySg],
      environment: {
        ...serviceEnv,
        NODE_OPTIONS: '--enable-source-maps',
        API_KEYS_SECRET_ID: apiKeys.secretArn,
        MAX_IMAGE_BYTES: String(LAMBDA_MAX_IMAGE_BYTES),
        MAX_PREFER_WAIT_S: String(LAMBDA_MAX_PREFER_WAIT_S),
      },
      paramsAndSecrets: lambda.ParamsAndSecretsLayerVersion.fromVersion(lambda.ParamsAndSecretsVersions.V1_0_103, {
        cacheSize: 10, logLevel: lambda.ParamsAndSecretsLogLevel.WARN,
      }),
      logGroup: new logs.LogGroup(this, 'GatewayLogs', { retention: logs.RetentionDays.ONE_MONTH }),
    });
    apiKeys.grantRead(gatewayFn);
    gatewayFn.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ReadInputsResultsUploads',
      actions: ['s3:GetObject'],
      resources: objects('jobs/*', 'uploads/*', 'readyz-probe'),
    }));
    gatewayFn.addToRolePolicy(new iam.PolicyStatement({
      sid: 'WriteInputsAndSignUploads',
      actions: ['s3:PutObject'],
      resources: objects('jobs/*', 'uploads/*'),
    }));
    // Without ListBucket a HEAD of a missing key is 403, not 404 (s3:// references, /readyz).
    gatewayFn.addToRolePolicy(new iam.PolicyStatement({ sid: 'MissingKeysAre404', actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }));

    this.api = new apigw.HttpApi(this, 'Api', {
      description: 'MVP-LM Serve perception API',
      defaultIntegration: new HttpLambdaIntegration('GatewayIntegration', gatewayFn, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
    });

    // --- Queue depth publisher: every minute, EMF → CloudWatch metrics (namespace MvpLm).
    const publisher = new lambda.Function(this, 'QueueMetrics', {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.X86_64,
      code: props.lambdaCode,
      handler: 'dist/src/queue-metrics-lambda.handler',
      memorySize: 256,
      timeout: Duration.seconds(30),
      vpc,
      vpcSubnets: net.egressSubnets,
      securityGroups: [gatewaySg],
      environment: { ...serviceEnv, METRICS_NAMESPACE },
      logGroup: new logs.LogGroup(this, 'QueueMetricsLogs', { retention: logs.RetentionDays.ONE_WEEK }),
    });
    new events.Rule(this, 'QueueMetricsSchedule', {
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(publisher)],
    });

    // --- GPU workers: ECS on GPU instances, one worker (one GPU) per instance.
    const cluster = new ecs.Cluster(this, 'Cluster', { vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const gpuAsg = new autoscaling.AutoScalingGroup(this, 'GpuInstances', {
      vpc,
      vpcSubnets: net.workerSubnets,
      instanceType: new ec2.InstanceType(props.gpuInstanceType ?? 'g5.xlarge'),
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      minCapacity: 0,
      maxCapacity: maxWorkers,
      requireImdsv2: true,
      securityGroup: workerSg,
    });
    // Tasks use their task role (169.254.170.2), never the instance's: block the instance metadata for them.
    gpuAsg.addUserData('echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config');
    const gpuCapacity = new ecs.AsgCapacityProvider(this, 'GpuCapacity', {
      autoScalingGroup: gpuAsg,
      enableManagedScaling: true,
      // Instances running a task are not terminated by scale-in.
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
    });
    cluster.addAsgCapacityProvider(gpuCapacity);

    const workerTask = new ecs.Ec2TaskDefinition(this, 'GpuWorkerTask', { networkMode: ecs.NetworkMode.AWS_VPC });
    workerTask.addContainer('worker', {
      image: props.gpuWorkerImage,
      gpuCount: 1,
      memoryReservationMiB: 12 * 1024,
      environment: {
        ...serviceEnv,
        ORT_PROVIDER: 'cuda',
        MODEL_DIR: '/models/current',
        MODEL_S3_URI: `s3://${this.bucket.bucketName}/${modelPrefix}`,
        WORKER_CONCURRENCY: '1',
      },
      // SIGTERM → the worker stops taking jobs and finishes the one it holds (workers/perception/main.ts).
      stopTimeout: Duration.seconds(ECS_MAX_STOP_TIMEOUT_S),
      healthCheck: {
        command: ['CMD', 'node', 'docker/healthcheck.mjs', 'worker'],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(180),
      },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'gpu-worker', logRetention: logs.RetentionDays.ONE_MONTH }),
    });
    const workerRole = workerTask.taskRole;
    workerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ReadInputsAndModel', actions: ['s3:GetObject'], resources: objects('jobs/*', 'uploads/*', `${modelPrefix}*`),
    }));
    workerRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WriteResults', actions: ['s3:PutObject'], resources: objects('jobs/*') }));
    workerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListModelAndJobs', actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${modelPrefix}*`, 'jobs/*'] } },
    }));

    const workers = new ecs.Ec2Service(this, 'GpuWorkers', {
      cluster,
      taskDefinition: workerTask,
      desiredCount: 0,
      capacityProviderStrategies: [{ capacityProvider: gpuCapacity.capacityProviderName, weight: 1 }],
      vpcSubnets: net.workerSubnets,
      securityGroups: [workerSg],
      minHealthyPercent: 0,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
    });
    // Tasks = min(backlog, max): backlog counts running jobs too, so scale-in never goes below the jobs in
    // progress; a worker that is stopped anyway drains its job within the stop timeout (> slowest job).
    const scaling = workers.autoScaleTaskCount({ minCapacity: 0, maxCapacity: maxWorkers });
    scaling.scaleOnMetric('ScaleOnBacklog', {
      metric: queueMetric('Backlog'),
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      scalingSteps: [{ upper: 0, change: 0 }, ...Array.from({ length: maxWorkers }, (_, i) => ({ lower: i + 1, change: i + 1 }))],
      evaluationPeriods: 1,
      cooldown: Duration.seconds(60),
    });

    // --- Webhook sender: Fargate in the egress subnets (no S3 access; the API keys secret for signing).
    const webhookTask = new ecs.FargateTaskDefinition(this, 'WebhookTask', { cpu: 256, memoryLimitMiB: 512 });
    webhookTask.addContainer('webhooks', {
      image: props.gatewayImage,
      command: ['node', 'dist/workers/webhooks/main.js'],
      environment: serviceEnv,
      secrets: { API_KEYS: ecs.Secret.fromSecretsManager(apiKeys) },
      stopTimeout: Duration.seconds(60),
      healthCheck: { command: ['CMD', 'node', 'docker/healthcheck.mjs', 'redis'], interval: Duration.seconds(30), timeout: Duration.seconds(5), retries: 3 },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'webhooks', logRetention: logs.RetentionDays.ONE_MONTH }),
    });
    new ecs.FargateService(this, 'Webhooks', {
      cluster,
      taskDefinition: webhookTask,
      desiredCount: 1,
      vpcSubnets: net.egressSubnets,
      securityGroups: [webhookSg],
      minHealthyPercent: 100,
      circuitBreaker: { rollback: true },
    });

    // --- Alarms
    const topic = new sns.Topic(this, 'Alarms', { displayName: 'MVP-LM Serve alarms' });
    if (props.alarmEmail) topic.addSubscription(new subs.EmailSubscription(props.alarmEmail));
    new QueueAlarms(this, 'QueueAlarms', { topic, maxQueueAgeSeconds: 600, notConsumingMinutes: 10 });

    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint });
    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'ApiKeysSecretArn', { value: apiKeys.secretArn });
    new CfnOutput(this, 'ModelS3Uri', { value: `s3://${this.bucket.bucketName}/${modelPrefix}` });
  }
}
