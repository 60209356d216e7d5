-- Admit one send under the namespace-wide rate limit (GCRA), shared by every worker.
--
-- KEYS[1] global rate key (GCRA theoretical arrival time, Unix ms)
-- KEYS[2] global limits hash (fields "rate", "burst"; each overrides the default)
-- ARGV[1] now, Unix ms
-- ARGV[2] default rate per second (0 = unlimited)
-- ARGV[3] default burst (sends allowed at once before the rate applies)
--
-- GCRA: each send moves the theoretical arrival time (TAT) on by 1/rate; a send is allowed
-- while TAT - now <= (burst-1)/rate: up to `burst` at once, then one per 1/rate, so any
-- window of t seconds sees at most rate*t + burst sends.
-- Returns {1, 0} when admitted, else {0, wait_ms} (nothing is taken when refused).

local now = tonumber(ARGV[1])
local limits = redis.call('HMGET', KEYS[2], 'rate', 'burst')
local rate = tonumber(limits[1] or ARGV[2])
if rate <= 0 then
  return {1, 0}
end
local burst = math.max(1, tonumber(limits[2] or ARGV[3]))
local interval = 1000 / rate
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local allowed_at = tat - interval * (burst - 1)
if allowed_at > now then
  return {0, math.ceil(allowed_at - now)}
end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(interval * (burst + 1)) + 1000)
return {1, 0}
