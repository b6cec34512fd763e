// npm run perceive -- <image> --words "a, b" [--stuff "sky"] [--mode panoptic] [--overlay out.png]
//                  | <image> --sentence "…" [--multi]
//   [--no-caption] [--model DIR] [--provider cpu|cuda] [--precision auto|fp32|fp16] [--device N] [--top-k N] [--threshold X]
// Runs the ONNX pipeline in this process (in its own thread) and prints the PerceptionResult JSON.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Task } from '../../contracts/task.js';
import { renderOverlay } from '../overlay/render.js';
import { createOnnxPipeline } from '../pipeline/pipeline.js';
import { PRECISION_CHOICES } from '../pipeline/precision.js';

const USAGE = `usage: npm run perceive -- <image> (--words "a, b" [--stuff "sky"] [--mode instance|panoptic|semantic|detection]
                                   | --sentence "…" [--multi])
                       [--no-caption] [--overlay out.png] [--model DIR] [--provider cpu|cuda]
                       [--precision auto|fp32|fp16] [--device N]
                       [--top-k N] [--threshold X]`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    words: { type: 'string' },
    stuff: { type: 'string' },
    mode: { type: 'string' },
    sentence: { type: 'string' },
    multi: { type: 'boolean', default: false },
    'no-caption': { type: 'boolean', default: false },
    overlay: { type: 'string' },
    model: { type: 'string' },
    provider: { type: 'string', default: 'cpu' },
    precision: { type: 'string', default: 'auto' },
    device: { type: 'string', default: '0' },
    'top-k': { type: 'string' },
    threshold: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (o.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const imagePath = positionals[0] ?? fail('no image given');
if (!existsSync(imagePath)) fail(`image ${imagePath} does not exist`);
if (!o.words === !o.sentence) fail('give exactly one of --words and --sentence');
if (o.provider !== 'cpu' && o.provider !== 'cuda') fail(`--provider must be cpu or cuda, not ${o.provider}`);
const precision = PRECISION_CHOICES.find((p) => p === o.precision) ?? fail(`--precision must be one of ${PRECISION_CHOICES.join(', ')}, not ${o.precision}`);

const list = (s?: string) => (s ?? '').split(',').map((p) => p.trim()).filter(Boolean);
const rawTask = o.words
  ? {
      type: 'words',
      phrases: [...list(o.words).map((text) => ({ text, stuff: list(o.stuff).includes(text) })),
        ...list(o.stuff).filter((s) => !list(o.words).includes(s)).map((text) => ({ text, stuff: true }))],
      ...(o.mode ? { mode: o.mode } : {}),
      ...(o['top-k'] ? { top_k: Number(o['top-k']) } : {}),
      ...(o.threshold ? { score_threshold: Number(o.threshold) } : {}),
    }
  : { type: 'sentence', sentence: o.sentence, mode: o.multi ? 'multi' : 'single', ...(o.threshold ? { score_threshold: Number(o.threshold) } : {}) };
const parsed = Task.safeParse(rawTask);
if (!parsed.success) fail(`invalid task: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);

const modelDir = o.model ?? (existsSync('models/demo/manifest.json') ? 'models/demo' : '.data/bundles/tiny-paper');
if (!existsSync(path.join(modelDir, 'manifest.json'))) {
  fail(`no model bundle in ${modelDir}; export one with:\n  cd model && ../.venv/bin/python -m mvp_lm.export --preset tiny --variant paper --seed 0 --out ../.data/bundles/tiny-paper`);
}

const logger = { info: () => undefined, warn: (obj: object, msg?: string) => process.stderr.write(`warning: ${msg} ${JSON.stringify(obj)}\n`) };
const pipeline = await createOnnxPipeline({ modelDir, provider: o.provider, precision, deviceId: Number(o.device), logger });
try {
  const image = readFileSync(imagePath);
  const result = await pipeline.run(
    { jobId: `cli-${Date.now()}`, image, tasks: [parsed.data], caption: !o['no-caption'] },
    { onStage: () => undefined, shouldStop: () => false },
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (o.overlay) {
    writeFileSync(o.overlay, await renderOverlay(image, result));
    process.stderr.write(`overlay written to ${o.overlay}\n`);
  }
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await pipeline.close();
}
