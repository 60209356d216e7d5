-- One worker's flow-control round: renew, grow or shrink its lease of tenant slots, and
-- take tokens from the tenant, sender and global rates (GCRA) for the sends it has
-- waiting plus a short prefetch. The worker then admits sends from what it holds without
-- asking Redis per send; every send still counts against the shared limits.
--
-- Spare capacity: while a rate's bucket is more than half full (the limit is far from
-- binding) a worker also gets the extra tokens it asks for, from the upper half only, and
-- while a tenant's cap has room it gets up to half the free slots (at most the slots it
-- could ever use). So a worker far below its limits rarely waits for a round, and a
-- limit that binds is shared by what each worker needs now, as without extras.
--
-- KEYS[1] global rate key (GCRA theoretical arrival time, Unix ms)
-- KEYS[2] global limits hash (fields "rate", "burst"; each overrides the default)
-- then T tenant groups of five keys: leases hash ("h:<worker>" -> slots held,
--   "w:<worker>" -> slots wanted and not granted), lease expiry sorted set (worker ->
--   expiry ms), limits hash ("cap", "rate", "burst"), pause key (TTL), rate key (TAT)
-- then S sender groups of three keys: limits hash ("rate", "burst"), pause key, rate key
--
-- ARGV[1] worker id                  ARGV[2] slot lease TTL ms
-- ARGV[3] default tenant cap (0 = none)  ARGV[4] default tenant rate/s (0 = none)
-- ARGV[5] default tenant burst       ARGV[6] default sender rate/s   ARGV[7] sender burst
-- ARGV[8] default global rate/s (0 = none)  ARGV[9] default global burst
-- ARGV[10] global tokens wanted beyond what the tenants' waiting sends need (prefetch)
-- ARGV[11] global extra tokens wanted from spare capacity
-- ARGV[12] most slots of one tenant the worker can use (its concurrency)
-- ARGV[13] T   ARGV[14] S
-- ARGV[15] the groups' numbers separated by spaces (one argument, not one per number:
--   packing arguments is most of a round's cost on the client):
--   per tenant group seven: in_use (sends in flight now), hold (most the worker may have
--   in flight when this reply arrives), asking (sends waiting now), starved (1: sends
--   were refused for the cap since the last round), want_slots (0: give back all not
--   held), want_tokens, extra_tokens;
--   then per sender group two: want_tokens, extra_tokens
--
-- Returns {global_tokens, global_wait_ms, global_life_ms, then per tenant group:
-- allowed_slots, tokens, rate_wait_ms, life_ms, pause_ms, then per sender group: tokens,
-- rate_wait_ms, life_ms, pause_ms}. allowed_slots is -1 when the tenant has no cap,
-- tokens -1 when that rate is off; life_ms is how long the worker may keep unused tokens
-- (burst/rate within [100 ms, 1 s]: using a token that late overshoots by a burst, or by
-- rate x 100 ms for a burst under that, at most). The
-- worker may have at most allowed_slots of the tenant's sends in flight from now on; the
-- stored lease is max(hold, allowed_slots), so it always covers what is in flight.
-- Tokens are spent when granted (the worker lets them lapse if unused).

local clock = redis.call('TIME')
-- Milliseconds with microsecond precision (GCRA at high rates needs sub-ms time).
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local me = ARGV[1]
local ttl = tonumber(ARGV[2])
local most = tonumber(ARGV[12])

local function gcra(key, rate, burst, wanted, extra)
  -- Grants up to `wanted` tokens at once, and up to `extra` more from the upper half of
  -- the bucket; returns granted, wait_ms for the next one, and how long the worker may
  -- keep them.
  local interval = 1000 / rate
  local life_ms = math.floor(math.min(1000, math.max(100, interval * burst)))
  if wanted <= 0 then
    return 0, 0, life_ms
  end
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  -- tokens grantable now: each moves tat one interval on, while tat - (burst-1)*interval <= now
  local grantable = math.floor((now - tat) / interval + burst - 1 + 1e-9) + 1
  local granted = math.max(0, math.min(wanted, grantable))
  local spare = grantable - granted - math.ceil(burst / 2)
  if extra > 0 and spare > 0 then
    granted = granted + math.min(extra, spare)
  end
  local wait_ms = 0
  if granted > 0 then
    tat = tat + granted * interval
    redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now + interval * burst) + 1000)
  end
  if granted < wanted then
    wait_ms = math.max(1, math.ceil(tat - interval * (burst - 1) - now))
  end
  return granted, wait_ms, life_ms
end

local function fair_lease(leases, expiry, cap, in_use, hold, need, want)
  -- Returns the slots this worker may use: what it wants within the cap left by the
  -- others, and within a fair share while another worker waits for slots.
  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  for _, worker in ipairs(expired) do
    redis.call('HDEL', leases, 'h:' .. worker, 'w:' .. worker)
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
  end
  local fields = redis.call('HGETALL', leases)
  local mine, others, waiting, contenders, seen = 0, 0, false, 1, {}
  for i = 1, #fields, 2 do
    local worker = string.sub(fields[i], 3)
    if worker == me and string.sub(fields[i], 1, 1) == 'h' then
      mine = tonumber(fields[i + 1])
    elseif worker ~= me then
      if string.sub(fields[i], 1, 1) == 'h' then
        others = others + tonumber(fields[i + 1])
      else
        waiting = true
      end
      if not seen[worker] then
        seen[worker] = true
        contenders = contenders + 1
      end
    end
  end
  local free = math.max(0, cap - others)
  local allowed = math.min(want, free)
  if want > 0 and allowed < most then
    -- room to spare: up to half the free slots, so a busy worker rarely needs a round
    allowed = math.max(allowed, math.min(most, math.floor(free / 2)))
  end
  if waiting then
    -- Another worker waits for this tenant: keep at most a fair share. With fewer slots
    -- than workers wanting them, a holder gives its slot up (after its send in flight)
    -- and a waiting worker takes it: the slot rotates instead of staying where it is.
    if cap >= contenders then
      allowed = math.min(allowed, math.ceil(cap / contenders))
    elseif mine > 0 then
      allowed = 0
    else
      allowed = math.min(allowed, 1)
    end
  end
  local held = math.max(hold, allowed)
  if held > 0 then
    redis.call('HSET', leases, 'h:' .. me, held)
    redis.call('ZADD', expiry, now + ttl, me)
  else
    redis.call('HDEL', leases, 'h:' .. me)
    redis.call('ZREM', expiry, me)
  end
  if need > allowed then
    redis.call('HSET', leases, 'w:' .. me, need - allowed)
    redis.call('ZADD', expiry, now + ttl, me)
  else
    redis.call('HDEL', leases, 'w:' .. me)
  end
  redis.call('PEXPIRE', leases, ttl * 2)
  redis.call('PEXPIRE', expiry, ttl * 2)
  return allowed
end

local function limits(key, fields, defaults)
  local stored = redis.call('HMGET', key, unpack(fields))
  local values = {}
  for i = 1, #fields do
    values[i] = tonumber(stored[i] or defaults[i])
  end
  return values
end

local function pause_ms(key)
  return math.max(0, redis.call('PTTL', key))
end

local numbers = {}
for number in string.gmatch(ARGV[15], '%S+') do
  numbers[#numbers + 1] = tonumber(number)
end

local replies = {-1, 0, 0}
local tenants, senders = tonumber(ARGV[13]), tonumber(ARGV[14])
local global_wanted = tonumber(ARGV[10])
for g = 1, tenants do
  local k, a = 2 + 5 * (g - 1), 7 * (g - 1)
  local in_use, hold, asking = numbers[a + 1], numbers[a + 2], numbers[a + 3]
  local need = in_use + asking + numbers[a + 4]
  local cap, rate, burst = unpack(limits(KEYS[k + 3], {'cap', 'rate', 'burst'},
    {ARGV[3], ARGV[4], ARGV[5]}))
  local paused = pause_ms(KEYS[k + 4])
  local allowed, tokens, wait_ms, life_ms, serves = -1, -1, 0, 0, asking
  if cap > 0 then
    allowed = fair_lease(KEYS[k + 1], KEYS[k + 2], cap, in_use, hold, need, numbers[a + 5])
    serves = math.min(serves, math.max(0, allowed - in_use))
  end
  if paused > 0 then
    serves = 0
  end
  if rate > 0 then
    local wanted, extra = numbers[a + 6], numbers[a + 7]
    if paused > 0 then
      wanted, extra = 0, 0
    end
    tokens, wait_ms, life_ms = gcra(KEYS[k + 5], rate, math.max(1, burst), wanted, extra)
    serves = math.min(serves, tokens)
  end
  global_wanted = global_wanted + serves
  for _, value in ipairs({allowed, tokens, wait_ms, life_ms, paused}) do
    replies[#replies + 1] = value
  end
end

local sk, sa = 2 + 5 * tenants, 7 * tenants
for g = 1, senders do
  local k = sk + 3 * (g - 1)
  local rate, burst = unpack(limits(KEYS[k + 1], {'rate', 'burst'}, {ARGV[6], ARGV[7]}))
  local paused = pause_ms(KEYS[k + 2])
  local tokens, wait_ms, life_ms = -1, 0, 0
  if rate > 0 then
    local wanted, extra = numbers[sa + 2 * g - 1], numbers[sa + 2 * g]
    if paused > 0 then
      wanted, extra = 0, 0
    end
    tokens, wait_ms, life_ms = gcra(KEYS[k + 3], rate, math.max(1, burst), wanted, extra)
  end
  for _, value in ipairs({tokens, wait_ms, life_ms, paused}) do
    replies[#replies + 1] = value
  end
end

local grate, gburst = unpack(limits(KEYS[2], {'rate', 'burst'}, {ARGV[8], ARGV[9]}))
if grate > 0 then
  replies[1], replies[2], replies[3] = gcra(KEYS[1], grate, math.max(1, gburst), global_wanted,
    tonumber(ARGV[11]))
end
return replies
