-- Give back reserved jobs that never started, as they were before their pop: to the head of
-- the ready list, in their order, with the attempt the pop counted taken off again.
-- Only jobs whose lease the caller still holds go back; returns how many did.
-- KEYS: reserved, ready, notify   ARGV: notify_cap, reserved_payload...
local back = 0
for i = #ARGV, 2, -1 do
  local raw = ARGV[i]
  if redis.call('zrem', KEYS[1], raw) == 1 then
    local ok, job = pcall(cjson.decode, raw)
    if ok and type(job) == 'table' and type(job['body']) == 'string' then
      job['attempts'] = math.max((tonumber(job['attempts']) or 1) - 1, 0)
      job['lease'] = cjson.null
      job['reserved_at'] = nil
      raw = cjson.encode(job)
    end
    redis.call('lpush', KEYS[2], raw)
    back = back + 1
  end
end
if back > 0 and redis.call('llen', KEYS[3]) < tonumber(ARGV[1]) then
  redis.call('rpush', KEYS[3], 1)
end
return back
