--[[
  reserveSlot(key, now, max, id, deadline, jobPrefix): reserves a slot for job `id` until `deadline` (ms) in
  the sorted set `key` of a key's unfinished jobs, scored by deadline. Members whose deadline passed, or whose
  job record (`jobPrefix .. id`, field `status`) is terminal, are pruned first, so nothing has to remember to
  release a slot. Returns -1 when reserved, else the count of unfinished jobs that left no room.
]]
--- @include "contracts:terminalStatus"
local function reserveSlot(key, now, max, id, deadline, jobPrefix)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local n = redis.call('ZCARD', key)
  if n >= max then
    for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local s = redis.call('HGET', jobPrefix .. member, 'status')
      if s and terminalStatus[s] then
        redis.call('ZREM', key, member)
        n = n - 1
      end
    end
  end
  if n >= max then return n end
  redis.call('ZADD', key, deadline, id)
  redis.call('PEXPIREAT', key, redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  return -1
end
