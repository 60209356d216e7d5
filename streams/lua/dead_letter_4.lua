-- Move one pending entry to the dead-letter stream and acknowledge it, atomically.
--
-- KEYS[1] origin stream
-- KEYS[2] dead-letter stream of the same partition
-- KEYS[3] attempts hash of the partition
-- KEYS[4] stalls hash of the partition
-- ARGV[1] consumer group
-- ARGV[2] origin entry id
-- ARGV[3] error text
-- ARGV[4] error kind (permanent | exhausted | stalled | poison)
-- ARGV[5] attempts made
-- ARGV[6] failure time in Unix ms
-- ARGV[7] consumer (worker) that gave up
--
-- The DLQ entry holds error, kind, attempts, origin_stream, origin_id, failed_ms, consumer,
-- then every field of the original entry prefixed with "entry:" (so "entry:m" for a message).
-- Returns the DLQ entry id, or false when the entry is no longer pending in the group
-- (another owner already acknowledged or dead-lettered it: nothing is written twice).

local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then
  return false
end

local fields = {
  'error', ARGV[3], 'kind', ARGV[4], 'attempts', ARGV[5],
  'origin_stream', KEYS[1], 'origin_id', ARGV[2], 'failed_ms', ARGV[6], 'consumer', ARGV[7],
}
local original = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #original == 1 then
  local entry = original[1][2]
  for i = 1, #entry, 2 do
    fields[#fields + 1] = 'entry:' .. entry[i]
    fields[#fields + 1] = entry[i + 1]
  end
end

local dlq_id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return dlq_id
