-- Admit delayed messages whose due time has come, atomically.
--
-- KEYS[1] delayed sorted set of the partition (member: message id, score: due Unix ms)
-- KEYS[2] delayed data hash of the partition (message id -> "<level>:<encoded message>")
-- KEYS[3..] per priority level, highest first, three keys: its stream, the stream's unread
--           counter, the level's ring (see _admit.lua)
-- ARGV[1] now in Unix ms
-- ARGV[2] most messages to move in this call
-- ARGV[3] admission window (see _admit.lua)
-- ARGV[4..] per level, in the order of KEYS: its name, then its waiting-list key prefix
--           (the tenant's name completes it)
--
-- Due messages move in (due time, message id) order, so messages of one conversation
-- due at the same time keep the order in which they were sent. Each is admitted like a
-- new message: into its stream, or behind what its tenant already has waiting.
-- The waiting lists are named here from each message's tenant (prefix .. tenant), not passed in KEYS:
-- the caller does not know the due messages' tenants. They carry the partition's hash tag, so they
-- are in the slot of the declared keys (what Redis Cluster needs in practice).
-- Returns the number of messages moved.

-- #include _admit

local levels = {}
for i = 0, (#KEYS - 2) / 3 - 1 do
  levels[ARGV[4 + 2 * i]] = {KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i], ARGV[5 + 2 * i]}
end
local lowest, lowest_unread = KEYS[#KEYS - 2], KEYS[#KEYS - 1]

-- The tenant: the second item of the encoded message, a msgpack array whose first two
-- items are strings (id, tenant). Returns the string at byte `pos` and the position after
-- it, or nil when there is none.
local function msgpack_str(blob, pos)
  local tag = string.byte(blob, pos)
  if not tag then
    return nil
  end
  local len, start
  if tag >= 0xa0 and tag <= 0xbf then
    len, start = tag - 0xa0, pos + 1
  elseif tag == 0xd9 then
    len, start = string.byte(blob, pos + 1), pos + 2
  elseif tag == 0xda then
    local hi, lo = string.byte(blob, pos + 1, pos + 2)
    len, start = hi and lo and hi * 256 + lo, pos + 3
  end
  if not len or start + len - 1 > #blob then
    return nil
  end
  return string.sub(blob, start, start + len - 1), start + len
end

local function tenant_of(blob)
  local tag = string.byte(blob, 1)
  local pos
  if tag and tag >= 0x92 and tag <= 0x9f then
    pos = 2
  elseif tag == 0xdc then
    pos = 4
  else
    return nil
  end
  local id, after = msgpack_str(blob, pos)
  if not id then
    return nil
  end
  local tenant = msgpack_str(blob, after)
  if tenant == '' then
    return nil
  end
  return tenant
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  local data = redis.call('HGET', KEYS[2], id)
  if data then
    local colon = string.find(data, ':', 1, true)
    local level = colon and levels[string.sub(data, 1, colon - 1)]
    local blob = level and string.sub(data, colon + 1)
    local tenant = blob and tenant_of(blob)
    if tenant then
      admit(level[1], level[2], level[3], level[4] .. tenant, tenant, blob, ARGV[3])
    else
      -- Unknown level or undecodable (written by hand or by another configuration): move
      -- it as it is rather than lose it; the worker dead-letters it as poison.
      redis.call('INCR', lowest_unread)
      redis.call('XADD', lowest, '*', 'm', data)
    end
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return moved
