-- Apply one delivery receipt to a message's outcome record, atomically, and publish it.
--
-- KEYS[1] outcome records hash of the message's partition (message id -> JSON record)
-- KEYS[2] outcome events stream of the partition
-- ARGV[1] message id
-- ARGV[2] the receipt's status (sent, delivered, read or failed)
-- ARGV[3] the statuses from least to furthest, space-separated (streams.receipts)
-- ARGV[4] when the provider saw it, Unix ms (digits: spliced in as they are)
-- ARGV[5] the provider's message id, JSON-encoded ("" = none)
-- ARGV[6] the error, JSON-encoded ("" = none: a failed receipt gives one)
-- ARGV[7] most events the partition's stream keeps (0: no events)
--
-- The record keeps only the furthest receipt: one of a lower or equal rank (a duplicate,
-- or a delivered arriving after read) changes nothing and publishes nothing. The record's
-- `state` is relayq's own and is left alone; `receipt` and `receipt_ms` are set, `error`
-- too for a failed receipt, and `provider_message_id` when the record has none.
-- The record is edited as text, field by field (no decode and re-encode: cjson would
-- print numbers of 15 digits and more rounded, and reorder and re-escape the rest).
-- Publishes {state "receipt", id, record, receipt <status>} like the other outcome events.
-- Returns 1 applied, 0 not further than the kept receipt, -1 no record of the message.

-- #include _record_text

local function rank_of(ranked, status)
  local n = 0
  for word in string.gmatch(ranked, '%S+') do
    n = n + 1
    if word == status then
      return n
    end
  end
  return 0
end

local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then
  return -1
end
local status, ranked = ARGV[2], ARGV[3]
local kept = string.match(record, ',"receipt":"(%a+)"')
if kept and rank_of(ranked, status) <= rank_of(ranked, kept) then
  return 0
end

record = with(without(record, 'receipt'), 'receipt', '"' .. status .. '"')
record = with(without(record, 'receipt_ms'), 'receipt_ms', ARGV[4])
if ARGV[6] ~= '' then
  record = with(without(record, 'error'), 'error', ARGV[6])
end
if ARGV[5] ~= '' and not string.find(record, ',"provider_message_id":', 1, true) then
  record = with(record, 'provider_message_id', ARGV[5])
end
redis.call('HSET', KEYS[1], ARGV[1], record)

local events = tonumber(ARGV[7])
if events > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', events, '*',
    'state', 'receipt', 'id', ARGV[1], 'record', record, 'receipt', status)
end
return 1
