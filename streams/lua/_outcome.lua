-- Fragment: included (`-- #include _outcome`) by the scripts that finish messages
-- (acknowledge_8.lua, dead_letter_11.lua), after `-- #include _retain`.
--
-- `into` names the partition's keys: into.counts (counts hash), into.records (outcome
-- records hash), into.index (the finished state's records index), into.events (outcome
-- events stream), into.rate (the current 10-second bucket of counts, Keys.rate_bucket),
-- into.lookup (the records' lookup index, Keys.outcome_lookup; into.searchable: whether
-- kept records get lookup members, RELAYQ_SEARCH_INDEX), into.batch (the
-- partition's batch-count key prefix, Keys.batch_counts_prefix): Keys.outcome_keys, in
-- that order, plus the prefix.
--
-- outcome(into, state, field, message_id, record, now_ms, keep_ms, events, batch)
--   notes one finished message under its counter field (the totals and the rate bucket)
--   and its batch (if batch ~= ""), its record (kept if keep_ms > 0; else the record it
--   had while unfinished is deleted) with its lookup members (_retain.lua: by conversation
--   and recipient, read from the record), and publishes its event now (if events > 0: the
--   stream is capped near that many entries). A field of "" (an entry holding no readable
--   message) counts, keeps and publishes nothing.
-- finish_outcomes(into, now_ms, keep_ms, keep_count)
--   once per call: writes what outcome() noted, one command per distinct counter field,
--   batch and key (not one per message), the rate bucket's expiry (when a field of it is
--   new: its first write is), a new batch key's expiry (BATCH_KEEP_MS), the kept records'
--   lookup members (ZADD to into.lookup), and the
--   records' retention (_retain.lua; keep_count 0: not in this call).
-- in_chunks(command, key, values, step)
--   `command key v1 v2 ...` over `values`, `step` of them per call (unpack's stack limit).
local BATCH_KEEP_MS = 604800000
local noted = {fields = {}, batches = {}, records = {}, scores = {}, ids = {}, lookup = {}}

local function outcome(into, state, field, message_id, record, now_ms, keep_ms, events, batch)
  if field == '' then
    return
  end
  noted.fields[field] = (noted.fields[field] or 0) + 1
  noted.state = state
  if batch ~= '' then
    noted.batches[batch] = (noted.batches[batch] or 0) + 1
  end
  if keep_ms > 0 then
    table.insert(noted.records, message_id)
    table.insert(noted.records, record)
    table.insert(noted.scores, now_ms)
    table.insert(noted.scores, message_id)
    if into.searchable then
      for _, member in ipairs(lookup_members(message_id, record)) do
        table.insert(noted.lookup, 0)
        table.insert(noted.lookup, member)
      end
    end
  else
    table.insert(noted.ids, message_id)
  end
  if events > 0 then
    redis.call('XADD', into.events, 'MAXLEN', '~', events, '*',
      'state', state, 'id', message_id, 'record', record)
  end
end

local function in_chunks(command, key, values, step)
  for j = 1, #values, step do
    redis.call(command, key, unpack(values, j, math.min(j + step - 1, #values)))
  end
end

local function finish_outcomes(into, now_ms, keep_ms, keep_count)
  local new_bucket_field = false
  for field, n in pairs(noted.fields) do
    redis.call('HINCRBY', into.counts, field, n)
    if redis.call('HINCRBY', into.rate, field, n) == n then
      new_bucket_field = true
    end
  end
  if new_bucket_field then  -- a bucket's first write makes a new field: it gets its expiry
    redis.call('PEXPIRE', into.rate, 80000)
  end
  for batch, n in pairs(noted.batches) do
    local key = into.batch .. batch
    if redis.call('HINCRBY', key, noted.state, n) == n and redis.call('HLEN', key) == 1 then
      redis.call('PEXPIRE', key, BATCH_KEEP_MS)
    end
  end
  in_chunks('HSET', into.records, noted.records, 1000)
  in_chunks('ZADD', into.index, noted.scores, 1000)
  in_chunks('ZADD', into.lookup, noted.lookup, 1000)
  in_chunks('HDEL', into.records, noted.ids, 1000)  -- their accepted or retrying records
  if keep_ms > 0 then
    retain(into.index, into.records, into.lookup, now_ms, keep_ms, keep_count)
  end
end
