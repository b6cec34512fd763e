// pino JSON logger shared by every process. Authorization headers, API keys and webhook secrets are
// redacted wherever they appear in a logged object; request and job ids go on child loggers.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'api_key',
  '*.api_key',
  'key',
  '*.key_sha256',
  'webhook_secret',
  '*.webhook_secret',
  'secret',
  '*.secret',
];

/** `destination` defaults to stdout; tests pass a stream to read what was logged. */
export function createLogger(opts: { level?: LevelWithSilent; name?: string } = {}, destination?: DestinationStream): Logger {
  return pino({
    name: opts.name,
    level: opts.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}
