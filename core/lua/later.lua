-- Schedule payloads for later; wake one blocked worker so it recomputes its wake-up time.
-- KEYS: delayed, notify   ARGV: notify_cap, (available_at_ms, payload)...
for i = 2, #ARGV, 2 do
  redis.call('zadd', KEYS[1], ARGV[i], ARGV[i + 1])
end
if redis.call('llen', KEYS[2]) < tonumber(ARGV[1]) then
  redis.call('rpush', KEYS[2], 1)
end
return redis.call('zcard', KEYS[1])
