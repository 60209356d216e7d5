-- Fragment: included (`-- #include _admit`) by every script that adds a message to a
-- partition, so the admission rule is written once.
--
-- admit(stream, unread, ring, waiting, tenant, blob, window)
--   stream   the stream of the message's partition and priority level
--   unread   that stream's unread counter (entries added and not yet read by the group)
--   ring     the level's ring: tenants of the partition with messages waiting, in turn order
--   waiting  the tenant's waiting list of that level
--   tenant   the message's tenant
--   blob     the encoded message (stream entry field "m")
--   window   most unread entries the stream takes before messages wait in their lists
--
-- A message goes straight into the stream when its tenant has nothing waiting and the
-- stream's unread window has room; otherwise it waits at the end of its tenant's list,
-- and a list just created puts its tenant at the end of the ring. Workers admit waiting
-- messages tenant by tenant (read_window.lua), so no tenant's backlog ever sits in the
-- stream in front of another tenant's messages. FIFO per conversation holds: a message
-- bypasses its tenant's list only when that list is empty.
-- Returns the stream entry id, or false when the message waits.
local function admit(stream, unread, ring, waiting, tenant, blob, window)
  if redis.call('EXISTS', waiting) == 0
      and tonumber(redis.call('GET', unread) or '0') < tonumber(window) then
    redis.call('INCR', unread)
    return redis.call('XADD', stream, '*', 'm', blob)
  end
  if redis.call('RPUSH', waiting, blob) == 1 then
    redis.call('RPUSH', ring, tenant)
  end
  return false
end
