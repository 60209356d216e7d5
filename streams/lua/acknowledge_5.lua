-- Acknowledge delivered entries of one partition, count them and keep their outcome
-- records, atomically: the Acknowledger's one call per partition per flush.
--
-- KEYS[1] stalls hash of the partition
-- KEYS[2] attempts hash of the partition
-- KEYS[3] counts hash of the partition (field "delivered:<level>:<tenant>" -> total)
-- KEYS[4] outcome records hash of the partition (message id -> JSON record)
-- KEYS[5] delivered records index of the partition (sorted set: message id -> ms)
-- ARGV[1] consumer group
-- ARGV[2] now, Unix ms
-- ARGV[3] how long a delivered record is kept, ms (0: no records)
-- ARGV[4] most delivered records the partition keeps
-- ARGV[5..] per entry, five values: stream, entry id, counter field, message id, record
--
-- Only an entry this call acknowledged (XACK returns 1) is counted and recorded: one that
-- another owner acknowledged already (redelivered after a crash) is not counted twice.
-- The streams are the partition's (same hash slot as KEYS).
-- Returns the number of entries acknowledged.

-- #include _retain

local acked = 0
local keep_ms, keep_count = tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 5, #ARGV, 5 do
  local stream, entry_id = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', stream, ARGV[1], entry_id) == 1 then
    acked = acked + 1
    redis.call('HINCRBY', KEYS[3], ARGV[i + 2], 1)
    if keep_ms > 0 then
      redis.call('HSET', KEYS[4], ARGV[i + 3], ARGV[i + 4])
      redis.call('ZADD', KEYS[5], ARGV[2], ARGV[i + 3])
    end
  end
  redis.call('HDEL', KEYS[1], entry_id)
  redis.call('HDEL', KEYS[2], entry_id)
end

if keep_ms > 0 then
  retain(KEYS[5], KEYS[4], tonumber(ARGV[2]), keep_ms, keep_count)
end
return acked
