-- Delete one consumer of a stream's group if it holds nothing pending.
--
-- KEYS[1] the stream
-- ARGV[1] consumer group
-- ARGV[2] consumer name
-- ARGV[3] least idle time (ms) the consumer must have
--
-- XGROUP DELCONSUMER drops the consumer's pending entries with it; checking its pending
-- count in the same atomic step is what makes the deletion lose nothing.
-- Returns 1 when the consumer was deleted, 0 when it holds entries, was active more
-- recently than ARGV[3] or does not exist.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  return 0
end
for _, reply in ipairs(consumers) do
  local fields = {}
  for k = 1, #reply, 2 do
    fields[reply[k]] = reply[k + 1]
  end
  if fields['name'] == ARGV[2] then
    if tonumber(fields['pending']) > 0 or tonumber(fields['idle']) < tonumber(ARGV[3]) then
      return 0
    end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
