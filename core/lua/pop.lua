-- Reserve up to COUNT jobs from one queue.
-- KEYS: ready, delayed, reserved, notify
-- ARGV: now_ms ('' for Redis's own clock), lease_ms, migrate_limit, lease_token...
-- Returns {next_due_ms, reserved_payload...}; next_due_ms is -1 unless the queue was empty.
-- Redis's clock is for a pop sent behind a BLPOP: it runs when the wait ends, not when sent.
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('time')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local deadline = now + tonumber(ARGV[2])
local limit = tonumber(ARGV[3])

-- A payload that is not a Skyline envelope is passed through unchanged, so the
-- worker can move it to the failed store; a script error here would drop it.
local function envelope(raw)
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' and type(job['body']) == 'string' then
    return job
  end
  return nil
end

-- Delayed jobs that are due join the ready list.
local due = redis.call('zrangebyscore', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if #due > 0 then
  redis.call('zrem', KEYS[2], unpack(due))
  redis.call('rpush', KEYS[1], unpack(due))
end

-- Expired leases: the worker holding them died or stalled. Count the loss.
local expired = redis.call('zrangebyscore', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
for _, raw in ipairs(expired) do
  redis.call('zrem', KEYS[3], raw)
  local job = envelope(raw)
  if job then
    job['lost'] = (tonumber(job['lost']) or 0) + 1
    job['lease'] = cjson.null
    raw = cjson.encode(job)
  end
  redis.call('rpush', KEYS[1], raw)
end

local result = {-1}
for i = 4, #ARGV do
  local raw = redis.call('lpop', KEYS[1])
  if not raw then break end
  local job = envelope(raw)
  local reserved = raw
  if job then
    job['attempts'] = (tonumber(job['attempts']) or 0) + 1
    job['lease'] = ARGV[i]
    job['reserved_at'] = now
    reserved = cjson.encode(job)
  end
  redis.call('zadd', KEYS[3], deadline, reserved)
  result[#result + 1] = reserved
end

if redis.call('llen', KEYS[1]) == 0 then
  redis.call('del', KEYS[4])
  if #result == 1 then
    local next_due = -1
    for _, key in ipairs({KEYS[2], KEYS[3]}) do
      local first = redis.call('zrange', key, 0, 0, 'WITHSCORES')
      if first[2] and (next_due == -1 or tonumber(first[2]) < next_due) then
        next_due = tonumber(first[2])
      end
    end
    result[1] = next_due
  end
end
return result
