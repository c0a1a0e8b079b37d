-- A job a worker has been running for a while is reserved, unless a write about this
-- attempt (or a later one) got there first: those come from other threads and processes.
-- KEYS: record   ARGV: attempts, reserved_at_ms, ttl_s, monitored_ttl_s
local seen = redis.call('hget', KEYS[1], 'attempts')
if not seen or tonumber(seen) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('hset', KEYS[1], 'status', 'reserved', 'attempts', ARGV[1], 'reserved_at', ARGV[2])
local ttl = tonumber(ARGV[3])
if redis.call('hexists', KEYS[1], 'monitored') == 1 then
  ttl = math.max(ttl, tonumber(ARGV[4]))
end
redis.call('expire', KEYS[1], ttl)
return 1
