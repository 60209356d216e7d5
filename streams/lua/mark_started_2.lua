-- Count an attempt as started for each of a batch of entries of one partition, before any
-- of them is sent: a worker that dies mid-send leaves the count behind, and the next owner
-- reads it as a stall (see consumers/stall_marks.py). An entry whose message is already
-- recorded as delivered is not marked: it must not be sent again (a previous owner's
-- acknowledgement came after this worker read it; see consumers/delivery.py).
--
-- KEYS[1] stalls hash of the partition (entry id -> attempts started and not finished)
-- KEYS[2] outcome records hash of the partition (message id -> JSON record)
-- ARGV[1] "1": check the records first ("0": records of delivered messages are not kept)
-- ARGV[2..] pairs: stream entry id, message id
--
-- Returns the entry ids not marked because their message is recorded as delivered.

local check = ARGV[1] == '1'
local delivered = {}
for i = 2, #ARGV, 2 do
  local record = check and redis.call('HGET', KEYS[2], ARGV[i + 1])
  if record and string.sub(record, 1, 20) == '{"state":"delivered"' then
    delivered[#delivered + 1] = ARGV[i]
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  end
end
return delivered
