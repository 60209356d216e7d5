-- Count an attempt as started for each of a batch of entries of one partition, before any
-- of them is sent: a worker that dies mid-send leaves the count behind, and the next owner
-- reads it as a stall (see consumers/stall_marks.py).
--
-- KEYS[1] stalls hash of the partition (entry id -> attempts started and not finished)
-- ARGV    stream entry ids
--
-- Returns the number of entries marked.

for i = 1, #ARGV do
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
end
return #ARGV
