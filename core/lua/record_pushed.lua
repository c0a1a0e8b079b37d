-- Records of pushed jobs: each hash with its TTL, the recent and pending indexes and, for a
-- job carrying a monitored tag, that tag's index (trimmed here, as only pushes add to it).
-- A record holds the payload and what changes; the rest is read from the payload.
-- KEYS: recent, pending, monitoring, record..., tag_index...
-- ARGV: jobs, now_ms, monitored_ttl_s, tag..., then per job:
--       id, pushed_at, available_at, ttl_s, payload, tags (JSON, '' for none), retried_from
local FIELDS = 7
local jobs = tonumber(ARGV[1])
local monitored_ttl = tonumber(ARGV[3])
local tags = #KEYS - 3 - jobs

-- include free_score

local watched = {}
local any_watched = false
for i = 1, tags do
  if redis.call('sismember', KEYS[3], ARGV[3 + i]) == 1 then
    watched[ARGV[3 + i]] = KEYS[3 + jobs + i]
    any_watched = true
  end
end

local recent, pending = {}, {}
for j = 1, jobs do
  local a = 3 + tags + (j - 1) * FIELDS
  local id, pushed_at, available_at = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local ttl, tag_list, retried_from = ARGV[a + 4], ARGV[a + 6], ARGV[a + 7]
  local record = KEYS[3 + j]
  redis.call('hset', record, 'status', 'pending', 'attempts', '0', 'payload', ARGV[a + 5])
  if retried_from ~= '' then
    redis.call('hset', record, 'retried_from', retried_from)
  end
  if any_watched and tag_list ~= '' then
    for _, tag in ipairs(cjson.decode(tag_list)) do
      if watched[tag] then
        redis.call('zadd', watched[tag], free_score(watched[tag], pushed_at), id)
        redis.call('hset', record, 'monitored', 1)
        ttl = math.max(tonumber(ttl), monitored_ttl)
      end
    end
  end
  redis.call('expire', record, ttl)
  recent[2 * j - 1], recent[2 * j] = free_score(KEYS[1], pushed_at), id
  pending[2 * j - 1], pending[2 * j] = free_score(KEYS[2], available_at), id
end
redis.call('zadd', KEYS[1], unpack(recent))
redis.call('zadd', KEYS[2], unpack(pending))

local oldest = string.format('(%d', (tonumber(ARGV[2]) - monitored_ttl * 1000) * PER_MS)
for _, index in pairs(watched) do
  redis.call('zremrangebyscore', index, '-inf', oldest)
  redis.call('expire', index, monitored_ttl)
end
return jobs
