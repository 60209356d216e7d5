-- Delete one final state's outcome records that reached it before a cutoff.
--
-- KEYS[1] the state's retention index (Keys.outcome_index): message id -> when (ms)
-- KEYS[2] the partition's outcome records hash (Keys.outcomes)
-- KEYS[3] the records' lookup index (Keys.outcome_lookup)
-- ARGV[1] cutoff, Unix ms: records that reached the state before it are deleted
-- ARGV[2] most records deleted by this call (the caller calls again while it gets as many)
--
-- Like the workers' own retention (_retain.lua), the index entry, the record and the
-- record's lookup members go together.
-- Returns {index entries removed, records deleted}.

-- #include _retain

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids == 0 then
  return {0, 0}
end
local records = 0
for j = 1, #ids, 1000 do
  local last = math.min(j + 999, #ids)
  redis.call('ZREM', KEYS[1], unpack(ids, j, last))
  forget_lookup(KEYS[2], KEYS[3], {unpack(ids, j, last)})
  records = records + redis.call('HDEL', KEYS[2], unpack(ids, j, last))
end
return {#ids, records}
