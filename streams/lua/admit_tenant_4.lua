-- Admit one send of a tenant: provider pause, in-flight cap, then the tenant's rate (GCRA).
--
-- KEYS[1] tenant in-flight sorted set (member: slot holder, score: slot expiry Unix ms)
-- KEYS[2] tenant limits hash (fields "cap", "rate", "burst"; each overrides the default)
-- KEYS[3] tenant pause key (set with a TTL when the provider throttles the tenant)
-- KEYS[4] tenant rate key (GCRA theoretical arrival time, Unix ms)
-- ARGV[1] slot holder (worker id + entry id; unique per message)
-- ARGV[2] now, Unix ms
-- ARGV[3] slot TTL ms (a holder that dies frees its slot after this long)
-- ARGV[4] default cap (0 = no cap)
-- ARGV[5] default rate per second (0 = no tenant rate limit)
-- ARGV[6] default burst (sends allowed at once before the rate applies)
--
-- Returns {1, 0, ""} when admitted (the slot is taken), else {0, wait_ms, reason}:
-- reason "paused" (wait_ms = pause left), "cap" (wait_ms = -1: until a slot frees),
-- or "rate" (wait_ms = until the next send is allowed). Nothing is taken when refused.

local now = tonumber(ARGV[2])

local pause_left = redis.call('PTTL', KEYS[3])
if pause_left > 0 then
  return {0, pause_left, 'paused'}
end

local limits = redis.call('HMGET', KEYS[2], 'cap', 'rate', 'burst')
local cap = tonumber(limits[1] or ARGV[4])
local rate = tonumber(limits[2] or ARGV[5])
local burst = math.max(1, tonumber(limits[3] or ARGV[6]))

if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= cap then
    return {0, -1, 'cap'}
  end
end

if rate > 0 then
  local interval = 1000 / rate
  local tat = math.max(tonumber(redis.call('GET', KEYS[4]) or now), now)
  local allowed_at = tat - interval * (burst - 1)
  if allowed_at > now then
    return {0, math.ceil(allowed_at - now), 'rate'}
  end
  redis.call('SET', KEYS[4], tostring(tat + interval), 'PX', math.ceil(interval * (burst + 1)) + 1000)
end

if cap > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
end
return {1, 0, ''}
