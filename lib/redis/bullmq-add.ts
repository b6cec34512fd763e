// BullMQ's own enqueue, runnable inside our scripts. Creating a job writes our record and adds BullMQ's queue
// entry; done as two commands that is two script runs in Redis and two commands' worth of client CPU per job,
// and a window in which one exists without the other. Instead our create fragment (lua/includes/createJob.lua) calls BullMQ's
// addStandardJob script as a Lua function in the same script run: BullMQ's Lua, unchanged, fed the
// arguments BullMQ's own backend builds (addJobToTransaction, public for batching inserts onto a shared
// transaction), once per queue (BullmqAddTemplate). Nothing here re-implements BullMQ; what ties us to its
// version is the script's input contract (9 keys, 3 arguments, the two msgpack ones read only through
// cmsgpack.unpack), checked when this module loads, and the tests: the entry equals Queue.add's
// (test/lifecycle/job-store.test.ts), and workers consume jobs enqueued this way.
import { Job, type JobsOptions, type Queue } from 'bullmq';
import { unpack } from 'msgpackr';
// BullMQ publishes each script with its includes resolved; the file is CommonJS, typed in bullmq-scripts.d.ts.
import { addStandardJob } from 'bullmq/dist/cjs/scripts/addStandardJob-9.js';

const CONTRACT = ["KEYS[1] 'wait'", 'KEYS[9] marker key', 'ARGV[1] msgpacked arguments array', 'ARGV[2] Json stringified job data',
  'ARGV[3] msgpacked options', 'local args = cmsgpack.unpack(ARGV[1])', 'local opts = cmsgpack.unpack(ARGV[3])'];
const missing = CONTRACT.filter((line) => !addStandardJob.content.includes(line));
if (addStandardJob.keys !== 9 || missing.length > 0 || addStandardJob.content.split('cmsgpack').length !== 3) {
  throw new Error(`this BullMQ's addStandardJob script changed (9 keys, 3 arguments, cmsgpack used only to read ARGV[1] and ARGV[3]; ` +
    `missing: ${missing.join(' | ') || 'none'}): lib/queue/bullmq-add.ts must be revisited`);
}

/**
 * Lua: `bullmqAddStandardJob(KEYS, ARGV)`, BullMQ's script as a function of its own KEYS and ARGV tables. Its
 * locals and `return`s stay inside the function; it returns the job id, or a negative BullMQ error code.
 * ARGV[1] and ARGV[3] arrive as JSON rather than msgpack, and the script's two `cmsgpack.unpack` calls read
 * them through a local stand-in that decodes JSON (null becoming nil, as msgpack nil does; only top-level
 * nulls occur). Why: a Buffer among a command's arguments makes ioredis assemble the whole command as
 * buffers; with JSON, creating a job measured about 25 µs less client CPU per job and no more Redis CPU.
 * (Hex-encoded msgpack, decoded in Lua, cost Redis far more.)
 */
export const BULLMQ_ADD_LUA = `
local function bullmqAddStandardJob(KEYS, ARGV)
  local function fromJson(s)
    local v = cjson.decode(s)
    for k, x in pairs(v) do
      if x == cjson.null then v[k] = nil end
    end
    return v
  end
  local cmsgpack = { unpack = fromJson }
${addStandardJob.content}
end
`;

export interface BullmqAdd {
  /** The script's 9 keys. */
  keys: string[];
  /** Its 3 arguments: BullMQ's argument array, the job data and the job options, all as JSON. */
  argv: string[];
}

const TEMPLATE_ID = 'bullmq-add-template-job';
const TEMPLATE_TIMESTAMP = 1_000_000_000_007;

/**
 * BullMQ's addStandardJob inputs for standard jobs of one queue and name, with the queue's default options.
 * BullMQ builds them once, for a template job (new Job, asJSON, validateOptions and the backend's
 * addJobToTransaction, as Queue.add does); between such jobs only the id, the timestamp and the data differ,
 * so a job's inputs are the template's with those filled in. Going through BullMQ for every job (a Job, its
 * msgpack and back to JSON) was about 15 % of the gateway's CPU profile per accepted job. test/lifecycle/job-store.test.ts compares
 * an entry written this way with the one Queue.add writes.
 */
export class BullmqAddTemplate {
  private constructor(
    private readonly keys: string[],
    private readonly args: unknown[],
    private readonly idAt: number,
    private readonly timestampAt: number,
    /** The options' JSON split where the job id goes. */
    private readonly optsAround: [string, string],
  ) {}

  static async build(queue: Queue, name: string): Promise<BullmqAddTemplate> {
    const opts: JobsOptions = { ...queue.jobsOpts, jobId: TEMPLATE_ID };
    if (opts.delay || opts.priority || opts.parent || opts.deduplication) {
      throw new Error(`queue ${queue.name}: default job options make jobs other than standard ones`);
    }
    const job = new Job(queue, name, {}, opts, TEMPLATE_ID);
    job.timestamp = TEMPLATE_TIMESTAMP; // else Date.now(), a number another argument could hold as well
    const json = job.asJSON();
    (job as unknown as { validateOptions(j: typeof json): void }).validateOptions(json); // as Job.create does
    let captured: { name: string; args: (string | Buffer)[] } | undefined;
    const capture = {
      runCommand: (command: string, args: (string | Buffer)[]) => {
        captured = { name: command, args };
        return Promise.resolve(TEMPLATE_ID);
      },
    };
    await queue.backend.addJobToTransaction(capture as never, json, TEMPLATE_ID);
    if (!captured || !captured.name.startsWith(`${addStandardJob.name}:`) || captured.args.length !== 12) {
      throw new Error(`BullMQ did not build an addStandardJob call (got ${captured?.name ?? 'nothing'})`);
    }
    const args = unpack(captured.args[9] as Buffer) as unknown[];
    const optsJson = JSON.stringify(unpack(captured.args[11] as Buffer));
    const optsAround = optsJson.split(JSON.stringify(TEMPLATE_ID));
    const once = (at: number, what: string): number => {
      if (at < 0 || args.indexOf(args[at], at + 1) >= 0) throw new Error(`BullMQ's addStandardJob arguments do not hold the ${what} once`);
      return at;
    };
    if (optsAround.length !== 2) throw new Error("BullMQ's job options do not hold the job id once");
    return new BullmqAddTemplate(captured.args.slice(0, 9) as string[], args, once(args.indexOf(TEMPLATE_ID), 'job id'),
      once(args.indexOf(TEMPLATE_TIMESTAMP), 'timestamp'), optsAround as [string, string]);
  }

  /** The inputs that add `data` as job `jobId` (ids as Queue.add allows them: not '0', not starting '0:'). */
  inputs(jobId: string, data: unknown, timestamp = Date.now()): BullmqAdd {
    const args = this.args.slice();
    args[this.idAt] = jobId;
    args[this.timestampAt] = timestamp;
    return { keys: this.keys, argv: [JSON.stringify(args), JSON.stringify(data), this.optsAround.join(JSON.stringify(jobId))] };
  }
}
