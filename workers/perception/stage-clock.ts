// Per-stage wall-clock timings of one job: a stage ends when the next one starts or the job stops.
import type { Stage } from '../../contracts/job.js';

export class StageClock {
  readonly timings: Record<string, number> = {};
  private current: { stage: Stage; t0: number } | null = null;

  /** Starts `stage`; returns the stage that just ended and its duration, if any. */
  start(stage: Stage): { stage: Stage; ms: number } | null {
    const ended = this.stop();
    this.current = { stage, t0: performance.now() };
    return ended;
  }

  stop(): { stage: Stage; ms: number } | null {
    if (!this.current) return null;
    const ms = Math.round((performance.now() - this.current.t0) * 1000) / 1000;
    const ended = { stage: this.current.stage, ms };
    this.timings[ended.stage] = (this.timings[ended.stage] ?? 0) + ms;
    this.current = null;
    return ended;
  }
}
