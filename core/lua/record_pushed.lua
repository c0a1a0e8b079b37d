-- Records of pushed jobs: each hash with its TTL, the recent and pending indexes and, for a
-- job carrying a monitored tag, that tag's index (trimmed here, as only pushes add to it).
-- A record holds the payload and what changes; the rest is read from the payload.
-- Index scores are milliseconds with a fraction that counts the producer's pushes: jobs of
-- a bulk push share a millisecond, and equal scores would make every ZREM compare ids.
-- KEYS: recent, pending, monitoring, record..., tag_index...
-- ARGV: jobs, now_ms, monitored_ttl_s, first_place, tag..., then per job:
--       id, pushed_at, available_at, ttl_s, payload, tags (JSON, '' for none), retried_from
local FIELDS = 7
local jobs = tonumber(ARGV[1])
local monitored_ttl = tonumber(ARGV[3])
local first_place = tonumber(ARGV[4])
local tags = #KEYS - 3 - jobs

local watched = {}
local any_watched = false
for i = 1, tags do
  if redis.call('sismember', KEYS[3], ARGV[4 + i]) == 1 then
    watched[ARGV[4 + i]] = KEYS[3 + jobs + i]
    any_watched = true
  end
end

local recent, pending = {}, {}
for j = 1, jobs do
  local a = 4 + tags + (j - 1) * FIELDS
  local id, pushed_at, available_at = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local ttl, tag_list, retried_from = ARGV[a + 4], ARGV[a + 6], ARGV[a + 7]
  local record = KEYS[3 + j]
  local place = string.format('.%04d', (first_place + j) % 10000)
  redis.call('hset', record, 'status', 'pending', 'attempts', '0', 'payload', ARGV[a + 5])
  if retried_from ~= '' then
    redis.call('hset', record, 'retried_from', retried_from)
  end
  if any_watched and tag_list ~= '' then
    for _, tag in ipairs(cjson.decode(tag_list)) do
      if watched[tag] then
        redis.call('zadd', watched[tag], pushed_at .. place, id)
        redis.call('hset', record, 'monitored', 1)
        ttl = math.max(tonumber(ttl), monitored_ttl)
      end
    end
  end
  redis.call('expire', record, ttl)
  recent[2 * j - 1], recent[2 * j] = pushed_at .. place, id
  pending[2 * j - 1], pending[2 * j] = available_at .. place, id
end
redis.call('zadd', KEYS[1], unpack(recent))
redis.call('zadd', KEYS[2], unpack(pending))

for _, index in pairs(watched) do
  redis.call('zremrangebyscore', index, '-inf', tonumber(ARGV[2]) - monitored_ttl * 1000)
  redis.call('expire', index, monitored_ttl)
end
return jobs
