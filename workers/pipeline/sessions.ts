// ONNX Runtime sessions of a bundle's graphs on the configured provider. Asking for CUDA where the CUDA
// provider cannot load throws at session creation (serving-notes.md), so CUDA is tried alone and a failure falls
// back to CPU explicitly, with a log line; the active provider is reported. The optional decoder_generate.onnx
// (greedy decoding in one run) gets a session when the bundle has it, on every provider. The precision follows
// the provider (precision.ts): fp16 graphs on CUDA where the bundle has them, fp32 on CPU, unless configured.
import * as ort from 'onnxruntime-node';
import type { Bundle } from './bundle.js';
import { GRAPHS, OPTIONAL_GRAPHS, type GraphName, type OptionalGraphName } from './manifest.js';
import { choosePrecision, feedingDeclaredTypes, type GraphSession, type PrecisionChoice, type PrecisionName } from './precision.js';
import type { PipelineLogger } from './types.js';

export type Provider = 'cpu' | 'cuda';

export interface SessionConfig {
  provider: Provider;
  deviceId?: number;
  logger?: PipelineLogger;
  /** Threads per ORT operator; default: ORT's choice (all cores). */
  intraOpThreads?: number;
  /**
   * Load decoder_generate.onnx when the bundle has it (default true), so captions are decoded in one run; false
   * leaves it out and captions take the step loop (tests and benchmarks compare the two).
   */
  generationGraph?: boolean;
  /** Which graphs to load (default auto: fp16 on CUDA when the bundle has them, else fp32). */
  precision?: PrecisionChoice;
}

/** The four graphs every bundle has, plus the optional ones the bundle has (and the config wants). */
export type Sessions = Record<GraphName, GraphSession> & Partial<Record<OptionalGraphName, GraphSession>>;

export interface ModelSessions {
  provider: Provider;
  precision: PrecisionName;
  /** Why CUDA was not used when it was asked for. */
  fallbackReason?: string;
  sessions: Sessions;
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

async function createAll(bundle: Bundle, provider: Provider, precision: PrecisionName, cfg: SessionConfig): Promise<Sessions> {
  const created: Partial<Sessions> = {};
  const load = (file: string) => ort.InferenceSession.create(file, options(provider, cfg));
  try {
    for (const g of GRAPHS) created[g] = feedingDeclaredTypes(await load(bundle.graph(g, precision)));
    for (const g of OPTIONAL_GRAPHS) {
      const file = bundle.optionalGraph(g, precision);
      if (!file || cfg.generationGraph === false) continue;
      const session = await load(file);
      if (session.inputNames.includes('attention_mask')) {
        created[g] = feedingDeclaredTypes(session);
        continue;
      }
      // the batch-1 form of the graph, exported before it took batches: the step loop decodes instead
      await session.release();
      cfg.logger?.warn({ graph: file }, `${g}.onnx takes no attention_mask (exported before batched decoding); captions use the step loop. Rebuild it with python -m mvp_lm.export --add-generation-graph --bundle DIR`);
    }
  } catch (err) {
    await Promise.all(Object.values(created).map((s) => s.release()));
    throw err;
  }
  return created as Sessions;
}

export async function createSessions(bundle: Bundle, cfg: SessionConfig): Promise<ModelSessions> {
  let provider = cfg.provider;
  let precision = choosePrecision(bundle.manifest, provider, cfg.precision ?? 'auto');
  let fallbackReason: string | undefined;
  let sessions: Sessions;
  try {
    sessions = await createAll(bundle, provider, precision, cfg);
  } catch (err) {
    if (provider !== 'cuda') throw err;
    fallbackReason = (err as Error).message.split('\n')[0]!.slice(0, 300);
    cfg.logger?.warn({ provider: 'cpu', requested: 'cuda', deviceId: cfg.deviceId ?? 0, reason: fallbackReason },
      'CUDA execution provider unavailable; falling back to CPU');
    provider = 'cpu';
    precision = choosePrecision(bundle.manifest, provider, cfg.precision ?? 'auto');
    sessions = await createAll(bundle, provider, precision, cfg);
  }
  const generation = sessions.decoder_generate ? 'decoder_generate' : 'step loop';
  cfg.logger?.info({ provider, precision, deviceId: provider === 'cuda' ? cfg.deviceId ?? 0 : undefined, bundle: bundle.dir, generation }, 'ONNX sessions ready');
  return {
    provider,
    precision,
    fallbackReason,
    sessions,
    release: async () => {
      await Promise.all(Object.values(sessions).map((s) => s.release()));
    },
  };
}
