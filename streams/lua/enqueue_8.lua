-- Enqueue one message, optionally deduplicated and/or delayed, atomically.
--
-- KEYS[1] stream of the message's partition and priority level
-- KEYS[2] dedup key of the message's (tenant, conversation) (Keys.dedup), used when ARGV[3] > 0
-- KEYS[3] delayed sorted set of the partition
-- KEYS[4] delayed data hash of the partition
-- KEYS[5] the stream's unread counter
-- KEYS[6] the level's ring of tenants with waiting messages
-- KEYS[7] the tenant's waiting list of the level
-- KEYS[8] outcome records hash of the partition (message id -> JSON record)
-- ARGV[1] message id
-- ARGV[2] encoded message (msgpack)
-- ARGV[3] dedup window in ms (0 = no dedup)
-- ARGV[4] due time in Unix ms (0 = deliverable now)
-- ARGV[5] priority level name, kept with a delayed message
-- ARGV[6] tenant
-- ARGV[7] admission window (see _admit.lua)
-- ARGV[8] the message's outcome record, accepted or delayed ("" = no record)
--
-- Returns {message id, 1 if this is a duplicate of an earlier message (nothing written) else 0}

-- #include _admit

local window = tonumber(ARGV[3])
if window > 0 then
  local first = redis.call('GET', KEYS[2])
  if first then
    return {first, 1}
  end
end

local due = tonumber(ARGV[4])
if due > 0 then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[5] .. ':' .. ARGV[2])
else
  admit(KEYS[1], KEYS[5], KEYS[6], KEYS[7], ARGV[6], ARGV[2], ARGV[7])
end

if window > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', window)
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[8], ARGV[1], ARGV[8])
end
return {ARGV[1], 0}
