--[[
  Admits a POST /v1/perceive request and creates its job in one script run: counts the request against its
  key's rate limit; within it, looks up the Idempotency-Key when one was sent; reserves a slot of the key's
  job quota, remembers the Idempotency-Key and creates the job (record + BullMQ entry). A refusal keeps the
  count and changes nothing after it: no refusal leaves a slot, a key or a job behind.

  Input (built by submitJob in lib/redis/scripts.ts):
    KEYS[1]      rate counter
    KEYS[2]      quota set
    KEYS[3]      Idempotency-Key (the quota set again when none was sent: a script names every key it
                 touches, in one hash slot on a cluster)
    KEYS[4]      job record
    KEYS[5..13]  BullMQ's addStandardJob keys
    ARGV[1]      rate window (ms)
    ARGV[2]      rate limit (requests per window)
    ARGV[3]      now (ms)
    ARGV[4]      most unfinished jobs the key may have
    ARGV[5]      job id
    ARGV[6]      job deadline (ms)
    ARGV[7]      job record key prefix
    ARGV[8]      Idempotency-Key value to remember ('' when none was sent)
    ARGV[9]      its ttl (s)
    ARGV[10..]   the job's: createJob's arguments

  Output: {count, -1} created | {count, -2} over the rate limit | {count, -3, prior value} key taken |
          {count, -4} the job id exists | {count, unfinished jobs} quota full
]]
--- @include "includes/rateHit"
--- @include "includes/reserveSlot"
--- @include "includes/createJob"
local n = rateHit(KEYS[1], ARGV[1])
if n > tonumber(ARGV[2]) then return {n, -2} end
if ARGV[8] ~= '' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {n, -3, prior} end
end
if jobRecordExists(4) then return {n, -4} end
local active = reserveSlot(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7])
if active ~= -1 then return {n, active} end
if ARGV[8] ~= '' then redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9]) end
local created = createJob(4, 10)
if created ~= 1 then return created end
return {n, -1}
