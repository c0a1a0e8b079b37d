-- Ends of attempts on their records: completed, silenced, failed or released. A record
-- that has expired (or was never written) is left alone rather than half made again.
-- KEYS: pending, completed, silenced, failed, recent_failed, record...
-- ARGV: monitored_ttl_s, then per record: id, status, time_ms (the index score's ms), ttl_s,
--       attempts, reserved_at_ms, runtime_ms, exception ('' for none), tagged ('' for no
--       tags: only a tagged job can be monitored)
local TIME_FIELDS = {
  completed = 'completed_at', silenced = 'completed_at', failed = 'failed_at',
  released = 'available_at',
}
local INDEXES = {completed = {2}, silenced = {3}, failed = {4, 5}, released = {1}}
local FIELDS = 9
local monitored_ttl = tonumber(ARGV[1])

-- include free_score

local added = {{}, {}, {}, {}, {}}
local done = {}
local size = {0, 0, 0, 0, 0}
for j = 1, #KEYS - 5 do
  local a = 1 + (j - 1) * FIELDS
  local record, id, status, time_ms = KEYS[5 + j], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local ttl = ARGV[a + 4]
  if ARGV[a + 9] ~= '' and redis.call('hexists', record, 'monitored') == 1 then
    ttl = math.max(tonumber(ttl), monitored_ttl)
  end
  if redis.call('expire', record, ttl) == 1 then
    redis.call(
      'hset', record, 'status', status, TIME_FIELDS[status], time_ms, 'attempts', ARGV[a + 5],
      'reserved_at', ARGV[a + 6], 'runtime_ms', ARGV[a + 7]
    )
    if ARGV[a + 8] ~= '' then
      redis.call('hset', record, 'exception', ARGV[a + 8])
    end
    for _, i in ipairs(INDEXES[status]) do
      local score = free_score(KEYS[i], tonumber(time_ms))
      added[i][size[i] + 1], added[i][size[i] + 2] = score, id
      size[i] = size[i] + 2
    end
    if status ~= 'released' then
      done[#done + 1] = id
    end
  end
end
for i, members in ipairs(added) do
  if size[i] > 0 then
    redis.call('zadd', KEYS[i], unpack(members))
  end
end
if #done > 0 then
  redis.call('zrem', KEYS[1], unpack(done))
end
return #KEYS - 5
