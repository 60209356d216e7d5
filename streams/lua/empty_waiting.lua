-- Drop the waiting messages (accepted, not yet read by a worker) of one tenant, or of all,
-- from one partition, in one atomic step: no worker reads any of them half-way.
--
-- KEYS[1] the partition's outcome records hash (Keys.outcomes)
-- KEYS[2..] per chosen priority level, three keys each: the level's stream, its unread
--      counter and its ring of tenants with waiting lists (Keys.level_keys' layout)
-- ARGV[1] consumer group
-- ARGV[2] the tenant, or '' for every tenant
-- ARGV[3] '1' for a dry run: count, change nothing
-- ARGV[4..] per chosen level: its waiting-list key prefix (Keys.waiting_prefix)
--
-- Per level, what goes: the tenant's waiting list (named from the prefix, as
-- admit_and_read.lua does; with every tenant, the lists the ring names, and the ring), its
-- ring entry, and its entries of the stream's unread window (ids above the group's
-- last-delivered id); the unread counter drops by the entries removed. Entries read by a
-- worker (pending, in flight) are never touched. The outcome records of the removed
-- messages go too (message id = element 1 of the msgpack array, tenant = element 2).
-- Entries that do not decode are left for the workers (they dead-letter them).
-- Returns {outcome records deleted, then per (level, tenant) with anything removed:
--          level index (1 = first chosen level), tenant, from its list, from the stream}.

-- #include _group_info

local group, only, dry = ARGV[1], ARGV[2], ARGV[3] == '1'
local records = KEYS[1]
local rows, order = {}, {}
local records_deleted = 0
local CHUNK = 1000

local function row(level, tenant)
  local key = level .. ':' .. tenant
  if rows[key] == nil then
    rows[key] = {level, tenant, 0, 0}
    order[#order + 1] = key
  end
  return rows[key]
end

-- A msgpack string at byte `pos` of `blob` (fixstr, str 8 or str 16) and the position after
-- it, or nil.
local function read_str(blob, pos)
  local head = string.byte(blob, pos)
  if head == nil then
    return nil
  end
  local length, start
  if head >= 0xa0 and head <= 0xbf then
    length, start = head - 0xa0, pos + 1
  elseif head == 0xd9 then
    length, start = string.byte(blob, pos + 1), pos + 2
  elseif head == 0xda then
    length, start = string.byte(blob, pos + 1) * 256 + string.byte(blob, pos + 2), pos + 3
  else
    return nil
  end
  return string.sub(blob, start, start + length - 1), start + length
end

-- The message id and tenant of an encoded message (a msgpack array whose first two
-- elements they are: streams/message.py), read without decoding the rest; nil, nil for
-- anything else. (cmsgpack cannot be used: it rejects the payload's bin type.)
local function message_of(blob)
  local head, pos = string.byte(blob, 1), nil
  if head == nil then
    return nil, nil
  elseif head >= 0x92 and head <= 0x9f then
    pos = 2
  elseif head == 0xdc then
    pos = 4
  else
    return nil, nil
  end
  local id, after = read_str(blob, pos)
  if id == nil then
    return nil, nil
  end
  local tenant = read_str(blob, after)
  if tenant == nil then
    return nil, nil
  end
  return id, tenant
end

local function forget(ids)
  for j = 1, #ids, CHUNK do
    records_deleted = records_deleted
      + redis.call('HDEL', records, unpack(ids, j, math.min(j + CHUNK - 1, #ids)))
  end
end

local function empty_stream(level, stream, unread)
  local info = group_info(stream, group)
  if redis.call('EXISTS', stream) == 0 then
    return
  end
  local start = info and ('(' .. info['last-delivered-id']) or '-'
  local entry_ids, message_ids = {}, {}
  for _, entry in ipairs(redis.call('XRANGE', stream, start, '+')) do
    local fields = entry[2]
    for k = 1, #fields, 2 do
      if fields[k] == 'm' then
        local id, tenant = message_of(fields[k + 1])
        if id and (only == '' or tenant == only) then
          entry_ids[#entry_ids + 1] = entry[1]
          message_ids[#message_ids + 1] = id
          local r = row(level, tenant)
          r[4] = r[4] + 1
        end
      end
    end
  end
  if dry or #entry_ids == 0 then
    return
  end
  for j = 1, #entry_ids, CHUNK do
    redis.call('XDEL', stream, unpack(entry_ids, j, math.min(j + CHUNK - 1, #entry_ids)))
  end
  if redis.call('DECRBY', unread, #entry_ids) <= 0 then
    redis.call('DEL', unread)
  end
  forget(message_ids)
end

local function empty_list(level, ring, waiting, tenant)
  local length = redis.call('LLEN', waiting)
  if length > 0 then
    local r = row(level, tenant)
    r[3] = r[3] + length
  end
  if dry then
    return
  end
  for start = 0, length - 1, CHUNK do
    local ids = {}
    for _, blob in ipairs(redis.call('LRANGE', waiting, start, start + CHUNK - 1)) do
      ids[#ids + 1] = message_of(blob)
    end
    forget(ids)
  end
  redis.call('DEL', waiting)
  redis.call('LREM', ring, 0, tenant)
end

for i = 1, (#KEYS - 1) / 3 do
  local stream, unread, ring = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local prefix = ARGV[3 + i]
  empty_stream(i, stream, unread)
  local tenants = {only}
  if only == '' then
    tenants = redis.call('LRANGE', ring, 0, -1)
  end
  for _, tenant in ipairs(tenants) do
    empty_list(i, ring, prefix .. tenant, tenant)
  end
end

local reply = {records_deleted}
for _, key in ipairs(order) do
  for _, value in ipairs(rows[key]) do
    reply[#reply + 1] = value
  end
end
return reply
