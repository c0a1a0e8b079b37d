-- One model's shared Claude budget: a sliding-window log of weighted reservations.
-- KEYS: log (sorted set: 'id:input:output' by ms the reservation counts from),
--       state (hash: 'requests', 'input', 'output' = what the log adds up to; and per
--       dimension 'remaining:D', 'reset:D' = what the API said remains until when)
-- ARGV: op ('acquire', 'settle', 'observe'), now_ms ('' = server clock), window_ms,
--       margin_ms, then the op's own arguments (see each op below).
local DIMS = {'requests', 'input', 'output'}
local log, state = KEYS[1], KEYS[2]
local window, margin = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('time')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Lua numbers are doubles, and tostring writes a negated zero as '-0' (and numbers past
-- 14 digits with an exponent): Redis takes neither for an integer.
local function int(value)
  return string.format('%d', value)
end

local function amounts(member)
  local input, output = string.match(member, ':(%d+):(%d+)$')
  return {1, tonumber(input), tonumber(output)}
end

local function add(sums, member, sign)
  local a = amounts(member)
  for i = 1, 3 do sums[i] = sums[i] + sign * a[i] end
end

-- The totals follow the log: a reservation that leaves the window leaves them too.
-- Without a log there is nothing to add up (both keys expire together; this heals a
-- state left behind anyway).
local function forget_old()
  if redis.call('exists', log) == 0 then
    redis.call('hdel', state, unpack(DIMS))
    return
  end
  local old = redis.call('zrangebyscore', log, '-inf', int(now - window))
  if #old == 0 then return end
  local sums = {0, 0, 0}
  for _, member in ipairs(old) do add(sums, member, 1) end
  for i = 1, 3 do redis.call('hincrby', state, DIMS[i], int(-sums[i])) end
  redis.call('zremrangebyscore', log, '-inf', int(now - window))
end

local function used()
  local u = redis.call('hmget', state, unpack(DIMS))
  return {tonumber(u[1]) or 0, tonumber(u[2]) or 0, tonumber(u[3]) or 0}
end

-- What the API said remains of dimension i, or nil once its reset has passed.
local function observed(i)
  local o = redis.call('hmget', state, 'remaining:' .. DIMS[i], 'reset:' .. DIMS[i])
  local remaining, reset = tonumber(o[1]), tonumber(o[2])
  if remaining and reset and reset > now then return remaining, reset end
  return nil
end

local function keep()
  redis.call('pexpire', log, window + margin)
  redis.call('pexpire', state, window + margin)
end

-- The ms until the oldest reservations in the window free `excess[i]` of each dimension.
local function until_freed(excess)
  local wait, open, short = 0, {}, false
  for i = 1, 3 do
    open[i] = excess[i] > 0
    short = short or open[i]
  end
  if not short then return 0 end
  local entries = redis.call('zrangebyscore', log, '(' .. int(now - window), '+inf', 'WITHSCORES')
  for e = 1, #entries, 2 do
    local a = amounts(entries[e])
    for i = 1, 3 do
      if open[i] then
        excess[i] = excess[i] - a[i]
        if excess[i] <= 0 then
          open[i] = false
          wait = math.max(wait, tonumber(entries[e + 1]) + window - now)
        end
      end
    end
  end
  for i = 1, 3 do
    if open[i] then wait = math.max(wait, window) end
  end
  return wait
end

-- ARGV[5]: member; ARGV[6..11]: (want, limit or -1) per dimension.
-- Reserves and returns 0, or returns the ms until the budget allows it.
local function acquire()
  forget_old()
  local u = used()
  local want, excess, wait = {}, {}, 0
  for i = 1, 3 do
    want[i] = tonumber(ARGV[4 + 2 * i])
    local limit = tonumber(ARGV[5 + 2 * i])
    excess[i] = limit >= 0 and u[i] + want[i] - limit or 0
    local remaining, reset = observed(i)
    if remaining and want[i] > remaining then wait = math.max(wait, reset - now) end
  end
  wait = math.max(wait, until_freed(excess))
  if wait > 0 then return wait end
  redis.call('zadd', log, int(now + margin), ARGV[5])
  for i = 1, 3 do
    redis.call('hincrby', state, DIMS[i], int(want[i]))
    if observed(i) then redis.call('hincrby', state, 'remaining:' .. DIMS[i], int(-want[i])) end
  end
  keep()
  return 0
end

-- ARGV[5]: the reservation's member; ARGV[6]: the same reservation with the real usage.
-- Returns 1, or 0 when the reservation already left the window.
local function settle()
  local score = redis.call('zscore', log, ARGV[5])
  if not score then return 0 end
  local delta = {0, 0, 0}
  add(delta, ARGV[6], 1)
  add(delta, ARGV[5], -1)
  redis.call('zrem', log, ARGV[5])
  redis.call('zadd', log, score, ARGV[6])
  for i = 2, 3 do redis.call('hincrby', state, DIMS[i], int(delta[i])) end
  keep()
  return 1
end

-- ARGV[5..]: (dimension index, remaining, reset_ms, limit or -1) per header set.
-- Keeps what the API said when it is less than the limiter thinks remains; a reset
-- never lies more than one window ahead. Returns how many dimensions were lowered.
local function observe()
  forget_old()
  local u = used()
  local lowered = 0
  for a = 5, #ARGV, 4 do
    local i, remaining = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local reset, limit = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local thinks = limit >= 0 and limit - u[i] or math.huge
    local known = observed(i)
    if known then thinks = math.min(thinks, known) end
    if reset > now and remaining < thinks then
      redis.call('hset', state, 'remaining:' .. DIMS[i], int(remaining),
        'reset:' .. DIMS[i], int(math.min(reset, now + window)))
      lowered = lowered + 1
    end
  end
  if lowered > 0 then keep() end
  return lowered
end

local ops = {acquire = acquire, settle = settle, observe = observe}
return ops[ARGV[1]]()
