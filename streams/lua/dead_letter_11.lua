-- Move one pending entry to the dead-letter stream and acknowledge it, atomically.
--
-- KEYS[1] origin stream
-- KEYS[2] dead-letter stream of the same partition
-- KEYS[3] attempts hash of the partition
-- KEYS[4] stalls hash of the partition
-- KEYS[5] counts hash of the partition (field "dead_lettered:<level>:<tenant>" -> total)
-- KEYS[6] outcome records hash of the partition (message id -> JSON record)
-- KEYS[7] dead-lettered records index of the partition (sorted set: message id -> ms)
-- KEYS[8] outcome events stream of the partition
-- KEYS[9] this 10-second bucket's counts of the partition (Keys.rate_bucket)
-- KEYS[10] lookup index of the partition's kept records (Keys.outcome_lookup)
-- KEYS[11] the partition's dead letters by tenant and kind (streams/dead_letter_index.py)
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
-- ARGV[13] most events the partition's stream keeps (0: no events)
-- ARGV[14] the partition's batch-count key prefix (+ batch id = the batch's counts here)
-- ARGV[15] the message's batch id ("" = none)
-- ARGV[16] the message's tenant ("" for an entry that holds no readable message: the
--          dead letter is indexed by its kind only)
-- ARGV[17] "1": a kept record gets lookup members (RELAYQ_SEARCH_INDEX), else ""
--
-- The DLQ entry holds error, kind, attempts, origin_stream, origin_id, failed_ms, consumer,
-- then every field of the original entry prefixed with "entry:" (so "entry:m" for a message).
-- The outcome record gets the DLQ entry's id and the history of the record it replaces
-- (the failed attempts before the last: ``_record_text.carry_history``).
-- Returns the DLQ entry id, or false when the entry is no longer pending in the group
-- (another owner already acknowledged or dead-lettered it: nothing is written or counted
-- twice).

-- #include _retain
-- #include _outcome
-- #include _dead_letter_index
-- #include _record_text

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
redis.call('ZADD', KEYS[11], 0, dead_letter_member('k', ARGV[4], dlq_id))
if ARGV[16] ~= '' then
  redis.call('ZADD', KEYS[11], 0, dead_letter_member('t', ARGV[16], dlq_id))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
local now, keep_ms = tonumber(ARGV[6]), tonumber(ARGV[11])
local record = ARGV[10]
if ARGV[9] ~= '' then  -- edited as text (_record_text.lua), not decoded and re-encoded
  record = with(record, 'dlq_id', '"' .. dlq_id .. '"')
  record = carry_history(record, redis.call('HGET', KEYS[6], ARGV[9]))
end
local into = {counts = KEYS[5], records = KEYS[6], index = KEYS[7], events = KEYS[8],
  rate = KEYS[9], lookup = KEYS[10], searchable = ARGV[17] == '1', batch = ARGV[14]}
outcome(into, 'dead_lettered', ARGV[8], ARGV[9], record, now, keep_ms, tonumber(ARGV[13]),
  ARGV[15])
finish_outcomes(into, now, keep_ms, tonumber(ARGV[12]))
return dlq_id
