// The stage batcher alone (no model): what shares a batch, what waits, and that a bad item fails alone.
import { describe, expect, it } from 'vitest';
import { Batcher, type BatchRecord } from '../../workers/pipeline/batcher.js';

/** A batcher whose batches double their items, recording each batch's items; `bad` items make a batch throw. */
function doubling(opts: { max: number; waitMs: number; group?: (n: number) => string; bad?: Set<number> }) {
  const batches: number[][] = [];
  const records: BatchRecord[] = [];
  const batcher = new Batcher<number, number>(
    async (items) => {
      batches.push(items);
      await new Promise((r) => setTimeout(r, 5));
      if (items.some((i) => opts.bad?.has(i))) throw new Error(`bad item among ${items}`);
      return items.map((i) => i * 2);
    },
    { ...opts, onBatch: (b) => records.push(b) },
  );
  return { batcher, batches, records };
}

describe('Batcher', () => {
  it('runs items that arrive together as one batch, up to max, and the rest as the next', async () => {
    const { batcher, batches, records } = doubling({ max: 3, waitMs: 20 });
    const out = await Promise.all([1, 2, 3, 4, 5].map((i) => batcher.submit(i)));
    expect(out.map((o) => o.value)).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
    expect(out.map((o) => o.batch.size)).toEqual([3, 3, 3, 2, 2]);
    expect(records.map((r) => r.size)).toEqual([3, 2]);
    // the full batch starts at once; the second waited for the first to finish
    expect(records[0]!.waitMs).toBeLessThan(20);
  });

  it('waits up to waitMs for a batch to fill', async () => {
    const { batcher, batches, records } = doubling({ max: 4, waitMs: 40 });
    const first = batcher.submit(1);
    await new Promise((r) => setTimeout(r, 10));
    const second = batcher.submit(2);
    await Promise.all([first, second]);
    expect(batches).toEqual([[1, 2]]);
    expect(records[0]!.waitMs).toBeGreaterThanOrEqual(39);
  });

  it('never mixes groups', async () => {
    const { batcher, batches } = doubling({ max: 8, waitMs: 10, group: (n) => (n % 2 ? 'odd' : 'even') });
    await Promise.all([1, 2, 3, 4, 5].map((i) => batcher.submit(i)));
    expect(batches.map((b) => [...b].sort())).toEqual(expect.arrayContaining([[1, 3, 5], [2, 4]]));
    expect(batches).toHaveLength(2);
  });

  it('with max 1 runs every item alone, in order', async () => {
    const { batcher, batches } = doubling({ max: 1, waitMs: 0 });
    await Promise.all([1, 2, 3].map((i) => batcher.submit(i)));
    expect(batches).toEqual([[1], [2], [3]]);
  });

  it('fails only the item that fails: a failed batch runs again item by item', async () => {
    const { batcher, batches } = doubling({ max: 4, waitMs: 10, bad: new Set([3]) });
    const out = await Promise.allSettled([1, 2, 3, 4].map((i) => batcher.submit(i)));
    expect(out.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((out[3] as PromiseFulfilledResult<{ value: number; batch: BatchRecord }>).value).toMatchObject({ value: 8, batch: { size: 1 } });
    expect(String((out[2] as PromiseRejectedResult).reason)).toMatch(/bad item among 3/);
    expect(batches).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]]);
  });

  it('rejects a batch size that is not a positive integer', () => {
    expect(() => doubling({ max: 0, waitMs: 0 })).toThrow(/positive integer/);
  });
});
