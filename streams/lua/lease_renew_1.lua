-- Extend a partition lease if, and only if, the caller still holds it.
--
-- KEYS[1] lease key of the partition
-- ARGV[1] the caller's lease token
-- ARGV[2] lease time to live in ms
--
-- Returns 1 if renewed, 0 if the lease is held by someone else or has expired.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
