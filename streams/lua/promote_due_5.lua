-- Move delayed messages whose due time has come into their streams, atomically.
--
-- KEYS[1] delayed sorted set of the partition (member: message id, score: due Unix ms)
-- KEYS[2] delayed data hash of the partition (message id -> "<priority>:<encoded message>")
-- KEYS[3] high stream, KEYS[4] normal stream, KEYS[5] low stream of the partition
-- ARGV[1] now in Unix ms
-- ARGV[2] most messages to move in this call
--
-- Due messages move in (due time, message id) order, so messages of one conversation
-- due at the same time keep the order in which they were sent.
-- Returns the number of messages moved.

local streams = {high = KEYS[3], normal = KEYS[4], low = KEYS[5]}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  local data = redis.call('HGET', KEYS[2], id)
  if data then
    local colon = string.find(data, ':', 1, true)
    local stream = colon and streams[string.sub(data, 1, colon - 1)]
    if stream then
      redis.call('XADD', stream, '*', 'm', string.sub(data, colon + 1))
    else
      -- Unknown priority: deliver it as normal rather than lose it; the worker decodes it.
      redis.call('XADD', KEYS[4], '*', 'm', data)
    end
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return moved
