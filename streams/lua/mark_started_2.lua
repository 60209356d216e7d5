-- Count an attempt as started for each of a batch of entries of one partition, before any
-- of them is sent: a worker that dies mid-send leaves the count behind, and the next owner
-- reads it as a stall (see consumers/stall_marks.py). Each message's outcome record says
-- it is in flight, by which worker, since when.
--
-- KEYS[1] stalls hash of the partition (entry id -> attempts started and not finished)
-- KEYS[2] outcome records hash of the partition (message id -> JSON record)
-- ARGV    per entry, three values: stream entry id, message id, in-flight record
--         ("" = no record)
--
-- Returns the number of entries marked.

for i = 1, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
  end
end
return #ARGV / 3
