-- Fragment: included (`-- #include _retain`) by the scripts that keep outcome records.
--
-- retain(index, records, now_ms, keep_ms, keep_count)
--   index    sorted set of one final state's records: message id -> when (ms)
--   records  the partition's outcome records hash (message id -> JSON)
--   now_ms   the time now, Unix ms
--   keep_ms  how long a record of that state is kept
--   keep_count  most records of that state the partition keeps (0: no trimming in this
--               call; the caller trims every so often, not on every call)
--
-- Drops the records past the count (oldest first), then those older than keep_ms (at most
-- 256 per call: a call stays short; the rest go on the next). Bounds memory by both.
local function retain(index, records, now_ms, keep_ms, keep_count)
  if keep_count == 0 then
    return
  end
  local old = {}
  local excess = redis.call('ZCARD', index) - keep_count
  if excess > 0 then
    local popped = redis.call('ZPOPMIN', index, excess)
    for j = 1, #popped, 2 do
      old[#old + 1] = popped[j]
    end
  end
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now_ms - keep_ms, 'LIMIT', 0, 256)
  if #expired > 0 then
    redis.call('ZREM', index, unpack(expired))
    for _, id in ipairs(expired) do
      old[#old + 1] = id
    end
  end
  for j = 1, #old, 1000 do
    redis.call('HDEL', records, unpack(old, j, math.min(j + 999, #old)))
  end
end
