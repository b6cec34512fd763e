// Host side of the post-processing threads (postprocess/thread.ts): each call goes to the thread with the fewest
// calls in flight.
import type { TaskResult } from '../../contracts/result.js';
import type { Task } from '../../contracts/task.js';
import type { PostprocessApi } from './postprocess/thread.js';
import type { PostprocessInput } from './postprocess/types.js';
import { RpcClient, startThread } from '../threads/rpc.js';

export class PostprocessPool {
  private readonly inFlight: number[];

  private constructor(private readonly threads: RpcClient<PostprocessApi>[]) {
    this.inFlight = threads.map(() => 0);
  }

  static start(size: number): PostprocessPool {
    if (!Number.isInteger(size) || size < 1) throw new Error(`post-processing threads must be a positive integer, got ${size}`);
    return new PostprocessPool(
      Array.from({ length: size }, (_, i) => new RpcClient<PostprocessApi>(startThread(new URL('./postprocess/thread.js', import.meta.url)), { name: `postprocess ${i}` })),
    );
  }

  async run(task: Task, taskIndex: number, input: PostprocessInput): Promise<TaskResult> {
    const i = this.inFlight.indexOf(Math.min(...this.inFlight));
    this.inFlight[i]!++;
    try {
      return await this.threads[i]!.call('postprocess', task, taskIndex, input);
    } finally {
      this.inFlight[i]!--;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
