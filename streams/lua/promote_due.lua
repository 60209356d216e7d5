-- Move delayed messages whose due time has come into their streams, atomically.
--
-- KEYS[1] delayed sorted set of the partition (member: message id, score: due Unix ms)
-- KEYS[2] delayed data hash of the partition (message id -> "<level>:<encoded message>")
-- KEYS[3..] the partition's streams, one per priority level, highest first
-- ARGV[1] now in Unix ms
-- ARGV[2] most messages to move in this call
-- ARGV[3..] the priority level names, in the order of KEYS[3..]
--
-- Due messages move in (due time, message id) order, so messages of one conversation
-- due at the same time keep the order in which they were sent.
-- Returns the number of messages moved.

local streams = {}
for i = 3, #ARGV do
  streams[ARGV[i]] = KEYS[i]
end
local lowest = KEYS[#KEYS]
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
      -- Unknown level (written by hand or by another configuration): move it as it is
      -- rather than lose it; the worker finds it undecodable and dead-letters it.
      redis.call('XADD', lowest, '*', 'm', data)
    end
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return moved
