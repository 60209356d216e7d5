-- Fragment: included (`-- #include _retain`) by the scripts that keep outcome records
-- (before `-- #include _outcome`), and by those that delete kept ones (clean_outcomes_3.lua,
-- replay_dead_letters_8.lua).
--
-- The lookup index of a records hash (Keys.outcome_lookup, a key the script is given) is a
-- sorted set, all scores 0, two members per kept
-- finished record: "c" NUL <conversation> NUL <at_ms, 13 digits> NUL <message id>, and the
-- same with "r" and <recipient> (when the record has one). Names hold no control
-- character (streams.validation), so NUL cannot occur inside one.
--
-- lookup_members(id, record)  the members of one record (a table; read from its JSON text)
-- forget_lookup(records, lookup, ids)  removes the members of these ids' records (HMGET,
--                             ZREM): call it before the records are deleted or overwritten
-- retain(index, records, lookup, now_ms, keep_ms, keep_count)
--   index    sorted set of one final state's records: message id -> when (ms)
--   records  the partition's outcome records hash (message id -> JSON)
--   lookup   the partition's lookup index (Keys.outcome_lookup)
--   now_ms   the time now, Unix ms
--   keep_ms  how long a record of that state is kept
--   keep_count  most records of that state the partition keeps (0: no trimming in this
--               call; the caller trims every so often, not on every call)
--
-- Drops the records past the count (oldest first), then those older than keep_ms (at most
-- 256 per call: a call stays short; the rest go on the next), with their lookup members.
-- Bounds memory by both.

-- Where the value of the record's top-level key `name` starts (the index after `"name":`),
-- or nil. `,"` cannot occur inside a JSON string (a quote there is escaped), so a match
-- is a key; a plain find (memchr) is several times faster than a pattern. Records are
-- written by msgspec and edited as text (_record_text.lua), `state` first.
local function value_at(record, name)
  local _, e = string.find(record, ',"' .. name .. '":', 1, true)
  return e and e + 1
end

-- A top-level string field, unescaped (names hold no control character, so the only
-- escapes are \" \\ and \/).
local function record_name(record, name)
  local i = value_at(record, name)
  if not i or string.sub(record, i, i) ~= '"' then
    return nil
  end
  local k, escaped = i + 1, false
  while true do
    local q = string.find(record, '["\\]', k)
    if not q then
      return nil
    end
    if string.sub(record, q, q) == '"' then
      local text = string.sub(record, i + 1, q - 1)
      if escaped then
        text = string.gsub(text, '\\(.)', '%1')
      end
      return text
    end
    escaped, k = true, q + 2
  end
end

local function lookup_members(id, record)
  local i = value_at(record, 'at_ms')
  local at = i and string.match(record, '^%d+', i) or '0'
  local tail = '\0' .. string.rep('0', 13 - #at) .. at .. '\0' .. id
  local members = {}
  local conversation = record_name(record, 'conversation')
  if conversation then
    members[#members + 1] = 'c\0' .. conversation .. tail
  end
  local recipient = record_name(record, 'recipient')
  if recipient then
    members[#members + 1] = 'r\0' .. recipient .. tail
  end
  return members
end

local function forget_lookup(records, lookup, ids)
  if #ids == 0 or redis.call('EXISTS', lookup) == 0 then
    return  -- nothing indexed (RELAYQ_SEARCH_INDEX off, or nothing kept yet)
  end
  for j = 1, #ids, 1000 do
    local last = math.min(j + 999, #ids)
    local texts = redis.call('HMGET', records, unpack(ids, j, last))
    local members = {}
    for i = 1, last - j + 1 do
      if texts[i] then
        for _, member in ipairs(lookup_members(ids[j + i - 1], texts[i])) do
          members[#members + 1] = member
        end
      end
    end
    if #members > 0 then
      redis.call('ZREM', lookup, unpack(members))
    end
  end
end

local function retain(index, records, lookup, now_ms, keep_ms, keep_count)
  if keep_count == 0 then
    return
  end
  local old = {}
  local excess = redis.call('ZCARD', index) - keep_count
  if excess > 0 then
    local popped = redis.call('ZPOPMIN', index, excess)
    for j = 1, #popped, 2 do
      old[#old + 1] = popped[j]
    end
  end
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now_ms - keep_ms, 'LIMIT', 0, 256)
  if #expired > 0 then
    redis.call('ZREM', index, unpack(expired))
    for _, id in ipairs(expired) do
      old[#old + 1] = id
    end
  end
  forget_lookup(records, lookup, old)
  for j = 1, #old, 1000 do
    redis.call('HDEL', records, unpack(old, j, math.min(j + 999, #old)))
  end
end
