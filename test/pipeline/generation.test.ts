// Greedy caption decoding in one run (decoder_generate.onnx) against today's TypeScript step loop (one
// decoder_model_merged.onnx run per token, present.* fed back as past_key_values.*) and against PyTorch eager
// (the model package's `generate` on the torch backend): the same ids and <PER> state on the parity prompts, both
// variants. Every task's first prompt decodes a caption here, also in released-code, whose pipeline never
// generates (its bundles carry the graph all the same); with the job's previous caption as a speculative draft too,
// and with a token cap that cuts captions short.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import { loadBundle } from '../../workers/pipeline/bundle.js';
import {
  greedyResponse,
  prefillImages,
  prefillPrompt,
  type DecodeState,
  type ImagePrefix,
  type LanguageContext,
  type Response,
} from '../../workers/pipeline/generate.js';
import { decodeImage, toPixelValues } from '../../workers/pipeline/preprocess.js';
import { sentencePrompt, wordPrompts, type Prompt } from '../../workers/pipeline/prompt.js';
import { createSessions, type ModelSessions } from '../../workers/pipeline/sessions.js';
import { loadTokenizer } from '../../workers/pipeline/tokenizer.js';
import { ensureBundle } from './bundles.js';
import { maxRelDiff } from './compare.js';
import { syntheticPng } from './images.js';
import { CASES, caseSeed } from './parity-cases.js';
import { runPython } from './python.js';

interface TorchResponse {
  case: string;
  task: number;
  generated_ids: number[];
  per_hidden: number[];
}

/**
 * PyTorch eager greedy responses for the first prompt of every task (mvp_lm.reference.generate, torch backend), with
 * the bundle's token cap and with `cap`.
 */
function torchResponses(bundle: string, work: string, cap: number): { full: TorchResponse[]; capped: TorchResponse[] } {
  return JSON.parse(runPython(`
import json, sys
from mvp_lm.postprocess import normalize_task
from mvp_lm.prompt import build_prompt, build_word_prompts
from mvp_lm.reference import Bundle, Language, generate, load_image, preprocess
args = json.load(sys.stdin)
b = Bundle(args["bundle"], "torch")
m = b.manifest
out = {"full": [], "capped": []}
for case in args["cases"]:
    pixel_values, _ = preprocess(load_image(case["image"]), m["preprocess"])
    lang = Language(b.backend, m, b.backend.vision(pixel_values)["image_embeds"])
    for i, raw in enumerate(case["tasks"]):
        task = normalize_task(raw)
        prompt = (build_word_prompts(b.tok, b.spec, [p["text"] for p in task["phrases"]], m["generation"]["vocab_chunk_size"])[0]
                  if task["type"] == "words" else build_prompt(b.tok, b.spec, sentence=task["sentence"]))
        state = lang.prefill(prompt)
        for key, cap in (("full", m["generation"]["max_new_tokens"]), ("capped", args["cap"])):
            r = generate(lang, b.tok, b.spec, state, True, cap)
            out[key].append({"case": case["id"], "task": i, "generated_ids": r["generated_ids"], "per_hidden": r["per_hidden"][0].tolist()})
print(json.dumps(out))
`, JSON.stringify({ bundle, cap, cases: CASES.map((c) => ({ id: c.id, tasks: c.tasks, image: path.join(work, `${c.id}.png`) })) })));
}

for (const variant of ['paper', 'released-code'] as const) {
  describe(`caption decoding in one run vs the step loop vs PyTorch (${variant})`, () => {
    let models: ModelSessions;
    let loop: LanguageContext;
    let stepLoop: LanguageContext;
    let torch: TorchResponse[];
    let torchCapped: TorchResponse[];
    const CAP = 5;
    /** Per case: the image prefix and the state after each task's first prompt. */
    const states = new Map<string, { image: ImagePrefix; tasks: DecodeState[] }>();

    beforeAll(async () => {
      const dir = ensureBundle(variant);
      const work = path.resolve(`.data/test/generation-${variant}`);
      mkdirSync(work, { recursive: true });
      const bundle = await loadBundle(dir);
      models = await createSessions(bundle, { provider: 'cpu' });
      const { decoder_generate: generateSession, ...stepSessions } = models.sessions;
      expect(generateSession, 'the bundle has decoder_generate.onnx').toBeDefined();
      const base = { manifest: bundle.manifest, tokenizer: loadTokenizer(bundle.tokenizerFile) };
      loop = { ...base, sessions: models.sessions };
      stepLoop = { ...base, sessions: stepSessions };
      const size = bundle.manifest.preprocess.image_size;
      for (const [i, c] of CASES.entries()) {
        const png = await syntheticPng(c.size[0], c.size[1], caseSeed(i));
        writeFileSync(path.join(work, `${c.id}.png`), png);
        const pre = toPixelValues(await decodeImage(png), bundle.manifest.preprocess);
        const vision = await models.sessions.vision_encoder.run({ pixel_values: new ort.Tensor('float32', pre.pixelValues, [1, 3, size, size]) });
        const image = (await prefillImages(stepLoop, vision.image_embeds!))[0]!;
        const tasks: DecodeState[] = [];
        for (const raw of c.tasks) {
          const task = Task.parse(raw);
          const prompt: Prompt = task.type === 'words' ? wordPrompts(stepLoop, task.phrases.map((p) => p.text), '/t')[0]! : sentencePrompt(stepLoop, task.sentence, '/t');
          tasks.push(await prefillPrompt(stepLoop, image, prompt));
        }
        states.set(c.id, { image, tasks });
      }
      ({ full: torch, capped: torchCapped } = torchResponses(dir, work, CAP));
    }, 600_000);

    afterAll(async () => {
      await models?.release();
    });

    const expectSame = (got: Response, want: Response | TorchResponse, what: string, tol: number) => {
      const ids = 'generatedIds' in want ? want.generatedIds : want.generated_ids;
      const hidden = 'perHidden' in want ? Array.from(want.perHidden) : want.per_hidden;
      expect(got.generatedIds, `${what}: ids`).toEqual(ids);
      expect(maxRelDiff(got.perHidden, hidden), `${what}: per_hidden`).toBeLessThan(tol);
    };

    CASES.forEach((c) => {
      it(`case ${c.id}: same ids and <PER> state, graph = step loop = PyTorch`, async () => {
        const { tasks } = states.get(c.id)!;
        let draft: number[] = [];
        for (const [ti, state] of tasks.entries()) {
          const what = `${c.id} task ${ti}`;
          const byGraph = await greedyResponse(loop, state);
          const byStep = await greedyResponse(stepLoop, state);
          expectSame(byGraph, byStep, `${what} graph vs step loop`, 1e-5);
          expectSame(byGraph, torch.find((t) => t.case === c.id && t.task === ti)!, `${what} graph vs PyTorch`, 1e-3);
          // speculative decoding from the previous task's caption, then the graph: still the greedy result
          expectSame(await greedyResponse(loop, state, draft), byStep, `${what} draft + graph vs step loop`, 1e-4);
          draft = byGraph.generatedIds;
        }
      }, 120_000);
    });

    it(`a cap of ${CAP} tokens cuts every caption the same way`, async () => {
      const capped = (ctx: LanguageContext): LanguageContext => ({ ...ctx, manifest: { ...ctx.manifest, generation: { ...ctx.manifest.generation, max_new_tokens: CAP } } });
      for (const c of CASES) {
        for (const [ti, state] of states.get(c.id)!.tasks.entries()) {
          const byGraph = await greedyResponse(capped(loop), state);
          expectSame(byGraph, await greedyResponse(capped(stepLoop), state), `${c.id} task ${ti} capped`, 1e-5);
          expectSame(byGraph, torchCapped.find((t) => t.case === c.id && t.task === ti)!, `${c.id} task ${ti} capped vs PyTorch`, 1e-3);
          expect(byGraph.generatedIds.length).toBeLessThanOrEqual(CAP);
        }
      }
    }, 120_000);

    it('exercises long captions and partly accepted drafts', () => {
      // random weights: most captions run to the cap; the parity cases include a second task whose caption
      // shares a first token with the first task's and then differs (a draft cut short)
      const lengths = torch.map((t) => t.generated_ids.length);
      expect(Math.max(...lengths)).toBeGreaterThan(CAP);
      const byCase = CASES.map((c) => torch.filter((t) => t.case === c.id).map((t) => t.generated_ids));
      const partly = byCase.some((ids) => ids.slice(1).some((t, i) => t.length > 0 && t[0] === ids[i]![0] && t.join() !== ids[i]!.join()));
      expect(partly).toBe(true);
    });
  });
}
