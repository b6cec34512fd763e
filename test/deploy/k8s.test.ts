// The Kubernetes manifests, parsed and checked for the invariants: GPU requests, KEDA on the queue depth
// the gateway really exports, disruption budgets, graceful termination longer than the slowest job, no
// secrets, non-root pods, selectors that match, user-URL egress limited to public addresses.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { loadConfig } from '../../lib/config.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { createQueues, loadQueueSettings } from '../../lib/queue/index.js';
import { createRedis } from '../../lib/redis/index.js';
import { INTERNAL_RANGES } from '../../infra/lib/network.js';
import { bakedSecret } from './invariants.js';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

const kustomization = parse(readFileSync('k8s/kustomization.yaml', 'utf8')) as { resources: string[]; images: { name: string; newTag: string }[] };
const objects: Obj[] = kustomization.resources.flatMap((f) =>
  parseAllDocuments(readFileSync(`k8s/${f}`, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`k8s/${f}: ${d.errors[0]!.message}`);
    return d.toJSON() as Obj;
  }));
const find = (kind: string, name: string): Obj => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in k8s/`);
  return o;
};
const deployments = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const podSpec = (o: Obj) => o.spec.template.spec;
const config = find('ConfigMap', 'mvp-config').data!;
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests', () => {
  it('every workload selector matches its pod labels; every Service and PDB selects an existing workload', () => {
    for (const d of deployments) expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(true);
    for (const o of objects.filter((x) => x.kind === 'Service' || x.kind === 'PodDisruptionBudget')) {
      const sel = o.kind === 'Service' ? o.spec.selector : o.spec.selector.matchLabels;
      expect(deployments.some((d) => matches(sel, d.spec.template.metadata.labels)), `${o.kind} ${o.metadata.name}`).toBe(true);
    }
  });

  it('pods run as non-root without privilege escalation and have health probes', () => {
    for (const d of deployments) {
      expect(podSpec(d).securityContext.runAsNonRoot, d.metadata.name).toBe(true);
      for (const c of podSpec(d).containers) {
        expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
        expect(c.livenessProbe ?? c.readinessProbe, c.name).toBeDefined();
      }
    }
  });

  it('gateway: readiness does not depend on workers (they scale to zero), a Service and a PDB', () => {
    const gw = find('Deployment', 'mvp-gateway');
    const c = podSpec(gw).containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/healthz');
    expect(find('Service', 'mvp-gateway').spec.ports[0].targetPort).toBe(c.ports[0].name);
    expect(find('PodDisruptionBudget', 'mvp-gateway').spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(gw.spec.replicas).toBeGreaterThan(find('PodDisruptionBudget', 'mvp-gateway').spec.minAvailable);
  });

  it('GPU worker: requests a GPU, tolerates GPU nodes, terminates more slowly than the slowest job, has a PDB', () => {
    const w = find('Deployment', 'mvp-worker-gpu');
    const c = podSpec(w).containers[0];
    expect(c.resources.limits['nvidia.com/gpu']).toBeGreaterThanOrEqual(1);
    expect(c.resources.requests['nvidia.com/gpu']).toBe(c.resources.limits['nvidia.com/gpu']);
    expect(podSpec(w).tolerations.some((t: { key: string }) => t.key === 'nvidia.com/gpu')).toBe(true);
    const deadlineMs = loadConfig({ ...config }).jobDeadlineMs;
    expect(podSpec(w).terminationGracePeriodSeconds * 1000).toBeGreaterThan(deadlineMs);
    expect(c.env.find((e: { name: string }) => e.name === 'ORT_PROVIDER').value).toBe('cuda');
    expect(w.spec.replicas).toBeUndefined(); // KEDA owns it
    expect(find('PodDisruptionBudget', 'mvp-worker-gpu').spec.maxUnavailable).toBe(1);
  });

  it('KEDA scales the worker from zero on waiting + prioritized + active of the perception queue', () => {
    const so = find('ScaledObject', 'mvp-worker-gpu');
    expect(so.spec.scaleTargetRef.name).toBe('mvp-worker-gpu');
    expect(so.spec.minReplicaCount).toBe(0);
    expect(so.spec.maxReplicaCount).toBeGreaterThanOrEqual(1);
    const trigger = so.spec.triggers[0];
    expect(trigger.type).toBe('prometheus');
    const q: string = trigger.metadata.query;
    expect(q).toMatch(/mvp_queue_jobs\{queue="perception",state=~"waiting\|prioritized\|active"\}/);
    expect(q).toMatch(/max by \(state\)/); // several gateways report the same cluster-wide value
    expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
  });

  it('the metric and labels KEDA queries are what the gateway exports on /metrics', async () => {
    const redis = createRedis(process.env.TEST_REDIS_URL!, 'client');
    const settings = loadQueueSettings({ QUEUE_PREFIX: `k8${randomBytes(4).toString('hex')}` });
    const queues = createQueues(redis, settings, { retentionS: 60, webhookMaxAttempts: 1 });
    try {
      const text = await createMetricsRegistry({ redis, prefix: settings.prefix, queues: [queues.perception, queues.webhooks], defaultMetrics: false }).metrics();
      for (const state of ['waiting', 'prioritized', 'active']) expect(text).toContain(`mvp_queue_jobs{queue="perception",state="${state}"} 0`);
    } finally {
      await queues.close();
      await redis.quit();
    }
  });

  it('configuration parses; no Secret objects or secret-looking values are committed; API keys come from a mounted Secret', () => {
    expect(() => loadConfig({ ...config })).not.toThrow();
    expect(() => loadQueueSettings({ ...config })).not.toThrow();
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    for (const [k, v] of Object.entries(config)) expect(bakedSecret(k, v), k).toBeNull();
    for (const d of deployments) {
      for (const c of podSpec(d).containers) for (const e of c.env ?? []) expect(bakedSecret(e.name, String(e.value ?? '')), `${c.name} ${e.name}`).toBeNull();
    }
    for (const name of ['mvp-gateway', 'mvp-webhooks']) {
      const spec = podSpec(find('Deployment', name));
      const keysFile = spec.containers[0].env.find((e: { name: string }) => e.name === 'API_KEYS_FILE').value as string;
      const mount = spec.containers[0].volumeMounts.find((m: { mountPath: string }) => keysFile.startsWith(m.mountPath + '/'));
      expect(spec.volumes.find((v: { name: string }) => v.name === mount.name).secret.secretName).toBe('mvp-api-keys');
    }
  });

  it('pods that fetch user URLs may reach only Redis, DNS and public addresses', () => {
    const np = find('NetworkPolicy', 'mvp-user-url-egress');
    for (const name of ['mvp-gateway', 'mvp-webhooks']) {
      expect(matches(np.spec.podSelector.matchLabels, find('Deployment', name).spec.template.metadata.labels), name).toBe(true);
    }
    expect(np.spec.policyTypes).toEqual(['Egress']);
    const ipBlocks = np.spec.egress.flatMap((r: { to: { ipBlock?: { cidr: string; except?: string[] } }[] }) => r.to.filter((t) => t.ipBlock).map((t) => t.ipBlock!));
    expect(ipBlocks).toHaveLength(1);
    expect(ipBlocks[0].cidr).toBe('0.0.0.0/0');
    expect([...ipBlocks[0].except].sort()).toEqual([...INTERNAL_RANGES].sort());
  });

  it('the optional alerts query only metrics and labels the gateway exports', async () => {
    const rule = parse(readFileSync('k8s/optional/alerts.yaml', 'utf8')) as { kind: string; spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
    expect(rule.kind).toBe('PrometheusRule');
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert).sort()).toEqual(['MvpBacklogNotDraining', 'MvpJobsFailing', 'MvpWorkersNotConsuming']);
    const redis = createRedis(process.env.TEST_REDIS_URL!, 'client');
    const settings = loadQueueSettings({ QUEUE_PREFIX: `k8${randomBytes(4).toString('hex')}` });
    const queues = createQueues(redis, settings, { retentionS: 60, webhookMaxAttempts: 1 });
    try {
      await redis.hincrby(`${settings.prefix}:metrics:job-outcomes`, 'failed', 1);
      const text = await createMetricsRegistry({ redis, prefix: settings.prefix, queues: [queues.perception, queues.webhooks], defaultMetrics: false }).metrics();
      for (const r of rules) {
        for (const m of r.expr.matchAll(/(mvp_[a-z_]+)\{([^}]*)\}/g)) {
          const [, name, selector] = m;
          const series = text.split('\n').filter((l) => l.startsWith(`${name}{`));
          expect(series.length, `${r.alert}: ${name}`).toBeGreaterThan(0);
          for (const [, label] of selector!.matchAll(/([a-z_]+)=~?"/g)) expect(series.some((l) => l.includes(`${label}="`)), `${r.alert}: ${name} ${label}`).toBe(true);
        }
      }
    } finally {
      await queues.close();
      await redis.quit();
    }
  });

  it('Redis keeps its data (AOF, noeviction) on a volume; images are pinned', () => {
    const args: string = podSpec(find('StatefulSet', 'mvp-redis')).containers[0].args.join(' ');
    expect(args).toMatch(/--appendonly yes/);
    expect(args).toMatch(/--maxmemory-policy noeviction/);
    expect(find('StatefulSet', 'mvp-redis').spec.volumeClaimTemplates).toHaveLength(1);
    for (const img of kustomization.images) expect(img.newTag, img.name).toMatch(/^\d+\.\d+\.\d+/);
    for (const d of deployments) {
      for (const c of podSpec(d).containers) {
        const own = kustomization.images.some((i) => i.name === c.image);
        expect(own || /:\d+\.\d+\.\d+/.test(c.image), c.image).toBe(true);
      }
    }
  });
});
