--[[
  jobRecordExists(k): whether the job record KEYS[k] exists.
  createJob(k, a): writes the job record KEYS[k] and adds its BullMQ queue entry (BullMQ's own addStandardJob,
  keys KEYS[k+1..k+9]) in the same script run, so a worker never sees one without the other.
    ARGV[a]          the record's ttl in seconds
    ARGV[a+1]        the count n of record field/value entries that follow
    ARGV[a+2..a+1+n] the record's fields and values
    then             BullMQ's 3 arguments (lib/redis/bullmq-add.ts)
  Returns 1, or an error reply when BullMQ refused the job. The caller checks jobRecordExists first.
]]
--- @include "bullmq:addStandardJob"
local function jobRecordExists(k)
  return redis.call('EXISTS', KEYS[k]) == 1
end
local function createJob(k, a)
  local n = tonumber(ARGV[a + 1])
  redis.call('HSET', KEYS[k], unpack(ARGV, a + 2, a + 1 + n))
  redis.call('EXPIRE', KEYS[k], tonumber(ARGV[a]))
  local b = a + 2 + n
  -- Negative codes are parent-job failures; these jobs have no parent.
  local added = bullmqAddStandardJob({unpack(KEYS, k + 1, k + 9)}, {ARGV[b], ARGV[b + 1], ARGV[b + 2]})
  if type(added) == 'number' and added < 0 then return redis.error_reply('BullMQ addStandardJob: ' .. added) end
  return 1
end
