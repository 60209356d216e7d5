-- Note an attempt that did not finish its message, atomically: a failure's count and
-- backoff, the attempt's stall mark taken back, the message's retrying record (the note
-- appended to the history of the record it replaces) and its outcome event. The
-- AttemptRecords' one call per failed or throttled attempt (rare: a delivered message
-- never pays for it).
--
-- KEYS[1] attempts hash of the partition (entry id -> "<failed attempts>:<next attempt ms>")
-- KEYS[2] stalls hash of the partition (entry id -> attempts started and not finished)
-- KEYS[3] outcome records hash of the partition (message id -> JSON record)
-- KEYS[4] outcome events stream of the partition
-- ARGV[1] stream entry id
-- ARGV[2] the attempts value to set ("" for a throttle: no attempt used, nothing set)
-- ARGV[3] message id
-- ARGV[4] the retrying record, JSON without history ("" = no record and no event)
-- ARGV[5] the attempt's note (JSON object: streams.outcome.AttemptNote)
-- ARGV[6] most notes a history keeps (the last ones)
-- ARGV[7] "1": keep the record (outcome records on), else ""
-- ARGV[8] most events the partition's stream keeps (0: no events)
-- ARGV[9] the event's state (retrying, or throttled)
--
-- The record is edited as text (_record_text.lua): the old record's history is read and
-- written back as it is, plus the note. Returns the record written (or published), or ""
-- when there is none.

-- #include _record_text

if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('HINCRBY', KEYS[2], ARGV[1], -1)

local record = ARGV[4]
if record == '' then
  return ''
end
if ARGV[7] == '1' then
  local old = redis.call('HGET', KEYS[3], ARGV[3])
  local history = noted(old and field_text(old, 'history'), ARGV[5], tonumber(ARGV[6]))
  record = with(record, 'history', history)
  redis.call('HSET', KEYS[3], ARGV[3], record)
end
local events = tonumber(ARGV[8])
if events > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', events, '*',
    'state', ARGV[9], 'id', ARGV[3], 'record', record)
end
return record
