--[[
  Changes a job record only when its status is one the change applies from, so concurrent writers (a gateway
  cancel, a worker, a second worker after a stall) cannot move a job backwards or finish it twice.
  Input:
    KEYS[1] job record   KEYS[2] its webhook-attempts list   KEYS[3] job-outcome counters
    ARGV[1] the change, JSON: {from: [status], to?, set?: {field: value}, setnx?, incr?: [field], ttl? (s),
            publish? (channel for the job id), count? (outcome counter field)}
    ARGV[2] job id
  Output: {applied 1|0, previous status, HGETALL of the record, the attempts list}, or {-1} when there is no record
]]
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1} end
local spec = cjson.decode(ARGV[1])
local allowed = 0
for _, s in ipairs(spec.from) do if s == cur then allowed = 1 end end
if allowed == 1 then
  if spec.to then redis.call('HSET', KEYS[1], 'status', spec.to) end
  if spec.set then for f, v in pairs(spec.set) do redis.call('HSET', KEYS[1], f, v) end end
  if spec.setnx then for f, v in pairs(spec.setnx) do redis.call('HSETNX', KEYS[1], f, v) end end
  if spec.incr then for _, f in ipairs(spec.incr) do redis.call('HINCRBY', KEYS[1], f, 1) end end
  if spec.ttl then
    redis.call('EXPIRE', KEYS[1], spec.ttl)
    redis.call('EXPIRE', KEYS[2], spec.ttl)
  end
  if spec.publish then redis.call('PUBLISH', spec.publish, ARGV[2]) end
  if spec.count then redis.call('HINCRBY', KEYS[3], spec.count, 1) end
end
return {allowed, cur, redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
