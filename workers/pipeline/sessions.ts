// ONNX Runtime sessions of a bundle's four graphs on the configured provider. Asking for CUDA where the CUDA
// provider cannot load throws at session creation (serving-notes.md), so CUDA is tried alone and a failure falls
// back to CPU explicitly, with a log line; the active provider is reported.
import * as ort from 'onnxruntime-node';
import type { Bundle } from './bundle.js';
import { GRAPHS, type GraphName } from './manifest.js';
import type { PipelineLogger } from './types.js';

export type Provider = 'cpu' | 'cuda';

export interface SessionConfig {
  provider: Provider;
  deviceId?: number;
  logger?: PipelineLogger;
  /** Threads per ORT operator; default: ORT's choice (all cores). */
  intraOpThreads?: number;
}

export interface ModelSessions {
  provider: Provider;
  /** Why CUDA was not used when it was asked for. */
  fallbackReason?: string;
  sessions: Record<GraphName, ort.InferenceSession>;
  release(): Promise<void>;
}

function options(provider: Provider, cfg: SessionConfig): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: cfg.deviceId ?? 0 }] : ['cpu'],
    graphOptimizationLevel: 'all',
    ...(cfg.intraOpThreads ? { intraOpNumThreads: cfg.intraOpThreads } : {}),
    // ORT's pool threads otherwise spin after every run and take the cores from the post-processing that follows
    // in this thread (measured: sentence post-processing right after perception 463 → 191 ms on the tiny bundle).
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

async function createAll(bundle: Bundle, provider: Provider, cfg: SessionConfig): Promise<Record<GraphName, ort.InferenceSession>> {
  const created: Partial<Record<GraphName, ort.InferenceSession>> = {};
  try {
    for (const g of GRAPHS) created[g] = await ort.InferenceSession.create(bundle.graph(g), options(provider, cfg));
  } catch (err) {
    await Promise.all(Object.values(created).map((s) => s.release()));
    throw err;
  }
  return created as Record<GraphName, ort.InferenceSession>;
}

export async function createSessions(bundle: Bundle, cfg: SessionConfig): Promise<ModelSessions> {
  let provider = cfg.provider;
  let fallbackReason: string | undefined;
  let sessions: Record<GraphName, ort.InferenceSession>;
  try {
    sessions = await createAll(bundle, provider, cfg);
  } catch (err) {
    if (provider !== 'cuda') throw err;
    fallbackReason = (err as Error).message.split('\n')[0]!.slice(0, 300);
    cfg.logger?.warn({ provider: 'cpu', requested: 'cuda', deviceId: cfg.deviceId ?? 0, reason: fallbackReason },
      'CUDA execution provider unavailable; falling back to CPU');
    provider = 'cpu';
    sessions = await createAll(bundle, provider, cfg);
  }
  cfg.logger?.info({ provider, deviceId: provider === 'cuda' ? cfg.deviceId ?? 0 : undefined, bundle: bundle.dir }, 'ONNX sessions ready');
  return {
    provider,
    fallbackReason,
    sessions,
    release: async () => {
      await Promise.all(Object.values(sessions).map((s) => s.release()));
    },
  };
}
