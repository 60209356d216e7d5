-- Fire one repeatable schedule: enqueue its message and move it to its next due time,
-- only if nobody fired this occurrence yet (compare-and-set on the due time).
--
-- KEYS[1] schedule due sorted set of the partition (member: schedule name, score: due Unix ms)
-- KEYS[2] schedules hash of the partition (schedule name -> encoded schedule)
-- KEYS[3] the stream the message goes to (its level's stream in the partition)
-- KEYS[4] that stream's unread counter
-- KEYS[5] the level's ring of tenants with waiting messages
-- KEYS[6] the message tenant's waiting list of the level
-- ARGV[1] schedule name
-- ARGV[2] the due time the caller saw (Unix ms)
-- ARGV[3] the next due time (Unix ms), computed by the caller from the schedule
-- ARGV[4] the encoded message (stream entry field "m")
-- ARGV[5] the message's tenant
-- ARGV[6] admission window (see _admit.lua)
--
-- Several workers (or an old owner that has not noticed losing its lease) may try the
-- same occurrence: only the first whose ARGV[2] still matches enqueues; the others find
-- the due time moved on. A schedule removed meanwhile is not fired.
-- Returns the new entry's stream id, "waiting" when the message waits in its tenant's
-- list, or false when not fired.

-- #include _admit

local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) ~= tonumber(ARGV[2]) then
  return false
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return admit(KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[5], ARGV[4], ARGV[6]) or 'waiting'
