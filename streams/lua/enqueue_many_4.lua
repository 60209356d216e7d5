-- Enqueue a run of plain messages (no dedup key, no delay) of one partition and priority
-- level, in order, with the admission rule of _admit.lua applied to each: send_many's
-- fast path (one call for many messages instead of one per message).
--
-- KEYS[1] stream of the partition and priority level
-- KEYS[2] the stream's unread counter
-- KEYS[3] the level's ring of tenants with waiting messages
-- KEYS[4] outcome records hash of the partition (message id -> JSON record)
-- ARGV[1] the level's waiting-list prefix (Keys.waiting_prefix; + tenant = the tenant's list,
--         in the same hash slot as KEYS)
-- ARGV[2] admission window (see _admit.lua)
-- ARGV[3], ARGV[4], ... per message, oldest first, four values: tenant, encoded message
--         (msgpack), message id, outcome record ("" = no record)
--
-- Returns the number of messages enqueued (those admitted to the stream plus those that wait).

-- #include _admit

local count = 0
for i = 3, #ARGV, 4 do
  local tenant = ARGV[i]
  admit(KEYS[1], KEYS[2], KEYS[3], ARGV[1] .. tenant, tenant, ARGV[i + 1], ARGV[2])
  if ARGV[i + 3] ~= '' then
    redis.call('HSET', KEYS[4], ARGV[i + 2], ARGV[i + 3])
  end
  count = count + 1
end
return count
