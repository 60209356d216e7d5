-- Decide one round of send admissions for one worker, for many tenants at once:
-- slot releases, then per tenant its provider pause, in-flight cap and rate (GCRA), then
-- the global rate (GCRA) over everything the tenants admitted.
--
-- KEYS[1] global rate key (GCRA theoretical arrival time, Unix ms)
-- KEYS[2] global limits hash (fields "rate", "burst"; each overrides the default)
-- then per tenant group i (i = 1..G), four keys starting at KEYS[2 + 4*(i-1) + 1]:
--   in-flight sorted set (member: slot holder, score: slot expiry Unix ms),
--   limits hash (fields "cap", "rate", "burst"), pause key (with a TTL), rate key (TAT)
-- ARGV[1] the worker's clock, Unix ms: not used for decisions (Redis TIME is, so a late
--         round or a host's clock skew cannot let more through); kept for MONITOR/debug
-- ARGV[2] slot TTL ms
-- ARGV[3] default tenant cap (0 = none)   ARGV[4] default tenant rate/s (0 = none)
-- ARGV[5] default tenant burst            ARGV[6] default global rate/s (0 = none)
-- ARGV[7] default global burst
-- ARGV[8] sends that already hold their tenant slot and ask only the global rate (H)
-- ARGV[9] number of tenant groups (G)
-- then per group two arguments: the slot holders to release, and the slot holders asking
-- (in order), each list joined with "\n" (one argument per list, not per send: packing
-- arguments is most of a round's cost on the client)
--
-- Returns {global_granted, global_wait_ms, t1_admitted, t1_wait_ms, t1_reason, ...}:
-- per group, its first `admitted` holders took a slot (the rest were refused for reason
-- "paused" / "cap" (wait -1: until a slot frees) / "rate", nothing taken for them).
-- The global rate is then asked for the H waiting sends first, then the admitted ones in
-- group order: the first `global_granted` of that sequence may send now; the others keep
-- their slots and wait global_wait_ms.

-- Milliseconds with microsecond precision: at high rates whole milliseconds would let
-- only `burst` sends through per millisecond (GCRA sees no time pass within one).
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local ttl = tonumber(ARGV[2])

local function gcra(key, rate, burst, wanted)
  -- Grants up to `wanted` sends; returns granted, wait_ms for the next one.
  if rate <= 0 or wanted == 0 then
    return wanted, 0
  end
  local interval = 1000 / rate
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  local granted, wait_ms = 0, 0
  while granted < wanted do
    local allowed_at = tat - interval * (burst - 1)
    if allowed_at > now then
      wait_ms = math.ceil(allowed_at - now)
      break
    end
    tat = tat + interval
    granted = granted + 1
  end
  if granted > 0 then
    redis.call('SET', key, tostring(tat), 'PX', math.ceil(interval * (burst + 1)) + 1000)
  end
  return granted, wait_ms
end

local function admit_tenant(k, holders)
  -- k: index of the group's first key. Returns admitted, wait_ms, reason.
  local pause_left = redis.call('PTTL', KEYS[k + 2])
  if pause_left > 0 then
    return 0, pause_left, 'paused'
  end
  local limits = redis.call('HMGET', KEYS[k + 1], 'cap', 'rate', 'burst')
  local cap = tonumber(limits[1] or ARGV[3])
  local rate = tonumber(limits[2] or ARGV[4])
  local burst = math.max(1, tonumber(limits[3] or ARGV[5]))
  local room = #holders
  if cap > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
    room = math.min(room, math.max(0, cap - redis.call('ZCARD', KEYS[k])))
  end
  local admitted, wait_ms = gcra(KEYS[k + 3], rate, burst, room)
  local reason = 'cap'
  if admitted < room then
    reason = 'rate'
  else
    wait_ms = -1
  end
  if cap > 0 and admitted > 0 then
    for i = 1, admitted do
      redis.call('ZADD', KEYS[k], now + ttl, holders[i])
    end
    redis.call('PEXPIRE', KEYS[k], ttl * 2)
  end
  return admitted, wait_ms, reason
end

local function split(list)
  local items = {}
  for item in string.gmatch(list, '[^\n]+') do
    items[#items + 1] = item
  end
  return items
end

local groups = tonumber(ARGV[9])
local replies = {0, 0}
local wanted = tonumber(ARGV[8])
for g = 1, groups do
  local k = 2 + 4 * (g - 1) + 1
  local releases = split(ARGV[10 + 2 * (g - 1)])
  for i = 1, #releases do
    redis.call('ZREM', KEYS[k], releases[i])
  end
  local holders = split(ARGV[11 + 2 * (g - 1)])
  local admitted, wait_ms, reason = 0, 0, ''
  if #holders > 0 then
    admitted, wait_ms, reason = admit_tenant(k, holders)
  end
  wanted = wanted + admitted
  replies[#replies + 1] = admitted
  replies[#replies + 1] = wait_ms
  replies[#replies + 1] = reason
end

local glimits = redis.call('HMGET', KEYS[2], 'rate', 'burst')
local grate = tonumber(glimits[1] or ARGV[6])
local gburst = math.max(1, tonumber(glimits[2] or ARGV[7]))
replies[1], replies[2] = gcra(KEYS[1], grate, gburst, wanted)
return replies
