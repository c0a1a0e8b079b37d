-- A failed job was pushed again: its record lists the retry's id.
-- KEYS: record   ARGV: retry_id
if redis.call('exists', KEYS[1]) == 0 then
  return 0
end
local ids = redis.call('hget', KEYS[1], 'retried_by')
redis.call('hset', KEYS[1], 'retried_by', ids and (ids .. ',' .. ARGV[1]) or ARGV[1])
return 1
