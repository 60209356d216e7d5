-- Delete the dead letters of one partition older than a time, and their index members.
--
-- KEYS[1] dead-letter stream of the partition
-- KEYS[2] its index by tenant and kind (streams/dead_letter_index.py)
-- ARGV[1] cutoff, Unix ms: entries with ids before `<ms>-0` go
--
-- Returns the number of dead letters deleted (XTRIM MINID, exact).

-- #include _dead_letter_index

local deleted = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1] .. '-0')
if deleted > 0 then
  trim_dead_letter_index(KEYS[2], ARGV[1])
end
return deleted
