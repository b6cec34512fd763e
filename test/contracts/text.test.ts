// contracts/text.ts: the one schema for phrase and sentence text (issue 14, item 12).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Task } from '../../contracts/task.js';
import { BLANK_MESSAGE, text } from '../../contracts/text.js';

const t = text(8);
const messages = (v: string): string[] => t.safeParse(v).error?.issues.map((i) => i.message) ?? [];

describe('text()', () => {
  it('keeps the NFC form, trimmed of whitespace and zero-width characters at both ends', () => {
    expect(t.parse('  cafe\u0301 ')).toBe('caf\u00e9');
    expect(t.parse('\u200B\uFEFFdog\u2060\u200D\n')).toBe('dog');
    // Interior joiners stay: they are part of emoji sequences (family, flags) and of some scripts' spelling.
    expect(t.parse('\u{1F468}\u200D\u{1F469}')).toBe('\u{1F468}\u200D\u{1F469}');
    expect(t.parse('\u0645\u06CC\u200C\u062E')).toBe('\u0645\u06CC\u200C\u062E');
  });

  it('refuses blank-looking text with "blank after trimming"', () => {
    for (const v of ['', '   ', '\t\n', '\u200B', '\u200C\u200D', '\u2060', '\uFEFF', ' \u200B \u3164 ', '\u00AD']) {
      expect(messages(v), JSON.stringify(v)).toEqual([BLANK_MESSAGE]);
    }
  });

  it('refuses control characters and lone surrogates, naming the first one', () => {
    expect(messages('a\u0000b')).toEqual(['must not contain control characters (found U+0000)']);
    expect(messages('a\tb')).toEqual(['must not contain control characters (found U+0009)']);
    expect(messages('a\u0085b')).toEqual(['must not contain control characters (found U+0085)']);
    expect(messages('a\uD83Db')).toEqual(['must not contain lone surrogates (found U+D83D)']);
    expect(messages('\uDE00')).toEqual(['must not contain lone surrogates (found U+DE00)']);
    expect(t.parse('\u{1F600}')).toBe('\u{1F600}'); // a surrogate pair is a character
  });

  it('measures the limit after normalisation and trimming', () => {
    expect(t.parse(`  ${'e\u0301'.repeat(8)}  `)).toBe('\u00e9'.repeat(8));
    expect(messages('e'.repeat(9))).toEqual(['Too big: expected string to have <=8 characters']);
  });

  it('is a plain string with its limits in JSON Schema (npm run contracts: no transform)', () => {
    expect(z.toJSONSchema(t, { io: 'output' })).toMatchObject({ type: 'string', minLength: 1, maxLength: 8 });
    expect(z.toJSONSchema(t, { io: 'input' })).toMatchObject({ type: 'string', minLength: 1, maxLength: 8 });
  });

  it('is what Task uses for phrases (both forms) and sentences', () => {
    const words = Task.parse({ type: 'words', phrases: [' dog\u200B', { text: 'cafe\u0301' }] });
    expect(words.type === 'words' && words.phrases.map((p) => p.text)).toEqual(['dog', 'caf\u00e9']);
    const sentence = Task.parse({ type: 'sentence', sentence: '\uFEFFthe dog ' });
    expect(sentence.type === 'sentence' && sentence.sentence).toBe('the dog');
    const r = Task.safeParse({ type: 'words', phrases: ['dog', '\u200B', { text: 'x\u0000' }] });
    expect(r.error?.issues.map((i) => [i.path.join('/'), i.message])).toEqual([
      ['phrases/1', BLANK_MESSAGE],
      ['phrases/2/text', 'must not contain control characters (found U+0000)'],
    ]);
  });
});
