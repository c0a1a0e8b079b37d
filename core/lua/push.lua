-- Push payloads onto a queue's ready list and wake blocked workers.
-- KEYS: ready, notify   ARGV: notify_cap, payload...
-- The notify list only wakes workers; it is capped so it cannot grow without bound.
local CHUNK = 1000
for first = 2, #ARGV, CHUNK do
  redis.call('rpush', KEYS[1], unpack(ARGV, first, math.min(first + CHUNK - 1, #ARGV)))
end
local room = tonumber(ARGV[1]) - redis.call('llen', KEYS[2])
for _ = 1, math.min(#ARGV - 1, room) do
  redis.call('rpush', KEYS[2], 1)
end
return redis.call('llen', KEYS[1])
