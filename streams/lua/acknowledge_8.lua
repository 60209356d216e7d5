-- Acknowledge delivered entries of one partition, count them, keep their outcome records
-- and publish their outcome events, atomically: the Acknowledger's one call per partition
-- per flush.
--
-- KEYS[1] stalls hash of the partition
-- KEYS[2] attempts hash of the partition
-- KEYS[3] counts hash of the partition (field "delivered:<level>:<tenant>" -> total)
-- KEYS[4] outcome records hash of the partition (message id -> JSON record)
-- KEYS[5] delivered records index of the partition (sorted set: message id -> ms)
-- KEYS[6] outcome events stream of the partition
-- KEYS[7] this 10-second bucket's counts of the partition (Keys.rate_bucket)
-- KEYS[8] lookup index of the partition's kept records (Keys.outcome_lookup)
-- ARGV[1] consumer group
-- ARGV[2] now, Unix ms
-- ARGV[3] how long a delivered record is kept, ms (0: no records)
-- ARGV[4] most delivered records the partition keeps (0: no trimming in this call)
-- ARGV[5] most events the partition's stream keeps (0: no events)
-- ARGV[6] the partition's batch-count key prefix (+ batch id = the batch's counts here)
-- ARGV[7] the entries, msgpack: an array of arrays {stream, entry id, counter field,
--         message id, record, batch id ("" = none), "1" if an attempt of it failed (its
--         attempts record is deleted) else ""}, all strings (one argument instead of
--         seven per entry: packing arguments was most of the worker's cost of acking)
-- ARGV[8] "1": kept records get lookup members (RELAYQ_SEARCH_INDEX), else ""
--
-- A delivery receipt written to the record before this call (its callback raced the
-- acknowledgement) is carried into the delivered record (``_record_text.carry_receipt``),
-- and so are the failed attempts before it (``carry_history``), from the same HGET.
-- Only an entry this call acknowledged (XACK returns 1) is counted, recorded and
-- published: one that another owner acknowledged already (redelivered after a crash) is
-- not counted twice. The streams are the partition's (same hash slot as KEYS).
-- Returns the number of entries acknowledged.

-- #include _retain
-- #include _outcome
-- #include _record_text

local into = {counts = KEYS[3], records = KEYS[4], index = KEYS[5], events = KEYS[6],
  rate = KEYS[7], lookup = KEYS[8], searchable = ARGV[8] == '1', batch = ARGV[6]}
local acked = 0
local now, keep_ms, keep_count = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local events = tonumber(ARGV[5])
local entry_ids, failed_ids = {}, {}
for _, entry in ipairs(cmsgpack.unpack(ARGV[7])) do
  local stream, entry_id = entry[1], entry[2]
  if redis.call('XACK', stream, ARGV[1], entry_id) == 1 then
    acked = acked + 1
    local record = entry[5]
    if keep_ms > 0 then
      local old = redis.call('HGET', into.records, entry[4])
      if old and string.sub(old, 1, 20) == '{"state":"delivered"' then
        record = old  -- already delivered: its own record stays (its provider id)
      else  -- a receipt may have come before the acknowledgement
        record = carry_history(carry_receipt(record, old), old)
      end
    end
    outcome(into, 'delivered', entry[3], entry[4], record, now, keep_ms, events, entry[6])
  end
  entry_ids[#entry_ids + 1] = entry_id
  if entry[7] == '1' then
    failed_ids[#failed_ids + 1] = entry_id
  end
end
-- Stall marks and attempts records, a command per key (not one per entry).
in_chunks('HDEL', KEYS[1], entry_ids, 1000)
in_chunks('HDEL', KEYS[2], failed_ids, 1000)

finish_outcomes(into, now, keep_ms, keep_count)
return acked
