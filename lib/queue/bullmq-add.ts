// BullMQ's own enqueue, runnable inside our scripts. Creating a job writes our record and adds BullMQ's queue
// entry; done as two commands that is two script runs in Redis and two commands' worth of client CPU per job,
// and a window in which one exists without the other. Instead the create script (scripts.ts) calls BullMQ's
// addStandardJob script as a Lua function in the same script run: BullMQ's Lua, unchanged, fed the
// arguments BullMQ's own backend builds (addJobToTransaction, public for batching inserts onto a shared
// transaction). Nothing here re-implements BullMQ; what ties us to its version is the script's input contract
// (9 keys, 3 arguments), checked when this module loads, and the lifecycle tests, whose workers consume jobs
// enqueued this way.
import { Job, type JobsOptions, type Queue } from 'bullmq';
// BullMQ publishes each script with its includes resolved; the file is CommonJS, typed in bullmq-scripts.d.ts.
import { addStandardJob } from 'bullmq/dist/cjs/scripts/addStandardJob-9.js';

const CONTRACT = ["KEYS[1] 'wait'", 'KEYS[9] marker key', 'ARGV[1] msgpacked arguments array', 'ARGV[2] Json stringified job data', 'ARGV[3] msgpacked options'];
for (const line of CONTRACT) {
  if (addStandardJob.keys !== 9 || !addStandardJob.content.includes(line)) {
    throw new Error(`this BullMQ's addStandardJob script no longer documents "${line}" (9 keys, 3 arguments): lib/queue/bullmq-add.ts must be revisited`);
  }
}

/** Lua: `bullmqAddStandardJob(KEYS, ARGV)`, BullMQ's script as a function of its own KEYS and ARGV tables. Its
 *  locals and `return`s stay inside the function; it returns the job id, or a negative BullMQ error code. */
export const BULLMQ_ADD_LUA = `
local function bullmqAddStandardJob(KEYS, ARGV)
${addStandardJob.content}
end
`;

export interface BullmqAdd {
  /** The script's 9 keys. */
  keys: string[];
  /** Its 3 arguments: msgpack bytes, the job data as JSON, msgpack bytes. */
  argv: (string | Buffer)[];
}

/** The keys and arguments with which BullMQ would add `data` to `queue` under `jobId` (default job options
 *  merged in, as Queue.add does). Only standard jobs: no delay, priority or parent. */
export async function bullmqAddArgs(queue: Queue, name: string, data: unknown, jobId: string, opts: JobsOptions = {}): Promise<BullmqAdd> {
  const merged: JobsOptions = { ...queue.jobsOpts, ...opts, jobId };
  if (merged.delay || merged.priority || merged.parent) throw new Error('bullmqAddArgs adds standard jobs only');
  const job = new Job(queue, name, data, merged, jobId);
  const json = job.asJSON();
  (job as unknown as { validateOptions(j: typeof json): void }).validateOptions(json); // as Job.create does
  let captured: { name: string; args: (string | Buffer)[] } | undefined;
  const capture = {
    runCommand: (command: string, args: (string | Buffer)[]) => {
      captured = { name: command, args };
      return Promise.resolve(jobId);
    },
  };
  await queue.backend.addJobToTransaction(capture as never, json, jobId);
  if (!captured || !captured.name.startsWith(`${addStandardJob.name}:`) || captured.args.length !== 12) {
    throw new Error(`BullMQ did not build an addStandardJob call for job ${jobId} (got ${captured?.name ?? 'nothing'})`);
  }
  return { keys: captured.args.slice(0, 9) as string[], argv: captured.args.slice(9) };
}
