-- Give up a partition lease if, and only if, the caller still holds it.
--
-- KEYS[1] lease key of the partition
-- ARGV[1] the caller's lease token
--
-- Returns 1 if released, 0 if it was not the caller's.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
