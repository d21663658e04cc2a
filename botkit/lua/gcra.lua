-- GCRA (the generic cell rate algorithm): one Chatwoot request budget shared by every botkit process.
--
-- KEYS[1]  the budget's key; it holds the theoretical arrival time (TAT), in microseconds of Redis's clock
-- ARGV[1]  the emission interval: microseconds between requests at the allowed rate
-- ARGV[2]  the tolerance: how far ahead of now the TAT may run before a caller waits (interval * (burst - 1))
--
-- Reserves the next slot and returns how many microseconds the caller must wait before using it (0: now).
-- Waiting callers are served in the order they reserved, as a token bucket would. The clock is Redis's own
-- (TIME), so hosts with skewed clocks still share one budget.

local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local wait = tat - tolerance - now
if wait < 0 then
  wait = 0
end
local new_tat = tat + interval
-- the key lives only while the budget is in use: it expires once the TAT is in the past
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return wait
