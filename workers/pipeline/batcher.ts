// Dynamic batching of one pipeline stage (as Triton's dynamic batcher and Ray Serve's @serve.batch do): calls that
// arrive close together run as one batch. A batch starts when its group holds `max` items, or `waitMs` after its
// oldest item arrived; one batch of a stage runs at a time, and items that arrive meanwhile form the next. Items
// of different groups never share a batch. A batch that fails is run again item by item, so that one bad item
// fails alone and never its batch-mates.

export interface BatchRecord {
  size: number;
  /** How long the batch's oldest item waited for it to start. */
  waitMs: number;
}

export interface BatcherOptions<I> {
  max: number;
  waitMs: number;
  /** Items of one group may share a batch (default: all one group). */
  group?: (item: I) => string;
  /** Called as each batch starts. */
  onBatch?: (batch: BatchRecord) => void;
}

interface Waiting<I, O> {
  item: I;
  since: number;
  resolve: (v: { value: O; batch: BatchRecord }) => void;
  reject: (e: unknown) => void;
}

export class Batcher<I, O> {
  private readonly groups = new Map<string, Waiting<I, O>[]>();
  private busy = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions<I>,
  ) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new Error(`batch max must be a positive integer, got ${opts.max}`);
  }

  /** Runs `item` in the next batch of its group; resolves with its output and the batch it ran in. */
  submit(item: I): Promise<{ value: O; batch: BatchRecord }> {
    return new Promise((resolve, reject) => {
      const key = this.opts.group?.(item) ?? '';
      const queue = this.groups.get(key) ?? [];
      queue.push({ item, since: performance.now(), resolve, reject });
      this.groups.set(key, queue);
      this.schedule();
    });
  }

  /** Starts the oldest group that is due (full, or waited long enough); else wakes up when the oldest is due. */
  private schedule(): void {
    if (this.busy) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = performance.now();
    let oldest: [string, Waiting<I, O>[]] | undefined;
    for (const entry of this.groups) if (!oldest || entry[1][0]!.since < oldest[1][0]!.since) oldest = entry;
    if (!oldest) return;
    const due = [...this.groups].find(([, q]) => q.length >= this.opts.max) ?? (now - oldest[1][0]!.since >= this.opts.waitMs ? oldest : undefined);
    if (!due) {
      this.timer = setTimeout(() => this.schedule(), this.opts.waitMs - (now - oldest[1][0]!.since));
      return;
    }
    const [key, queue] = due;
    const batch = queue.splice(0, this.opts.max);
    if (queue.length === 0) this.groups.delete(key);
    this.busy = true;
    void this.run(batch, now).finally(() => {
      this.busy = false;
      this.schedule();
    });
  }

  private async run(batch: Waiting<I, O>[], now: number): Promise<void> {
    const record = { size: batch.length, waitMs: now - batch[0]!.since };
    this.opts.onBatch?.(record);
    try {
      const values = await this.runBatch(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve({ value: values[i]!, batch: record }));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // one by one, so that only the item that fails fails
      for (const w of batch) {
        await this.runBatch([w.item]).then(
          ([value]) => w.resolve({ value: value!, batch: { size: 1, waitMs: record.waitMs } }),
          (e: unknown) => w.reject(e),
        );
      }
    }
  }
}
