// The GPU check's Node side (scripts/gpu-check.sh): the worker's own code path (onnxruntime-node, the threaded
// pipeline) on the asked provider, falling back to CPU as the worker does and saying why.
//   npx tsx bench/gpu-check.ts [--bundle models/demo] [--provider cuda|cpu] [--runs 5] [--tokens 64]
// Prints table rows: provider load (requested, active, fallback reason, warm-up), per-stage latency of real jobs
// (the bundle's CI-slice images when it has them, else a synthetic PNG), caption decoding tokens/s by
// decoder_generate.onnx vs the TypeScript step loop, and the bytes crossing the session boundary per generated token.
// Not a test.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Task } from '../contracts/task.js';
import { createOnnxPipeline } from '../workers/pipeline/pipeline.js';
import type { Provider } from '../workers/pipeline/sessions.js';
import { fmt, measureDecode, size } from './decode.js';

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string', default: 'models/demo' },
    provider: { type: 'string', default: 'cuda' },
    runs: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '64' },
  },
});
const dir = path.resolve(args.bundle!);
const provider = args.provider as Provider;
if (!['cuda', 'cpu'].includes(provider)) throw new Error(`--provider: cuda or cpu, not ${provider}`);
const runs = Number(args.runs);
const row = (what: string, value: string) => process.stdout.write(`| ${what.padEnd(48)} | ${value}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

row('node / onnxruntime-node', `${process.version} / ${JSON.parse(readFileSync('node_modules/onnxruntime-node/package.json', 'utf8')).version}`);
const t0 = performance.now();
const pipeline = await createOnnxPipeline({ modelDir: dir, provider });
const info = pipeline.info();
row('provider load', `asked ${provider}, active ${info.provider}${info.fallbackReason ? ` (fell back: ${info.fallbackReason})` : ''}; ` +
  `${fmt(performance.now() - t0, 0)} ms for sessions + warm-up (warm-up ${fmt(info.warmupMs, 0)} ms); captions by ${info.generation}; ${info.precision} graphs`);

interface SliceCase { image: string; caption: boolean; tasks: unknown[] }
const sliceFile = path.join(dir, 'ci-slice', 'cases.json');
const jobs: { image: Buffer; tasks: Task[]; caption: boolean }[] = existsSync(sliceFile)
  ? (JSON.parse(readFileSync(sliceFile, 'utf8')) as SliceCase[]).slice(0, 2).map((c) => ({
    image: readFileSync(path.join(dir, 'ci-slice', c.image)), tasks: c.tasks.map((t) => Task.parse(t)), caption: true,
  }))
  : [{ image: await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 140, b: 200 } } }).png().toBuffer(),
    tasks: [Task.parse({ type: 'words', phrases: ['person', 'dog'], mode: 'instance' })], caption: true }];
try {
  for (const [j, job] of jobs.entries()) {
    const per: Record<string, number[]> = {};
    const total: number[] = [];
    for (let r = 0; r < runs; r++) {
      const s = performance.now();
      const res = await pipeline.run({ jobId: `gpu-check-${j}-${r}`, ...job }, { onStage: () => undefined, shouldStop: () => false });
      total.push(performance.now() - s);
      for (const [k, v] of Object.entries(res.timings_ms)) (per[k] ??= []).push(v);
    }
    const label = `job ${j + 1} (${job.tasks.map((t) => `${t.type}/${t.mode}`).join(' + ')}, caption on)`;
    row(`stages of ${label}`.slice(0, 48), `${Object.entries(per).map(([k, v]) => `${k} ${fmt(median(v))}`).join(', ')} ms; whole job ${fmt(median(total))} ms (median of ${runs})`);
  }
} finally {
  await pipeline.close();
}

const r = await measureDecode(dir, { provider, tokens: Number(args.tokens), reps: runs });
row('caption decoding', `${r.tokens} tokens after a 64-token prefill (${r.tokens === r.cap ? 'the cap' : 'stopped on a stop token'}), on ${r.provider}`);
for (const s of r.sides) row(`  ${s.label}`, `${fmt(s.tokensPerS)} tokens/s (${fmt(s.ms)} ms per caption)`);
if (r.sides.length > 1) row('  ratio decoder_generate / step loop', `${fmt(r.sides[0]!.tokensPerS / r.sides[1]!.tokensPerS, 2)}×`);
for (const t of r.traffic) row(`  bytes/token ${t.label}`, `${size(t.perToken)} over the caption (${t.runs} runs); each further token ${size(t.marginal)}`);
if (r.draft) row('  second caption: graph alone / draft + graph', `${fmt(r.draft.graphAlone)} / ${fmt(r.draft.fullDraft)} ms (draft fully accepted), ${fmt(r.draft.halfDraft)} ms (half)`);
