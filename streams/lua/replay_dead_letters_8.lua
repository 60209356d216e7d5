-- Replay dead letters of one partition and priority level: each message goes back into
-- its level and conversation under the admission rule of a send (_admit.lua), and its
-- dead-letter entry is deleted, in this one atomic step.
--
-- KEYS[1] dead-letter stream of the partition
-- KEYS[2] outcome records hash of the partition (message id -> JSON record)
-- KEYS[3] dead-lettered records index of the partition (sorted set: message id -> ms)
-- KEYS[4] stream of the partition and priority level the messages return to
-- KEYS[5] that stream's unread counter
-- KEYS[6] the level's ring of tenants with waiting messages
-- KEYS[7] the partition's dead letters by tenant and kind (streams/dead_letter_index.py)
-- KEYS[8] lookup index of the partition's kept records (Keys.outcome_lookup)
-- ARGV[1] the level's waiting-list prefix (Keys.waiting_prefix; + tenant = the tenant's list,
--         in the same hash slot as KEYS)
-- ARGV[2] admission window (see _admit.lua)
-- ARGV[3], ARGV[4], ARGV[5], ARGV[6], ... quadruples, one per dead letter: its entry id,
--         the message id, the tenant, the message's outcome record (JSON, state "accepted";
--         "" with outcome records off: its dead-lettered record is deleted instead)
--
-- The message re-enters as the DLQ entry holds it (field "entry:m": same message id, same
-- conversation and level); no dedup key is checked. Its attempts start over (they are
-- counted per stream entry, and this is a new one). Its record becomes "accepted" and
-- leaves the dead-lettered retention index, so that trimming cannot drop the new record,
-- and the lookup index (KEYS[8]).
-- The dead-lettered counters ("dead_lettered:<level>:<tenant>") are totals ever
-- dead-lettered: not decremented.
--
-- Returns one integer per dead letter, in order: 1 replayed; 0 gone (already replayed or
-- deleted: nothing written, so a repeated or resumed replay queues nothing twice);
-- -1 present but holding no message (poison: left as it is).

-- #include _admit
-- #include _dead_letter_index
-- #include _retain

local results = {}
for i = 3, #ARGV, 4 do
  local blob, kind = nil, ''
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #found == 1 then
    local fields = found[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == 'entry:m' then
        blob = fields[j + 1]
      elseif fields[j] == 'kind' then
        kind = fields[j + 1]
      end
    end
  end
  if blob then
    local tenant = ARGV[i + 2]
    admit(KEYS[4], KEYS[5], KEYS[6], ARGV[1] .. tenant, tenant, blob, ARGV[2])
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[7], dead_letter_member('t', tenant, ARGV[i]),
      dead_letter_member('k', kind, ARGV[i]))
    forget_lookup(KEYS[2], KEYS[8], {ARGV[i + 1]})
    if ARGV[i + 3] == '' then
      redis.call('HDEL', KEYS[2], ARGV[i + 1])
    else
      redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 3])
    end
    redis.call('ZREM', KEYS[3], ARGV[i + 1])
    results[#results + 1] = 1
  elseif #found == 1 then
    results[#results + 1] = -1
  else
    results[#results + 1] = 0
  end
end
return results
