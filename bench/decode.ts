// Caption decoding measured as the worker decodes (workers/pipeline/generate.ts greedyResponse): greedy from the
// state after a 64-token prefill until <PER>, EOS or the cap, then the tail (<PER>, or the response marker and
// <PER>) — in one run of decoder_generate.onnx, with the TypeScript step loop (embed_tokens + decoder_model_merged
// + argmax per token, present.* fed back as past_key_values.*), and with PyTorch eager on the same model (a Python
// snippet; random-weight bundles only, it rebuilds the model from the manifest's seed). Also the bytes crossing the
// session boundary (feeds + fetches of every run after the prefill) per generated token, and the speculative draft
// (the job's previous caption) before the graph. Used by bench/pipeline.ts and bench/gpu-check.ts. Not a test.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadBundle } from '../workers/pipeline/bundle.js';
import { embed, emptyPast, greedyResponse, step, type DecodeState, type LanguageContext } from '../workers/pipeline/generate.js';
import type { GraphSession } from '../workers/pipeline/precision.js';
import { createSessions, type Provider, type Sessions } from '../workers/pipeline/sessions.js';
import { loadTokenizer } from '../workers/pipeline/tokenizer.js';

export interface Side {
  label: string;
  ms: number;
  tokensPerS: number;
}

export interface Traffic {
  label: string;
  runs: number;
  /** feeds + fetches over one response of `tokens` generated ids */
  total: number;
  perToken: number;
  /** bytes each further generated token adds (from a response cut at fewer tokens) */
  marginal: number;
}

export interface DecodeReport {
  dir: string;
  provider: Provider;
  fallbackReason?: string;
  threads: number | null;
  cap: number;
  tokens: number;
  cacheBytes: number;
  /** decoder_generate.onnx (when the bundle has it), the TS step loop, PyTorch eager (when measured) */
  sides: Side[];
  traffic: Traffic[];
  /** a second caption with the first as the speculative draft: ms of graph alone / full draft / half draft */
  draft: { graphAlone: number; fullDraft: number; fullDraftStepLoop: number; halfDraft: number } | null;
  hasGraph: boolean;
  torchVersion?: string;
}

type Tally = { feeds: number; fetches: number; runs: number };

/** The sessions with every run's feed and fetch byte sizes added up: what crosses the session boundary. */
export function counting(sessions: Sessions): { sessions: Sessions; tally: Tally } {
  const tally: Tally = { feeds: 0, fetches: 0, runs: 0 };
  const bytes = (tensors: Record<string, ort.Tensor | undefined>) =>
    Object.values(tensors).reduce((n, t) => n + ((t?.data as ArrayBufferView | undefined)?.byteLength ?? 0), 0);
  const wrap = (session: GraphSession): GraphSession => ({
    async run(feeds) {
      tally.feeds += bytes(feeds as Record<string, ort.Tensor>);
      const out = await session.run(feeds);
      tally.fetches += bytes(out as Record<string, ort.Tensor>);
      tally.runs++;
      return out;
    },
    release: () => session.release(),
  });
  return { sessions: Object.fromEntries(Object.entries(sessions).map(([k, v]) => [k, wrap(v)])) as Sessions, tally };
}

export const fmt = (v: number, d = 1) => v.toFixed(d);
export const size = (bytes: number) =>
  !Number.isFinite(bytes) ? 'n/a' : bytes >= 1 << 20 ? `${fmt(bytes / 2 ** 20, 2)} MiB` : bytes >= 1024 ? `${fmt(bytes / 1024, 1)} KiB` : `${fmt(bytes, 0)} B`;

export async function measureDecode(dir: string, opts: { provider?: Provider; threads?: number; tokens: number; torch?: boolean; python?: string; reps?: number }): Promise<DecodeReport> {
  const reps = opts.reps ?? 5;
  const bundle = await loadBundle(dir, { verifyHashes: false });
  const models = await createSessions(bundle, { provider: opts.provider ?? 'cpu', ...(opts.threads ? { intraOpThreads: opts.threads } : {}) });
  try {
    const manifest = { ...bundle.manifest, generation: { ...bundle.manifest.generation, max_new_tokens: opts.tokens } };
    const base = { manifest, tokenizer: loadTokenizer(bundle.tokenizerFile) };
    const { decoder_generate: graph, ...stepSessions } = models.sessions;
    const prefillIds = Array.from({ length: 64 }, (_, i) => 10 + i);
    const stepCtx: LanguageContext = { ...base, sessions: stepSessions };
    const loopCtx: LanguageContext = { ...base, sessions: models.sessions };
    const state: DecodeState = { out: await step(stepCtx, await embed(stepCtx, prefillIds), emptyPast(manifest), 0), length: prefillIds.length };
    const time = async (ctx: LanguageContext, draft: number[] = []) => {
      let best = Infinity;
      let ids: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        ids = (await greedyResponse(ctx, state, draft)).generatedIds;
        best = Math.min(best, performance.now() - t0);
      }
      return { ms: best, ids };
    };
    const ts = await time(stepCtx);
    const n = ts.ids.length;
    const rate = (ms: number) => n / (ms / 1000);
    const sides: Side[] = [];
    if (graph) {
      const lp = await time(loopCtx);
      if (lp.ids.join() !== ts.ids.join()) throw new Error('decoder_generate and the step loop chose different ids');
      sides.push({ label: 'decoder_generate.onnx (one run)', ms: lp.ms, tokensPerS: rate(lp.ms) });
    }
    sides.push({ label: 'TypeScript step loop', ms: ts.ms, tokensPerS: rate(ts.ms) });
    let torchVersion: string | undefined;
    if (opts.torch && bundle.manifest.weights.source === 'random') {
      const t = torchDecode(dir, opts.threads ?? 1, opts.tokens, opts.python ?? path.resolve('.venv/bin/python'), reps);
      if (t.ids.join() !== ts.ids.join()) throw new Error('PyTorch and the step loop chose different ids');
      torchVersion = t.version;
      sides.push({ label: `PyTorch eager (torch ${t.version})`, ms: t.ms, tokensPerS: rate(t.ms) });
    }

    const traffic: Traffic[] = [];
    const once = async (sessions: Sessions, cap: number) => {
      const c = counting(sessions);
      const ctx = { ...base, manifest: { ...manifest, generation: { ...manifest.generation, max_new_tokens: cap } }, sessions: c.sessions };
      const got = (await greedyResponse(ctx, state)).generatedIds.length;
      return { n: got, bytes: c.tally.feeds + c.tally.fetches, runs: c.tally.runs };
    };
    const short = Math.min(8, Math.max(1, n - 1));
    const sets: [string, Sessions][] = [['before: TS step loop', stepSessions as Sessions]];
    if (graph) sets.push(['after: decoder_generate.onnx', models.sessions]);
    for (const [label, sessions] of sets) {
      const a = await once(sessions, short);
      const b = await once(sessions, opts.tokens);
      traffic.push({ label, runs: b.runs, total: b.bytes, perToken: b.bytes / Math.max(1, b.n), marginal: b.n > a.n ? (b.bytes - a.bytes) / (b.n - a.n) : NaN });
    }

    let draft: DecodeReport['draft'] = null;
    if (graph && n > 1) {
      const half = [...ts.ids.slice(0, n >> 1), ...ts.ids.slice(n >> 1).map((t) => (t + 1) % manifest.dims.vocab_size)];
      draft = {
        graphAlone: (await time(loopCtx)).ms,
        fullDraft: (await time(loopCtx, ts.ids)).ms,
        fullDraftStepLoop: (await time(stepCtx, ts.ids)).ms,
        halfDraft: (await time(loopCtx, half)).ms,
      };
    }
    const cacheBytes = Object.values(state.out.past).reduce((a, t) => a + (t.data as Float32Array).byteLength, 0);
    return {
      dir, provider: models.provider, ...(models.fallbackReason ? { fallbackReason: models.fallbackReason } : {}),
      threads: opts.threads ?? null, cap: opts.tokens, tokens: n, cacheBytes, sides, traffic, draft, hasGraph: !!graph,
      ...(torchVersion ? { torchVersion } : {}),
    };
  } finally {
    await models.release();
  }
}

export function printDecode(r: DecodeReport, log: (s: string) => void): void {
  const threads = r.threads ?? 'ORT default';
  const shared = r.threads && r.threads > 1 ? ` (${cpus().length} shared cores: ${r.threads}-thread figures are unstable; read them beside 1 thread)` : '';
  log(`\n== caption decoding (${r.dir}) on ${r.provider}, ${threads} thread(s) on every side${shared}: greedy after a 64-token prefill until <PER>/EOS/cap ${r.cap}, then the <PER> tail; best of 5`);
  log(`  ${r.tokens} tokens generated (${r.tokens === r.cap ? 'the cap' : 'stopped on a stop token'}), identical ids on every side${r.hasGraph ? '' : '; the bundle has no decoder_generate.onnx'}`);
  for (const s of r.sides) log(`  ${s.label.padEnd(44)} ${fmt(s.tokensPerS).padStart(8)} tokens/s  (${fmt(s.ms)} ms per caption)`);
  const by = (prefix: string) => r.sides.find((s) => s.label.startsWith(prefix));
  const graph = by('decoder_generate');
  const ts = by('TypeScript');
  const torch = by('PyTorch');
  if (graph && ts) log(`  ratio decoder_generate / TS step loop: ${fmt(graph.tokensPerS / ts.tokensPerS, 2)}×`);
  if (graph && torch) log(`  ratio decoder_generate / PyTorch eager: ${fmt(graph.tokensPerS / torch.tokensPerS, 2)}×`);
  if (ts && torch) log(`  ratio TS step loop / PyTorch eager: ${fmt(ts.tokensPerS / torch.tokensPerS, 2)}×`);
  log(`  bytes crossing the session boundary (feeds + fetches) per generated token; the cache after the prompt is ${size(r.cacheBytes)}:`);
  for (const t of r.traffic) {
    log(`    ${t.label.padEnd(30)} ${size(t.perToken).padStart(10)} per token over the caption (${t.runs} runs, ${size(t.total)} in all); each further token ${size(t.marginal)} (target ≤ 1 KB)`);
  }
  if (r.traffic.length === 2) log(`    ratio before / after: ${fmt(r.traffic[0]!.perToken / r.traffic[1]!.perToken, 1)}× fewer bytes per token over the caption, ${fmt(r.traffic[0]!.marginal / r.traffic[1]!.marginal, 0)}× per further token`);
  if (r.draft) {
    log(`  a second caption on the same image with the first as the speculative draft: graph alone ${fmt(r.draft.graphAlone)} ms; ` +
      `draft fully accepted + graph ${fmt(r.draft.fullDraft)} ms (+ step loop ${fmt(r.draft.fullDraftStepLoop)} ms); draft half accepted + graph ${fmt(r.draft.halfDraft)} ms`);
  }
}

/** PyTorch eager, the same response (greedy until <PER>/EOS/cap, then the tail) after the same prefill. */
function torchDecode(dir: string, threads: number, tokens: number, python: string, reps: number): { ms: number; ids: number[]; version: string } {
  const code = `
import json, time, torch
torch.set_num_threads(${threads})
from mvp_lm.config import MVPLMConfig
from mvp_lm.export import build_model
from mvp_lm.prompt import PromptSpec, response_tail_ids
from mvp_lm.tokenizer import load_tokenizer
m = json.load(open(${JSON.stringify(path.join(dir, 'manifest.json'))}))
tok = load_tokenizer(${JSON.stringify(path.join(dir, 'tokenizer.json'))})
model = build_model(MVPLMConfig.from_dict(m['config']), m['weights'].get('seed', 0))
per, eos, cap = m['tokens']['per'], m['tokens']['eos'], ${tokens}
marker_tail = response_tail_ids(tok, PromptSpec.from_manifest(m))
ones = lambda n: torch.ones(1, n, dtype=torch.long)
best, ids = float('inf'), []
with torch.no_grad():
    first = model.llm(model.embed_tokens(torch.arange(10, 74)[None]), ones(64), torch.arange(64)[None], None)
    for r in range(${reps}):
        out, past, length, gen, stop = first, first['present'], 64, [], None
        t0 = time.perf_counter()
        while len(gen) < cap:
            nxt = int(out['logits'][0, -1].argmax())
            if nxt in (per, eos):
                stop = nxt
                break
            gen.append(nxt)
            out = model.llm(model.embed_tokens(torch.tensor([[nxt]])), ones(length + 1), torch.tensor([[length]]), past)
            past, length = out['present'], length + 1
        tail = [per] if stop == per else marker_tail
        model.llm(model.embed_tokens(torch.tensor([tail])), ones(length + len(tail)), torch.arange(length, length + len(tail))[None], past)
        best, ids = min(best, (time.perf_counter() - t0) * 1000), gen
print(json.dumps({"ms": best, "ids": ids, "version": torch.__version__}))
`;
  return JSON.parse(execFileSync(python, ['-c', code], { cwd: path.resolve('model'), encoding: 'utf8', maxBuffer: 1 << 26 }).trim()) as { ms: number; ids: number[]; version: string };
}
