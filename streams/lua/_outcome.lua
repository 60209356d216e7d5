-- Fragment: included (`-- #include _outcome`) by the scripts that finish messages
-- (acknowledge_7.lua, dead_letter_9.lua), after `-- #include _retain`.
--
-- `into` names the partition's keys: into.counts (counts hash), into.records (outcome
-- records hash), into.index (the finished state's records index), into.events (outcome
-- events stream), into.rate (the current 10-second bucket of counts, Keys.rate_bucket),
-- into.batch (the partition's batch-count key prefix, Keys.batch_counts_prefix).
--
-- outcome(into, state, field, message_id, record, now_ms, keep_ms, events, batch)
--   counts one finished message under its counter field (in the totals and in the rate
--   bucket) and in its batch's counts (if batch ~= "": a new batch key expires after
--   BATCH_KEEP_MS), keeps its record (if keep_ms > 0; else deletes the record it had
--   while unfinished) and publishes its event (if events > 0: the stream is capped near
--   that many entries). A field of "" (an entry
--   holding no readable message) counts, keeps and publishes nothing.
-- finish_outcomes(into, finished, now_ms, keep_ms, keep_count)
--   once per call: the rate bucket's expiry and the records' retention (_retain.lua).
local BATCH_KEEP_MS = 604800000
local function outcome(into, state, field, message_id, record, now_ms, keep_ms, events, batch)
  if field == '' then
    return
  end
  redis.call('HINCRBY', into.counts, field, 1)
  redis.call('HINCRBY', into.rate, field, 1)
  if batch ~= '' then
    local key = into.batch .. batch
    if redis.call('HINCRBY', key, state, 1) == 1 and redis.call('HLEN', key) == 1 then
      redis.call('PEXPIRE', key, BATCH_KEEP_MS)
    end
  end
  if keep_ms > 0 then
    redis.call('HSET', into.records, message_id, record)
    redis.call('ZADD', into.index, now_ms, message_id)
  else
    redis.call('HDEL', into.records, message_id)  -- its accepted or retrying record
  end
  if events > 0 then
    redis.call('XADD', into.events, 'MAXLEN', '~', events, '*',
      'state', state, 'id', message_id, 'record', record)
  end
end

local function finish_outcomes(into, finished, now_ms, keep_ms, keep_count)
  if finished > 0 then
    redis.call('PEXPIRE', into.rate, 80000)
  end
  if keep_ms > 0 then
    retain(into.index, into.records, now_ms, keep_ms, keep_count)
  end
end
