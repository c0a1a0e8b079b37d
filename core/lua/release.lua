-- Give a reserved job back, if the caller still holds its lease.
-- KEYS: reserved, delayed, ready, notify
-- ARGV: reserved_payload, new_payload, available_at_ms, now_ms, notify_cap
if redis.call('zrem', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if tonumber(ARGV[3]) > tonumber(ARGV[4]) then
  redis.call('zadd', KEYS[2], ARGV[3], ARGV[2])
else
  redis.call('rpush', KEYS[3], ARGV[2])
end
if redis.call('llen', KEYS[4]) < tonumber(ARGV[5]) then
  redis.call('rpush', KEYS[4], 1)
end
return 1
