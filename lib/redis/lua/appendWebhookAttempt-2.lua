--[[
  Appends a webhook delivery attempt to a job's list and gives the list the record's expiry.
  Input:  KEYS[1] job record; KEYS[2] its webhook-attempts list; ARGV[1] the attempt, JSON
  Output: 1, or 0 when the record is gone
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
