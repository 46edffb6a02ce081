-- rl_lease.lua: leases rate-limit tokens for the endpoints of one home
-- partition (GCRA with reservation; the model and its bound are
-- common/ratelimit.h's hq_rl_lease, docs/flow-control.md "Rate limits").
-- KEYS[i]  "<H>:rl:<endpoint id>": the TAT in us (a string), expiring when idle
-- ARGV[1]  horizon us: a lease starting later than this is refused
-- ARGV[1+4(i-1)+1..4] for KEYS[i]: interval T us, k tokens, burst b, refund
--          (tokens of the caller's previous lease it did not use)
-- Returns, per key, {start, next}: start = us from now when the k tokens
-- become usable (-1 refused: nothing granted), next = us from now when the
-- reserved backlog ends (when a lease asked then would start at once).
-- The clock is Redis' TIME, one clock for every worker.
local call = redis.call
local t = call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local horizon = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local a = 1 + 4 * (i - 1)
  local T, k, b, refund = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
      tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local tat = tonumber(call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  if refund > 0 then
    tat = tat - refund * T
    if tat < now then tat = now end
  end
  local nxt = tat + k * T
  local start = nxt - b * T - now
  if start < 0 then start = 0 end
  local keep = tat
  if start <= horizon then
    keep = nxt
  else
    start = -1
  end
  -- Idle keys expire: a TAT in the past means the same as no key.
  call('SET', KEYS[i], string.format('%.0f', keep), 'PX',
       math.floor((keep - now) / 1000) + 1000)
  out[i] = {start, keep - now}
end
return out
