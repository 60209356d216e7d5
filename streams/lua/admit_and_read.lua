-- Admit waiting messages into a partition's streams, tenants taking turns, then read.
--
-- KEYS per priority level, highest first, three keys each: the level's stream, its unread
--      counter, the level's ring of tenants with waiting messages (see _admit.lua)
-- ARGV[1] consumer group
-- ARGV[2] consumer (the worker)
-- ARGV[3] count: entries to read per stream, and the unread window admission fills
-- ARGV[4..] per level, three values: entries the caller read from the stream outside this
--      script since its last call (a blocking read while idle), "1" if the level is paused
--      (admit nothing of it), the level's waiting-list key prefix (a tenant completes it)
-- ARGV[4 + 3 x levels ..] paused tenants (none of their messages are admitted)
--
-- Per level: the unread window is topped up to `count` from the waiting lists of the
-- ring's tenants in turn (round-robin: at most max(ceil(room / tenants), MIN_QUANTUM) of
-- one tenant per turn, each tenant at most once per call; the ring's rotation carries the
-- turn over to the next call), so a tenant with a million waiting messages gets one turn
-- like a tenant with ten. MIN_QUANTUM bounds the script's own commands per admitted
-- message (LMOVE, LPOP, perhaps EXISTS per turn) however many tenants wait; it costs a
-- tenant that starts waiting at most MIN_QUANTUM messages per tenant ahead of it.
-- Then one XREADGROUP reads up to `count` new
-- entries of every level. A read that drains a stream resets its counter to 0 (the
-- truth), so a counter that drifted (a worker died between a blocking read and its next
-- call) heals on the next quiet moment.
-- The waiting lists are named here from the ring (prefix .. tenant), not passed in KEYS:
-- the caller cannot know which tenants wait. They carry the partition's hash tag, so they
-- are in the slot of the declared keys (what Redis Cluster needs in practice).
-- Returns {XREADGROUP reply (empty when nothing), 1 if waiting messages had no room}.

local levels = #KEYS / 3
local count = tonumber(ARGV[3])
local paused = {}
for i = 4 + 3 * levels, #ARGV do
  paused[ARGV[i]] = true
end
local more = 0
local MIN_QUANTUM = 8

local function admit_waiting(stream, ring, prefix, room)
  local tenants = redis.call('LLEN', ring)
  if tenants == 0 then
    return 0
  end
  if room <= 0 then
    more = 1
    return 0
  end
  local quantum = math.max(math.ceil(room / tenants), MIN_QUANTUM)
  local moved = 0
  for _ = 1, tenants do
    if room <= 0 then
      more = 1
      break
    end
    local tenant = redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    if not paused[tenant] then
      local waiting = prefix .. tenant
      local asked = math.min(quantum, room)
      local blobs = redis.call('LPOP', waiting, asked) or {}
      for _, blob in ipairs(blobs) do
        redis.call('XADD', stream, '*', 'm', blob)
      end
      moved = moved + #blobs
      room = room - #blobs
      -- Fewer than asked: the list is gone. The ring names a tenant only while its list exists.
      if #blobs < asked or redis.call('EXISTS', waiting) == 0 then
        redis.call('RPOP', ring) -- the tenant LMOVE just put at the tail
      end
    end
  end
  return moved
end

local unread, read_args = {}, {'GROUP', ARGV[1], ARGV[2], 'COUNT', count, 'STREAMS'}
for i = 1, levels do
  local stream, counter, ring = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local base = 4 + 3 * (i - 1)
  local n = math.max(0, tonumber(redis.call('GET', counter) or '0') - tonumber(ARGV[base]))
  if ARGV[base + 1] ~= '1' then
    n = n + admit_waiting(stream, ring, ARGV[base + 2], count - n)
  end
  unread[stream] = n
  read_args[#read_args + 1] = stream
end
for _ = 1, levels do
  read_args[#read_args + 1] = '>'
end

local reply = redis.call('XREADGROUP', unpack(read_args))
local got = {}
for _, stream_entries in ipairs(reply or {}) do
  got[stream_entries[1]] = #stream_entries[2]
end
for i = 1, levels do
  local stream, counter = KEYS[3 * i - 2], KEYS[3 * i - 1]
  local n = got[stream] or 0
  if n < count or unread[stream] <= n then
    redis.call('DEL', counter)
  else
    redis.call('SET', counter, unread[stream] - n)
  end
end
return {reply or {}, more}
