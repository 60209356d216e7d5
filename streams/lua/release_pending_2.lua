-- Hand pending entries of a partition nobody holds back to the group, for its next owner.
--
-- KEYS[1] the stream (one priority level of the partition)
-- KEYS[2] the partition's lease (Keys.lease)
-- ARGV[1] consumer group
-- ARGV[2] the consumer the entries are handed to (ops.pending_release.RELEASED_CONSUMER)
-- ARGV[3..] entry ids chosen by the caller
--
-- Nothing is changed while the lease exists: a worker sends a partition's messages only
-- while its own view of the lease is valid, and that view ends no later than the key (the
-- fence), so with the key gone no worker can be sending any of them. The entries are
-- re-owned (XCLAIM JUSTID: their delivery counts are kept) and stay pending: the next owner
-- reclaims every pending entry in id order when it takes the partition, so each
-- conversation keeps its order. Ids no longer pending, or handed back already, are skipped.
-- Returns -1 when the partition is leased (nothing changed), else the entries re-owned.

if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
local ids = {}
for i = 3, #ARGV do
  local found = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #found == 1 and found[1][2] ~= ARGV[2] then
    ids[#ids + 1] = ARGV[i]
  end
end
if #ids == 0 then
  return 0
end
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
for _, id in ipairs(ids) do
  claim[#claim + 1] = id
end
claim[#claim + 1] = 'JUSTID'
return #redis.call(unpack(claim))
