-- Move one pending entry to the dead-letter stream and acknowledge it, atomically.
--
-- KEYS[1] origin stream
-- KEYS[2] dead-letter stream of the same partition
-- KEYS[3] attempts hash of the partition
-- KEYS[4] stalls hash of the partition
-- KEYS[5] counts hash of the partition (field "dead_lettered:<level>:<tenant>" -> total)
-- KEYS[6] outcome records hash of the partition (message id -> JSON record)
-- KEYS[7] dead-lettered records index of the partition (sorted set: message id -> ms)
-- ARGV[1] consumer group
-- ARGV[2] origin entry id
-- ARGV[3] error text
-- ARGV[4] error kind (permanent | exhausted | stalled | poison)
-- ARGV[5] attempts made
-- ARGV[6] failure time in Unix ms
-- ARGV[7] consumer (worker) that gave up
-- ARGV[8] counter field ("" for an entry that holds no readable message: not counted)
-- ARGV[9] message id ("" for such an entry: no record)
-- ARGV[10] outcome record (JSON, without its dlq_id: this script adds it)
-- ARGV[11] how long a dead-lettered record is kept, ms (0: no records)
-- ARGV[12] most dead-lettered records the partition keeps
--
-- The DLQ entry holds error, kind, attempts, origin_stream, origin_id, failed_ms, consumer,
-- then every field of the original entry prefixed with "entry:" (so "entry:m" for a message).
-- Returns the DLQ entry id, or false when the entry is no longer pending in the group
-- (another owner already acknowledged or dead-lettered it: nothing is written or counted
-- twice).

-- #include _retain

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
if ARGV[8] ~= '' then
  redis.call('HINCRBY', KEYS[5], ARGV[8], 1)
end
local keep_ms = tonumber(ARGV[11])
if ARGV[9] ~= '' and keep_ms > 0 then
  local record = cjson.decode(ARGV[10])
  record['dlq_id'] = dlq_id
  redis.call('HSET', KEYS[6], ARGV[9], cjson.encode(record))
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[9])
  retain(KEYS[7], KEYS[6], tonumber(ARGV[6]), keep_ms, tonumber(ARGV[12]))
end
return dlq_id
