--[[
  rateHit(key, windowMs): counts one request in the fixed-window counter `key`, which expires `windowMs`
  after its last count; returns the count.
]]
local function rateHit(key, windowMs)
  local n = redis.call('INCR', key)
  redis.call('PEXPIRE', key, windowMs)
  return n
end
