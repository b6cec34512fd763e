// npm run bench:batching [-- --tiny DIR] [--mid DIR] [--batches 1,4,8] [--jobs N] [--clients N] [--wait-ms N]
//                         [--postprocess-threads N]
// Not a test: prints what it measured in this run, on this machine. Dynamic batching on the perception pipeline
// (workers/pipeline/batcher.ts): throughput (jobs/s) and p50/p99 job latency at BATCH_MAX 1, 4 and 8 under a
// steady load of mixed jobs, on the tiny bundle and on the mid preset (random weights; big enough that the graphs,
// not the JavaScript, take most of a job's time). The load is closed-loop: `clients` users each submit a job, wait
// for its result and submit the next; the worker runs up to max(1, BATCH_MAX) jobs at once (its BullMQ
// concurrency) and the rest wait, as in the queue, so latency includes that wait. One more row runs BATCH_MAX 1
// with as many jobs in flight as the largest BATCH_MAX (WORKER_CONCURRENCY), which separates what batching gains
// from what running jobs side by side gains (post-processing on its own thread overlaps the graphs). The stage
// table gives a job's mean milliseconds per stage when it runs alone (BATCH_MAX 1, one job in flight), i.e. what
// each stage costs. Bundles missing from .data/bundles are exported with `python -m mvp_lm.export` (random
// weights, seed 0).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Task } from '../contracts/task.js';
import { createOnnxPipeline } from '../workers/pipeline/pipeline.js';
import type { PipelineInput } from '../workers/pipeline/types.js';

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'string', default: '.data/bundles/tiny-paper' },
    mid: { type: 'string', default: '.data/bundles/mid-paper' },
    batches: { type: 'string', default: '1,4,8' },
    jobs: { type: 'string', default: '48' },
    clients: { type: 'string', default: '16' },
    'wait-ms': { type: 'string', default: '10' },
    'postprocess-threads': { type: 'string', default: '1' },
  },
});
const batches = args.batches!.split(',').map(Number);
const log = (s: string) => process.stdout.write(`${s}\n`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

function ensureBundle(dir: string, preset: string): string {
  if (!existsSync(path.join(dir, 'manifest.json'))) {
    log(`exporting ${preset} (random weights) to ${dir} ...`);
    execFileSync(path.resolve('.venv/bin/python'), ['-m', 'mvp_lm.export', '--preset', preset, '--variant', 'paper', '--seed', '0', '--out', path.resolve(dir)], {
      cwd: path.resolve('model'),
      stdio: 'inherit',
    });
  }
  return dir;
}

/** The mix: words with a caption (panoptic), a sentence without, words (instance) without, a sentence with. */
const MIX: { tasks: unknown[]; caption: boolean }[] = [
  { tasks: [{ type: 'words', mode: 'panoptic', phrases: ['person', 'dog', 'frisbee', { text: 'grass', stuff: true }] }], caption: true },
  { tasks: [{ type: 'sentence', sentence: 'the man in the red shirt on the left', mode: 'single' }], caption: false },
  { tasks: [{ type: 'words', mode: 'instance', phrases: ['car', 'bus', 'truck'] }], caption: false },
  { tasks: [{ type: 'sentence', sentence: 'every dog', mode: 'multi' }], caption: true },
];
const SIZES: [number, number][] = [[640, 480], [480, 640], [320, 240], [800, 600]];

async function image(i: number): Promise<Buffer> {
  const [w, h] = SIZES[i % SIZES.length]!;
  const rgb = new Uint8Array(w * h * 3).map((_, k) => ((k + i * 7919) * 2654435761) >>> 24);
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg().toBuffer();
}

async function jobsFor(n: number): Promise<Omit<PipelineInput, 'jobId'>[]> {
  const images = await Promise.all(SIZES.map((_, i) => image(i)));
  return Array.from({ length: n }, (_, i) => {
    const m = MIX[i % MIX.length]!;
    return { image: images[i % images.length]!, tasks: m.tasks.map((t) => Task.parse(t)), caption: m.caption };
  });
}

interface Row {
  batchMax: number;
  inFlight: number;
  /** Mean milliseconds per job in each stage. */
  stageMs: Record<string, number>;
  jobsPerS: number;
  p50: number;
  p99: number;
  meanBatch: Record<string, number>;
}

/** A FIFO semaphore: the worker's concurrency. */
function slots(n: number) {
  let free = n;
  const waiting: (() => void)[] = [];
  return {
    acquire: () => (free > 0 ? (free--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r))),
    release: () => {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}

async function measure(dir: string, batchMax: number, inFlight: number, jobs: Omit<PipelineInput, 'jobId'>[], clients: number): Promise<Row> {
  const sizes: Record<string, number[]> = {};
  const pipeline = await createOnnxPipeline({
    modelDir: dir,
    provider: 'cpu',
    batch: { max: batchMax, waitMs: Number(args['wait-ms']) },
    postprocessThreads: Number(args['postprocess-threads']),
    onBatch: (stage, b) => (sizes[stage] ??= []).push(b.size),
  });
  const hooks = { onStage: () => undefined, shouldStop: () => false };
  try {
    // warm-up: one batch's worth, not counted
    await Promise.all(jobs.slice(0, batchMax).map((j, i) => pipeline.run({ ...j, jobId: `warm${i}` }, hooks)));
    for (const k of Object.keys(sizes)) delete sizes[k];
    const worker = slots(inFlight);
    const latencies: number[] = [];
    const stageMs: Record<string, number> = {};
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < jobs.length) {
          const i = next++;
          const submitted = performance.now();
          await worker.acquire();
          try {
            const { timings_ms } = await pipeline.run({ ...jobs[i]!, jobId: `j${i}` }, hooks);
            for (const [k, v] of Object.entries(timings_ms)) if (!k.endsWith('_batch')) stageMs[k] = (stageMs[k] ?? 0) + v / jobs.length;
          } finally {
            worker.release();
          }
          latencies.push(performance.now() - submitted);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const meanBatch = Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0) / v.length]));
    return { batchMax, inFlight, stageMs, jobsPerS: jobs.length / seconds, p50: pct(latencies, 50), p99: pct(latencies, 99), meanBatch };
  } finally {
    await pipeline.close();
  }
}

async function table(label: string, dir: string): Promise<void> {
  const jobs = await jobsFor(Number(args.jobs));
  const clients = Number(args.clients);
  log(`\n== ${label} (${dir}): ${jobs.length} mixed jobs, ${clients} clients in a closed loop, BATCH_WAIT_MS ${args['wait-ms']}`);
  const runs = [...batches.map((b) => [b, b]), [1, Math.max(...batches)]] as [number, number][];
  const rows: Row[] = [];
  for (const [b, inFlight] of runs) {
    rows.push(await measure(dir, b, inFlight, jobs, clients));
    log(`  BATCH_MAX ${b}, ${inFlight} in flight: done`);
  }
  const base = rows[0]!;
  log('| BATCH_MAX | jobs in flight | jobs/s | vs first | p50 latency ms | p99 latency ms | mean batch (vision / language / perception) |');
  log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const mb = ['vision', 'language', 'perception'].map((s) => (r.meanBatch[s] ?? 0).toFixed(1)).join(' / ');
    log(`| ${r.batchMax} | ${r.inFlight} | ${r.jobsPerS.toFixed(2)} | ${(r.jobsPerS / base.jobsPerS).toFixed(2)}× | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${mb} |`);
  }
  const stages = Object.keys(base.stageMs);
  const total = stages.reduce((a, k) => a + base.stageMs[k]!, 0);
  log(`\nA job alone (BATCH_MAX 1, one in flight), mean ms per stage: ${stages.map((k) => `${k} ${base.stageMs[k]!.toFixed(0)} (${((100 * base.stageMs[k]!) / total).toFixed(0)} %)`).join(', ')}`);
}

await table('tiny bundle', ensureBundle(args.tiny!, 'tiny'));
await table('mid preset', ensureBundle(args.mid!, 'mid'));
