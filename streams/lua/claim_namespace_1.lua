-- Record a namespace's fixed shape on first use, and return what is recorded.
--
-- KEYS[1] the namespace's meta hash
-- ARGV[1] partitions these settings say
-- ARGV[2] priority levels these settings say (canonical text, highest first)
-- ARGV[3] the default priority levels
--
-- A namespace created before levels were configurable has partitions and no priorities:
-- it was created with the default levels, which are recorded (not the caller's).
-- Returns {recorded partitions, recorded priority levels}.

if redis.call('HSETNX', KEYS[1], 'partitions', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'priorities', ARGV[2])
else
  redis.call('HSETNX', KEYS[1], 'priorities', ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'partitions', 'priorities')
