// Free text a client sends for the model to read (phrases, sentences): one zod schema for all of them.
// The parsed value is NFC-normalised and trimmed of whitespace and invisible characters at both ends; text
// that is empty after that ("blank after trimming"), or that contains control characters or lone surrogates,
// is refused with a message saying so. Length limits count the normalised, trimmed value (UTF-16 code units,
// as zod's .max always does). Interior zero-width characters stay: ZWJ/ZWNJ are part of emoji sequences and
// of some scripts' spelling.
// Only zod checks and in-place overwrites (no .transform), so the JSON Schema of the contract (npm run
// contracts) stays a plain string with minLength/maxLength; the checks below are zod's alone.
import { z } from 'zod';

/** Characters that show nothing: zero-width space/joiners (U+200B..U+200D), word joiner (U+2060), BOM / zero-width
 *  no-break space (U+FEFF), and the other invisible format characters and fillers a blank-looking string is made of
 *  (soft hyphen, combining grapheme joiner, bidi marks and isolates, invisible operators, Hangul fillers). */
const INVISIBLE = '\\u00AD\\u034F\\u061C\\u115F\\u1160\\u180E\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\u3164\\uFEFF\\uFFA0';
const EDGES = new RegExp(`^[\\s${INVISIBLE}]+|[\\s${INVISIBLE}]+$`, 'gu');
/** C0 controls (NUL, tab, newline, ESC…), DEL and C1 controls, once the ends are trimmed. */
const CONTROL = /\p{Cc}/u;
/** A surrogate code unit not part of a pair (JSON can carry one as "\uD800"; it is no character). */
const LONE_SURROGATE = /\p{Cs}/u;

export const BLANK_MESSAGE = 'blank after trimming';

const codePoint = (s: string, re: RegExp): string => {
  const c = re.exec(s)?.[0] ?? '';
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
};

/** Trims whitespace and invisible characters at both ends (what `text()` does after NFC). */
export const trimInvisible = (s: string): string => s.replace(EDGES, '');

/** Client text of at most `maxChars` characters after NFC normalisation and trimming. */
export function text(maxChars: number) {
  return z
    .string()
    .normalize('NFC')
    .overwrite(trimInvisible)
    // continue: true, like zod's own checks: an issue without it marks the value aborted, and a union of a string
    // and an object (the phrase forms) then reports a bare "Invalid input" instead of this message.
    .check((ctx) => {
      const v = ctx.value;
      if (LONE_SURROGATE.test(v)) {
        ctx.issues.push({ code: 'custom', input: v, continue: true, message: `must not contain lone surrogates (found ${codePoint(v, LONE_SURROGATE)})` });
      }
      if (CONTROL.test(v)) {
        ctx.issues.push({ code: 'custom', input: v, continue: true, message: `must not contain control characters (found ${codePoint(v, CONTROL)})` });
      }
    })
    .min(1, BLANK_MESSAGE)
    .max(maxChars);
}
