-- Push payloads onto a queue's ready list and wake blocked workers.
-- KEYS: ready, notify   ARGV: notify_cap, payload...
-- The notify list only wakes workers; it is capped so it cannot grow without bound.
local n = #ARGV - 1
redis.call('rpush', KEYS[1], unpack(ARGV, 2))
local room = tonumber(ARGV[1]) - redis.call('llen', KEYS[2])
for _ = 1, math.min(n, room) do
  redis.call('rpush', KEYS[2], 1)
end
return redis.call('llen', KEYS[1])
