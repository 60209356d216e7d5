-- Trim one stream's acknowledged entries now: the workers' retention rule
-- (consumers/stream_maintenance.py), in one atomic step.
--
-- KEYS[1] the stream
-- ARGV[1] consumer group
--
-- Deletes (XTRIM MINID, exact) the entries below the oldest one still pending or unread:
-- the floor is the smaller of the group's last-delivered id + 1 and the oldest pending id.
-- A stream without the group has never been read: nothing is trimmed.
-- Returns the number of entries deleted.

-- #include _group_info

local group = group_info(KEYS[1], ARGV[1])
if group == nil then
  return 0
end
local ms, seq = string.match(group['last-delivered-id'], '^(%d+)-(%d+)$')
local floor = {tonumber(ms), tonumber(seq) + 1}
if tonumber(group['pending']) > 0 then
  local oldest = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
  local pms, pseq = string.match(oldest, '^(%d+)-(%d+)$')
  pms, pseq = tonumber(pms), tonumber(pseq)
  if pms < floor[1] or (pms == floor[1] and pseq < floor[2]) then
    floor = {pms, pseq}
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', floor[1], floor[2]))
