-- free_score: shared by record_pushed.lua and record_finished.lua (see core/pipelines.py).
local PER_MS = 1000 -- index score = ms * PER_MS + place

-- A score of its own for a job at `ms` in `key`: the millisecond's first place, or the one
-- after the highest taken (by earlier calls, read from the index, or by this one), so jobs
-- of one millisecond list in the order their writes ran, whichever process made them. A
-- millisecond's 1000 places used up spill into the next. Scores stay whole numbers below
-- 2^53, which a double holds exactly. Included by the record scripts that write indexes.
local highest = {} -- key -> millisecond -> highest score taken (-1: none)
local function free_score(key, ms)
  local taken = highest[key]
  if not taken then
    taken = {}
    highest[key] = taken
  end
  local score = math.floor(ms) * PER_MS
  while true do
    local slot = math.floor(score / PER_MS)
    local top = taken[slot]
    if not top then
      local first = slot * PER_MS
      local found = redis.call(
        'zrevrangebyscore', key, first + PER_MS - 1, first, 'WITHSCORES', 'LIMIT', 0, 1)
      top = found[2] and tonumber(found[2]) or -1
    end
    if top >= score then
      score = top + 1
    end
    if score < (slot + 1) * PER_MS then
      taken[slot] = score
      return string.format('%d', score)
    end
    taken[slot] = top
  end
end
