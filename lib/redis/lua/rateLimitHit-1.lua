--[[
  Counts one request of an API key in its rate-limit window.
  Input:  KEYS[1] the window's counter; ARGV[1] the window (ms)
  Output: the count in this window
]]
--- @include "includes/rateHit"
return rateHit(KEYS[1], ARGV[1])
