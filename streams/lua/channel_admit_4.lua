-- Admit one send on its channel, across all workers: the channel's provider pause, its
-- cap of sends in flight, the global cap, and its rate (GCRA), checked in that order and
-- taken together or not at all.
--
-- KEYS[1] the channel's in-flight sorted set (send lease -> expiry ms)
-- KEYS[2] the channel's rate key (GCRA theoretical arrival time, Unix ms)
-- KEYS[3] the channel's pause key (a TTL: its provider asked it to wait)
-- KEYS[4] the global in-flight sorted set (send lease -> expiry ms)
--
-- ARGV[1] the send lease (unique per send: "<worker>:<n>")
-- ARGV[2] lease lifetime ms (outlives a worker that dies holding it, then lapses)
-- ARGV[3] channel cap (0 = none)   ARGV[4] channel rate/s (0 = none)
-- ARGV[5] channel burst            ARGV[6] global cap (0 = none)
-- ARGV[7] ms to wait when a cap is full (sends elsewhere end at no known time)
--
-- Returns 0 when admitted (the lease is held in each capped set until released or
-- lapsed), else the ms to wait before asking again.

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then
  return paused
end
local cap, rate, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local global_cap, poll = tonumber(ARGV[6]), tonumber(ARGV[7])

local function full(set, most)
  if most <= 0 then
    return false
  end
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  return redis.call('ZCARD', set) >= most
end

if full(KEYS[1], cap) or full(KEYS[4], global_cap) then
  return poll
end
if rate > 0 then
  local interval = 1000 / rate
  local tat = math.max(tonumber(redis.call('GET', KEYS[2]) or now), now)
  local allowed_at = tat - interval * (burst - 1)
  if allowed_at > now then
    return math.max(1, math.ceil(allowed_at - now))
  end
  tat = tat + interval
  redis.call('SET', KEYS[2], tostring(tat), 'PX', math.ceil(tat - now + interval * burst) + 1000)
end
local expiry = now + tonumber(ARGV[2])
if cap > 0 then
  redis.call('ZADD', KEYS[1], expiry, ARGV[1])
end
if global_cap > 0 then
  redis.call('ZADD', KEYS[4], expiry, ARGV[1])
end
return 0
