// The served model is the evaluated one: the shipped demo bundle (models/demo) runs the held-out CI slice through
// the TypeScript pipeline — the code path the API uses — and mvp_lm.eval scores its results against the slice's
// ground truth. Every metric must match the figures recorded when the bundle was evaluated
// (models/demo/ci-slice/expected.json) within the recorded tolerance.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import type { PerceptionResult } from '../../contracts/result.js';
import { createOnnxPipeline } from '../../workers/pipeline/pipeline.js';
import { runPython } from './python.js';

const DEMO = path.resolve('models/demo');
const SLICE = path.join(DEMO, 'ci-slice');

interface SliceCase {
  id: string;
  image: string;
  image_id: number;
  caption: boolean;
  tasks: unknown[];
  sent_ids: (number | null)[];
}

describe('demo model on the held-out CI slice', () => {
  it('scores the recorded metrics through the TypeScript pipeline', async () => {
    const cases = JSON.parse(readFileSync(path.join(SLICE, 'cases.json'), 'utf8')) as SliceCase[];
    const pipeline = await createOnnxPipeline({ modelDir: DEMO, provider: 'cpu' });
    const results: PerceptionResult[] = [];
    try {
      for (const c of cases) {
        const image = readFileSync(path.join(SLICE, c.image));
        const tasks = c.tasks.map((t) => Task.parse(t));
        results.push(await pipeline.run(
          { jobId: c.id, image, tasks, caption: c.caption },
          { onStage: () => {}, shouldStop: () => false },
        ));
      }
    } finally {
      await pipeline.close();
    }
    const work = path.resolve('.data/test/demo-slice');
    mkdirSync(work, { recursive: true });
    writeFileSync(path.join(work, 'results.json'), JSON.stringify(results));
    const out = runPython(`
import json, sys
from pathlib import Path
from mvp_lm.demo.ci_slice import SPLIT, compare
from mvp_lm.demo.predict import ground_truth, merge_results
from mvp_lm.eval.evaluate import evaluate
args = json.load(sys.stdin)
slice_dir, results_file = Path(args["slice"]), Path(args["results"])
cases = json.loads((slice_dir / "cases.json").read_text())
expected = json.loads((slice_dir / "expected.json").read_text())
got = evaluate(ground_truth(slice_dir, SPLIT), merge_results(cases, json.loads(results_file.read_text())))
print(json.dumps({"mismatches": compare(expected["metrics"], got, expected["tolerance"]), "got": got}))
`, JSON.stringify({ slice: SLICE, results: path.join(work, 'results.json') }));
    const { mismatches } = JSON.parse(out) as { mismatches: string[] };
    expect(mismatches).toEqual([]);
  });
});
