-- Add a worker's tally of finished attempts to the metrics, all at once.
-- KEYS: interval, counter...   (a counter is a per-minute hash or a per-hour string)
-- ARGV: increments, maxima, (field, by) per increment of the interval hash,
--       (field, value) per maximum kept in it, then (field or '', by, ttl_s) per counter
local a = 2
for _ = 1, tonumber(ARGV[1]) do
  redis.call('hincrby', KEYS[1], ARGV[a + 1], ARGV[a + 2])
  a = a + 2
end
for _ = 1, tonumber(ARGV[2]) do
  local max = redis.call('hget', KEYS[1], ARGV[a + 1])
  if not max or tonumber(max) < tonumber(ARGV[a + 2]) then
    redis.call('hset', KEYS[1], ARGV[a + 1], ARGV[a + 2])
  end
  a = a + 2
end
for i = 2, #KEYS do
  if ARGV[a + 1] == '' then
    redis.call('incrby', KEYS[i], ARGV[a + 2])
  else
    redis.call('hincrby', KEYS[i], ARGV[a + 1], ARGV[a + 2])
  end
  redis.call('expire', KEYS[i], ARGV[a + 3])
  a = a + 3
end
return 1
